"""The file vault: one encrypted file per secret, versioned, rotatable, crash-safe.

Layout (defaults; see :mod:`engine.secrets.config`)::

    <data_dir>/secrets/app/api_key.enc      current version of "app/api_key"
    <data_dir>/secrets/app/api_key.enc.1    previous versions, newest first (keep_versions)
    <data_dir>/secrets/.vault.json          marker: format and the current key id
    <data_dir>/secrets/.lock                flock(2) taken by every writer and by rotations
    <data_dir>/keys/master.key              the master key (see engine.secrets.keys)
    <data_dir>/keys/retired/<id>.key        keys retired by rotations
    <data_dir>/keys/rotation/               journal of an unfinished rotation

Every file uses the format in :mod:`engine.secrets.fileformat`, bound to its
secret's name. Writes are atomic (:mod:`engine.atomicfile`); before a write
the current file is hard-linked to ``.enc.1`` (older ones shifted up), so a
crash at any point leaves the old value readable. Writers and rotations from
any number of processes serialize on ``.lock``; readers take no lock (every
file is replaced by ``rename``, so a reader sees the old or the new file).

The API is synchronous (the files are small: a ``get`` costs ~30 µs, a durable
``set`` ~2 ms, mostly its three ``fsync`` calls; see benchmarks/bench_secrets.py).
From asyncio, call it through
``asyncio.to_thread`` or use :class:`engine.secrets.aio.AsyncVault`, which
does exactly that; a ``Vault`` may be used from several threads at once.

Nothing here logs, raises or reprs a secret value: errors name the secret
and the file; values only leave as :class:`SecretValue`.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from engine.atomicfile import TEMP_SUFFIX, fsync_dir, private_dir, read_private, write_private
from engine.datadir import ensure_data_dir
from engine.errors import ErrorCode, SymbiError
from engine.secrets.config import SecretsConfig
from engine.secrets.fileformat import (
    FILE_CONTEXT,
    KIND_FILE,
    KIND_SECRET,
    key_id,
    parse_header,
    seal,
    secret_context,
    unseal,
)
from engine.secrets.fsio import iter_files, remove_empty_dirs, remove_stale_temps
from engine.secrets.keys import Argon2Params, KeySource, KeyStore, MasterKey
from engine.secrets.names import history_file, name_for_file, secret_file, validate_secret_path
from engine.secrets.rotation import RotationJournal, StagedRotation
from engine.secrets.values import RotationReport, SecretInfo, SecretValue

log = logging.getLogger("symbi.secrets")

MARKER_FILE = ".vault.json"
LOCK_FILE = ".lock"
VAULT_FORMAT = 1

Progress = Callable[[str, int, int], None]
"""``progress(phase, done, total)``; phases: staged, reencrypt, installed, done."""


def _nothing(phase: str, done: int, total: int) -> None:
    return None


class Vault:
    """An open vault. Create with :meth:`Vault.open`."""

    def __init__(
        self,
        *,
        config: SecretsConfig,
        base: Path,
        keystore: KeyStore,
        source: KeySource,
        environ: Mapping[str, str] | None,
    ) -> None:
        self.config = config
        self.base = base
        self.keystore = keystore
        self._source = source
        self._environ = environ
        self._journal = RotationJournal(keystore)
        self._ext = config.file_extension
        self._history_re = re.compile(rf"^(?P<stem>.+)\.{re.escape(self._ext)}\.(?P<n>[1-9][0-9]*)$")
        self._master: MasterKey | None = None
        self._retired: dict[str, bytes] = {}
        self._staged: dict[str, bytes] = {}
        self._rlock = threading.RLock()
        self._lock_depth = 0
        self._lock_fd = -1

    # ------------------------------------------------------------------ #
    # Opening
    # ------------------------------------------------------------------ #

    @classmethod
    def open(
        cls,
        data_dir: str | os.PathLike[str],
        config: SecretsConfig | Mapping[str, Any] | None = None,
        *,
        key_source: KeySource | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Vault:
        """Open (creating if needed) the vault of ``data_dir``.

        Finishes a rotation an earlier process left unfinished, sweeps temp
        files of interrupted writes, then loads the master key (``key_source``,
        default from ``config.key_source``). Raises ``SEC_00x`` errors when the
        key is missing, malformed, loosely permitted or not this vault's.
        """
        if config is None:
            cfg = SecretsConfig()
        elif isinstance(config, SecretsConfig):
            cfg = config
        else:
            cfg = SecretsConfig.from_mapping(config)
        data = ensure_data_dir(data_dir)  # 0700 when new (engine.datadir)
        argon2 = Argon2Params(cfg.argon2_memory_kib, cfg.argon2_iterations, cfg.argon2_lanes)
        keystore = KeyStore(cfg.resolve_keys_dir(data), argon2)
        vault = cls(
            config=cfg,
            base=private_dir(cfg.resolve_base(data)),
            keystore=keystore,
            source=key_source or KeySource.from_config(cfg.key_source),
            environ=environ,
        )
        with vault._write_lock():
            remove_stale_temps(vault.base)
            if keystore.dir.is_dir():
                remove_stale_temps(keystore.dir)
            vault._finish_interrupted_rotation()
            vault._load_keys()
        return vault

    def close(self) -> None:
        """Forget the keys held in memory. The vault needs no other cleanup."""
        self._master = None
        self._retired = {}
        self._staged = {}

    def __enter__(self) -> Vault:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        kid = self._master.key_id if self._master else "closed"
        return f"Vault({str(self.base)!r}, key_id={kid})"

    @property
    def key_id(self) -> str:
        """The id of the key new files are written under."""
        return self._key().key_id

    @property
    def key_origin(self) -> str:
        """Where the current key came from (``key file ...``, ``SYMBIONT_MASTER_KEY``, ``passphrase``)."""
        return self._key().origin

    # ------------------------------------------------------------------ #
    # Public operations
    # ------------------------------------------------------------------ #

    def exists(self, path: str) -> bool:
        return self._file(path).is_file()

    def set(self, path: str, value: str | bytes | SecretValue, metadata: Mapping[str, Any] | None = None) -> SecretInfo:
        """Store ``value`` under ``path`` as a new version; the previous one becomes ``.1``.

        ``metadata`` may hold ``description`` (text), ``tags`` (list of text)
        and other text fields; ``None`` keeps the previous version's metadata.
        If the current file cannot be read (wrong key, tampered), nothing is
        written and ``SEC_002`` is raised: delete it first.
        """
        name = validate_secret_path(path)
        raw = SecretValue(value).reveal_bytes()
        fields = _metadata_fields(name, metadata) if metadata is not None else None
        with self._write_lock():
            self._sync()
            current = self._file(name)
            previous = self._read_record(name, current) if current.exists() else None
            now = time.time()
            if fields is None:
                fields = {k: previous[k] for k in ("description", "tags", "metadata")} if previous else {}
            record = {
                "created": previous["created"] if previous else now,
                "updated": now,
                "version": previous["version"] + 1 if previous else 1,
                "description": fields.get("description", ""),
                "tags": list(fields.get("tags", [])),
                "metadata": dict(fields.get("metadata", {})),
                "value_b64": base64.b64encode(raw).decode("ascii"),
            }
            blob = seal(self._key().material, KIND_SECRET, secret_context(name), _dump(record))
            if previous is None:
                self._drop_history(current)  # strays of a deleted namesake must not pose as its history
            elif self.config.keep_versions > 0:
                self._keep_previous(current)
            write_private(current, blob, mode=self.config.permissions)
        log.info("secret stored: %s (version %d)", name, record["version"])
        return _info(name, record, self._key().key_id)

    def get(self, path: str, *, version: int | None = None) -> SecretValue:
        """The value of ``path`` (or of one of its kept previous ``version``-s). ``SEC_004`` if absent."""
        name = validate_secret_path(path)
        for file, record in self._versions(name):
            if version is None or record["version"] == version:
                return _value(record, file)
        raise SymbiError(
            ErrorCode.SEC_004,
            f"secret {name} has no version {version} (kept: {self.config.keep_versions} previous)",
            offending=name,
            hint=f"see `symbiont secrets list {name}`",
        )

    def info(self, path: str) -> SecretInfo:
        """Metadata of the current version of ``path``, without its value."""
        name = validate_secret_path(path)
        record = self._read_record(name, self._file(name))
        return _info(name, record, self._header_key_id(self._file(name)))

    def history(self, path: str) -> list[SecretInfo]:
        """Metadata of the current and kept previous versions, newest first."""
        name = validate_secret_path(path)
        return [_info(name, record, self._header_key_id(file)) for file, record in self._versions(name)]

    def list_secrets(self, prefix: str = "") -> list[SecretInfo]:
        """Every secret whose name starts with ``prefix`` (plain string prefix), with metadata.

        Never returns values. A file that cannot be read appears with
        ``error`` set instead of failing the whole listing.
        """
        rows = []
        for name, file in self._current_files(prefix):
            try:
                record = self._read_record(name, file)
            except SymbiError as exc:
                rows.append(SecretInfo(name, key_id=self._header_key_id(file), error=exc.render()))
            else:
                rows.append(_info(name, record, self._header_key_id(file)))
        return rows

    def names(self, prefix: str = "") -> list[str]:
        """Secret names only (no decryption): for read-only views."""
        return [name for name, _ in self._current_files(prefix)]

    def delete(self, path: str) -> None:
        """Delete ``path`` and its previous versions. ``SEC_004`` if absent."""
        name = validate_secret_path(path)
        with self._write_lock():
            self._sync()
            current = self._file(name)
            # History first: a crash midway leaves the current file, so the secret still reads.
            self._drop_history(current)
            if not current.exists():
                raise SymbiError(ErrorCode.SEC_004, f"secret {name} not found", offending=name)
            current.unlink()
            fsync_dir(current.parent)
            remove_empty_dirs(current.parent, self.base)
        log.info("secret deleted: %s", name)

    def rotate_key(
        self,
        new_key_source: KeySource | None = None,
        *,
        keep_old: bool = True,
        progress: Progress | None = None,
    ) -> RotationReport:
        """Re-encrypt every file (current and previous versions) under a new master key.

        ``new_key_source``: ``KeySource.key_file()`` (a fresh random key in the
        key file; the default when the current key comes from it),
        ``KeySource.passphrase(new)`` or ``KeySource.env(VAR)`` /
        ``KeySource.raw(key)`` (a key you hold: set ``SYMBIONT_MASTER_KEY`` to
        it afterwards). ``keep_old`` keeps the old key in ``retired/`` so files
        from ``symbiont secrets encrypt`` still open; pass False after a
        compromise. Survives being killed at any point (see
        :mod:`engine.secrets.rotation`).
        """
        report = progress or _nothing
        with self._write_lock():
            self._sync()
            current = self._key()
            target = new_key_source or _default_target(current)
            new_key, install, params = self.keystore.prepare_target(target, environ=self._environ)
            if key_id(new_key) == current.key_id:
                raise SymbiError(
                    ErrorCode.SEC_006,
                    "the new master key is the current one",
                    offending=current.key_id,
                    hint="supply a different key",
                )
            staged = self._journal.stage(
                current.material, new_key, install=install, keep_old=keep_old, passphrase_params=params
            )
            report("staged", 0, 0)
            result = self._roll_forward(staged, report, resumed=False)
        log.info("master key rotated: %s -> %s (%d files)", result.old_key_id, result.new_key_id, result.reencrypted)
        return result

    def purge_retired_keys(self) -> int:
        """Destroy every retired key kept on disk. Returns how many."""
        with self._write_lock():
            count = self.keystore.purge_retired()
            self._retired = {}
        log.info("retired master keys purged: %d", count)
        return count

    # Standalone files (``symbiont secrets encrypt/decrypt/edit``) ------- #

    def encrypt_bytes(self, data: bytes) -> bytes:
        """A standalone encrypted file image of ``data`` under the current key."""
        return seal(self._key().material, KIND_FILE, FILE_CONTEXT, data)

    def decrypt_bytes(self, blob: bytes, source: str) -> bytes:
        """Decrypt a standalone file image (``source`` names it in errors)."""
        return self._unseal(blob, KIND_FILE, FILE_CONTEXT, source)

    def secret_name_for_file(self, file: str | os.PathLike[str]) -> str | None:
        """The secret stored at ``file`` if it is a current-version file of this vault."""
        return name_for_file(self.base.resolve(), Path(file).resolve(), self._ext)

    def file_for(self, path: str) -> Path:
        """Where the current version of ``path`` is stored."""
        return self._file(path)

    # ------------------------------------------------------------------ #
    # Keys
    # ------------------------------------------------------------------ #

    def _key(self) -> MasterKey:
        if self._master is None:
            raise SymbiError(ErrorCode.RUNTIME_001, "the vault is closed", offending=str(self.base))
        return self._master

    def _keyring(self) -> dict[str, bytes]:
        master = self._key()
        return {**self._retired, **self._staged, master.key_id: master.material}

    def _load_keys(self) -> None:
        """Load the master key from the source and check it against the vault marker."""
        empty = self._is_empty()
        master = self.keystore.open_key(self._source, may_create=empty, environ=self._environ)
        retired = self.keystore.retired_keys()
        expected = self._read_marker()
        if expected is None and not empty:
            expected = self._some_file_key_id()
        if expected is not None and expected != master.key_id:
            why = " (a key retired by an earlier rotation)" if master.key_id in retired else ""
            raise SymbiError(
                ErrorCode.SEC_002,
                f"wrong key: the master key from {master.origin} has id {master.key_id}{why}, "
                f"but the vault {self.base} is encrypted under key id {expected}",
                offending=master.origin,
                hint="use the vault's current master key (after `rotate-key` to a key you supplied, "
                "set SYMBIONT_MASTER_KEY to the new key)",
            )
        if self._read_marker() != master.key_id:
            self._write_marker(master.key_id)
        self._master, self._retired = master, retired

    def _refresh_keys(self) -> None:
        """Reload keys after another process rotated (reads take no lock)."""
        with contextlib.suppress(SymbiError):
            self._retired = self.keystore.retired_keys()
        with contextlib.suppress(SymbiError):
            staged = self._journal.peek()
            self._staged = (
                {}
                if staged is None
                else {
                    staged.journal.old_key_id: staged.old_key,
                    staged.journal.new_key_id: staged.new_key,
                }
            )
        marker = self._read_marker()
        if marker is not None and marker != self._key().key_id:
            with contextlib.suppress(SymbiError):
                master = self.keystore.open_key(self._source, may_create=False, environ=self._environ)
                if master.key_id == marker:
                    self._master = master

    def _read_marker(self) -> str | None:
        try:
            doc = json.loads((self.base / MARKER_FILE).read_bytes())
            return str(doc["key_id"])
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError):
            return None

    def _write_marker(self, kid: str) -> None:
        doc = {"format": VAULT_FORMAT, "key_id": kid}
        write_private(self.base / MARKER_FILE, (json.dumps(doc, sort_keys=True) + "\n").encode())

    def _some_file_key_id(self) -> str | None:
        for _, file in self._all_files():
            kid = self._header_key_id(file)
            if kid:
                return kid
        return None

    # ------------------------------------------------------------------ #
    # Locking, recovery
    # ------------------------------------------------------------------ #

    @contextlib.contextmanager
    def _write_lock(self) -> Iterator[None]:
        """Exclusive across threads (RLock) and processes (flock on ``.lock``); re-entrant."""
        with self._rlock:
            if self._lock_depth == 0:
                fd = os.open(self.base / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                except BaseException:
                    os.close(fd)
                    raise
                self._lock_fd = fd
            self._lock_depth += 1
            try:
                yield
            finally:
                self._lock_depth -= 1
                if self._lock_depth == 0:
                    fd, self._lock_fd = self._lock_fd, -1
                    fcntl.flock(fd, fcntl.LOCK_UN)
                    os.close(fd)

    def _sync(self) -> None:
        """Under the write lock: finish another process's interrupted rotation, follow a re-key."""
        self._finish_interrupted_rotation()
        marker = self._read_marker()
        if marker is not None and marker != self._key().key_id:
            self._load_keys()

    def _finish_interrupted_rotation(self) -> None:
        staged = self._journal.load()
        if staged is None:
            return
        log.warning(
            "finishing an interrupted key rotation %s -> %s", staged.journal.old_key_id, staged.journal.new_key_id
        )
        self._roll_forward(staged, _nothing, resumed=True)

    def _roll_forward(self, staged: StagedRotation, progress: Progress, *, resumed: bool) -> RotationReport:
        journal = staged.journal
        keyring = {**self._retired, journal.old_key_id: staged.old_key, journal.new_key_id: staged.new_key}
        if self._master is not None:
            keyring.setdefault(self._master.key_id, self._master.material)
        files = list(self._all_files())
        done = reencrypted = 0
        skipped: list[str] = []
        for name, file in files:
            done += 1
            try:
                blob = read_private(file, self.config.permissions, what="secret file")
                if parse_header(blob, str(file)).key_id != journal.new_key_id:
                    plain = unseal(keyring, blob, KIND_SECRET, secret_context(name), str(file))
                    write_private(
                        file,
                        seal(staged.new_key, KIND_SECRET, secret_context(name), plain),
                        mode=self.config.permissions,
                    )
                    reencrypted += 1
            except FileNotFoundError:
                continue
            except SymbiError as exc:
                log.warning("key rotation skipped %s: %s", file, exc.render())
                skipped.append(str(file))
            progress("reencrypt", done, len(files))
        self.keystore.install(staged.new_key, journal.install, journal.passphrase_params)
        if journal.keep_old:
            self.keystore.retire(staged.old_key)
        else:
            self.keystore.forget_retired(journal.old_key_id)
        self._write_marker(journal.new_key_id)
        progress("installed", len(files), len(files))
        self._journal.finish()
        kind = {"file": "file", "passphrase": "passphrase"}.get(journal.install, "raw")
        origin = {"file": f"key file {self.keystore.master_path}", "passphrase": "passphrase"}.get(
            journal.install, "the rotated key"
        )
        self._master = MasterKey(staged.new_key, kind, origin)
        self._retired = self.keystore.retired_keys()
        self._staged = {}
        progress("done", len(files), len(files))
        return RotationReport(
            journal.old_key_id, journal.new_key_id, reencrypted, tuple(skipped), resumed, journal.keep_old
        )

    # ------------------------------------------------------------------ #
    # Files
    # ------------------------------------------------------------------ #

    def _file(self, path: str) -> Path:
        return secret_file(self.base, path, self._ext)

    def _history_files(self, current: Path) -> list[Path]:
        """Existing previous-version files of ``current``, ``.1`` first."""
        found = []
        for sibling in current.parent.glob(f"{current.name}.*") if current.parent.is_dir() else ():
            suffix = sibling.name[len(current.name) + 1 :]
            if suffix.isdigit() and not suffix.startswith("0"):
                found.append((int(suffix), sibling))
        return [path for _, path in sorted(found)]

    def _drop_history(self, current: Path) -> None:
        for old in self._history_files(current):
            with contextlib.suppress(FileNotFoundError):
                old.unlink()

    def _keep_previous(self, current: Path) -> None:
        """Shift ``.1..N-1`` up by one and hard-link the current file to ``.1``; prune beyond N."""
        keep = self.config.keep_versions
        for old in self._history_files(current):
            n = int(old.name.rsplit(".", 1)[1])
            if n >= keep:
                with contextlib.suppress(FileNotFoundError):
                    old.unlink()
        for n in range(keep - 1, 0, -1):
            with contextlib.suppress(FileNotFoundError):
                os.replace(history_file(current, n), history_file(current, n + 1))
        temp = current.with_name(f".{current.name}.1.{os.getpid()}.{os.urandom(4).hex()}{TEMP_SUFFIX}")
        try:
            os.link(current, temp)
        except OSError:  # no hard links on this file system: copy instead
            write_private(history_file(current, 1), current.read_bytes(), mode=self.config.permissions)
        else:
            os.replace(temp, history_file(current, 1))
        fsync_dir(current.parent)

    def _current_files(self, prefix: str) -> list[tuple[str, Path]]:
        """(name, file) of current versions whose name starts with ``prefix``, sorted by name."""
        found = [
            (name, file)
            for name, file in self._all_files()
            if file.name.endswith("." + self._ext) and name.startswith(prefix)
        ]
        return sorted(found)

    def _all_files(self) -> Iterator[tuple[str, Path]]:
        """(secret name, file) for every current and previous-version file, sorted."""
        suffix = "." + self._ext
        for file in iter_files(self.base):
            if file.name.endswith(suffix):
                name = name_for_file(self.base, file, self._ext)
            else:
                match = self._history_re.match(file.name)
                name = (
                    name_for_file(self.base, file.with_name(f"{match['stem']}{suffix}"), self._ext) if match else None
                )
            if name is not None:
                yield name, file

    def _is_empty(self) -> bool:
        return next(self._all_files(), None) is None

    def _header_key_id(self, file: Path) -> str:
        try:
            with open(file, "rb") as fh:
                return parse_header(fh.read(64), str(file)).key_id
        except (OSError, SymbiError):
            return ""

    def _versions(self, name: str) -> Iterator[tuple[Path, dict[str, Any]]]:
        current = self._file(name)
        yield current, self._read_record(name, current)
        for old in self._history_files(current):
            try:
                yield old, self._read_record(name, old)
            except SymbiError as exc:
                if exc.code != ErrorCode.SEC_004:
                    raise

    def _read_record(self, name: str, file: Path) -> dict[str, Any]:
        try:
            blob = read_private(file, self.config.permissions, what="secret file")
        except FileNotFoundError:
            raise SymbiError(
                ErrorCode.SEC_004, f"secret {name} not found", offending=name, hint="see `symbiont secrets list`"
            ) from None
        plain = self._unseal(blob, KIND_SECRET, secret_context(name), str(file))
        try:
            record: dict[str, Any] = json.loads(plain)  # anything but such a dict fails the checks below
            numbers_ok = all(type(record[k]) in (int, float) for k in ("created", "updated"))
            if not (numbers_ok and type(record["version"]) is int and isinstance(record["value_b64"], str)):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            raise SymbiError(ErrorCode.SEC_002, f"the record in {file} is malformed", offending=str(file)) from None
        return record

    def _unseal(self, blob: bytes, kind: int, context: bytes, source: str) -> bytes:
        try:
            return unseal(self._keyring(), blob, kind, context, source)
        except SymbiError:
            # Another process may have rotated since we loaded our keys.
            header_id = parse_header(blob, source).key_id
            if header_id in self._keyring():
                raise
            self._refresh_keys()
            return unseal(self._keyring(), blob, kind, context, source)


