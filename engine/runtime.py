"""The runtime facade: the one object the console (and the CLI) talk to.

``Runtime.open(config, data_dir)`` opens every component on a data dir:
the agent registry (SQLite), the resource manager, the scheduler, the
executor, the resource monitor and the event bus. Every operator action
(create, start, stop, suspend, resume, terminate, delete) goes through here;
the console never touches a component directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import secrets
import shutil
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.agents.cron import CronExpr
from engine.agents.executor import Executor, LaunchSpec, ProcessHandle, describe_exit, kill_orphan_group
from engine.agents.gate import AgentGate
from engine.agents.lifecycle import check_action, check_transition
from engine.agents.logfile import AgentLogFile
from engine.agents.model import (
    AgentConfig,
    AgentId,
    AgentInfo,
    AgentState,
    ExecutionMode,
    StateChange,
    Usage,
    new_agent_id,
)
from engine.agents.monitor import ResourceMonitor
from engine.agents.resources import ResourceManager, ResourceTotals
from engine.agents.rpc_server import AgentRpcServer, rpc_dir_for
from engine.agents.sampler import LimitChecker, ProcessTreeSampler
from engine.agents.scheduler import LoadBalancingStrategy, PoolSpec, Scheduler, Task
from engine.agents.store import AgentStore, StoredAgent
from engine.audit import AuditTrail
from engine.clock import Clock, SystemClock
from engine.comms import KeyStore, MessageBus
from engine.config import RuntimeConfig
from engine.errors import ErrorCode, SymbiError
from engine.events import (
    AgentCreated,
    AgentDeleted,
    AgentLog,
    AgentStateChanged,
    EngineStarted,
    EngineStopping,
    Event,
    EventBus,
    KeyChangePending,
    MachineSample,
    Subscription,
    ToolCallDecided,
    ToolCallPending,
    ToolReviewChanged,
)
from engine.knowledge.service import KnowledgeService
from engine.lockfile import FileLock
from engine.mcp_tools import ToolService, open_tool_service
from engine.policy.service import PolicyService
from engine.sandbox import SandboxRegistry
from engine.secrets.service import SecretService

log = logging.getLogger("symbi.engine")

_sdk_spec = importlib.util.find_spec("symbi_agent")
# The directory that contains the symbi_agent package; sandboxes mount it read-only.
SDK_DIR = Path(_sdk_spec.origin).parent.parent if _sdk_spec and _sdk_spec.origin else None

S = AgentState


@dataclass
class _Agent:
    """The runtime's mutable record of one agent (never handed out)."""

    id: AgentId
    config: AgentConfig
    state: AgentState
    created_at: float
    updated_at: float
    history: list[StateChange]
    log: AgentLogFile
    started_at: float | None = None
    finished_at: float | None = None
    pid: int | None = None
    pid_started: float | None = None
    restart_count: int = 0
    exit_code: int | None = None
    last_error: str | None = None
    usage: Usage = field(default_factory=Usage)
    peak_rss: int = 0
    handle: ProcessHandle | None = None
    watcher: asyncio.Task[None] | None = None
    restart_task: asyncio.Task[None] | None = None
    stop_requested: str | None = None  # "stop", "terminate", "shutdown"
    kill_reason: str | None = None  # set by enforcement before it kills
    launching: bool = False
    launched: asyncio.Event = field(default_factory=asyncio.Event)
    rpc: AgentRpcServer | None = None
    input: Any = None
    result: Any = None
    tier_used: str | None = None
    sandbox_ref: str | None = None
    next_run: float | None = None
    schedule_task: asyncio.Task[None] | None = None
    last_activity: float | None = None
    history_seq: int | None = None  # last state_history seq written for this agent

    def info(self) -> AgentInfo:
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


@dataclass(frozen=True)
class RuntimeMetrics:
    """A snapshot of the whole engine for dashboards."""

    data_dir: str
    mode: str
    uptime: float
    agents_total: int
    agents_by_state: dict[str, int]
    cpu_percent: float
    memory_used_bytes: int
    memory_total_bytes: int
    total_memory_mb: int
    total_cpu_cores: float
    allocated_memory_mb: int
    allocated_cpu_cores: float
    scheduler_queued: int
    scheduler_running: int
    scheduler_dispatched: int
    events_published: int
    events_dropped: int
    rpc_requests: int = 0  # agent-protocol requests answered, over every agent run since the engine opened
    rpc_errors: int = 0  # ... answered with an error (PROTO_*, refused calls)
    rpc_resets: int = 0  # connections an agent reset or closed with replies unread (handled quietly)


def _add_rpc_counts(totals: tuple[int, int, int], rpc: AgentRpcServer) -> tuple[int, int, int]:
    return (totals[0] + rpc.requests, totals[1] + rpc.errors, totals[2] + rpc.resets)


class _Opener:
    """Makes ``Runtime.open(...)`` work both as ``await`` and ``async with``."""

    def __init__(self, runtime: Runtime) -> None:
        self._rt = runtime

    def __await__(self):  # type: ignore[no-untyped-def]
        return self._open().__await__()

    async def _open(self) -> Runtime:
        await self._rt.start()
        return self._rt

    async def __aenter__(self) -> Runtime:
        return await self._open()

    async def __aexit__(self, *exc: object) -> None:
        await self._rt.close()


