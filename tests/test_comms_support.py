"""Helpers shared by the bus tests (``tests/test_comms_*.py``); no tests live here.

* ``make_bus`` opens a real bus on a real key store in a temporary directory,
  with a ``FakeClock`` and an audit hook that records what it is given.
* ``external`` seals and signs an envelope the way an agent process holding its
  own keys would (real AES-256-GCM, real Ed25519), optionally with a wrong key,
  an old timestamp or another signer, for ``receive_envelope``.
* ``flip`` flips one bit of a bytes value; ``queued`` reaches into an agent's queue.
"""

from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from engine.clock import FakeClock
from engine.comms import Envelope, KeyStore, MessageBus, MessageType, seal, sign_batch, sign_one


@dataclass
class AuditLog:
    records: list[dict[str, Any]] = field(default_factory=list)
    fail: bool = False

    async def __call__(self, record: dict[str, Any]) -> None:
        if self.fail:
            raise OSError("audit store unwritable")
        self.records.append(record)

    def events(self, event: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r["event"] == event]


def make_bus(
    root: Path, *agents: str, clock: FakeClock | None = None, **kwargs: Any
) -> tuple[MessageBus, FakeClock, AuditLog]:
    clock = clock or FakeClock()
    audit = AuditLog()
    kwargs.setdefault("audit", audit)
    bus = MessageBus(KeyStore.in_data_dir(root), clock=clock, **kwargs)
    for agent in agents:
        bus.register(agent)
    return bus, clock, audit


def queued(bus: MessageBus, agent_id: str) -> deque[Envelope]:
    """The envelopes waiting in an agent's queue, for tests that play an attacker with memory access."""
    return bus._dir.members[agent_id].mailbox._items


def flip(data: bytes, index: int = 0, bit: int = 0) -> bytes:
    buf = bytearray(data)
    buf[index % len(buf)] ^= 1 << bit
    return bytes(buf)


def external(
    bus: MessageBus,
    sender: str,
    payload: bytes,
    *,
    recipient: str | None = None,
    topic: str | None = None,
    type: MessageType | None = None,
    correlation_id: str | None = None,
    key: bytes | None = None,
    signer: str | None = None,
    timestamp: float | None = None,
    ttl: float = 60.0,
) -> Envelope:
    """An envelope sealed and signed outside the bus, as an agent process would."""
    if type is None:
        type = MessageType.DIRECT if recipient else MessageType.PUBLISH if topic else MessageType.BROADCAST
    if key is None:
        if recipient is not None:
            key = bus.pair_key(sender, recipient)
        elif topic is not None:
            key = bus.topic_key(next(iter(bus.topics()[topic])), topic)
        else:
            key = bus.broadcast_key(sender)
    draft = seal(
        AESGCM(key),
        os.urandom(12),
        sender=sender,
        type=type,
        payload=payload,
        timestamp=bus.clock.time() if timestamp is None else timestamp,
        ttl=ttl,
        recipient=recipient,
        topic=topic,
        correlation_id=correlation_id,
    )
    return sign_one(bus.identity(signer or sender).signing_key, draft)


def external_batch(bus: MessageBus, sender: str, recipient: str, payloads: list[bytes]) -> list[Envelope]:
    aead = AESGCM(bus.pair_key(sender, recipient))
    drafts = [
        seal(aead, os.urandom(12), sender=sender, type=MessageType.DIRECT, payload=p,
             timestamp=bus.clock.time(), ttl=60.0, recipient=recipient)
        for p in payloads
    ]
    return sign_batch(bus.identity(sender).signing_key, drafts)
