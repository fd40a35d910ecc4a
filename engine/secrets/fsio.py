"""Crash-safe, private file IO for the vault.

* :func:`atomic_write`: a temporary file in the same directory (created 0600,
  or the requested mode), written, ``fsync``-ed, renamed over the target, then
  the directory ``fsync``-ed. A crash at any point leaves either the old or the
  new file, never a mix; the only debris is a ``.<name>.<random>.tmp`` file,
  which :func:`remove_stale_temps` sweeps.
* :func:`read_private` reads a file refusing loose permissions (``SEC_003``,
  naming the file) and symlinks, checked on the opened descriptor so there is
  no check-then-open race.
* :func:`private_dir` creates directories 0700.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from engine.errors import ErrorCode, SymbiError

TEMP_SUFFIX = ".tmp"


def fsync_dir(path: Path) -> None:
    """Make a rename or unlink in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) with mode 0700 if missing; return it."""
    if not path.is_dir():
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def atomic_write(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` atomically and durably, the file getting ``mode``."""
    private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    try:
        os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.replace(tmp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def create_exclusive(path: Path, data: bytes, mode: int = 0o600) -> bool:
    """Durably create ``path`` with ``data`` only if it does not exist. False if it already did.

    Written to a temporary file first and hard-linked into place, so no reader
    ever sees a half-written file and two racing creators cannot both win.
    """
    private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    try:
        os.fchmod(fd, mode)
        os.write(fd, data)
        os.fsync(fd)
        os.close(fd)
        fd = -1
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        fsync_dir(path.parent)
        return True
    finally:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def loose_bits(mode: int, allowed: int) -> int:
    """Permission bits set in ``mode`` beyond ``allowed``."""
    return stat.S_IMODE(mode) & ~allowed & 0o777


def read_private(path: Path, allowed: int = 0o600, *, what: str = "file") -> bytes:
    """Read ``path``, refusing a symlink, another owner or permissions wider than ``allowed``.

    Raises ``FileNotFoundError`` when missing (callers map it), ``SEC_003`` for
    loose permissions naming the file.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SymbiError(
                ErrorCode.SEC_003,
                f"the {what} {path} is a symbolic link; refusing to follow it",
                offending=str(path),
                hint="replace the link with the file itself (mode 0600)",
            ) from None
        raise
    try:
        st = os.fstat(fd)
        if hasattr(os, "geteuid") and st.st_uid != os.geteuid():
            raise SymbiError(
                ErrorCode.SEC_003,
                f"the {what} {path} belongs to another user (uid {st.st_uid})",
                offending=str(path),
                hint="the file must be owned by the user running symbiont",
            )
        loose = loose_bits(st.st_mode, allowed)
        if loose:
            raise SymbiError(
                ErrorCode.SEC_003,
                f"the {what} {path} has loose permissions {stat.S_IMODE(st.st_mode):04o} "
                f"(at most {allowed:04o} allowed)",
                offending=str(path),
                hint=f"run: chmod {allowed:o} {path}",
            )
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def remove_stale_temps(root: Path) -> int:
    """Delete ``.*.tmp`` debris of interrupted atomic writes under ``root``. Returns the count.

    Call only while holding the vault's write lock, so no live writer's temp
    file can be removed.
    """
    removed = 0
    for temp in iter_files(root, hidden=True):
        if temp.name.startswith(".") and temp.name.endswith(TEMP_SUFFIX):
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
                removed += 1
    return removed


def iter_files(root: Path, *, hidden: bool = False) -> Iterator[Path]:
    """Regular files under ``root`` (not following symlinks); dot-directories are skipped."""
    if not root.is_dir():
        return
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if hidden or not name.startswith("."):
                yield Path(dirpath, name)


def remove_empty_dirs(start: Path, stop: Path) -> None:
    """Remove ``start`` and its parents while empty, stopping at (and keeping) ``stop``."""
    current = start
    while current != stop and stop in current.parents:
        try:
            current.rmdir()
        except OSError:
            return
        current = current.parent
