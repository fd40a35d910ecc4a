"""The envelope: what travels on the bus, and the exact bytes that get signed.

An :class:`Envelope` carries an encrypted payload plus everything needed to
route, authenticate and expire it. Two encodings matter for security:

* :func:`encode_body` is the *canonical* encoding of every field except the
  authentication fields (``signature``, ``batch_size``, ``batch_index``,
  ``proof``). It is length-prefixed and unambiguous; its SHA-256 (with a
  leaf prefix) is the Merkle leaf the sender signs (see ``merkle.py`` and
  ``signing.py``).
* :func:`encode_header` (the body without nonce and ciphertext) is also the
  AES-256-GCM associated data: it binds the ciphertext to the message id,
  sender, recipient or topic, type, timestamp, TTL and correlation id, so a
  ciphertext cannot be lifted into another envelope even by someone holding
  the key.

The wire forms (compact bytes and JSON with base64 fields) live in ``wire.py``.
"""

from __future__ import annotations

import math
import struct
from enum import Enum
from typing import Any, NamedTuple

from engine.comms.names import is_agent_id, is_message_id, is_topic

NONCE_SIZE = 12
TAG_SIZE = 16
SIGNATURE_SIZE = 64
HASH_SIZE = 32
MAX_BATCH = 4096
MAX_PROOF = 32

BODY_MAGIC = b"SYMBI-ENV\x01"
_TIMES = struct.Struct(">dd")


class MessageType(str, Enum):
    """The seed's message types."""

    DIRECT = "Direct"
    PUBLISH = "Publish"
    REQUEST = "Request"
    RESPONSE = "Response"
    BROADCAST = "Broadcast"

    @classmethod
    def parse(cls, value: object) -> MessageType:
        if isinstance(value, MessageType):
            return value
        for member in cls:
            if isinstance(value, str) and value.lower() == member.value.lower():
                return member
        raise ValueError(f"unknown message type {value!r}")


TYPE_CODE: dict[MessageType, bytes] = {t: bytes([i + 1]) for i, t in enumerate(MessageType)}
CODE_TYPE: dict[int, MessageType] = {i + 1: t for i, t in enumerate(MessageType)}
ADDRESSED = (MessageType.DIRECT, MessageType.REQUEST, MessageType.RESPONSE)


class Envelope(NamedTuple):
    """One message on the bus (immutable). ``ciphertext`` is AES-256-GCM output (payload + 16-byte tag).

    Exactly one addressing form is used: ``recipient`` for Direct, Request and
    Response; ``topic`` for Publish; neither for Broadcast. ``correlation_id``
    is set on (and only on) a Response: the id of the Request it answers.
    """

    id: str
    sender: str
    type: MessageType
    recipient: str | None
    topic: str | None
    timestamp: float
    ttl: float
    nonce: bytes
    ciphertext: bytes
    correlation_id: str | None = None
    signature: bytes = b""
    batch_size: int = 1
    batch_index: int = 0
    proof: tuple[bytes, ...] = ()

    @property
    def target(self) -> str:
        """The recipient, ``#topic`` or ``*`` (broadcast): for display and audit."""
        if self.recipient is not None:
            return self.recipient
        if self.topic is not None:
            return f"#{self.topic}"
        return "*"

    @property
    def size(self) -> int:
        """Plaintext payload size in bytes."""
        return max(0, len(self.ciphertext) - TAG_SIZE)

    @property
    def expires_at(self) -> float:
        return self.timestamp + self.ttl

    def signed(self, signature: bytes, batch_size: int, batch_index: int, proof: tuple[bytes, ...]) -> Envelope:
        """A copy carrying its authentication fields."""
        return Envelope(
            self.id,
            self.sender,
            self.type,
            self.recipient,
            self.topic,
            self.timestamp,
            self.ttl,
            self.nonce,
            self.ciphertext,
            self.correlation_id,
            signature,
            batch_size,
            batch_index,
            proof,
        )

    def meta(self) -> dict[str, Any]:
        """Metadata only (no nonce, ciphertext or payload): for audit records, dead letters and UIs."""
        return {
            "id": self.id,
            "type": self.type.value,
            "sender": self.sender,
            "recipient": self.recipient,
            "topic": self.topic,
            "correlation_id": self.correlation_id,
            "timestamp": self.timestamp,
            "ttl": self.ttl,
            "size": self.size,
            "batch_size": self.batch_size,
        }


_PREFIXES: dict[tuple[MessageType, str, str | None, str | None], bytes] = {}


def _lp(value: str) -> bytes:
    raw = value.encode()
    return len(raw).to_bytes(2, "big") + raw


