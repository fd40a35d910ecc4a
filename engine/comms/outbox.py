"""Sender outboxes: sealed drafts wait here to be signed as one batch, then go out in order.

A sender's drafts are signed together (one Ed25519 signature over a Merkle
root, see ``signing.py``) when ``max_batch`` of them have piled up, or at the
end of the current event-loop turn, whichever comes first. So a burst of
sends costs one signature, while a lone message waits at most one loop turn.
Drafts leave in the order they came in; with ``max_batch=1`` every message
is signed on its own (the per-message path).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from engine.comms.envelope import MAX_BATCH, Envelope, MessageType
from engine.comms.signing import sign_leaves

# the Envelope's fields up to correlation_id:
# id, sender, type, recipient, topic, timestamp, ttl, nonce, ciphertext, correlation_id
Fields = tuple[str, str, MessageType, str | None, str | None, float, float, bytes, bytes, str | None]
# a draft: those fields, its Merkle leaf, and where it goes
Draft = tuple[Fields, bytes, Any]


class Outbox:
    def __init__(self, max_batch: int, deliver: Callable[[Envelope, Any], None]) -> None:
        self.max_batch = min(max(1, max_batch), MAX_BATCH)
        self._deliver = deliver
        self._pending: dict[str, tuple[Ed25519PrivateKey, list[Draft]]] = {}
        self._handle: asyncio.Handle | None = None
        self.batches_signed = 0
        self.messages_signed = 0

    def __bool__(self) -> bool:
        return bool(self._pending)

    def add(self, sender: str, key: Ed25519PrivateKey, draft: Draft) -> None:
        entry = self._pending.get(sender)
        if entry is None:
            entry = self._pending[sender] = (key, [])
        entry[1].append(draft)
        if len(entry[1]) >= self.max_batch:
            self._flush_sender(sender)
        elif self._handle is None:
            self._handle = asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        """Sign and deliver everything pending now."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        for sender in list(self._pending):
            self._flush_sender(sender)

    def _flush_sender(self, sender: str) -> None:
        entry = self._pending.pop(sender, None)
        if entry is None:
            return
        key, drafts = entry
        signature, proofs = sign_leaves(key, [d[1] for d in drafts])
        n = len(drafts)
        self.batches_signed += 1
        self.messages_signed += n
        deliver = self._deliver
        for index, (fields, _, targets) in enumerate(drafts):
            deliver(Envelope(*fields, signature, n, index, proofs[index]), targets)
