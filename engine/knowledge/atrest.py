"""Context items at rest: zlib compression, then AES-256-GCM, per field.

What an agent remembers is often as sensitive as a secret, so with
``[context] encryption_required = true`` (the default) an item's ``content``
and ``metadata`` are stored sealed; ids, owner, kind, times and sizes stay
clear because queries filter on them.

Key: a random 32-byte key in ``<context storage>/context.key`` (one line of
base64, mode 0600), created atomically on first use. It is deliberately *not*
derived from the secrets vault's master key: the vault key may be a passphrase
(no prompt here), and a vault key rotation would then have to re-encrypt every
context row; a separate file has neither coupling. Back it up with the data
dir. The store records the key's id, so a wrong or missing key with sealed
rows is ``CTX_005`` naming the file, never a fresh key that can read nothing
or a silent fallback to plaintext.

Sealed value (a SQLite BLOB)::

    b"SC" | version (1) | flags (1: bit 0 encrypted, bit 1 zlib) | [nonce (12)] | payload

The associated data is the header, the item id and the field name, so a
sealed value moved to another row or field does not open. A value that is a
``str`` is a plaintext row from an older data dir and is read as is.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import zlib
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from engine.errors import ErrorCode, SymbiError

KEY_FILE = "context.key"
KEY_LEN = 32
NONCE_LEN = 12
MAGIC = b"SC"
VERSION = 1
F_ENCRYPTED = 1
F_ZLIB = 2
#: Below this many bytes zlib rarely wins; skip it.
MIN_COMPRESS = 64


def key_id(key: bytes) -> str:
    """A short public fingerprint of ``key`` (stored beside the rows to detect a wrong key)."""
    return hashlib.sha256(b"symbi-context-key\0" + key).hexdigest()[:16]


def _key_error(path: Path, problem: str, hint: str) -> SymbiError:
    return SymbiError(ErrorCode.CTX_005, f"context encryption key {path}: {problem}", offending=str(path), hint=hint)


def read_key(path: Path) -> bytes:
    """The key in ``path`` (``FileNotFoundError`` when missing); ``CTX_005`` for loose permissions or a bad file."""
    from engine.atomicfile import read_private

    try:
        raw = read_private(path, 0o600, what="context key file")
    except SymbiError as exc:  # SEC_003: loose permissions, symlink, other owner
        raise _key_error(path, exc.message.split(f"{path} ", 1)[-1], exc.hint or f"run: chmod 600 {path}") from None
    try:
        key = base64.b64decode(raw.strip(), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_LEN:
        raise _key_error(path, "is not a base64 32-byte key", "restore the file from your backup of the data dir")
    return key


def load_or_create_key(path: Path, *, may_create: bool) -> bytes | None:
    """Read the key; create it (atomically, 0600) when missing and ``may_create``; else None."""
    from engine.atomicfile import create_exclusive

    try:
        return read_key(path)
    except FileNotFoundError:
        if not may_create:
            return None
    key = os.urandom(KEY_LEN)
    if not create_exclusive(path, base64.b64encode(key) + b"\n", 0o600):
        return read_key(path)  # another opener won the race: use theirs
    return key


class FieldCodec:
    """Seals and opens one field of one item. ``key=None`` reads only plaintext and unencrypted values."""

    def __init__(self, key: bytes | None, *, encrypt: bool, compress: bool, key_path: Path | None = None) -> None:
        if encrypt and key is None:
            raise ValueError("encryption needs a key")
        self._aead = AESGCM(key) if key is not None else None
        self.encrypt = encrypt
        self.compress = compress
        self.key_path = key_path

    def seal(self, item_id: str, field: str, text: str) -> str | bytes:
        data = text.encode("utf-8")
        flags = 0
        if self.compress and len(data) >= MIN_COMPRESS:
            packed = zlib.compress(data, 6)
            if len(packed) < len(data):
                data, flags = packed, F_ZLIB
        if not self.encrypt:
            return text if not flags else MAGIC + bytes((VERSION, flags)) + data
        flags |= F_ENCRYPTED
        header = MAGIC + bytes((VERSION, flags))
        nonce = os.urandom(NONCE_LEN)
        assert self._aead is not None
        return header + nonce + self._aead.encrypt(nonce, data, self._aad(header, item_id, field))

    def open(self, item_id: str, field: str, value: str | bytes) -> str:
        if isinstance(value, str):
            return value  # plaintext row from an older data dir
        value = bytes(value)
        if len(value) < 4 or value[:2] != MAGIC or value[2] != VERSION:
            raise self._unreadable(item_id, "unknown format")
        header, flags, body = value[:4], value[3], value[4:]
        if flags & F_ENCRYPTED:
            if self._aead is None:
                raise SymbiError(
                    ErrorCode.CTX_005, "context item is encrypted but no key is loaded", offending=item_id,
                    hint=f"restore {self.key_path or KEY_FILE} from your backup",
                )
            try:
                body = self._aead.decrypt(body[:NONCE_LEN], body[NONCE_LEN:], self._aad(header, item_id, field))
            except InvalidTag:
                raise self._unreadable(item_id, "authentication failed (tampered, or sealed with another key)") from None
        if flags & F_ZLIB:
            try:
                body = zlib.decompress(body)
            except zlib.error:
                raise self._unreadable(item_id, "bad compressed data") from None
        return body.decode("utf-8")

    @staticmethod
    def _aad(header: bytes, item_id: str, field: str) -> bytes:
        return header + item_id.encode() + b"\0" + field.encode()

    @staticmethod
    def _unreadable(item_id: str, why: str) -> SymbiError:
        return SymbiError(ErrorCode.CTX_001, f"context item cannot be read: {why}", offending=item_id,
                          hint="delete the item; the rest of the store is unaffected")