def _prefix(type: MessageType, sender: str, recipient: str | None, topic: str | None) -> bytes:
    """The routing part of the header; it repeats for every message of a pair, so it is memoised."""
    key = (type, sender, recipient, topic)
    out = _PREFIXES.get(key)
    if out is None:
        out = b"".join(
            (
                BODY_MAGIC,
                TYPE_CODE[type],
                _lp(sender),
                b"\x00" if recipient is None else b"\x01" + _lp(recipient),
                b"\x00" if topic is None else b"\x01" + _lp(topic),
            )
        )
        if len(_PREFIXES) >= 4096:
            _PREFIXES.clear()
        _PREFIXES[key] = out
    return out


def encode_header(
    type: MessageType,
    id: str,
    sender: str,
    recipient: str | None,
    topic: str | None,
    correlation_id: str | None,
    timestamp: float,
    ttl: float,
) -> bytes:
    """Canonical encoding of every field but the nonce, the ciphertext and the authentication fields.

    Layout: magic, type code, sender, recipient?, topic?, correlation_id?,
    id, timestamp, ttl (strings as u16 length + UTF-8, optional ones behind a
    0/1 presence byte, times as big-endian float64). It is also the AES-GCM
    associated data, so the ciphertext is bound to the message id, sender,
    recipient or topic, type, timestamp, TTL and correlation id.
    """
    raw_id = id.encode()
    return b"".join(
        (
            _prefix(type, sender, recipient, topic),
            b"\x00" if correlation_id is None else b"\x01" + _lp(correlation_id),
            len(raw_id).to_bytes(2, "big"),
            raw_id,
            _TIMES.pack(timestamp, ttl),
        )
    )


def header_of(env: Envelope) -> bytes:
    return encode_header(
        env.type, env.id, env.sender, env.recipient, env.topic, env.correlation_id, env.timestamp, env.ttl
    )


def body_from(header: bytes, nonce: bytes, ciphertext: bytes) -> bytes:
    return b"".join((header, len(nonce).to_bytes(1, "big"), nonce, len(ciphertext).to_bytes(4, "big"), ciphertext))


def encode_body(env: Envelope) -> bytes:
    """The canonical encoding of every field the signature covers (all but the authentication fields)."""
    return body_from(header_of(env), env.nonce, env.ciphertext)


def validate(env: Envelope) -> None:
    """Check the shape of an envelope that came from outside; raise ``ValueError`` naming the first problem.

    This checks form only (names, sizes, addressing rules, finite times);
    authenticity is the verifier's job and freshness the bus's.
    """
    if not is_message_id(env.id):
        raise ValueError("bad message id")
    if not is_agent_id(env.sender):
        raise ValueError("bad sender id")
    if not isinstance(env.type, MessageType):
        raise ValueError("bad message type")
    if env.type in ADDRESSED:
        if not is_agent_id(env.recipient) or env.topic is not None:
            raise ValueError(f"a {env.type.value} message needs a recipient and no topic")
    elif env.type is MessageType.PUBLISH:
        if not is_topic(env.topic) or env.recipient is not None:
            raise ValueError("a Publish message needs a topic and no recipient")
    elif env.recipient is not None or env.topic is not None:
        raise ValueError("a Broadcast message has neither recipient nor topic")
    if env.type is MessageType.RESPONSE:
        if not is_message_id(env.correlation_id):
            raise ValueError("a Response needs the correlation_id of its Request")
    elif env.correlation_id is not None:
        raise ValueError("only a Response carries a correlation_id")
    for name in ("timestamp", "ttl"):
        value = getattr(env, name)
        if type(value) is not float or not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number")
    if env.ttl <= 0:
        raise ValueError("ttl must be positive")
    if not isinstance(env.nonce, bytes) or len(env.nonce) != NONCE_SIZE:
        raise ValueError(f"nonce must be {NONCE_SIZE} bytes")
    if not isinstance(env.ciphertext, bytes) or len(env.ciphertext) < TAG_SIZE:
        raise ValueError("ciphertext is shorter than its tag")
    if not isinstance(env.signature, bytes) or len(env.signature) != SIGNATURE_SIZE:
        raise ValueError(f"signature must be {SIGNATURE_SIZE} bytes")
    if type(env.batch_size) is not int or not 1 <= env.batch_size <= MAX_BATCH:
        raise ValueError(f"batch_size must be 1..{MAX_BATCH}")
    if type(env.batch_index) is not int or not 0 <= env.batch_index < env.batch_size:
        raise ValueError("batch_index must be below batch_size")
    if not isinstance(env.proof, tuple) or len(env.proof) > MAX_PROOF:
        raise ValueError("proof too long")
    if any(not isinstance(p, bytes) or len(p) != HASH_SIZE for p in env.proof):
        raise ValueError(f"proof entries must be {HASH_SIZE}-byte hashes")
