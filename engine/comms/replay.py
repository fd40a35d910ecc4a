"""Replay protection: message ids remembered until their envelope expires.

An envelope is acceptable only until ``timestamp + ttl`` (and the bus caps
``ttl`` and refuses timestamps from the future), so an id needs to be
remembered exactly that long: after it, a replay is refused as expired
anyway. Memory is therefore bounded by the message rate times the maximum
TTL; forgetting earlier would let replays through, so nothing is evicted
before its time. Ids are filed in one-second expiry buckets, so purging is
cheap and adding is a dict insert and a list append.
"""

from __future__ import annotations

import math

from engine.clock import Clock


class ReplayGuard:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._expiry: dict[str, float] = {}
        self._buckets: dict[int, list[str]] = {}
        self._ops = 0

    def __len__(self) -> int:
        return len(self._expiry)

    def seen(self, msg_id: str) -> bool:
        exp = self._expiry.get(msg_id)
        return exp is not None and exp >= self.clock.time()

    def add(self, msg_id: str, expires_at: float) -> None:
        self._expiry[msg_id] = expires_at
        second = math.ceil(expires_at)
        bucket = self._buckets.get(second)
        if bucket is None:
            self._buckets[second] = [msg_id]
        else:
            bucket.append(msg_id)
        self._ops += 1
        if self._ops >= 4096:
            self._ops = 0
            self.purge()

    def discard(self, msg_id: str) -> None:
        self._expiry.pop(msg_id, None)

    def purge(self) -> None:
        """Forget ids whose envelopes have expired."""
        now = self.clock.time()
        for second in [s for s in self._buckets if s < now]:
            for msg_id in self._buckets.pop(second):
                exp = self._expiry.get(msg_id)
                if exp is not None and exp < now:
                    del self._expiry[msg_id]
