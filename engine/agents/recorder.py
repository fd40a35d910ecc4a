"""The engine's audit paths over its :class:`~engine.audit.AuditTrail`: the
:class:`~engine.agents.ports.Recorder` and :class:`~engine.agents.ports.Redactor`
the services use, and the message bus's audit hook.

The trail is opened by the runtime after this object exists, so it is read
through a getter at each call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from engine.errors import ErrorCode, SymbiError

if TYPE_CHECKING:
    from engine.agents.record import AgentRecord
    from engine.audit import AuditTrail

log = logging.getLogger("symbi.engine")


class AuditRecorder:
    """Implements :class:`Recorder` and :class:`Redactor`."""

    def __init__(self, trail: Callable[[], AuditTrail | None]) -> None:
        self._trail = trail

    async def record(
        self,
        type: str,
        agent: AgentRecord | None,
        action: str,
        *,
        actor: str = "operator",
        decision: str = "allow",
        resource: str | None = None,
        details: dict[str, Any] | None = None,
        agent_id: str | None = None,
    ) -> None:
        """Append an action's event and wait until it is durable. Fail closed:
        if this raises (AUDIT_001), the caller must not perform the action.
        ``agent_id`` names the agent concerned when there is no agent record at hand."""
        trail = self._trail()
        if trail is None:
            raise SymbiError(ErrorCode.RUNTIME_001, "the runtime is not open")
        await trail.append(
            type=type,
            agent=agent.id if agent else agent_id,
            actor=actor,
            action=action,
            resource=resource if resource is not None else (agent.config.name if agent else ""),
            decision=decision,
            details=details,
        )

    def record_now(
        self, type: str, action: str, *, actor: str, resource: str, decision: str, details: dict[str, Any]
    ) -> None:
        trail = self._trail()
        if trail is None:
            return
        trail.ensure_writable()  # AUDIT_001 here: the caller's action is abandoned (fail closed)
        trail.append_nowait(
            type=type, actor=actor, action=action, resource=resource, decision=decision, details=details
        )

    def note(
        self,
        type: str,
        agent: AgentRecord | None,
        action: str,
        *,
        actor: str = "engine",
        details: dict[str, Any] | None = None,
    ) -> None:
        """Record an observation (a process exited, a state followed) in order, without waiting.

        Observations of things outside the engine's control are never refused;
        when the trail has failed they are logged, and every operator action
        is refused (fail closed) until the engine is reopened."""
        trail = self._trail()
        if trail is None:
            return
        try:
            trail.append_nowait(
                type=type,
                agent=agent.id if agent else None,
                actor=actor,
                action=action,
                resource=agent.config.name if agent else "",
                decision="n/a",
                details=details,
            )
        except SymbiError as exc:
            log.error("audit trail unavailable; not recorded: %s %s (%s)", type, action, exc.render())

    async def flush(self) -> None:
        trail = self._trail()
        if trail is not None:
            await trail.flush()

    def register_secret(self, value: str) -> None:
        trail = self._trail()
        if trail is not None and value:
            trail.register_secret(value)

    async def bus_hook(self, record: dict[str, Any]) -> None:
        """The message bus's audit hook: metadata only (never payloads), in order, without
        waiting per message; a failed trail refuses the send (AUDIT_001 raised here)."""
        trail = self._trail()
        if trail is None:
            return
        sender = record.get("sender") or None
        target = record.get("recipient") or (f"topic:{record['topic']}" if record.get("topic") else "")
        details = {k: v for k, v in record.items() if k not in ("event",) and v is not None}
        trail.append_nowait(
            type=record.get("event", "bus.send"),
            agent=sender,
            actor=f"agent:{sender}" if sender else "engine",
            action=str(record.get("stage", "send")),
            resource=str(target),
            decision=str(record.get("decision", "n/a")),
            details=details,
        )
