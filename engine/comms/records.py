"""What the bus hands out: delivered messages, statistics and audit records.

Audit records are plain dicts of metadata (never payload or ciphertext), in
one shape for every event, so the audit trail and the console can show them
without knowing the bus (the event names are the audit trail's types)::

    {"event": "bus.send" | "bus.deliver" | "bus.reject",
     "id", "type", "sender", "recipient", "topic", "correlation_id", "size",
     "decision": "accepted" | "delivered" | "rejected",
     "verification": "signed" | "verified" | "failed" | "unchecked",
     "recipients" (sent only), "stage", "code", "reason" (rejected only)}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from engine.comms.envelope import TAG_SIZE, Envelope, MessageType
from engine.errors import ErrorCode

META_KEYS = ("id", "type", "sender", "recipient", "topic", "correlation_id", "size")


class Delivered(NamedTuple):
    """A message handed to its recipient: the envelope (metadata + ciphertext) and the verified plaintext."""

    envelope: Envelope
    payload: bytes
    verified: bool = True

    @property
    def id(self) -> str:
        return self.envelope.id

    @property
    def sender(self) -> str:
        return self.envelope.sender

    @property
    def recipient(self) -> str | None:
        return self.envelope.recipient

    @property
    def topic(self) -> str | None:
        return self.envelope.topic

    @property
    def type(self) -> MessageType:
        return self.envelope.type

    @property
    def timestamp(self) -> float:
        return self.envelope.timestamp

    @property
    def correlation_id(self) -> str | None:
        return self.envelope.correlation_id

    @property
    def meta(self) -> dict[str, Any]:
        return {**self.envelope.meta(), "verified": self.verified}

    def __repr__(self) -> str:  # keep payloads out of logs and tracebacks
        return f"Delivered({self.type.value} {self.id} {self.sender}->{self.envelope.target}, {len(self.payload)} B)"


@dataclass(frozen=True, slots=True)
class AgentCounters:
    sent: int
    received: int
    rejected: int
    queued: int
    topics: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class BusStats:
    agents: int
    topics: int
    queued: int
    sent: int
    delivered: int
    rejected: int
    dead_letters: int
    dead_letters_evicted: int
    batches_signed: int
    messages_signed: int
    signature_checks: int
    signature_memo_hits: int
    replay_ids: int


class Rejected(Exception):
    """Internal: a check failed with ``code`` and a human ``reason``."""

    def __init__(self, code: ErrorCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def pick_meta(meta: dict[str, Any]) -> dict[str, Any]:
    return {k: meta.get(k) for k in META_KEYS}


def sent_record(meta: dict[str, Any], recipients: int, stage: str) -> dict[str, Any]:
    verification = "verified" if stage == "ingress" else "signed"
    return {"event": "bus.send", **pick_meta(meta), "decision": "accepted", "verification": verification,
            "recipients": recipients, "stage": stage}


def delivered_record(env: Envelope, agent_id: str) -> dict[str, Any]:
    return {"event": "bus.deliver", "id": env.id, "type": env.type._value_, "sender": env.sender,
            "recipient": env.recipient or agent_id, "topic": env.topic, "correlation_id": env.correlation_id,
            "size": len(env.ciphertext) - TAG_SIZE, "decision": "delivered", "verification": "verified",
            "stage": "delivery"}


def rejected_record(meta: dict[str, Any], code: ErrorCode, reason: str, stage: str) -> dict[str, Any]:
    failed = code in (ErrorCode.COMM_002, ErrorCode.COMM_003)
    return {"event": "bus.reject", **pick_meta(meta), "decision": "rejected",
            "verification": "failed" if failed else "unchecked", "stage": stage, "code": code.value,
            "reason": reason}