# ---------------------------------------------------------------------- #
# Records
# ---------------------------------------------------------------------- #


def _dump(record: Mapping[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _value(record: Mapping[str, Any], file: Path) -> SecretValue:
    try:
        return SecretValue(base64.b64decode(record["value_b64"], validate=True))
    except (binascii.Error, ValueError):
        raise SymbiError(ErrorCode.SEC_002, f"the value in {file} is malformed", offending=str(file)) from None


def _info(name: str, record: Mapping[str, Any], kid: str) -> SecretInfo:
    return SecretInfo(
        path=name,
        created=float(record["created"]),
        updated=float(record["updated"]),
        version=int(record["version"]),
        key_id=kid,
        description=str(record.get("description", "")),
        tags=tuple(str(t) for t in record.get("tags", [])),
        metadata={str(k): str(v) for k, v in dict(record.get("metadata", {})).items()},
    )


def _metadata_fields(name: str, metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Split caller metadata into description, tags and other text fields; SEC_005 if malformed."""

    def bad(problem: str) -> SymbiError:
        return SymbiError(ErrorCode.SEC_005, f"invalid metadata for secret {name}: {problem}", offending=name)

    if not isinstance(metadata, Mapping):
        raise bad("expected a mapping")
    description = metadata.get("description", "")
    if not isinstance(description, str) or len(description) > 1000:
        raise bad("description must be text of at most 1000 characters")
    tags = metadata.get("tags", ())
    if isinstance(tags, str):
        tags = [t.strip() for t in tags.split(",") if t.strip()]
    if not isinstance(tags, list | tuple) or not all(isinstance(t, str) and 0 < len(t) <= 64 for t in tags):
        raise bad("tags must be a list of short texts")
    extra: dict[str, str] = {}
    for key, value in metadata.items():
        if key in ("description", "tags"):
            continue
        if not isinstance(key, str) or not isinstance(value, str | int | float | bool):
            raise bad(f"field {key!s:.40} must map text to a text value")
        extra[key] = str(value)
    return {"description": description, "tags": list(tags), "metadata": extra}


def _default_target(current: MasterKey) -> KeySource:
    if current.kind == "file":
        return KeySource.key_file()
    if current.kind == "passphrase":
        raise SymbiError(
            ErrorCode.SEC_006,
            "this vault is protected by a passphrase: give the new passphrase",
            offending="passphrase",
            hint="symbiont secrets rotate-key --new-passphrase",
        )
    raise SymbiError(
        ErrorCode.SEC_006,
        f"the master key comes from {current.origin}: give the new key",
        offending=current.origin,
        hint="symbiont secrets rotate-key --new-key-env VAR (a variable holding the new base64 key), "
        "or --to-key-file to switch to a generated key file",
    )
