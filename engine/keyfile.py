"""Private key files (Ed25519, X25519): the one loader every engine key uses.

A key file is an unencrypted PKCS#8 PEM, mode 0600, created on first use with
:func:`engine.atomicfile.create_exclusive` (so a crash never leaves half a
key and two processes racing to create it end up with one), in a directory
made 0700 when missing. A key file readable or writable by group or others is
refused with ``SEC_003`` naming it (``hint: chmod 600 <file>``), never
silently used; an unreadable, corrupt or wrong-algorithm one is ``SEC_002``.

Used by the audit signing key (:mod:`engine.audit.keys`) and the agents' bus
identity and agreement keys (:mod:`engine.comms.keys`). The operator's P-256
key (:mod:`engine.mcp_tools.operator_key`) shares the file helpers of
:mod:`engine.atomicfile` but keeps its own algorithm and ``SCHEMA_006``.
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import TypeVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from engine.atomicfile import create_exclusive, read_checked
from engine.errors import ErrorCode, SymbiError

__all__ = ["check_private_mode", "load_or_create", "load_private_key", "private_pem", "public_pem"]

K = TypeVar("K", Ed25519PrivateKey, X25519PrivateKey)


def private_pem(key: Ed25519PrivateKey | X25519PrivateKey) -> bytes:
    """The key as an unencrypted PKCS#8 PEM (the key-file format)."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def public_pem(key: Ed25519PublicKey) -> bytes:
    """An Ed25519 public key as a SubjectPublicKeyInfo PEM (freely exportable)."""
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _algorithm(kind: type) -> str:
    return kind.__name__.removesuffix("PrivateKey")


def check_private_mode(path: Path, mode: int, *, what: str) -> None:
    """``SEC_003`` naming ``path`` when ``mode`` has any group or other bit."""
    if stat.S_IMODE(mode) & 0o077:
        raise SymbiError(
            ErrorCode.SEC_003,
            f"the {what} is accessible by group or others (mode {stat.S_IMODE(mode):04o})",
            offending=str(path),
            hint=f"chmod 600 {path}",
        )


def _read(path: Path, what: str) -> bytes:
    """The file's bytes, its mode checked on the opened descriptor (a symlink is judged by its target)."""
    return read_checked(path, lambda st: check_private_mode(path, st.st_mode, what=what))


def _parse(path: Path, data: bytes, kind: type[K], what: str) -> K:
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise SymbiError(
            ErrorCode.SEC_002, f"the {what} file is not a valid PEM private key", offending=str(path)
        ) from exc
    if not isinstance(key, kind):
        raise SymbiError(ErrorCode.SEC_002, f"the {what} is not an {_algorithm(kind)} key", offending=str(path))
    return key


def _unreadable(path: Path, what: str, exc: OSError) -> SymbiError:
    return SymbiError(
        ErrorCode.SEC_002,
        f"cannot read or create the {what}: {exc.strerror or exc}",
        offending=str(path),
        hint="check the permissions of the data dir's keys/ directory",
    )


def load_private_key(path: Path, kind: type[K], *, what: str) -> K:
    """The key in ``path``: ``SEC_003`` if its mode is loose, ``SEC_002`` if unreadable, corrupt or not a ``kind``.

    ``FileNotFoundError`` when the file is missing (callers decide whether to create it).
    """
    path = Path(path)
    try:
        data = _read(path, what)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise _unreadable(path, what, exc) from exc
    return _parse(path, data, kind, what)


def load_or_create(path: Path, kind: type[K], *, what: str) -> tuple[K, bool]:
    """The key in ``path``, created (0600, in a 0700 directory) when missing; and whether this call created it.

    When another process creates the file first, its key is loaded and used.
    Errors as :func:`load_private_key`.
    """
    path = Path(path)
    try:
        try:
            return load_private_key(path, kind, what=what), False
        except FileNotFoundError:
            pass
        key = kind.generate()
        if create_exclusive(path, private_pem(key)):
            return key, True
        return load_private_key(path, kind, what=what), False  # another process created it first: use theirs
    except OSError as exc:
        raise _unreadable(path, what, exc) from exc