class Runtime:
    """The embedded agent runtime."""

    mode = "embedded"

    def __init__(
        self,
        config: RuntimeConfig | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        *,
        clock: Clock | None = None,
        executor: Executor | None = None,
        sampler: ProcessTreeSampler | None = None,
    ) -> None:
        self.config = config or RuntimeConfig.default()
        if data_dir is None:
            from engine.config import resolve_data_dir

            data_dir = resolve_data_dir(None)
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.clock: Clock = clock or SystemClock()
        self._executor_override: Executor | None = executor
        self.bus = EventBus()
        self._agents: dict[AgentId, _Agent] = {}
        self._rpc_closed: tuple[int, int, int] = (0, 0, 0)  # requests, errors, resets of closed agent sockets
        self._names: dict[str, AgentId] = {}
        self._store: AgentStore | None = None
        self._lock = FileLock(self.data_dir / "engine.lock")
        self._monitor_task: asyncio.Task[None] | None = None
        self._sampler = sampler or ProcessTreeSampler()
        rc = self.config.resource
        self._checker = LimitChecker(rc.cpu_violation_samples)
        self._resources = ResourceManager(
            ResourceTotals.from_machine(
                memory_mb=rc.total_memory_mb,
                cpu_cores=rc.total_cpu_cores,
                disk_io_mbps=rc.total_disk_io_mbps,
                network_io_mbps=rc.total_network_io_mbps,
            ),
            rc.reservation_percentage / 100.0,  # config: percent; manager: fraction
        )
        sc = self.config.scheduler
        self._scheduler = Scheduler(
            max_concurrent=sc.max_concurrent_tasks,
            pools=[PoolSpec(p.name, p.capacity, p.weight) for p in sc.pools],
            strategy=LoadBalancingStrategy.parse(sc.load_balancing_strategy),
            aging_interval=sc.aging_interval,
            clock=self.clock,
            admit=self._admit,
            dispatch=self._dispatch,
            max_queue=sc.max_queue_size,
        )
        self._sandboxes = SandboxRegistry(self.config.sandbox, self.data_dir, sdk_dir=SDK_DIR)
        self.audit: AuditTrail | None = None
        self.policies = PolicyService(self)
        self.messages: MessageBus | None = None
        self.tools: ToolService | None = None  # once open
        self.knowledge = KnowledgeService(self)
        self._bus_members: set[AgentId] = set()
        self.secrets = SecretService(self)
        self._gate = AgentGate(self)
        self._monitor = ResourceMonitor(self)
        self.engine_label = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:16]
        self._machine: MachineSample | None = None
        self._opened_at = 0.0
        self._open = False
        self._closing = False
        self._bg: set[asyncio.Task[Any]] = set()

    # -- opening and closing -------------------------------------------------

    @classmethod
    def open(
        cls,
        config: RuntimeConfig | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        **kwargs: Any,
    ) -> _Opener:
        return _Opener(cls(config, data_dir, **kwargs))

    @property
    def is_open(self) -> bool:
        return self._open

    async def start(self) -> None:
        if self._open:
            return
        try:
            from engine import datadir  # 0700, keys and databases 0600; loose: RUNTIME_003 / SEC_003

            datadir.prepare(self.data_dir, self.config)
            (self.data_dir / "agents").mkdir(exist_ok=True)
        except OSError as exc:
            raise SymbiError(
                ErrorCode.RUNTIME_001,
                f"cannot create the data dir: {exc.strerror or exc}",
                offending=str(self.data_dir),
                hint="pass a writable --data-dir or set SYMBI_DATA_DIR",
            ) from exc
        self._acquire_lock()
        try:
            ac = self.config.audit
            self.audit = AuditTrail(
                self.data_dir,
                durability=ac.durability,
                checkpoint_every=ac.checkpoint_every,
                clock=self.clock,
                busy_timeout=ac.busy_timeout,
                max_batch=ac.max_batch,
                checkpoint_interval=ac.checkpoint_interval,
                witness_path=ac.witness_path,
            )
            await self.audit.open()
            self._store = AgentStore(self.data_dir / "agents.db")
            await self._store.open()
            for stored in await self._store.load():
                self._adopt(stored)
            await self.audit.append(
                type="engine.start",
                action="start",
                resource=str(self.data_dir),
                details={"pid": os.getpid(), "mode": self.mode, "agents": len(self._agents)},
            )
            await self.policies.open()
            self.tools = await open_tool_service(
                self.config,
                self.data_dir,
                policy_check=self.policies.check,
                audit=self.audit.append,
                clock=self.clock,
                on_wait_start=self._tool_wait_start,
                on_wait_end=self._tool_wait_end,
                on_change=self._tool_event,
            )
            bus = self.messages = MessageBus.from_config(
                self.config.communication, KeyStore.in_data_dir(self.data_dir), clock=self.clock, audit=self._bus_audit
            )
            keyed = [a.id for a in self._agents.values() if bus.keys.exists(a.id)]
            await asyncio.to_thread(lambda: [bus.keys.identity(i) for i in keyed])
            for agent_id in keyed:  # agents that ran before can be messaged while stopped
                self._join_bus_now(agent_id)
            await self._sandboxes.adoctor()
            await self._reconcile()
            await self._scheduler.start()
        except BaseException:
            if self.tools is not None:
                await self.tools.close()
                self.tools = None
            await self.policies.close()
            if self._store is not None:
                await self._store.close()
            if self.audit is not None:
                await self.audit.close()
                self.audit = None
            self._release_lock()
            raise
        self._opened_at = self.clock.time()
        self._open = True
        self._monitor_task = asyncio.create_task(self._monitor.loop(), name="resource-monitor")
        self.bus.publish(EngineStarted(data_dir=str(self.data_dir), agents=len(self._agents)))
        log.info("engine open: data dir %s, %d agents", self.data_dir, len(self._agents))

    def _acquire_lock(self) -> None:
        holder = self._lock.acquire()
        if holder is not None:
            raise SymbiError(
                ErrorCode.RUNTIME_002,
                f"the data dir is in use by another engine (pid {holder})",
                offending=str(self.data_dir),
                hint="stop that engine first, or use another --data-dir",
            )

    def _release_lock(self) -> None:
        self._lock.release()

    async def close(self, reason: str = "engine shutdown") -> None:
        """Stop every agent cleanly, flush the registry and release the data dir."""
        if not self._open or self._closing:
            return
        self._closing = True
        self.bus.publish(EngineStopping(reason=reason))
        for agent in self._agents.values():
            if agent.restart_task is not None:
                agent.restart_task.cancel()
            if agent.schedule_task is not None:
                agent.schedule_task.cancel()
        active = [a for a in self._agents.values() if a.state.is_active and a.state is not S.TERMINATING]
        await asyncio.gather(
            *(self._stop(a, force=False, why="shutdown", reason=reason) for a in active),
            return_exceptions=True,
        )
        # agents already terminating finish on their own
        watchers = [a.watcher for a in self._agents.values() if a.watcher is not None]
        if watchers:
            await asyncio.wait(watchers, timeout=self.config.lifecycle.termination_timeout + 5)
        if self._monitor_task is not None:
            self._monitor_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor_task
        for task in list(self._bg):
            task.cancel()
        await self._scheduler.close()
        for agent in self._agents.values():
            agent.log.close()
        try:
            for line in await self._sandboxes.reap_all_labelled(self.engine_label):
                log.warning("removed a leftover sandbox at shutdown: %s", line)
        except Exception:  # noqa: BLE001 - shutdown goes on
            log.exception("sandbox cleanup at shutdown failed")
        if self.messages is not None:
            await self.messages.close()
        if self.tools is not None:
            await self.tools.close()
        await self.knowledge.close()
        await self.policies.close()
        self.secrets.close()
        if self._store is not None:
            await self._store.close()
        if self.audit is not None:
            try:
                await self.audit.append(
                    type="engine.stop", action="stop", resource=str(self.data_dir), details={"reason": reason}
                )
            except SymbiError as exc:
                log.error("could not record the engine stop: %s", exc.render())
            await self.audit.close()
        self._release_lock()
        self.bus.close()
        self._open = False
        log.info("engine closed: %s", reason)

    # -- registry ------------------------------------------------------------

    def _adopt(self, stored: StoredAgent) -> None:
        agent_dir = self.data_dir / "agents" / stored.id
        agent = _Agent(
            id=stored.id,
            config=stored.config,
            state=stored.state,
            created_at=stored.created_at,
            updated_at=stored.updated_at,
            history=stored.history or [StateChange(stored.state, stored.updated_at, "loaded")],
            log=AgentLogFile(agent_dir / "agent.log", self.config.resource.log_max_bytes),
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
        self._agents[agent.id] = agent
        self._names[agent.config.name] = agent.id

    async def _reconcile(self) -> None:
        """Make the states of agents left active by a dead engine truthful, and
        remove whatever they left running (processes, containers, cgroups)."""
        for agent in self._agents.values():
            if not agent.state.is_active:
                continue
            was = agent.state.value
            if agent.sandbox_ref:
                left = await self._sandboxes.reap(agent.sandbox_ref)
                where = f"process {agent.pid}" if agent.pid else "its sandbox"
                what = f"what it left was cleaned up: {left}" if left else f"{where} was already gone"
            elif agent.pid is not None:
                killed = kill_orphan_group(agent.pid, agent.pid_started)
                what = (
                    f"its orphan process {agent.pid} was killed"
                    if killed
                    else f"its process {agent.pid} was already gone"
                )
            else:
                what = "it had not been launched"
            target = S.TERMINATED if agent.state is S.TERMINATING else S.FAILED
            reason = f"engine stopped unexpectedly while the agent was {was}; {what}"
            agent.last_error = reason if target is S.FAILED else agent.last_error
            agent.finished_at = agent.finished_at or self.clock.time()
            agent.pid = None
            agent.sandbox_ref = None
            self._transition(
                agent, target, reason, persist_fields={"pid": None, "sandbox_ref": None, "last_error": agent.last_error}
            )
        for line in await self._sandboxes.reap_all_labelled(self.engine_label):
            log.warning("removed a leftover of a previous engine: %s", line)

    def _get(self, ref: str) -> _Agent:
        agent = self._agents.get(ref)
        if agent is None and ref in self._names:
            agent = self._agents[self._names[ref]]
        if agent is None:
            raise SymbiError(
                ErrorCode.AGENT_001,
                "agent not found",
                offending=ref,
                hint="list agents to see their names and ids",
            )
        return agent

    def _require_open(self) -> None:
        if not self._open or self._closing:
            raise SymbiError(ErrorCode.RUNTIME_001, "the runtime is not open", hint="open it with Runtime.open()")

    # -- state changes -------------------------------------------------------

    def _transition(
        self,
        agent: _Agent,
        new: AgentState,
        reason: str = "",
        *,
        persist_fields: dict[str, Any] | None = None,
    ) -> None:
        check_transition(agent.state, new, agent=agent.config.name)
        old = agent.state
        self._note("agent.state", agent, f"{old.value}->{new.value}", details={"reason": reason} if reason else None)
        now = self.clock.time()
        agent.state = new
        agent.updated_at = now
        change = StateChange(new, now, reason)
        agent.history.append(change)
        if len(agent.history) > 500:
            del agent.history[:100]
        if self._store is not None:
            fields: dict[str, Any] = {"state": new, "updated_at": now}
            if persist_fields:
                fields.update(persist_fields)
            self._store.update(agent.id, **fields)
            self._store.append_history(agent.id, self._seq(agent), change)
        self.bus.publish(AgentStateChanged(agent_id=agent.id, name=agent.config.name, old=old, new=new, reason=reason))

    # -- audit -----------------------------------------------------------------

    def _tool_wait_start(self, agent: _Agent, pending: Any) -> None:
        """A tool call waits for a human: the agent is Waiting meanwhile."""
        if agent.state is S.RUNNING:
            self._transition(agent, S.WAITING, f"waiting for a human to approve a call of {pending.tool_id}")

    def _tool_wait_end(self, agent: _Agent, pending: Any) -> None:
        if agent.state is S.WAITING and agent.handle is not None:
            self._transition(agent, S.RUNNING, f"tool call approval decided ({pending.tool_id})")

    def _tool_event(self, kind: str, d: dict[str, Any]) -> None:
        """Tool review news from the ToolService, published for the console."""
        event: Event | None = None
        if kind == "tool.review":
            event = ToolReviewChanged(tool_id=d["tool_id"], state=d["state"], event=d["event"])
        elif kind == "call.pending":
            event = ToolCallPending(call_id=d["call_id"], tool_id=d["tool_id"], agent_id=d["agent_id"])
        elif kind == "call.decided":
            event = ToolCallDecided(call_id=d["call_id"], tool_id=d["tool_id"], outcome=d["outcome"])
        elif kind == "key.change":
            event = KeyChangePending(
                domain=d["domain"], old_fingerprint=d["old_fingerprint"], new_fingerprint=d["new_fingerprint"]
            )
        if event is not None:
            self.bus.publish(event)

    def _join_bus_now(self, agent_id: AgentId) -> None:
        assert self.messages is not None
        self.messages.register(agent_id)
        self._bus_members.add(agent_id)

    async def _join_bus(self, agent: _Agent) -> None:
        """Give the agent its bus identity before its first run (key files are
        created and fsynced in a worker thread, never on the event loop)."""
        if self.messages is None or agent.id in self._bus_members:
            return
        await asyncio.to_thread(self.messages.keys.identity, agent.id)
        self._join_bus_now(agent.id)

    async def _bus_audit(self, record: dict[str, Any]) -> None:
        """The message bus's audit hook: metadata only (never payloads), in order, without
        waiting per message; a failed trail refuses the send (AUDIT_001 raised here)."""
        if self.audit is None:
            return
        sender = record.get("sender") or None
        target = record.get("recipient") or (f"topic:{record['topic']}" if record.get("topic") else "")
        details = {k: v for k, v in record.items() if k not in ("event",) and v is not None}
        self.audit.append_nowait(
            type=record.get("event", "bus.send"),
            agent=sender,
            actor=f"agent:{sender}" if sender else "engine",
            action=str(record.get("stage", "send")),
            resource=str(target),
            decision=str(record.get("decision", "n/a")),
            details=details,
        )

    async def _authorize(self, agent: _Agent, action: str, *, actor: str = "operator", reason: str = "") -> None:
        """Check an action is legal now, record it durably, and check again
        (another call may have changed the agent while the record was written)."""
        check_action(action, agent.state, agent=agent.config.name)
        await self._record(
            f"agent.{action}", agent, action, actor=actor, details={"reason": reason} if reason else None
        )
        check_action(action, agent.state, agent=agent.config.name)

    async def _record(
        self,
        type: str,
        agent: _Agent | None,
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
        if self.audit is None:
            raise SymbiError(ErrorCode.RUNTIME_001, "the runtime is not open")
        await self.audit.append(
            type=type,
            agent=agent.id if agent else agent_id,
            actor=actor,
            action=action,
            resource=resource if resource is not None else (agent.config.name if agent else ""),
            decision=decision,
            details=details,
        )

    def _note(
        self,
        type: str,
        agent: _Agent | None,
        action: str,
        *,
        actor: str = "engine",
        details: dict[str, Any] | None = None,
    ) -> None:
        """Record an observation (a process exited, a state followed) in order, without waiting.

        Observations of things outside the engine's control are never refused;
        when the trail has failed they are logged, and every operator action
        is refused (fail closed) until the engine is reopened."""
        if self.audit is None:
            return
        try:
            self.audit.append_nowait(
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

    def _seq(self, agent: _Agent) -> int:
        """The next history sequence number (monotonic per agent, unlike the trimmed in-memory list)."""
        if agent.history_seq is None:
            agent.history_seq = len(agent.history) - 1
        else:
            agent.history_seq += 1
        return agent.history_seq

    def _engine_log(self, agent: _Agent, line: str) -> None:
        self._on_output(agent, "engine", line)

    def _on_output(self, agent: _Agent, stream: str, line: str) -> None:
        if stream != "engine":
            agent.last_activity = self.clock.time()
        stamp = time.strftime("%H:%M:%S", time.localtime(self.clock.time()))
        kept = agent.log.write(f"{stamp} [{stream}] {line}")
        self.bus.publish(AgentLog(agent_id=agent.id, name=agent.config.name, stream=stream, line=kept))

    # -- public API: agents --------------------------------------------------

    async def create_agent(self, config: AgentConfig) -> AgentInfo:
        """Register a new agent (state Created). Durable when it returns."""
        self._require_open()
        config = config.validate()
        if config.name in self._names:
            raise SymbiError(
                ErrorCode.AGENT_006,
                "an agent with this name already exists",
                offending=config.name,
                hint="choose another name or delete the existing agent",
            )
        max_agents = self.config.lifecycle.max_agents
        if len(self._agents) >= max_agents:
            raise SymbiError(
                ErrorCode.AGENT_003,
                f"the runtime already manages {len(self._agents)} agents (max_agents = {max_agents})",
                offending=config.name,
                hint="delete finished agents or raise lifecycle.max_agents (SYMBI_MAX_AGENTS)",
            )
        self._check_fits(config)
        agent_id = new_agent_id()
        await self._record(
            "agent.create",
            None,
            "create",
            resource=config.name,
            details={
                "agent_id": agent_id,
                "priority": config.priority.label,
                "tier": config.security_tier.value,
                "mode": config.execution_mode.value,
                "limits": config.to_dict()["resource_limits"],
                "capabilities": list(config.capabilities),
                "program_sha256": hashlib.sha256(config.dsl_source.encode()).hexdigest(),
            },
        )
        if config.name in self._names:  # created meanwhile by a concurrent call
            raise SymbiError(ErrorCode.AGENT_006, "an agent with this name already exists", offending=config.name)
        now = self.clock.time()
        agent = _Agent(
            id=agent_id,
            config=config,
            state=S.CREATED,
            created_at=now,
            updated_at=now,
            history=[StateChange(S.CREATED, now, "created")],
            log=AgentLogFile(
                f"{self.data_dir}/agents/{agent_id}/agent.log", self.config.resource.log_max_bytes, existing=False
            ),
        )
        self._agents[agent_id] = agent
        self._names[config.name] = agent_id
        assert self._store is not None
        try:
            await self._store.insert(self._stored(agent))
        except BaseException:
            self._agents.pop(agent_id, None)
            self._names.pop(config.name, None)
            raise
        self.bus.publish(AgentCreated(agent_id=agent_id, name=config.name))
        self.bus.publish(
            AgentStateChanged(agent_id=agent_id, name=config.name, old=None, new=S.CREATED, reason="created")
        )
        return agent.info()

    def _stored(self, agent: _Agent) -> StoredAgent:
        return StoredAgent(
            id=agent.id,
            config=agent.config,
            state=agent.state,
            created_at=agent.created_at,
            updated_at=agent.updated_at,
            started_at=None,
            finished_at=None,
            pid=None,
            pid_started=None,
            restart_count=0,
            exit_code=None,
            last_error=None,
            history=list(agent.history),
        )

    def _check_fits(self, config: AgentConfig) -> None:
        """Refuse limits that could never be admitted on this runtime."""
        limits = config.resource_limits
        if self._resources.fits_at_all(limits):
            return
        cap = self._resources.capacity
        raise SymbiError(
            ErrorCode.RESOURCE_001,
            f"limits exceed what this runtime can ever allocate: memory {limits.memory_mb} MB of {cap.memory_mb} MB, "
            f"cpu {limits.cpu_cores:g} of {cap.cpu_cores:g} cores, disk {limits.disk_io_mbps} of "
            f"{cap.disk_io_mbps} MB/s, network {limits.network_io_mbps} of {cap.network_io_mbps} MB/s",
            offending=config.name,
            hint="lower the agent's resource_limits or raise resource.total_* in the config",
        )

    async def start_agent(self, ref: str, input: Any = None) -> AgentInfo:
        """Queue the agent for execution: Initializing -> Ready -> (scheduler) -> Running.

        A Scheduled agent is armed instead: Initializing -> Waiting until its
        cron expression is due. ``input`` (JSON data) is what the agent's
        ``agent.input()`` returns.
        """
        self._require_open()
        agent = self._get(ref)
        await self._authorize(agent, "start")
        if input is not None:
            try:
                encoded = json.dumps(input)
            except (TypeError, ValueError) as exc:
                raise SymbiError(
                    ErrorCode.AGENT_004, f"agent input is not JSON data: {exc}", offending=agent.config.name
                ) from None
            if len(encoded) > 1_048_576:
                raise SymbiError(ErrorCode.AGENT_004, "agent input is over 1 MiB", offending=agent.config.name)
            agent.input = input
            assert self._store is not None
            self._store.update(agent.id, input=encoded)
        if agent.restart_task is not None:
            agent.restart_task.cancel()
            agent.restart_task = None
        agent.restart_count = 0
        self._begin(agent, "start requested")
        return agent.info()

    def _begin(self, agent: _Agent, reason: str) -> None:
        self._check_fits(agent.config)
        agent.stop_requested = None
        agent.kill_reason = None
        agent.exit_code = None
        agent.peak_rss = 0
        self._transition(agent, S.INITIALIZING, reason, persist_fields={"restart_count": agent.restart_count})
        try:
            workspace = self.data_dir / "agents" / agent.id / "workspace"
            workspace.mkdir(parents=True, exist_ok=True)
            program = self.data_dir / "agents" / agent.id / "agent.py"
            tmp = program.with_suffix(".py.tmp")
            tmp.write_text(agent.config.dsl_source, encoding="utf-8")
            os.replace(tmp, program)
        except OSError as exc:
            self._fail(agent, f"could not prepare the workspace: {exc.strerror or exc}")
            return
        if agent.config.execution_mode is ExecutionMode.SCHEDULED:
            self._arm(agent, S.INITIALIZING)
            return
        self._transition(agent, S.READY, "queued for execution")
        self._submit(agent)

    def _submit(self, agent: _Agent) -> None:
        limits = agent.config.resource_limits
        try:
            self._scheduler.submit(
                agent.id, agent.config.priority, agent, cpu_cores=limits.cpu_cores, memory_mb=limits.memory_mb
            )
        except SymbiError as exc:
            self._fail(agent, exc.render())
            raise

    def _arm(self, agent: _Agent, from_state: AgentState) -> None:
        """Put a Scheduled agent in Waiting until its next run."""
        assert agent.config.schedule is not None
        agent.next_run = CronExpr.parse(agent.config.schedule).next_after(self.clock.time())
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(agent.next_run))
        self._transition(agent, S.WAITING, f"scheduled ({agent.config.schedule}); next run {when}")
        if agent.schedule_task is not None:
            agent.schedule_task.cancel()
        agent.schedule_task = self._spawn(self._run_when_due(agent), f"schedule-{agent.config.name}")

    async def _run_when_due(self, agent: _Agent) -> None:
        assert agent.next_run is not None
        await self.clock.sleep(max(0.0, agent.next_run - self.clock.time()))
        agent.schedule_task = None
        if agent.state is not S.WAITING or self._closing:
            return
        agent.next_run = None
        self._transition(agent, S.READY, "scheduled run due")
        try:
            self._submit(agent)
        except SymbiError as exc:
            self._engine_log(agent, f"scheduled run refused: {exc.render()}")

    def _fail(self, agent: _Agent, reason: str, *, exit_code: int | None = None) -> None:
        agent.last_error = reason
        agent.finished_at = self.clock.time()
        self._engine_log(agent, f"failed: {reason}")
        self._transition(
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

    # scheduler callbacks ------------------------------------------------------

    def _admit(self, task: Task) -> bool:
        agent: _Agent = task.payload
        try:
            self._resources.allocate(agent.id, agent.config.resource_limits)
        except SymbiError as exc:
            if exc.code is ErrorCode.RESOURCE_003:
                return True  # already holds its allocation
            if agent.last_error != exc.message:
                agent.last_error = exc.message
                self._engine_log(agent, f"waiting for resources: {exc.message}")
            return False
        return True

    def _dispatch(self, task: Task, pool: str) -> None:
        agent: _Agent = task.payload
        self._spawn(self._launch(agent, pool), f"launch-{agent.config.name}")

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        self._bg.add(task)
        task.add_done_callback(self._bg.discard)
        return task

    def _finish_slot(self, agent: _Agent) -> None:
        if self._resources.release(agent.id) is not None:
            self._note("resource.release", agent, "release")
        self._scheduler.complete(agent.id)
        self._scheduler.notify()

    def _executor_for(self, agent: _Agent) -> tuple[Executor, str | None]:
        """The executor for the agent's tier, and a note when it is a fallback.

        An executor passed to the constructor overrides the tiers (tests, embedding)."""
        if self._executor_override is not None:
            return self._executor_override, None
        return self._sandboxes.executor_for(agent.config.security_tier)

    async def _launch(self, agent: _Agent, pool: str) -> None:
        if agent.state is not S.READY:
            self._finish_slot(agent)
            return
        agent.launching = True
        agent.launched.clear()
        try:
            await self._launch_inner(agent, pool)
        finally:
            agent.launching = False
            agent.launched.set()

    async def _launch_inner(self, agent: _Agent, pool: str) -> None:
        agent_dir = self.data_dir / "agents" / agent.id
        token = secrets.token_urlsafe(24)
        rpc = AgentRpcServer(
            rpc_dir_for(self.data_dir, agent.id),
            token,
            lambda method, params: self._gate.handle(agent, method, params),
            max_message_bytes=self.config.sandbox.max_rpc_message_bytes,
        )
        try:
            lim = agent.config.resource_limits
            wants = {
                "memory_mb": lim.memory_mb,
                "cpu_cores": lim.cpu_cores,
                "disk_io_mbps": lim.disk_io_mbps,
                "network_io_mbps": lim.network_io_mbps,
            }
            decision, request = self.policies.check(agent, "ResourceAllocation", pool, "Allocate", metadata=wants)
            await self._record(
                "resource.allocate",
                agent,
                "allocate",
                actor="engine",
                decision="allow" if decision.allowed else "deny",
                details={**wants, "pool": pool, "policy": decision.policy, "policy_request": request},
            )
            if not decision.allowed:
                raise self.policies.denied(decision, "resource allocation", agent.config.name)
            if any(c.lower() == "network" for c in agent.config.capabilities):
                decision, request = self.policies.check(agent, "Network", "*", "Connect")
                await self._record(
                    "sandbox.grant",
                    agent,
                    "network",
                    actor="engine",
                    decision="allow" if decision.allowed else "deny",
                    details={"policy": decision.policy, "policy_request": request},
                )
                if not decision.allowed:
                    raise self.policies.denied(decision, "network access", agent.config.name)
            executor, fallback_note = self._executor_for(agent)
            await self._join_bus(agent)
            await rpc.start()
            spec = LaunchSpec(
                agent_id=agent.id,
                name=agent.config.name,
                program=agent_dir / "agent.py",
                workspace=agent_dir / "workspace",
                limits=agent.config.resource_limits,
                capabilities=agent.config.capabilities,
                rpc_dir=rpc.rpc_dir,
                sdk_dir=SDK_DIR,
                env={"SYMBI_RPC_TOKEN": token},
                labels={"symbi.engine": self.engine_label, "symbi.agent_id": agent.id},
            )
            handle = await executor.launch(spec, lambda stream, line: self._on_output(agent, stream, line))
        except SymbiError as exc:
            await rpc.close()
            self._finish_slot(agent)
            if agent.state is S.READY:
                self._fail(agent, exc.render())
            return
        except OSError as exc:
            await rpc.close()
            self._finish_slot(agent)
            if agent.state is S.READY:
                self._fail(agent, f"{ErrorCode.AGENT_005.value}: could not launch: {exc.strerror or exc}")
            return
        if fallback_note:
            self._engine_log(agent, fallback_note)
        agent.rpc = rpc
        agent.handle = handle
        agent.pid = handle.pid
        agent.pid_started = handle.started
        agent.sandbox_ref = handle.ref
        agent.tier_used = handle.tier
        agent.started_at = self.clock.time()
        agent.last_activity = agent.started_at
        agent.finished_at = None
        agent.last_error = None
        agent.result = None
        if agent.state is not S.READY:  # stopped while we were launching
            handle.kill()
        else:
            where = f"pid {handle.pid}" if handle.pid else "container"
            self._transition(
                agent,
                S.RUNNING,
                f"launched {where} ({handle.tier}, pool {pool})",
                persist_fields={
                    "pid": handle.pid,
                    "pid_started": handle.started,
                    "sandbox_ref": handle.ref,
                    "tier_used": handle.tier,
                    "started_at": agent.started_at,
                    "finished_at": None,
                    "last_error": None,
                    "exit_code": None,
                    "result": None,
                },
            )
            self._engine_log(agent, f"started {where} in tier {handle.tier}")
        agent.watcher = self._spawn(self._watch(agent, handle), f"watch-{agent.config.name}")

    async def _watch(self, agent: _Agent, handle: ProcessHandle) -> None:
        timeout = agent.config.resource_limits.execution_timeout
        try:
            if timeout is not None:
                rc = await asyncio.wait_for(asyncio.shield(handle.wait()), timeout)
            else:
                rc = await handle.wait()
        except TimeoutError:
            agent.kill_reason = f"{ErrorCode.RESOURCE_002.value}: execution_timeout of {timeout:g}s exceeded"
            self._engine_log(agent, agent.kill_reason)
            await self._kill_gracefully(agent, handle)
            rc = await handle.wait()
        detail = handle.exit_detail()
        if detail and agent.kill_reason is None and agent.stop_requested is None:
            agent.kill_reason = detail
        if handle.pid is not None:
            self._sampler.forget(handle.pid)
        self._checker.reset(agent.id)
        try:
            await handle.cleanup()
        except Exception as exc:  # noqa: BLE001 - cleanup trouble must not lose the exit
            self._engine_log(agent, f"sandbox cleanup failed: {exc}")
        if agent.rpc is not None:
            await agent.rpc.close()
            self._rpc_closed = _add_rpc_counts(self._rpc_closed, agent.rpc)
            agent.rpc = None
        agent.handle = None
        agent.exit_code = rc
        agent.finished_at = self.clock.time()
        self._finish_slot(agent)
        outcome = describe_exit(rc)
        self._engine_log(agent, f"process {outcome}")
        fields = {"pid": None, "exit_code": rc, "finished_at": agent.finished_at, "sandbox_ref": None}
        agent.pid = None
        agent.sandbox_ref = None
        if agent.stop_requested is not None and agent.kill_reason is None:
            self._transition(agent, S.TERMINATED, f"{agent.stop_requested}: process {outcome}", persist_fields=fields)
            return
        if agent.kill_reason is not None:
            self._fail(agent, agent.kill_reason, exit_code=rc)
            return  # enforcement kills are not auto-restarted: they would repeat
        if rc == 0 and agent.state is S.RUNNING:
            mode = agent.config.execution_mode
            if mode is ExecutionMode.SCHEDULED:
                self._store_update(agent, **fields)
                self._arm(agent, S.RUNNING)
                return
            why = "completed" if mode is ExecutionMode.EPHEMERAL else f"{mode.value.lower()} agent exited"
            self._transition(agent, S.COMPLETED, f"{why}: {outcome}", persist_fields=fields)
            return
        agent.exit_code = rc
        self._fail(agent, f"agent program {outcome}", exit_code=rc)
        self._maybe_restart(agent)

    def _store_update(self, agent: _Agent, **fields: Any) -> None:
        if self._store is not None:
            self._store.update(agent.id, **fields)

    def _maybe_restart(self, agent: _Agent) -> None:
        lc = self.config.lifecycle
        if not lc.enable_auto_recovery or self._closing:
            return
        if agent.restart_count >= lc.max_restart_attempts:
            msg = f"restart budget exhausted ({agent.restart_count}/{lc.max_restart_attempts}); left Failed"
            agent.last_error = f"{agent.last_error}; {msg}"
            self._store_update(agent, last_error=agent.last_error)
            self._engine_log(agent, msg)
            return
        delay = min(lc.restart_backoff_base * (2**agent.restart_count), lc.restart_backoff_max)
        self._engine_log(
            agent, f"restarting in {delay:g}s (attempt {agent.restart_count + 1}/{lc.max_restart_attempts})"
        )
        agent.restart_task = self._spawn(self._restart_later(agent, delay), f"restart-{agent.config.name}")

    async def _restart_later(self, agent: _Agent, delay: float) -> None:
        await self.clock.sleep(delay)
        agent.restart_task = None
        if agent.state is not S.FAILED or self._closing:
            return
        agent.restart_count += 1
        try:
            self._begin(
                agent, f"auto-recovery restart {agent.restart_count}/{self.config.lifecycle.max_restart_attempts}"
            )
        except SymbiError as exc:
            self._engine_log(agent, f"auto-recovery failed: {exc.render()}")

    # stopping -----------------------------------------------------------------

    async def stop_agent(self, ref: str) -> AgentInfo:
        """Graceful stop: SIGTERM to the process group, SIGKILL after the grace period."""
        self._require_open()
        agent = self._get(ref)
        await self._authorize(agent, "stop")
        await self._stop(agent, force=False, why="stop", reason="stop requested by operator")
        return agent.info()

    async def terminate_agent(self, ref: str) -> AgentInfo:
        """Immediate stop: SIGKILL to the process group."""
        self._require_open()
        agent = self._get(ref)
        await self._authorize(agent, "terminate")
        await self._stop(agent, force=True, why="terminate", reason="terminated by operator")
        return agent.info()

    async def _stop(self, agent: _Agent, *, force: bool, why: str, reason: str) -> None:
        agent.stop_requested = why
        if agent.schedule_task is not None:
            agent.schedule_task.cancel()
            agent.schedule_task = None
            agent.next_run = None
        if agent.state is not S.TERMINATING:
            self._transition(agent, S.TERMINATING, reason)
        if agent.launching:
            await agent.launched.wait()  # the launch sees Terminating and kills what it started
        if agent.handle is None:
            if agent.watcher is not None and not agent.watcher.done():
                await asyncio.shield(agent.watcher)
                return
            self._scheduler.cancel(agent.id)
            self._resources.release(agent.id)
            self._scheduler.notify()
            if agent.state is S.TERMINATING:
                self._transition(agent, S.TERMINATED, f"{why}: no process was running")
            return
        handle = agent.handle
        if force:
            handle.kill()
        else:
            await self._kill_gracefully(agent, handle)
        if agent.watcher is not None:
            await asyncio.shield(agent.watcher)

    async def _kill_gracefully(self, agent: _Agent, handle: ProcessHandle) -> None:
        grace = self.config.lifecycle.termination_timeout
        handle.signal(signal.SIGTERM)
        handle.signal(signal.SIGCONT)  # a suspended agent must run to handle SIGTERM
        try:
            await asyncio.wait_for(asyncio.shield(handle.wait()), grace)
        except TimeoutError:
            self._engine_log(agent, f"no exit {grace:g}s after SIGTERM; sending SIGKILL")
            handle.signal(signal.SIGKILL)

    async def suspend_agent(
        self, ref: str, reason: str = "suspended by operator", *, actor: str = "operator"
    ) -> AgentInfo:
        self._require_open()
        agent = self._get(ref)
        await self._authorize(agent, "suspend", actor=actor, reason=reason)
        if agent.handle is not None:
            await agent.handle.suspend()
        self._transition(agent, S.SUSPENDED, reason)
        return agent.info()

    async def resume_agent(self, ref: str) -> AgentInfo:
        self._require_open()
        agent = self._get(ref)
        await self._authorize(agent, "resume")
        if agent.handle is not None:
            await agent.handle.resume()
        self._transition(agent, S.RUNNING, "resumed by operator")
        return agent.info()

    async def delete_agent(self, ref: str) -> None:
        """Remove a stopped agent, its history, workspace and logs."""
        self._require_open()
        agent = self._get(ref)
        await self._authorize(agent, "delete")
        if agent.restart_task is not None:
            agent.restart_task.cancel()
        assert self._store is not None
        await self._store.delete(agent.id)
        agent.log.close()
        self._agents.pop(agent.id, None)
        self._names.pop(agent.config.name, None)
        shutil.rmtree(self.data_dir / "agents" / agent.id, ignore_errors=True)
        if self.messages is not None and agent.id in self._bus_members:
            await self.messages.unregister(agent.id)
            self._bus_members.discard(agent.id)
        self.bus.publish(AgentDeleted(agent_id=agent.id, name=agent.config.name))

    # -- public API: queries -------------------------------------------------

    async def list_agents(self) -> list[AgentInfo]:
        return [a.info() for a in sorted(self._agents.values(), key=lambda a: a.created_at)]

    async def get_agent(self, ref: str) -> AgentInfo:
        return self._get(ref).info()

    async def agent_history(self, ref: str) -> list[StateChange]:
        return list(self._get(ref).history)

    async def agent_logs(self, ref: str, lines: int = 200) -> list[str]:
        tail = list(self._get(ref).log.tail)
        return tail[-lines:] if lines else tail

    def subscribe(self, types: Iterable[type[Event]] = (), maxsize: int = 1000) -> Subscription:
        return self.bus.subscribe(types, maxsize)

    async def wait_for_state(self, ref: str, *states: AgentState, timeout: float = 30.0) -> AgentInfo:
        """Wait until the agent is in one of ``states`` (for scripts and tests)."""
        agent = self._get(ref)
        if agent.state in states:
            return agent.info()
        sub = self.bus.subscribe([AgentStateChanged, AgentDeleted], maxsize=10_000)
        try:
            async with asyncio.timeout(timeout):
                while agent.state not in states:
                    await sub.get()
        except TimeoutError:
            raise SymbiError(
                ErrorCode.AGENT_002,
                f"agent did not reach {'/'.join(s.value for s in states)} within {timeout:g}s (it is {agent.state.value})",
                offending=agent.config.name,
            ) from None
        finally:
            sub.close()
        return agent.info()

    async def tiers(self) -> list[Any]:
        """What each security tier can do on this machine (the sandbox doctor)."""
        return await self._sandboxes.adoctor()

    def _rpc_metrics(self) -> dict[str, int]:
        totals = self._rpc_closed
        for agent in self._agents.values():
            if agent.rpc is not None:
                totals = _add_rpc_counts(totals, agent.rpc)
        return {"rpc_requests": totals[0], "rpc_errors": totals[1], "rpc_resets": totals[2]}

    async def metrics(self) -> RuntimeMetrics:
        by_state: dict[str, int] = {s.value: 0 for s in AgentState}
        for agent in self._agents.values():
            by_state[agent.state.value] += 1
        m = self._machine
        totals = self._resources.totals
        used = self._resources.used()
        stats = self._scheduler.stats()
        return RuntimeMetrics(
            data_dir=str(self.data_dir),
            mode=self.mode,
            uptime=max(0.0, self.clock.time() - self._opened_at) if self._open else 0.0,
            agents_total=len(self._agents),
            agents_by_state=by_state,
            cpu_percent=m.cpu_percent if m else 0.0,
            memory_used_bytes=m.memory_used_bytes if m else 0,
            memory_total_bytes=m.memory_total_bytes if m else 0,
            total_memory_mb=totals.memory_mb,
            total_cpu_cores=totals.cpu_cores,
            allocated_memory_mb=used.memory_mb,
            allocated_cpu_cores=used.cpu_cores,
            scheduler_queued=stats.queued,
            scheduler_running=stats.running,
            scheduler_dispatched=stats.dispatched_total,
            events_published=self.bus.published,
            events_dropped=self.bus.dropped,
            **self._rpc_metrics(),
        )

    # -- resource monitor -----------------------------------------------------

    async def sample_once(self) -> None:
        """Sample every running agent and the machine once; enforce limits."""
        await self._monitor.sample_once()
