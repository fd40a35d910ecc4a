"""Wire forms of an envelope: compact bytes, and JSON with base64 fields.

The JSON form is what agents in sandboxes exchange with the runtime over the
agent protocol (JSON-RPC); the byte form is the body encoding of
``envelope.py`` followed by the authentication fields. Both parsers are
strict: unknown or missing fields, wrong types, non-canonical base64, trailing
bytes, oversized names or non-finite numbers raise ``ValueError`` and nothing
else, whatever the input (the bus turns that into ``COMM_001``).
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
from collections.abc import Mapping
from typing import Any

from engine.comms.envelope import (
    BODY_MAGIC,
    CODE_TYPE,
    HASH_SIZE,
    MAX_PROOF,
    Envelope,
    MessageType,
    encode_body,
    validate,
)

WIRE_VERSION = 1
_TIMES = struct.Struct(">dd")
_FIELDS = frozenset(
    {
        "v",
        "id",
        "sender",
        "type",
        "recipient",
        "topic",
        "correlation_id",
        "timestamp",
        "ttl",
        "nonce",
        "ciphertext",
        "signature",
        "batch_size",
        "batch_index",
        "proof",
    }
)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(value: object, name: str) -> bytes:
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a base64 string")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"{name} is not valid base64") from exc
    if base64.b64encode(raw).decode("ascii") != value:
        raise ValueError(f"{name} is not canonical base64")
    return raw


# -- bytes ---------------------------------------------------------------------


def to_bytes(env: Envelope) -> bytes:
    """Body, then signature, batch size, batch index and the Merkle proof."""
    return b"".join(
        (
            encode_body(env),
            len(env.signature).to_bytes(1, "big"),
            env.signature,
            env.batch_size.to_bytes(4, "big"),
            env.batch_index.to_bytes(4, "big"),
            len(env.proof).to_bytes(1, "big"),
            *env.proof,
        )
    )


def _text(raw: bytes, p: int) -> tuple[str, int]:
    n = int.from_bytes(raw[p : p + 2], "big")
    p += 2
    if p + n > len(raw):
        raise ValueError("envelope bytes are truncated")
    try:
        return raw[p : p + n].decode("utf-8"), p + n
    except UnicodeDecodeError as exc:
        raise ValueError("a name is not valid UTF-8") from exc


def _optional_text(raw: bytes, p: int) -> tuple[str | None, int]:
    flag = raw[p]
    if flag == 0:
        return None, p + 1
    if flag != 1:
        raise ValueError("bad presence flag")
    return _text(raw, p + 1)


def from_bytes(data: bytes) -> Envelope:
    raw = bytes(data)
    if not raw.startswith(BODY_MAGIC):
        raise ValueError("not a symbi envelope (bad magic)")
    try:
        p = len(BODY_MAGIC)
        kind = CODE_TYPE.get(raw[p])
        if kind is None:
            raise ValueError("unknown message type code")
        sender, p = _text(raw, p + 1)
        recipient, p = _optional_text(raw, p)
        topic, p = _optional_text(raw, p)
        correlation_id, p = _optional_text(raw, p)
        msg_id, p = _text(raw, p)
        timestamp, ttl = _TIMES.unpack_from(raw, p)
        p += _TIMES.size
        n = raw[p]
        nonce, p = raw[p + 1 : p + 1 + n], p + 1 + n
        n = int.from_bytes(raw[p : p + 4], "big")
        ciphertext, p = raw[p + 4 : p + 4 + n], p + 4 + n
        n = raw[p]
        signature, p = raw[p + 1 : p + 1 + n], p + 1 + n
        batch_size, batch_index = int.from_bytes(raw[p : p + 4], "big"), int.from_bytes(raw[p + 4 : p + 8], "big")
        count = raw[p + 8]
        p += 9
    except (IndexError, struct.error) as exc:
        raise ValueError("envelope bytes are truncated") from exc
    if count > MAX_PROOF:
        raise ValueError("proof too long")
    proof = tuple(raw[i : i + HASH_SIZE] for i in range(p, p + count * HASH_SIZE, HASH_SIZE))
    p += count * HASH_SIZE
    if p != len(raw):
        raise ValueError("envelope bytes are truncated" if p > len(raw) else "trailing bytes after the envelope")
    env = Envelope(
        msg_id,
        sender,
        kind,
        recipient,
        topic,
        timestamp,
        ttl,
        nonce,
        ciphertext,
        correlation_id,
        signature,
        batch_size,
        batch_index,
        proof,
    )
    validate(env)
    return env


# -- JSON ----------------------------------------------------------------------


def to_dict(env: Envelope) -> dict[str, Any]:
    """The JSON-ready form: binary fields as standard base64."""
    return {
        "v": WIRE_VERSION,
        "id": env.id,
        "sender": env.sender,
        "type": env.type.value,
        "recipient": env.recipient,
        "topic": env.topic,
        "correlation_id": env.correlation_id,
        "timestamp": env.timestamp,
        "ttl": env.ttl,
        "nonce": _b64(env.nonce),
        "ciphertext": _b64(env.ciphertext),
        "signature": _b64(env.signature),
        "batch_size": env.batch_size,
        "batch_index": env.batch_index,
        "proof": [_b64(p) for p in env.proof],
    }


def _opt_str(d: Mapping[str, Any], name: str) -> str | None:
    value = d.get(name)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{name} must be a string or null")
    return value


def _number(d: Mapping[str, Any], name: str) -> float:
    value = d.get(name)
    if type(value) is not int and type(value) is not float:  # bool is excluded on purpose
        raise ValueError(f"{name} must be a number")
    try:
        return float(value)
    except OverflowError as exc:
        raise ValueError(f"{name} is out of range") from exc


def _int(d: Mapping[str, Any], name: str) -> int:
    value = d.get(name)
    if type(value) is not int:
        raise ValueError(f"{name} must be an integer")
    return value


def from_dict(d: object) -> Envelope:
    if not isinstance(d, Mapping):
        raise ValueError("an envelope must be a JSON object")
    keys = set(d)
    if keys - _FIELDS:
        raise ValueError(f"unknown envelope field(s): {sorted(map(str, keys - _FIELDS))[:3]}")
    missing = _FIELDS - {"recipient", "topic", "correlation_id", "v"} - keys
    if missing:
        raise ValueError(f"missing envelope field(s): {sorted(missing)}")
    if d.get("v", WIRE_VERSION) != WIRE_VERSION:
        raise ValueError("unsupported envelope version")
    for name in ("id", "sender"):
        if not isinstance(d[name], str):
            raise ValueError(f"{name} must be a string")
    proof = d["proof"]
    if not isinstance(proof, list) or len(proof) > MAX_PROOF:
        raise ValueError(f"proof must be a list of at most {MAX_PROOF} hashes")
    env = Envelope(
        d["id"],
        d["sender"],
        MessageType.parse(d["type"]),
        _opt_str(d, "recipient"),
        _opt_str(d, "topic"),
        _number(d, "timestamp"),
        _number(d, "ttl"),
        _unb64(d["nonce"], "nonce"),
        _unb64(d["ciphertext"], "ciphertext"),
        _opt_str(d, "correlation_id"),
        _unb64(d["signature"], "signature"),
        _int(d, "batch_size"),
        _int(d, "batch_index"),
        tuple(_unb64(p, "proof entry") for p in proof),
    )
    validate(env)
    return env


def to_json(env: Envelope) -> str:
    return json.dumps(to_dict(env), separators=(",", ":"))


def from_json(text: str | bytes) -> Envelope:
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ValueError("envelope is not valid JSON") from exc
    return from_dict(data)


def parse(data: bytes | bytearray | memoryview | str | Mapping[str, Any]) -> Envelope:
    """Any wire form to an envelope: bytes starting with the magic, JSON text, or an already-decoded dict."""
    if isinstance(data, Mapping):
        return from_dict(data)
    if isinstance(data, str):
        return from_json(data)
    if isinstance(data, bytes | bytearray | memoryview):
        raw = bytes(data)
        if raw.startswith(BODY_MAGIC):
            return from_bytes(raw)
        return from_json(raw)
    raise ValueError("an envelope must be bytes, JSON text or a JSON object")
