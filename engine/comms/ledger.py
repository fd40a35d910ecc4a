"""The bus's record keeping: audit records for every send, delivery and refusal, and dead letters.

Records carry metadata only (see ``records.py``); the payload and the
ciphertext never reach the audit hook, the dead-letter store or an error.
The audit hook is awaited before the action it records takes effect, so a
failing hook stops the action (fail closed); refusals found while routing
synchronously are audited as soon as the event loop runs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from engine.clock import Clock
from engine.comms.deadletter import DeadLetter, DeadLetterStore
from engine.comms.records import pick_meta, rejected_record
from engine.errors import ErrorCode, SymbiError

log = logging.getLogger("symbi.comms")

AuditHook = Callable[[dict[str, Any]], Awaitable[None]]
DeadLetterHook = Callable[[DeadLetter], None]


class Ledger:
    def __init__(
        self,
        clock: Clock,
        audit: AuditHook | None,
        on_dead_letter: DeadLetterHook | None,
        dead_letter_size: int,
    ) -> None:
        self.clock = clock
        self.audit = audit
        self.on_dead_letter = on_dead_letter
        self.dead = DeadLetterStore(dead_letter_size)
        self.rejected = 0
        self._later: set[asyncio.Task[None]] = set()

    async def emit(self, record: dict[str, Any]) -> None:
        if self.audit is not None:
            await self.audit(record)

    async def reject(
        self, code: ErrorCode, reason: str, meta: dict[str, Any], *, stage: str, hint: str | None = None
    ) -> SymbiError:
        """Dead-letter and audit a refusal; return the error for the caller to raise."""
        self.dead_letter(code, reason, meta, stage)
        await self.emit(rejected_record(meta, code, reason, stage))
        return SymbiError(code, reason, offending=meta.get("id"), hint=hint, details={"message": pick_meta(meta)})

    def reject_soon(self, code: ErrorCode, reason: str, meta: dict[str, Any], *, stage: str) -> None:
        """Dead-letter now (from synchronous code); the audit record follows when the loop runs."""
        self.dead_letter(code, reason, meta, stage)
        if self.audit is not None:
            task = asyncio.get_running_loop().create_task(self.emit(rejected_record(meta, code, reason, stage)))
            self._later.add(task)
            task.add_done_callback(self._later.discard)

    def dead_letter(self, code: ErrorCode, reason: str, meta: dict[str, Any], stage: str) -> DeadLetter:
        self.rejected += 1
        record = DeadLetter(
            at=self.clock.time(),
            code=code.value,
            reason=reason,
            stage=stage,
            id=meta.get("id"),
            type=meta.get("type"),
            sender=meta.get("sender"),
            recipient=meta.get("recipient"),
            topic=meta.get("topic"),
            correlation_id=meta.get("correlation_id"),
            size=meta.get("size"),
            timestamp=meta.get("timestamp"),
            ttl=meta.get("ttl"),
        )
        self.dead.add(record)
        if self.on_dead_letter is not None:
            try:
                self.on_dead_letter(record)
            except Exception:  # a broken observer must not break the bus
                log.exception("on_dead_letter hook failed")
        return record

    async def drain(self) -> None:
        """Wait for audit records still on their way."""
        for task in list(self._later):
            await task
