"""What the console knows about the engine, kept up to date from events.

:class:`ConsoleModel` is plain data (no Textual): the latest snapshot of every
agent, the newest resource sample and a bounded history per agent, the
machine totals and the dashboard's event lines. The app feeds it engine
events; screens read it to render. Keeping it here means a screen that was
hidden (or a paused console) can re-render from the model at once.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field, replace

from engine.api import AgentId, AgentInfo, AgentState
from engine.events import (
    AgentCreated,
    AgentDeleted,
    AgentLog,
    AgentStateChanged,
    EngineStarted,
    EngineStopping,
    Event,
    MachineSample,
    ResourceSample,
    ResourceViolation,
)

HISTORY = 60  # samples kept per agent for sparklines
EVENT_LINES = 200  # dashboard event log length

# States whose agent holds a live process worth measuring.
LIVE_STATES = frozenset({AgentState.RUNNING, AgentState.SUSPENDED, AgentState.WAITING})
# States that make quitting worth a question.
BUSY_STATES = frozenset({AgentState.RUNNING, AgentState.SUSPENDED, AgentState.WAITING, AgentState.READY})
# Transitions whose reason is worth a line on the dashboard.
_EXPLAINED = frozenset({AgentState.FAILED, AgentState.TERMINATED, AgentState.COMPLETED, AgentState.SUSPENDED})

UNCONFINED_TIER = "native (unconfined)"  # the tier label of an agent that runs without any confinement


@dataclass
class UsageHistory:
    """The last ``HISTORY`` CPU and memory readings of one agent."""

    cpu_percent: deque[float] = field(default_factory=lambda: deque(maxlen=HISTORY))
    rss_mb: deque[float] = field(default_factory=lambda: deque(maxlen=HISTORY))
    latest: ResourceSample | None = None

    def add(self, sample: ResourceSample) -> None:
        self.latest = sample
        self.cpu_percent.append(sample.cpu_percent)
        self.rss_mb.append(sample.rss_bytes / 1_048_576)


@dataclass(frozen=True, slots=True)
class EventLine:
    """One line of the dashboard's event log."""

    at: float
    kind: str  # "state", "created", "deleted", "violation", "engine"
    agent: str
    text: str
    state: AgentState | None = None


@dataclass
class ConsoleModel:
    """The console's view of the engine."""

    agents: dict[AgentId, AgentInfo] = field(default_factory=dict)
    usage: dict[AgentId, UsageHistory] = field(default_factory=dict)
    machine: MachineSample | None = None
    events: deque[EventLine] = field(default_factory=lambda: deque(maxlen=EVENT_LINES))
    event_seq: int = 0  # event lines ever added, so views can tell which are new

    def _add(self, line: EventLine) -> None:
        self.events.append(line)
        self.event_seq += 1

    # -- loading ------------------------------------------------------------------

    def load(self, agents: list[AgentInfo], now: float | None = None, where: str = "") -> None:
        """Start over from a snapshot of the engine's agents (``where``: its mode, for the log line)."""
        self.agents = {a.id: a for a in agents}
        stamp = time.time() if now is None else now
        self._add(
            EventLine(
                stamp,
                "engine",
                "console",
                f"attached to the {where + ' ' if where else ''}engine: {len(agents)} agents",
            )
        )
        for gone in set(self.usage) - set(self.agents):
            del self.usage[gone]

    def put(self, info: AgentInfo) -> None:
        self.agents[info.id] = info
        if info.state not in LIVE_STATES and info.id in self.usage:
            # keep the history for the detail screen, but drop the stale "latest"
            self.usage[info.id].latest = None

    # -- events ---------------------------------------------------------------------

    def apply(self, event: Event, now: float | None = None) -> None:
        """Fold one engine event into the model. ``now`` stamps event lines
        (the console's clock, so a frozen clock gives stable output)."""
        stamp = time.time() if now is None else now
        if isinstance(event, AgentStateChanged):
            info = self.agents.get(event.agent_id)
            if info is not None and info.state is not event.new:
                self.agents[event.agent_id] = replace(info, state=event.new, updated_at=stamp)
            old = event.old.value if event.old else "-"
            text = f"{old} → {event.new.value}"
            if event.new in _EXPLAINED and event.reason:
                text += f": {event.reason}"
            if event.old is not None:
                self._add(EventLine(stamp, "state", event.name, text, event.new))
        elif isinstance(event, AgentCreated):
            self._add(EventLine(stamp, "created", event.name, "created", AgentState.CREATED))
        elif isinstance(event, AgentDeleted):
            self.agents.pop(event.agent_id, None)
            self.usage.pop(event.agent_id, None)
            self._add(EventLine(stamp, "deleted", event.name, "deleted"))
        elif isinstance(event, ResourceSample):
            self.usage.setdefault(event.agent_id, UsageHistory()).add(event)
        elif isinstance(event, MachineSample):
            self.machine = event
        elif isinstance(event, ResourceViolation):
            unit = "MB" if event.resource == "memory" else "cores"
            text = f"{event.resource} limit {event.limit:g} {unit} exceeded ({event.observed:.1f}) -> {event.action}"
            self._add(EventLine(stamp, "violation", event.name, text))
        elif isinstance(event, EngineStarted):
            self._add(EventLine(stamp, "engine", "engine", f"started with {event.agents} agents"))
        elif isinstance(event, EngineStopping):
            self._add(EventLine(stamp, "engine", "engine", f"stopping: {event.reason}"))
        elif isinstance(event, AgentLog):
            pass  # log lines go to the agent detail screen, not the dashboard

    # -- queries ----------------------------------------------------------------------

    def counts(self) -> dict[AgentState, int]:
        out = {s: 0 for s in AgentState}
        for info in self.agents.values():
            out[info.state] += 1
        return out

    def unconfined(self) -> list[AgentInfo]:
        """Agents running with no confinement at all (sandbox.native_isolation = none): the header warns."""
        return [a for a in self.busy() if (a.tier_used or "").startswith(UNCONFINED_TIER)]

    def busy(self) -> list[AgentInfo]:
        """Agents a quit would stop."""
        return [a for a in self.agents.values() if a.state in BUSY_STATES]

    def live(self) -> list[AgentInfo]:
        """Agents with a process to measure, oldest first."""
        return sorted((a for a in self.agents.values() if a.state in LIVE_STATES), key=lambda a: a.created_at)

    def by_name(self, name: str) -> AgentInfo | None:
        for info in self.agents.values():
            if info.name == name:
                return info
        return None
