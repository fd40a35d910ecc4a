"""Agent identities on disk, and the keys derived from them.

Layout (under ``data_dir/keys/agents``; directories 0700)::

    <agent_id>/ed25519.key   identity (signing) key, PKCS#8 PEM, 0600
    <agent_id>/ed25519.pub   its public half, raw 32 bytes as hex, 0644
    <agent_id>/x25519.key    agreement key, PKCS#8 PEM, 0600
    <agent_id>/x25519.pub    its public half, raw 32 bytes as hex, 0644

Keys are created on first use and reused ever after, so an agent keeps its
identity across restarts. A private key file readable by group or others is
refused (``SEC_003``) rather than silently used; an unreadable or corrupt one
is ``SEC_002`` (both by :mod:`engine.keyfile`, the loader of every engine key).

Pair keys: ``HKDF-SHA256(X25519(a, B), salt, info)`` with ``info`` binding
both agent ids and both agreement public keys in sorted order, so both sides
derive the same 32-byte AES-256-GCM key whichever of them computes it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from engine.comms.names import check_agent_id
from engine.errors import ErrorCode, SymbiError
from engine.keyfile import load_or_create

PAIR_SALT = b"symbi-bus pair salt v1"
PAIR_INFO = b"symbi-bus pair key v1"
_RAW = serialization.Encoding.Raw, serialization.PublicFormat.Raw
K = TypeVar("K", Ed25519PrivateKey, X25519PrivateKey)


@dataclass(frozen=True, slots=True)
class PublicIdentity:
    """What anyone may know about an agent: its two public keys."""

    agent_id: str
    signing_key: Ed25519PublicKey
    signing_raw: bytes
    agreement_key: X25519PublicKey
    agreement_raw: bytes

    @property
    def fingerprint(self) -> str:
        return "sha256:" + hashlib.sha256(self.signing_raw).hexdigest()


@dataclass(frozen=True, slots=True)
class AgentIdentity:
    """An agent's private keys. Only the runtime and that agent's own process may hold one."""

    agent_id: str
    signing_key: Ed25519PrivateKey
    agreement_key: X25519PrivateKey
    public: PublicIdentity

    def __repr__(self) -> str:  # never print key material
        return f"AgentIdentity({self.agent_id!r}, {self.public.fingerprint})"


def _public_of(agent_id: str, sk: Ed25519PrivateKey, xk: X25519PrivateKey) -> PublicIdentity:
    spub, xpub = sk.public_key(), xk.public_key()
    return PublicIdentity(agent_id, spub, spub.public_bytes(*_RAW), xpub, xpub.public_bytes(*_RAW))


def derive_pair_key(mine: AgentIdentity, peer: PublicIdentity) -> bytes:
    """The 32-byte AES-256-GCM key shared by ``mine`` and ``peer`` (the same from either side)."""
    shared = mine.agreement_key.exchange(peer.agreement_key)
    ends = sorted([(mine.agent_id.encode(), mine.public.agreement_raw), (peer.agent_id.encode(), peer.agreement_raw)])
    info = PAIR_INFO + b"".join(len(i).to_bytes(2, "big") + i + pub for i, pub in ends)
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=PAIR_SALT, info=info).derive(shared)


class KeyStore:
    """Owns every agent's persisted identity and agreement keys under one directory."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self._identities: dict[str, AgentIdentity] = {}
        self._pairs: dict[tuple[str, str], bytes] = {}

    @classmethod
    def in_data_dir(cls, data_dir: str | os.PathLike[str]) -> KeyStore:
        return cls(Path(data_dir) / "keys" / "agents")

    def path(self, agent_id: str) -> Path:
        return self.root / check_agent_id(agent_id)

    def exists(self, agent_id: str) -> bool:
        return agent_id in self._identities or (self.path(agent_id) / "ed25519.key").exists()

    def identity(self, agent_id: str) -> AgentIdentity:
        """The agent's identity, loaded from disk or created (and persisted) on first use."""
        ident = self._identities.get(agent_id)
        if ident is None:
            directory = self.path(agent_id)
            self._make_dir(directory)
            # cryptography declares the key classes abstract (its Rust backend makes the instances); mypy
            # refuses an abstract class for type[K] although nothing here instantiates it (python/mypy#4717)
            sk = self._load_or_create(directory / "ed25519.key", Ed25519PrivateKey)  # type: ignore[type-abstract]
            xk = self._load_or_create(directory / "x25519.key", X25519PrivateKey)  # type: ignore[type-abstract]
            ident = AgentIdentity(agent_id, sk, xk, _public_of(agent_id, sk, xk))
            self._write_public(directory / "ed25519.pub", ident.public.signing_raw)
            self._write_public(directory / "x25519.pub", ident.public.agreement_raw)
            self._identities[agent_id] = ident
        return ident

    def public(self, agent_id: str) -> PublicIdentity:
        return self.identity(agent_id).public

    def pair_key(self, a: str, b: str) -> bytes:
        """The AES-256-GCM key for messages between ``a`` and ``b`` (order does not matter)."""
        pair = (a, b) if a <= b else (b, a)
        key = self._pairs.get(pair)
        if key is None:
            key = derive_pair_key(self.identity(pair[0]), self.public(pair[1]))
            self._pairs[pair] = key
        return key

    def remove(self, agent_id: str) -> None:
        """Forget and delete an agent's keys (when the agent itself is deleted)."""
        self._identities.pop(agent_id, None)
        for pair in [p for p in self._pairs if agent_id in p]:
            del self._pairs[pair]
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(self.path(agent_id))

    # -- files ---------------------------------------------------------------

    def _make_dir(self, directory: Path) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
            directory.mkdir(exist_ok=True, mode=0o700)
        except OSError as exc:
            raise SymbiError(
                ErrorCode.SEC_002,
                f"cannot create the agent key directory: {exc.strerror or exc}",
                offending=str(directory),
                hint="make the data dir writable",
            ) from exc

    @staticmethod
    def _load_or_create(path: Path, kind: type[K]) -> K:
        what = "agent identity key" if kind is Ed25519PrivateKey else "agent agreement key"
        return load_or_create(path, kind, what=what)[0]

    @staticmethod
    def _write_public(path: Path, raw: bytes) -> None:
        text = raw.hex() + "\n"
        with contextlib.suppress(OSError):
            if path.exists() and path.read_text() == text:
                return
            path.write_text(text)
