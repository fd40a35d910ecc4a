"""Master keys: where they come from, how they are stored, how they are identified.

Sources, tried in this order by ``KeySource.auto()`` (the default):

1. ``SYMBIONT_MASTER_KEY``: standard (or URL-safe) base64 of exactly 32 bytes.
   A malformed value is ``SEC_006`` naming the variable, never echoing it.
2. The key file ``<keys_dir>/master.key`` (one line of base64, mode 0600).
   Created on first use, but only while the vault is still empty: a vault that
   holds secrets and has lost its key gets ``SEC_006``, not a fresh key that
   could never read them. Loose permissions, a symlink or another owner are
   ``SEC_003`` naming the file.
3. A passphrase, only when asked for (``KeySource.passphrase(...)``,
   ``key_source = "passphrase"`` or ``--passphrase``), stretched with Argon2id.
   Its salt and cost parameters live beside the key file in
   ``<keys_dir>/passphrase.json`` together with the derived key's id, so a
   wrong passphrase is refused (``SEC_002``) before anything is read. When
   ``SYMBIONT_MASTER_PASSPHRASE`` is set it is used instead of a prompt.

A key's id (16 hex digits, :func:`engine.secrets.fileformat.key_id`) is
written into every file, so a file can say which key it needs. Keys retired by
a rotation are kept in ``<keys_dir>/retired/<id>.key`` (0600) unless purged, so
files made with ``symbiont secrets encrypt`` before the rotation still open.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from engine.atomicfile import create_exclusive, private_dir, read_private, write_private
from engine.errors import ErrorCode, SymbiError
from engine.secrets.fileformat import KEY_LEN, key_id
from engine.secrets.values import SecretValue

ENV_VAR = "SYMBIONT_MASTER_KEY"
PASSPHRASE_ENV_VAR = "SYMBIONT_MASTER_PASSPHRASE"
MASTER_FILE = "master.key"
PASSPHRASE_FILE = "passphrase.json"
RETIRED_DIR = "retired"
SALT_LEN = 16


class MasterKey:
    """A loaded key: bytes, id and a description of where it came from. Masked repr."""

    __slots__ = ("_key", "key_id", "kind", "origin")

    def __init__(self, key: bytes, kind: str, origin: str) -> None:
        if len(key) != KEY_LEN:
            raise ValueError("a master key is 32 bytes")
        self._key = bytes(key)
        self.key_id = key_id(key)
        self.kind = kind  # env | file | passphrase | raw
        self.origin = origin

    @property
    def material(self) -> bytes:
        return self._key

    def __repr__(self) -> str:
        return f"MasterKey(id={self.key_id}, from {self.origin})"


@dataclass(frozen=True)
class KeySource:
    """How to obtain a master key: for opening a vault, or as the target of a rotation.

    As a rotation target: ``key_file()`` generates a fresh random key into the
    key file; ``passphrase(pw)`` derives one from a new passphrase with a new
    salt; ``env(var)`` / ``raw(key)`` take a key you supply and install nothing,
    so afterwards ``SYMBIONT_MASTER_KEY`` must hold it.
    """

    kind: str = "auto"  # auto | env | file | passphrase | raw
    env_var: str = ENV_VAR
    secret: SecretValue | None = field(default=None, repr=False, compare=False)

    @classmethod
    def auto(cls) -> KeySource:
        return cls("auto")

    @classmethod
    def env(cls, var: str = ENV_VAR) -> KeySource:
        return cls("env", env_var=var)

    @classmethod
    def key_file(cls) -> KeySource:
        return cls("file")

    @classmethod
    def passphrase(cls, passphrase: str | bytes | SecretValue | None = None) -> KeySource:
        """A passphrase source; None reads ``SYMBIONT_MASTER_PASSPHRASE`` when the key is loaded."""
        return cls("passphrase", secret=None if passphrase is None else SecretValue(passphrase))

    @classmethod
    def raw(cls, key: bytes) -> KeySource:
        if len(key) != KEY_LEN:
            raise SymbiError(ErrorCode.SEC_006, "a master key must be exactly 32 bytes", offending=f"{len(key)} bytes")
        return cls("raw", secret=SecretValue(key))

    @classmethod
    def from_config(cls, key_source: str) -> KeySource:
        return {"auto": cls.auto, "env": cls.env, "file": cls.key_file, "passphrase": cls.passphrase}[key_source]()


def encode_key(key: bytes) -> str:
    return base64.b64encode(key).decode("ascii")


def decode_key(text: str, where: str) -> bytes:
    """Decode a base64 master key; ``SEC_006`` naming ``where`` (never the text) when malformed."""
    cleaned = "".join(text.split())
    key = None
    for alphabet in (None, b"-_"):
        try:
            candidate = base64.b64decode(cleaned, altchars=alphabet, validate=True)
        except (binascii.Error, ValueError):
            continue
        key = candidate
        break
    if key is None or len(key) != KEY_LEN:
        problem = "is not valid base64" if key is None else f"decodes to {len(key)} bytes, not {KEY_LEN}"
        raise SymbiError(
            ErrorCode.SEC_006,
            f"the master key in {where} {problem}",
            offending=where,
            hint='generate one with: python -c "import os,base64; print(base64.b64encode(os.urandom(32)).decode())"',
        )
    return key


@dataclass(frozen=True)
class Argon2Params:
    memory_kib: int = 65536
    iterations: int = 3
    lanes: int = 4


def derive_passphrase_key(passphrase: bytes, salt: bytes, params: Argon2Params) -> bytes:
    kdf = Argon2id(
        salt=salt, length=KEY_LEN, iterations=params.iterations, lanes=params.lanes, memory_cost=params.memory_kib
    )
    return kdf.derive(passphrase)


class KeyStore:
    """The key directory: master key file, passphrase parameters, retired keys."""

    def __init__(self, keys_dir: Path, argon2: Argon2Params | None = None) -> None:
        self.dir = Path(keys_dir)
        self.argon2 = argon2 or Argon2Params()
        self.master_path = self.dir / MASTER_FILE
        self.passphrase_path = self.dir / PASSPHRASE_FILE
        self.retired_dir = self.dir / RETIRED_DIR

    # -- reading ------------------------------------------------------------ #

    def read_key_file(self, path: Path) -> bytes:
        try:
            text = read_private(path, 0o600, what="key file")
        except FileNotFoundError:
            raise SymbiError(ErrorCode.SEC_006, f"the key file {path} is missing", offending=str(path)) from None
        try:
            return decode_key(text.decode("ascii"), f"key file {path}")
        except UnicodeDecodeError:
            raise SymbiError(
                ErrorCode.SEC_006, f"the master key in key file {path} is not base64 text", offending=str(path)
            ) from None

    def open_key(self, source: KeySource, *, may_create: bool, environ: Mapping[str, str] | None = None) -> MasterKey:
        """Load the master key from ``source``; create the key file only if ``may_create``."""
        env = os.environ if environ is None else environ
        kind = source.kind
        if kind == "auto":
            if env.get(source.env_var, "").strip():
                kind = "env"
            elif self.master_path.exists() or self.master_path.is_symlink():
                kind = "file"
            elif self.passphrase_path.exists():
                raise SymbiError(
                    ErrorCode.SEC_006,
                    "this vault is protected by a passphrase",
                    offending=str(self.passphrase_path),
                    hint=f'pass --passphrase (or set {PASSPHRASE_ENV_VAR}), or key_source = "passphrase"',
                )
            else:
                kind = "file"
        if kind == "env":
            text = env.get(source.env_var, "")
            if not text.strip():
                raise SymbiError(
                    ErrorCode.SEC_006,
                    f"{source.env_var} is not set",
                    offending=source.env_var,
                    hint="export the vault's master key (base64 of 32 bytes)",
                )
            return MasterKey(decode_key(text, f"environment variable {source.env_var}"), "env", source.env_var)
        if kind == "raw":
            assert source.secret is not None
            return MasterKey(source.secret.reveal_bytes(), "raw", "a key given by the caller")
        if kind == "passphrase":
            return self._passphrase_key(source, may_create=may_create, environ=env)
        return self._file_key(may_create=may_create)

    def _file_key(self, *, may_create: bool) -> MasterKey:
        if not (self.master_path.exists() or self.master_path.is_symlink()):
            if not may_create:
                raise SymbiError(
                    ErrorCode.SEC_006,
                    f"no master key: {ENV_VAR} is not set and the key file {self.master_path} is missing, "
                    "but the vault already holds secrets",
                    offending=str(self.master_path),
                    hint=f"restore the key file from a backup or set {ENV_VAR}",
                )
            private_dir(self.dir)
            create_exclusive(self.master_path, (encode_key(os.urandom(KEY_LEN)) + "\n").encode("ascii"))
        return MasterKey(self.read_key_file(self.master_path), "file", f"key file {self.master_path}")

    def _passphrase_key(self, source: KeySource, *, may_create: bool, environ: Mapping[str, str]) -> MasterKey:
        secret = source.secret
        if secret is None and environ.get(PASSPHRASE_ENV_VAR):
            secret = SecretValue(environ[PASSPHRASE_ENV_VAR])
        if secret is None or not secret:
            raise SymbiError(
                ErrorCode.SEC_006,
                "a passphrase is required to open this vault",
                offending="passphrase",
                hint=f"pass --passphrase or set {PASSPHRASE_ENV_VAR}",
            )
        if not self.passphrase_path.exists():
            if not may_create:
                raise SymbiError(
                    ErrorCode.SEC_006,
                    f"the passphrase parameters file {self.passphrase_path} is missing, "
                    "but the vault already holds secrets",
                    offending=str(self.passphrase_path),
                    hint="restore it from a backup",
                )
            key, doc = self.new_passphrase_params(secret)
            self.write_passphrase_params(doc)
            return MasterKey(key, "passphrase", "passphrase")
        stored = self.read_passphrase_params()
        key = derive_passphrase_key(secret.reveal_bytes(), stored["salt"], stored["argon2"])
        if key_id(key) != stored["key_id"]:
            raise SymbiError(
                ErrorCode.SEC_002,
                "wrong passphrase for this vault",
                offending=str(self.passphrase_path),
                hint="check the passphrase (it is case-sensitive)",
            )
        return MasterKey(key, "passphrase", "passphrase")

    # -- passphrase parameters ---------------------------------------------- #

    def new_passphrase_params(self, passphrase: SecretValue) -> tuple[bytes, dict[str, Any]]:
        """A fresh salt and the configured costs: (derived key, params document)."""
        salt = os.urandom(SALT_LEN)
        key = derive_passphrase_key(passphrase.reveal_bytes(), salt, self.argon2)
        doc = {
            "kdf": "argon2id",
            "salt": base64.b64encode(salt).decode("ascii"),
            "memory_kib": self.argon2.memory_kib,
            "iterations": self.argon2.iterations,
            "lanes": self.argon2.lanes,
            "key_id": key_id(key),
        }
        return key, doc

    def write_passphrase_params(self, doc: Mapping[str, Any]) -> None:
        write_private(self.passphrase_path, (json.dumps(doc, sort_keys=True, indent=1) + "\n").encode())

    def read_passphrase_params(self) -> dict[str, Any]:
        path = self.passphrase_path
        try:
            doc = json.loads(read_private(path, 0o600, what="passphrase parameters file"))
            return {
                "salt": base64.b64decode(doc["salt"], validate=True),
                "argon2": Argon2Params(int(doc["memory_kib"]), int(doc["iterations"]), int(doc["lanes"])),
                "key_id": str(doc["key_id"]),
            }
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise SymbiError(
                ErrorCode.SEC_006, f"the passphrase parameters file {path} is unreadable", offending=str(path)
            ) from None

    # -- retired keys ------------------------------------------------------- #

    def retired_keys(self) -> dict[str, bytes]:
        """Key id -> key for every retired key kept on disk."""
        keys: dict[str, bytes] = {}
        if self.retired_dir.is_dir():
            for path in sorted(self.retired_dir.glob("*.key")):
                key = self.read_key_file(path)
                keys[key_id(key)] = key
        return keys

    def retire(self, key: bytes) -> None:
        write_private(self.retired_dir / f"{key_id(key)}.key", (encode_key(key) + "\n").encode("ascii"))

    def forget_retired(self, kid: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.retired_dir / f"{kid}.key").unlink()

    def purge_retired(self) -> int:
        count = 0
        if self.retired_dir.is_dir():
            for path in self.retired_dir.glob("*.key"):
                path.unlink()
                count += 1
        return count

    # -- installing a rotated key ------------------------------------------- #

    def prepare_target(self, target: KeySource, *, environ: Mapping[str, str] | None = None) -> tuple[bytes, str, Any]:
        """The new key for a rotation to ``target``: (key, install kind, passphrase params or None)."""
        env = os.environ if environ is None else environ
        if target.kind == "file":
            return os.urandom(KEY_LEN), "file", None
        if target.kind == "passphrase":
            secret = target.secret
            if secret is None and env.get(PASSPHRASE_ENV_VAR):
                secret = SecretValue(env[PASSPHRASE_ENV_VAR])
            if secret is None or not secret:
                raise SymbiError(ErrorCode.SEC_006, "a new passphrase is required", offending="passphrase")
            key, doc = self.new_passphrase_params(secret)
            return key, "passphrase", doc
        if target.kind in ("env", "raw"):
            loaded = self.open_key(target, may_create=False, environ=env)
            return loaded.material, "external", None
        raise SymbiError(
            ErrorCode.SEC_006, f"cannot rotate to a key source of kind {target.kind!r}", offending=target.kind
        )

    def install(self, new_key: bytes, install_kind: str, passphrase_params: Mapping[str, Any] | None) -> None:
        """Make ``new_key`` the one the next open finds. Idempotent."""
        if install_kind == "file":
            write_private(self.master_path, (encode_key(new_key) + "\n").encode("ascii"))
        elif install_kind == "passphrase" and passphrase_params is not None:
            self.write_passphrase_params(passphrase_params)
        # Leftovers of the old source would be found first, or mislead, on the next open.
        stale = [
            p for p, kind in ((self.master_path, "file"), (self.passphrase_path, "passphrase")) if kind != install_kind
        ]
        for path in stale:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
