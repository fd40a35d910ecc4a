"""What happens to an agent, written down: state changes and log lines.

:meth:`Journal.transition` is the one way an agent's state changes: it checks
the transition is legal, notes it in the audit trail, appends it to the
agent's history, persists it (write-behind) and publishes
:class:`~engine.events.AgentStateChanged`. :meth:`Journal.output` appends a
line to the agent's log and publishes :class:`~engine.events.AgentLog`.
Implements :class:`~engine.agents.ports.AgentJournal`.
"""

from __future__ import annotations

import time
from typing import Any

from engine.agents.lifecycle import check_transition
from engine.agents.model import AgentState, StateChange
from engine.agents.ports import EventSink, Recorder
from engine.agents.record import AgentRecord
from engine.agents.store import AgentStore
from engine.clock import Clock
from engine.events import AgentLog, AgentStateChanged

S = AgentState
HISTORY_KEPT = 500  # in memory; past this the oldest 100 are dropped (the store keeps them all)


class Journal:
    def __init__(self, store: AgentStore, recorder: Recorder, events: EventSink, clock: Clock) -> None:
        self.store = store
        self.recorder = recorder
        self.events = events
        self.clock = clock

    def transition(
        self,
        agent: AgentRecord,
        new: AgentState,
        reason: str = "",
        *,
        persist_fields: dict[str, Any] | None = None,
    ) -> None:
        """Move the agent to ``new`` (``AGENT_002`` when that is not a legal transition)."""
        check_transition(agent.state, new, agent=agent.config.name)
        old = agent.state
        self.recorder.note(
            "agent.state", agent, f"{old.value}->{new.value}", details={"reason": reason} if reason else None
        )
        now = self.clock.time()
        agent.state = new
        agent.updated_at = now
        change = StateChange(new, now, reason)
        agent.history.append(change)
        if len(agent.history) > HISTORY_KEPT:
            del agent.history[:100]
        fields: dict[str, Any] = {"state": new, "updated_at": now}
        if persist_fields:
            fields.update(persist_fields)
        self.store.update(agent.id, **fields)
        self.store.append_history(agent.id, self._seq(agent), change)
        self.events.publish(
            AgentStateChanged(agent_id=agent.id, name=agent.config.name, old=old, new=new, reason=reason)
        )

    def fail(self, agent: AgentRecord, reason: str, *, exit_code: int | None = None) -> None:
        """The agent is Failed for ``reason`` (logged, recorded, persisted)."""
        agent.last_error = reason
        agent.finished_at = self.clock.time()
        self.log(agent, f"failed: {reason}")
        self.transition(
            agent,
            S.FAILED,
            reason,
            persist_fields={
                "last_error": reason,
                "exit_code": exit_code,
                "finished_at": agent.finished_at,
                "pid": None,
            },
        )

    def persist(self, agent: AgentRecord, **fields: Any) -> None:
        self.store.update(agent.id, **fields)

    def log(self, agent: AgentRecord, line: str) -> None:
        self.output(agent, "engine", line)

    def output(self, agent: AgentRecord, stream: str, line: str) -> None:
        if stream != "engine":
            agent.last_activity = self.clock.time()
        stamp = time.strftime("%H:%M:%S", time.localtime(self.clock.time()))
        kept = agent.log.write(f"{stamp} [{stream}] {line}")
        self.events.publish(AgentLog(agent_id=agent.id, name=agent.config.name, stream=stream, line=kept))

    def _seq(self, agent: AgentRecord) -> int:
        """The next history sequence number (monotonic per agent, unlike the trimmed in-memory list)."""
        if agent.history_seq is None:
            agent.history_seq = len(agent.history) - 1
        else:
            agent.history_seq += 1
        return agent.history_seq
