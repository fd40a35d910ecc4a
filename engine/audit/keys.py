"""The runtime's Ed25519 signing key, which signs audit checkpoints.

Owns ``data_dir/keys/runtime_ed25519.pem`` (private, PKCS#8 PEM, created on
first use with mode 0600 in a 0700 directory; a file readable by group or
others is refused with ``SEC_003`` naming it) and
``runtime_ed25519.pub.pem`` (public, SubjectPublicKeyInfo PEM, freely
exportable: give it to whoever verifies the log). A key id is
``sha256:<hex>`` of the DER public key.
"""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from engine.errors import ErrorCode, SymbiError

__all__ = [
    "PRIVATE_NAME",
    "PUBLIC_NAME",
    "key_id",
    "load_or_create_signing_key",
    "load_public_key",
    "public_pem",
    "sign_b64",
    "verify_b64",
]

PRIVATE_NAME = "runtime_ed25519.pem"
PUBLIC_NAME = "runtime_ed25519.pub.pem"


def key_dir(data_dir: Path) -> Path:
    return data_dir / "keys"


def public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_id(key: Ed25519PublicKey) -> str:
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(der).hexdigest()


def _check_private_mode(path: Path) -> None:
    mode = path.stat().st_mode
    if stat.S_IMODE(mode) & 0o077:
        raise SymbiError(
            ErrorCode.SEC_003,
            f"the runtime signing key is accessible by group or others (mode {stat.S_IMODE(mode):04o})",
            offending=str(path),
            hint=f"chmod 600 {path}",
        )


def _write_new(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(path, mode)  # the umask may have narrowed or the fs widened it


def load_or_create_signing_key(data_dir: Path) -> Ed25519PrivateKey:
    """The runtime's private key, created (0600) on first use; ``SEC_003`` if its permissions are loose."""
    kdir = key_dir(data_dir)
    path = kdir / PRIVATE_NAME
    pub_path = kdir / PUBLIC_NAME
    try:
        if not path.exists():
            kdir.mkdir(mode=0o700, parents=True, exist_ok=True)
            key = Ed25519PrivateKey.generate()
            pem = key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            try:
                _write_new(path, pem, 0o600)
            except FileExistsError:
                pass  # another process created it first: use theirs
            else:
                tmp = pub_path.with_suffix(".tmp")
                tmp.write_bytes(public_pem(key.public_key()))
                os.chmod(tmp, 0o644)
                os.replace(tmp, pub_path)
                return key
        _check_private_mode(path)
        data = path.read_bytes()
    except OSError as exc:
        raise SymbiError(
            ErrorCode.SEC_002,
            f"cannot read or create the runtime signing key: {exc.strerror or exc}",
            offending=str(path),
            hint="check the permissions of the data dir's keys/ directory",
        ) from exc
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise SymbiError(
            ErrorCode.SEC_002, "the runtime signing key file is not a valid PEM private key", offending=str(path)
        ) from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SymbiError(ErrorCode.SEC_002, "the runtime signing key is not an Ed25519 key", offending=str(path))
    if not pub_path.exists():
        pub_path.write_bytes(public_pem(key.public_key()))
    return key


def load_public_key(source: str | os.PathLike[str] | bytes | Ed25519PublicKey) -> Ed25519PublicKey:
    """A public key from a PEM file path, PEM bytes or a key object (a private PEM yields its public half)."""
    if isinstance(source, Ed25519PublicKey):
        return source
    if isinstance(source, bytes):
        data, where = source, "<pem bytes>"
    else:
        where = str(source)
        try:
            data = Path(source).read_bytes()
        except OSError as exc:
            raise SymbiError(
                ErrorCode.AUDIT_003, f"cannot read the public key: {exc.strerror or exc}", offending=where
            ) from exc
    try:
        if b"PRIVATE KEY" in data:
            key = serialization.load_pem_private_key(data, password=None).public_key()
        else:
            key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise SymbiError(ErrorCode.AUDIT_003, "not a PEM Ed25519 public key", offending=where) from exc
    if not isinstance(key, Ed25519PublicKey):
        raise SymbiError(ErrorCode.AUDIT_003, "not an Ed25519 key", offending=where)
    return key


def sign_b64(key: Ed25519PrivateKey, data: bytes) -> str:
    return base64.b64encode(key.sign(data)).decode("ascii")


def verify_b64(key: Ed25519PublicKey, signature: str, data: bytes) -> bool:
    try:
        key.verify(base64.b64decode(signature, validate=True), data)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True
