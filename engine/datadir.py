"""What the data dir holds and the permissions it must have.

The data dir (``--data-dir`` / ``SYMBI_DATA_DIR``, default the per-user data
dir) holds everything an agent must never reach: the vault master key, the
audit signing key, the agents' bus identity keys, the operator signing key,
the context encryption key, the SQLite databases, the secrets and every
agent's program and workspace. Agents run as sandboxed processes (as uid
65534 when the engine runs as root), so the rules are:

* the data dir is ``0700`` and owned by the engine's effective uid;
  otherwise ``RUNTIME_003`` naming it, its mode and the fix (``chmod 700``
  or ``chown``);
* every private key file (:func:`key_files`) is ``0600`` (no group or other
  bits) and owned by the engine's euid; otherwise ``SEC_003`` naming it;
* the databases (:data:`DATABASES` and the context store) are ``0600``: they
  are created empty with that mode before SQLite first opens them (SQLite
  treats an empty file as a new database and gives its ``-wal``, ``-shm`` and
  ``-journal`` files the database's own mode), and existing looser ones are
  tightened.

:func:`ensure_data_dir` creates the data dir ``0700`` (every command that may
create one uses it); :func:`prepare` is what ``Runtime.start`` runs right after.

An existing data dir with group/other bits (a data dir made ``0755`` by an
earlier version) is refused, not silently fixed, as ssh refuses a loose key:
the operator should learn that the keys in it were readable, may want to
rotate them, and a tool quietly changing the mode of their directory is a
surprise. The databases inside are different: once the directory is private
nobody else could reach them anyway, so tightening them is housekeeping.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engine.atomicfile import private_dir
from engine.errors import ErrorCode, SymbiError

__all__ = [
    "DATABASES",
    "DIR_MODE",
    "FILE_MODE",
    "check_data_dir",
    "check_key_files",
    "database_files",
    "ensure_data_dir",
    "key_files",
    "prepare",
    "private_databases",
]

log = logging.getLogger("symbi.engine")

DIR_MODE = 0o700
FILE_MODE = 0o600
KEYS_DIR = "keys"
KEY_SUFFIXES = (".key", ".pem")
PUBLIC_SUFFIXES = (".pub.pem", ".pub")
#: SQLite databases directly in the data dir (the context store's lives under ``context.storage_path``).
DATABASES = ("audit.db", "agents.db", "mcp_tools.db")
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")

# What each known key file is, for messages (matched on the path's tail).
_KEY_NAMES = {
    "master.key": "vault master key",
    "runtime_ed25519.pem": "audit signing key",
    "operator_key.pem": "operator signing key",
    "context.key": "context encryption key",
}


def _euid() -> int | None:
    return os.geteuid() if hasattr(os, "geteuid") else None


def _mode(st: os.stat_result) -> str:
    return f"{stat.S_IMODE(st.st_mode):04o}"


def ensure_data_dir(path: str | os.PathLike[str]) -> Path:
    """Create the data dir ``0700`` if it is missing (its parents get the usual mode); return it.

    An existing directory is left as it is: :func:`check_data_dir` judges it.
    """
    path = Path(path).expanduser()
    if not path.is_dir():
        path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    return path


def check_data_dir(path: str | os.PathLike[str]) -> None:
    """``RUNTIME_003`` unless the data dir is owned by the engine's euid and has no group/other bits."""
    path = Path(path).expanduser()
    problem = _private_problem(
        path,
        path.stat(),
        _euid(),
        ErrorCode.RUNTIME_003,
        what="the data dir",
        chown="chown -R",
        loose="(it holds keys and databases; 0700 required)",
        fix="chmod 700",
        after="rotate its keys if others may have copied them",
    )
    if problem is not None:
        raise problem


def _private_problem(
    path: Path,
    st: os.stat_result,
    euid: int | None,
    code: ErrorCode,
    *,
    what: str,
    chown: str,
    loose: str,
    fix: str,
    after: str,
) -> SymbiError | None:
    """The error for a path that is another user's or has group/other bits; None when it is private."""
    if euid is not None and st.st_uid != euid:
        return SymbiError(
            code,
            f"{what} {path} belongs to another user (uid {st.st_uid}); the engine runs as uid {euid}",
            offending=str(path),
            hint=f"run: {chown} {euid} {path} (as root), or run the engine as uid {st.st_uid}",
            details={"path": str(path), "uid": st.st_uid, "euid": euid, "mode": _mode(st)},
        )
    if stat.S_IMODE(st.st_mode) & 0o077:
        return SymbiError(
            code,
            f"{what} {path} has loose permissions {_mode(st)} {loose}",
            offending=str(path),
            hint=f"run: {fix} {path} (and {after})",
            details={"path": str(path), "mode": _mode(st)},
        )
    return None


def _section(config: Any, name: str) -> Any:
    return getattr(config, name, None) if config is not None else None


