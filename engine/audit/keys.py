"""The runtime's Ed25519 signing key, which signs audit checkpoints.

Owns ``data_dir/keys/runtime_ed25519.pem`` (private, PKCS#8 PEM, created on
first use with mode 0600 in a 0700 directory; a file readable by group or
others is refused with ``SEC_003`` naming it) and
``runtime_ed25519.pub.pem`` (public, SubjectPublicKeyInfo PEM, 0644, freely
exportable: give it to whoever verifies the log). A key id is ``sha256:<hex>``
of the DER public key. The key file itself is read and created by
:mod:`engine.keyfile`, shared with the agents' bus keys.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from engine.atomicfile import write_private
from engine.errors import ErrorCode, SymbiError
from engine.keyfile import load_or_create, public_pem

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


def key_id(key: Ed25519PublicKey) -> str:
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(der).hexdigest()


def load_or_create_signing_key(data_dir: Path) -> Ed25519PrivateKey:
    """The runtime's private key, created (0600) on first use; ``SEC_003`` if its permissions are loose."""
    kdir = key_dir(data_dir)
    pub_path = kdir / PUBLIC_NAME
    # type-abstract: cryptography declares Ed25519PrivateKey abstract (its Rust backend makes the instances);
    # mypy refuses an abstract class for type[K] although load_or_create never instantiates it (python/mypy#4717)
    key, created = load_or_create(
        kdir / PRIVATE_NAME,
        Ed25519PrivateKey,  # type: ignore[type-abstract]
        what="runtime signing key",
    )
    if created or not pub_path.exists():
        write_private(pub_path, public_pem(key.public_key()), mode=0o644)
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
