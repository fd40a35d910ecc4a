"""Dead letters: every message the bus refused or could not deliver, with the reason.

Records hold metadata only (id, type, sender, recipient or topic, size,
times, the error code and a reason); never the payload or the ciphertext.
The store is bounded; when full the oldest record goes and ``evicted``
counts it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class DeadLetter:
    at: float
    code: str
    reason: str
    stage: str  # "send", "ingress", "delivery" or "request"
    id: str | None = None
    type: str | None = None
    sender: str | None = None
    recipient: str | None = None
    topic: str | None = None
    correlation_id: str | None = None
    size: int | None = None
    timestamp: float | None = None
    ttl: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def involves(self, agent_id: str) -> bool:
        return agent_id in (self.sender, self.recipient)


class DeadLetterStore:
    def __init__(self, maxlen: int = 1000) -> None:
        self._items: deque[DeadLetter] = deque(maxlen=max(0, maxlen))
        self.total = 0
        self.evicted = 0

    def add(self, record: DeadLetter) -> None:
        if self._items.maxlen is not None and len(self._items) == self._items.maxlen:
            self.evicted += 1
        self._items.append(record)
        self.total += 1

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[DeadLetter]:
        return iter(list(self._items))

    def query(
        self, *, agent_id: str | None = None, code: str | None = None, limit: int | None = None
    ) -> list[DeadLetter]:
        """Newest last; ``limit`` keeps the newest ``limit``."""
        out = [
            r
            for r in self._items
            if (agent_id is None or r.involves(agent_id)) and (code is None or r.code == code)
        ]
        return out[-limit:] if limit else out
