"""The one encrypted file format, shared by the vault, the CLI, the console and agents.

Every secret file (``<base>/app/api_key.enc``), every previous version
(``api_key.enc.1``) and every file written by ``symbiont secrets encrypt`` is::

    offset  size  field
    ------  ----  ---------------------------------------------------------------
         0     4  magic  b"SYMV"
         4     1  format version, 0x01
         5     1  kind   0x01 = vault secret (plaintext: JSON record, see below)
                         0x02 = standalone file (plaintext: the file's bytes)
         6     8  key id: first 8 bytes of SHA-256(b"symbiont-key-id\\x00" || master key)
        14    12  nonce: 96 random bits, fresh for every write
        26   n+16 AES-256-GCM ciphertext of the n plaintext bytes, then the 16-byte tag

All integers are single bytes; there is no length field (the ciphertext runs to
the end of the file, and GCM authenticates its length). The associated data is
the 26-byte header followed by a context string:

* vault secret: ``b"symbiont-vault-secret\\x00" + name.encode("utf-8")``. The
  name (``app/api_key``) is bound, so a file copied or renamed to another name
  fails to decrypt, and so does a file whose header (version, kind, key id) was
  altered.
* standalone file: ``b"symbiont-secrets-file"``, a fixed string. We do *not*
  bind the output file name: people legitimately rename, copy and back up
  ``config.json.enc``; such a file has no identity of its own to protect. The
  kind byte (which is in the associated data) still stops a vault secret being
  passed off as a standalone file or the reverse.

The vault secret plaintext is UTF-8 JSON (sorted keys)::

    {"created": 1764201600.5, "updated": 1764201600.5, "version": 1,
     "description": "", "tags": [], "metadata": {"env": "dev"},
     "value_b64": "<standard base64 of the value bytes>"}

Any failure to read (short file, bad magic, unknown version or kind, a key id
not in the keyring, a failed tag) is ``SEC_002`` naming the file, never its
content.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from engine.errors import ErrorCode, SymbiError

MAGIC = b"SYMV"
FORMAT_VERSION = 1
KIND_SECRET = 0x01
KIND_FILE = 0x02
KEY_LEN = 32
KEY_ID_LEN = 8
NONCE_LEN = 12
TAG_LEN = 16
_HEADER = struct.Struct(">4sBB8s12s")
HEADER_LEN = _HEADER.size  # 26
MIN_LEN = HEADER_LEN + TAG_LEN

FILE_CONTEXT = b"symbiont-secrets-file"
_SECRET_CONTEXT = b"symbiont-vault-secret\x00"

_KIND_NAMES = {KIND_SECRET: "a vault secret", KIND_FILE: "a standalone encrypted file"}
_TAMPER_HINT = "the file was altered, truncated, copied from another name or written under another key; restore it from a previous version or a backup"


def secret_context(name: str) -> bytes:
    """The associated-data context binding a vault secret to its name."""
    return _SECRET_CONTEXT + name.encode("utf-8")


def key_id(key: bytes) -> str:
    """A key's public id: 16 hex digits of a domain-separated SHA-256."""
    return hashlib.sha256(b"symbiont-key-id\x00" + key).digest()[:KEY_ID_LEN].hex()


@dataclass(frozen=True, slots=True)
class Header:
    version: int
    kind: int
    key_id: str
    nonce: bytes
    raw: bytes


def _bad(source: str, problem: str, hint: str = _TAMPER_HINT) -> SymbiError:
    return SymbiError(ErrorCode.SEC_002, f"cannot decrypt {source}: {problem}", offending=source, hint=hint)


def parse_header(blob: bytes, source: str) -> Header:
    """Read and check the header of ``blob`` (read from ``source``, named in errors)."""
    if len(blob) < MIN_LEN:
        if blob[:4] != MAGIC[: len(blob[:4])]:
            raise _bad(source, "not a symbiont encrypted file (bad magic)")
        raise _bad(source, f"the file is truncated ({len(blob)} bytes, at least {MIN_LEN} expected)")
    magic, version, kind, kid, nonce = _HEADER.unpack_from(blob)
    if magic != MAGIC:
        raise _bad(source, "not a symbiont encrypted file (bad magic)")
    if version != FORMAT_VERSION:
        raise _bad(source, f"unsupported format version {version} (this build reads version {FORMAT_VERSION})")
    if kind not in _KIND_NAMES:
        raise _bad(source, f"unknown content kind 0x{kind:02x}")
    return Header(version, kind, kid.hex(), nonce, blob[:HEADER_LEN])


def seal(key: bytes, kind: int, context: bytes, plaintext: bytes) -> bytes:
    """Encrypt ``plaintext`` into a complete file image under ``key`` with a fresh nonce."""
    if len(key) != KEY_LEN:
        raise ValueError("a master key is 32 bytes")
    header = _HEADER.pack(MAGIC, FORMAT_VERSION, kind, bytes.fromhex(key_id(key)), os.urandom(NONCE_LEN))
    return header + AESGCM(key).encrypt(header[-NONCE_LEN:], plaintext, header + context)


def unseal(keyring: Mapping[str, bytes], blob: bytes, kind: int, context: bytes, source: str) -> bytes:
    """Decrypt a file image with whichever key in ``keyring`` (key id -> key) its header names."""
    header = parse_header(blob, source)
    if header.kind != kind:
        raise _bad(
            source,
            f"it holds {_KIND_NAMES[header.kind]}, not {_KIND_NAMES[kind]}",
            hint="use `symbiont secrets get NAME` for vault secrets and `decrypt --in` for files made by `encrypt`",
        )
    key = keyring.get(header.key_id)
    if key is None:
        raise _bad(
            source,
            f"it is encrypted under key id {header.key_id}, which this vault does not hold (wrong key)",
            hint="set SYMBIONT_MASTER_KEY / the key file / the passphrase to the key this file was written with",
        )
    try:
        return AESGCM(key).decrypt(header.nonce, blob[HEADER_LEN:], header.raw + context)
    except InvalidTag:
        raise _bad(source, "authentication failed (wrong key, tampered or truncated file)") from None