def _under(data_dir: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else data_dir / path


def _context_dir(data_dir: Path, config: Any) -> Path:
    return _under(data_dir, getattr(_section(config, "context"), "storage_path", None) or "contexts")


def _keys_dirs(data_dir: Path, config: Any) -> list[Path]:
    dirs = [data_dir / KEYS_DIR]
    configured = getattr(_section(config, "secrets"), "keys_dir", None)
    if configured:
        vault_keys = _under(data_dir, configured)
        if vault_keys not in dirs:
            dirs.append(vault_keys)
    return dirs


def _is_private_key_name(name: str) -> bool:
    return name.endswith(KEY_SUFFIXES) and not name.endswith(PUBLIC_SUFFIXES) and not name.startswith(".")


def key_files(data_dir: str | os.PathLike[str], config: Any = None) -> list[Path]:
    """Every private key file of the data dir that exists, sorted.

    ``operator_key.pem``, ``<context.storage_path>/context.key``, and every
    ``*.key`` / ``*.pem`` (but not ``*.pub.pem`` public halves) under ``keys/``
    (the vault master key, retired and staged rotation keys, the audit signing
    key, the agents' identity keys in ``keys/agents/``) and under the vault's
    ``secrets.keys_dir`` when configured elsewhere.
    """
    data_dir = Path(data_dir).expanduser()
    found: set[Path] = set()
    for path in (data_dir / "operator_key.pem", _context_dir(data_dir, config) / "context.key"):
        if path.is_file():
            found.add(path)
    for root in _keys_dirs(data_dir, config):
        if not root.is_dir():
            continue
        for dirpath, _dirs, files in os.walk(root, followlinks=False):
            for name in files:
                path = Path(dirpath) / name
                if _is_private_key_name(name) and path.is_file():
                    found.add(path)
    return sorted(found)


def _what(path: Path) -> str:
    if path.parent.name == "retired":
        return "retired vault master key"
    if path.parent.name == "rotation":
        return "staged rotation key"
    if path.parent.parent.name == "agents":
        return "agent identity key"
    return _KEY_NAMES.get(path.name, "key file")


def _key_problem(path: Path, euid: int | None) -> SymbiError | None:
    try:
        st = path.stat()  # a symlinked key is judged by the file it points to
    except FileNotFoundError:
        return None
    return _private_problem(
        path,
        st,
        euid,
        ErrorCode.SEC_003,
        what=f"the {_what(path)}",
        chown="chown",
        loose="(at most 0600 allowed)",
        fix="chmod 600",
        after="replace the key if others may have copied it",
    )


def check_key_files(data_dir: str | os.PathLike[str], config: Any = None) -> None:
    """``SEC_003`` for the first key file (of :func:`key_files`) that is loose or not the euid's.

    The message counts any further loose ones; ``details["loose"]`` lists them all.
    """
    euid = _euid()
    problems = [p for p in (_key_problem(path, euid) for path in key_files(data_dir, config)) if p is not None]
    if not problems:
        return
    first = problems[0]
    if len(problems) > 1:
        more = len(problems) - 1
        first.message += (
            f"; {more} more key file{'s' if more > 1 else ''} in the data dir {'are' if more > 1 else 'is'} loose too"
        )
        first.args = (first.render(),)
    first.details["loose"] = [str(p.offending) for p in problems]
    raise first


def database_files(data_dir: str | os.PathLike[str], config: Any = None) -> list[Path]:
    """The engine's SQLite databases (present or not): :data:`DATABASES` and the context store."""
    data_dir = Path(data_dir).expanduser()
    return [data_dir / name for name in DATABASES] + [_context_dir(data_dir, config) / "context.db"]


def _side_files(db: Path) -> Iterator[Path]:
    yield db
    for suffix in SQLITE_SIDE_FILES:
        yield db.with_name(db.name + suffix)


def private_databases(data_dir: str | os.PathLike[str], config: Any = None) -> None:
    """Create each missing database empty and ``0600``; tighten existing ones (and their side files) to ``0600``.

    SQLite opens an empty file as a new database and creates ``-wal``/``-shm``
    with the database's mode, so pre-creating is what keeps them private
    whatever the umask. Files owned by another uid are left alone.
    """
    euid = _euid()
    for db in database_files(data_dir, config):
        private_dir(db.parent)
        try:
            fd = os.open(db, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), FILE_MODE)
        except FileExistsError:
            pass
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise
        else:
            os.close(fd)
        for path in _side_files(db):
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                continue
            if not stat.S_ISREG(st.st_mode) or (euid is not None and st.st_uid != euid):
                continue
            if stat.S_IMODE(st.st_mode) & 0o077:
                with contextlib.suppress(OSError):
                    os.chmod(path, stat.S_IMODE(st.st_mode) & 0o700)
                    log.info("tightened %s from %s to %04o", path, _mode(st), stat.S_IMODE(st.st_mode) & 0o700)


def prepare(data_dir: str | os.PathLike[str], config: Any = None) -> Path:
    """What ``Runtime.start`` runs first: create the data dir ``0700`` (and ``keys/`` ``0700``),
    refuse a loose data dir (``RUNTIME_003``) or key file (``SEC_003``), make the databases ``0600``.

    ``OSError`` when something cannot be created (the caller names the data dir).
    """
    path = ensure_data_dir(data_dir)
    check_data_dir(path)
    private_dir(path / KEYS_DIR)
    check_key_files(path, config)
    private_databases(path, config)
    return path
