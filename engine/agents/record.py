"""The engine's record of one agent, and the table that holds every record.

An :class:`AgentRecord` is the live, mutable state the engine keeps for an
agent while it is registered: what it is (config), where it is in its
lifecycle, its process and channel while it runs, and the tasks that will
restart or schedule it. It is handed between the engine's own components
(supervisor, gate, monitor, services), never to the console or the API:
those get :meth:`AgentRecord.info`, an immutable :class:`AgentInfo`.

:class:`AgentTable` is the in-memory directory of records by id and by name;
the services see it through the narrow
:class:`~engine.agents.ports.AgentDirectory` protocol.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine.agents.logfile import AgentLogFile
from engine.agents.model import AgentConfig, AgentId, AgentInfo, AgentState, StateChange, Usage
from engine.agents.store import StoredAgent
from engine.errors import ErrorCode, SymbiError

if TYPE_CHECKING:
    from engine.agents.executor import ProcessHandle
    from engine.agents.rpc_server import AgentRpcServer


@dataclass
class AgentRecord:
    """The engine's mutable record of one agent (never handed out of the engine)."""

    # -- what the registry persists
    id: AgentId
    config: AgentConfig
    state: AgentState
    created_at: float
    updated_at: float
    history: list[StateChange]  # recent state changes, oldest first (trimmed; the store keeps them all)
    log: AgentLogFile  # agent.log and its in-memory tail
    started_at: float | None = None  # when the current or last run was launched
    finished_at: float | None = None  # when the last run ended
    pid: int | None = None  # the running process (None in a container tier, or when not running)
    pid_started: float | None = None  # the process's start time, so a recycled pid is never killed
    restart_count: int = 0  # auto-recovery restarts since the operator last started it
    exit_code: int | None = None
    last_error: str | None = None
    input: Any = None  # JSON data the agent reads with agent.input()
    result: Any = None  # JSON data the agent reported with agent.result()
    tier_used: str | None = None  # how the last run was isolated, e.g. "native+bwrap"
    sandbox_ref: str | None = None  # the sandbox's handle (container id, cgroup), for cleanup after a crash
    history_seq: int | None = None  # last state_history sequence number written for this agent

    # -- what the monitor observes
    usage: Usage = field(default_factory=Usage)
    peak_rss: int = 0
    last_activity: float | None = None  # last heartbeat, call or output (idle_timeout counts from here)

    # -- the current run (None when nothing runs)
    handle: ProcessHandle | None = None
    rpc: AgentRpcServer | None = None
    watcher: asyncio.Task[None] | None = None  # waits for the process to exit and settles its state
    launching: bool = False  # a launch is in progress ...
    launched: asyncio.Event = field(default_factory=asyncio.Event)  # ... and this is set when it is over
    stop_requested: str | None = None  # "stop", "terminate", "shutdown", "idle": a stop is in progress
    kill_reason: str | None = None  # set by enforcement before it kills; the run then ends Failed

    # -- what happens next
    restart_task: asyncio.Task[None] | None = None  # auto-recovery waiting out its backoff
    next_run: float | None = None  # Scheduled agents: when the next run is due
    schedule_task: asyncio.Task[None] | None = None  # ... and the task waiting for it

    @classmethod
    def from_stored(cls, stored: StoredAgent, log: AgentLogFile) -> AgentRecord:
        """The record of an agent loaded from the registry at engine start."""
        return cls(
            id=stored.id,
            config=stored.config,
            state=stored.state,
            created_at=stored.created_at,
            updated_at=stored.updated_at,
            history=stored.history or [StateChange(stored.state, stored.updated_at, "loaded")],
            log=log,
            started_at=stored.started_at,
            finished_at=stored.finished_at,
            pid=stored.pid,
            pid_started=stored.pid_started,
            restart_count=stored.restart_count,
            exit_code=stored.exit_code,
            last_error=stored.last_error,
            input=stored.input,
            result=stored.result,
            tier_used=stored.tier_used,
            sandbox_ref=stored.sandbox_ref,
        )

    def to_stored(self) -> StoredAgent:
        """The registry row of a newly created agent."""
        return StoredAgent(
            id=self.id,
            config=self.config,
            state=self.state,
            created_at=self.created_at,
            updated_at=self.updated_at,
            started_at=None,
            finished_at=None,
            pid=None,
            pid_started=None,
            restart_count=0,
            exit_code=None,
            last_error=None,
            history=list(self.history),
        )

    def info(self) -> AgentInfo:
        """An immutable snapshot, as the console and the API see the agent."""
        return AgentInfo(
            id=self.id,
            config=self.config,
            state=self.state,
            created_at=self.created_at,
            updated_at=self.updated_at,
            started_at=self.started_at,
            finished_at=self.finished_at,
            pid=self.pid,
            restart_count=self.restart_count,
            exit_code=self.exit_code,
            last_error=self.last_error,
            usage=self.usage,
            tier_used=self.tier_used,
            next_run=self.next_run,
            input=self.input,
            result=self.result,
            last_activity=self.last_activity,
        )


class AgentTable:
    """Every registered agent's record, by id and by name (an :class:`AgentDirectory`)."""

    def __init__(self) -> None:
        self._by_id: dict[AgentId, AgentRecord] = {}
        self._names: dict[str, AgentId] = {}

    def add(self, agent: AgentRecord) -> None:
        self._by_id[agent.id] = agent
        self._names[agent.config.name] = agent.id

    def remove(self, agent: AgentRecord) -> None:
        self._by_id.pop(agent.id, None)
        self._names.pop(agent.config.name, None)

    def has_name(self, name: str) -> bool:
        return name in self._names

    def find(self, agent_id: str) -> AgentRecord | None:
        """The record with this id, or None."""
        return self._by_id.get(agent_id)

    def get(self, ref: str) -> AgentRecord:
        """The record with this id or name; ``AGENT_001`` when there is none."""
        agent = self._by_id.get(ref)
        if agent is None and ref in self._names:
            agent = self._by_id[self._names[ref]]
        if agent is None:
            raise SymbiError(
                ErrorCode.AGENT_001,
                "agent not found",
                offending=ref,
                hint="list agents to see their names and ids",
            )
        return agent

    def records(self) -> list[AgentRecord]:
        """Every record, in registration order."""
        return list(self._by_id.values())

    def __iter__(self) -> Iterator[AgentRecord]:
        return iter(list(self._by_id.values()))

    def __len__(self) -> int:
        return len(self._by_id)
