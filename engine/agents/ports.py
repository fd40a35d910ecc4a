"""The narrow protocols the engine's services depend on, instead of the runtime.

A service (the agent gate, the resource monitor, the supervisor, the
knowledge, policy and secret services) is handed exactly what it uses:

- :class:`Recorder`: the audit trail's append paths (durable and fail-closed
  for actions, in-order and never refused for observations).
- :class:`Redactor`: registers a secret value so the trail masks it.
- :class:`AgentDirectory`: looks agent records up by id or name.
- :class:`PolicyChecker`: decides one access and words a refusal.
- :class:`EventSink`: publishes an engine event (for the console and the API).
- :class:`AgentJournal`: an agent's log lines and its persisted fields.
- :class:`AgentControl`: what the monitor may do to an agent (suspend, stop).
- :class:`SecretReader`: the engine's own reads of a vault secret.

:mod:`engine.runtime` builds the real implementations and wires them; tests
can hand a service small fakes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from engine.agents.record import AgentRecord
    from engine.errors import SymbiError
    from engine.events import Event
    from engine.policy.model import Decision


class Recorder(Protocol):
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
        """Append an action's event and wait until it is durable. Fail closed: if this raises
        (``AUDIT_001``), the caller must not perform the action. ``agent_id`` names the agent
        concerned when there is no record at hand; ``resource`` defaults to the agent's name."""
        ...

    def record_now(
        self, type: str, action: str, *, actor: str, resource: str, decision: str, details: dict[str, Any]
    ) -> None:
        """Queue an action's event in order without waiting (for synchronous callers); raises
        ``AUDIT_001`` at once when the trail cannot take it. Nothing happens before the trail is open."""
        ...

    def note(
        self,
        type: str,
        agent: AgentRecord | None,
        action: str,
        *,
        actor: str = "engine",
        details: dict[str, Any] | None = None,
    ) -> None:
        """Record an observation (a process exited, a state followed) in order, without waiting;
        never refused (logged when the trail has failed)."""
        ...

    async def flush(self) -> None:
        """Wait until everything recorded so far is durable."""
        ...


class Redactor(Protocol):
    def register_secret(self, value: str) -> None:
        """Mask ``value`` wherever it would appear in a later audit record."""
        ...


class AgentDirectory(Protocol):
    def get(self, ref: str) -> AgentRecord:
        """The record with this id or name; ``AGENT_001`` when there is none."""
        ...

    def find(self, agent_id: str) -> AgentRecord | None:
        """The record with this id, or None."""
        ...

    def records(self) -> list[AgentRecord]:
        """Every registered agent's record."""
        ...


class PolicyChecker(Protocol):
    def check(
        self,
        agent: AgentRecord,
        resource_type: str,
        resource_path: str,
        operation: str,
        *,
        metadata: dict[str, Any] | None = None,
        tool_name: str | None = None,
    ) -> tuple[Decision, dict[str, Any]]:
        """The decision for one access, and the request it was made on (to record with the action)."""
        ...

    def denied(self, decision: Decision, what: str, offending: str) -> SymbiError:
        """The ``POLICY_001`` error for a refused access."""
        ...


class EventSink(Protocol):
    def publish(self, event: Event) -> None: ...


class AgentJournal(Protocol):
    def output(self, agent: AgentRecord, stream: str, line: str) -> None:
        """A line of the agent's log: ``stream`` is ``stdout``, ``stderr``, ``agent:<level>`` or ``engine``."""
        ...

    def log(self, agent: AgentRecord, line: str) -> None:
        """The engine's own line in the agent's log."""
        ...

    def persist(self, agent: AgentRecord, **fields: Any) -> None:
        """Write fields of the agent's registry row (write-behind)."""
        ...


class AgentControl(Protocol):
    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Run ``coro`` in the background; the engine cancels it at shutdown."""
        ...

    async def suspend(self, agent: AgentRecord, reason: str, *, actor: str) -> None:
        """Suspend a running agent (authorized and recorded like the operator's suspend)."""
        ...

    async def stop(self, agent: AgentRecord, *, force: bool, why: str, reason: str) -> None:
        """Stop the agent: SIGTERM then SIGKILL after the grace period (``force``: SIGKILL now)."""
        ...


class SecretReader(Protocol):
    async def read_for_engine(self, name: str, *, actor: str) -> str:
        """A secret's value for the engine's own use: recorded by name first, then masked in the trail."""
        ...
