"""Crash-safe, private file IO: the one copy every writer of a key, secret or state file uses.

* :func:`write_private`: a temporary file in the same directory (created with
  ``O_EXCL``, ``fchmod``-ed to ``mode`` before a byte is written), written,
  ``fsync``-ed, renamed over the target, then the directory ``fsync``-ed. A
  crash at any point leaves either the old or the new file, never a mix; the
  only debris is a ``.<name>.<random>.tmp`` file (an interrupted call removes
  its own; ``engine.secrets.fsio.remove_stale_temps`` sweeps the vault's).
* :func:`create_exclusive`: the same, but hard-linked into place only if the
  target does not exist yet, so two racing creators of a key end up with one.
* :func:`read_private` reads a file refusing loose permissions (``SEC_003``,
  naming the file) and symlinks, checked on the opened descriptor so there is
  no check-then-open race.
* :func:`private_dir` creates directories 0700; :func:`fsync_dir` makes a
  rename in a directory durable.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

from engine.errors import ErrorCode, SymbiError

__all__ = [
    "TEMP_SUFFIX",
    "create_exclusive",
    "fsync_dir",
    "loose_bits",
    "private_dir",
    "read_checked",
    "read_private",
    "write_private",
]

TEMP_SUFFIX = ".tmp"


def fsync_dir(path: Path, *, required: bool = True) -> None:
    """Make a rename, link or unlink in ``path`` durable.

    With ``required=False`` a directory that cannot be opened or synced (some
    network and FUSE file systems) is passed over instead of raising.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        if required:
            raise
        return
    try:
        os.fsync(fd)
    except OSError:
        if required:
            raise
    finally:
        os.close(fd)


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) with mode 0700 if missing; return it."""
    if not path.is_dir():
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def _write_temp(path: Path, data: bytes, mode: int) -> str:
    """A synced temporary file next to ``path`` holding ``data`` with ``mode``; its name."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)  # O_EXCL, 0600
    try:
        os.fchmod(fd, mode)  # before any byte is written, whatever the umask
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    os.close(fd)
    return tmp


def write_private(path: Path, data: bytes, *, mode: int = 0o600, dir_sync_required: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically and durably, the file getting ``mode``.

    A missing parent directory is created 0700. ``dir_sync_required=False``
    tolerates a directory that cannot be ``fsync``-ed (see :func:`fsync_dir`).
    """
    path = Path(path)
    private_dir(path.parent)
    tmp = _write_temp(path, data, mode)
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent, required=dir_sync_required)


def create_exclusive(path: Path, data: bytes, mode: int = 0o600) -> bool:
    """Durably create ``path`` with ``data`` only if it does not exist. False if it already did.

    Written to a temporary file first and hard-linked into place, so no reader
    ever sees a half-written file and two racing creators cannot both win.
    """
    path = Path(path)
    private_dir(path.parent)
    tmp = _write_temp(path, data, mode)
    try:
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        fsync_dir(path.parent)
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def loose_bits(mode: int, allowed: int) -> int:
    """Permission bits set in ``mode`` beyond ``allowed``."""
    return stat.S_IMODE(mode) & ~allowed & 0o777


def read_checked(path: Path, check: Callable[[os.stat_result], None], *, follow_symlinks: bool = True) -> bytes:
    """Read ``path`` whole, first calling ``check`` with the stat of the opened descriptor.

    Checking the descriptor rather than the path leaves no check-then-open
    race. With ``follow_symlinks=False`` a symlink fails with ``ELOOP``.
    """
    flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | (0 if follow_symlinks else getattr(os, "O_NOFOLLOW", 0))
    fd = os.open(path, flags)
    try:
        check(os.fstat(fd))
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_private(path: Path, allowed: int = 0o600, *, what: str = "file") -> bytes:
    """Read ``path``, refusing a symlink, another owner or permissions wider than ``allowed``.

    Raises ``FileNotFoundError`` when missing (callers map it), ``SEC_003`` for
    loose permissions naming the file.
    """

    def check(st: os.stat_result) -> None:
        if hasattr(os, "geteuid") and st.st_uid != os.geteuid():
            raise SymbiError(
                ErrorCode.SEC_003,
                f"the {what} {path} belongs to another user (uid {st.st_uid})",
                offending=str(path),
                hint="the file must be owned by the user running symbiont",
            )
        if loose_bits(st.st_mode, allowed):
            raise SymbiError(
                ErrorCode.SEC_003,
                f"the {what} {path} has loose permissions {stat.S_IMODE(st.st_mode):04o} "
                f"(at most {allowed:04o} allowed)",
                offending=str(path),
                hint=f"run: chmod {allowed:o} {path}",
            )

    try:
        return read_checked(path, check, follow_symlinks=False)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SymbiError(
                ErrorCode.SEC_003,
                f"the {what} {path} is a symbolic link; refusing to follow it",
                offending=str(path),
                hint="replace the link with the file itself (mode 0600)",
            ) from None
        raise
