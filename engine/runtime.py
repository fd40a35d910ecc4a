"""The runtime: the one object the console, the API and the CLI talk to.

``Runtime.open(config, data_dir)`` opens the engine on a data dir (holding its
lock); ``close()`` stops every agent and releases it. Every operator action is
a public method here. The runtime only wires: it builds each component, hands
it the narrow ports it needs (:mod:`engine.agents.ports`) and delegates.

Where things live (under ``engine/``):

- ``agents/ports.py``: the protocols services depend on (recorder, agent directory, policy checker, event sink...)
- ``agents/record.py``: ``AgentRecord``, one agent's live record; ``AgentTable``, all of them
- ``agents/supervisor.py``: the lifecycle (create, start, schedule, watch, stop, restart, cron, delete)
- ``agents/launcher.py``: starting and ending a process (policy checks, sandbox, RPC channel, signals)
- ``agents/journal.py``: state transitions and agent log lines (audited, persisted, published)
- ``agents/recorder.py``: the audit paths (fail-closed records, observations, the bus's hook)
- ``agents/gate.py``: every request an agent makes (plan, policy, record, act)
- ``agents/monitor.py``: resource samples, limit and idle enforcement
- ``agents/scheduler.py``, ``agents/resources.py``: the run queue, resource accounting
- ``notify.py``: the ``[[notify]]`` webhooks; ``metrics.py``: ``RuntimeMetrics``; ``mcp_tools/news.py``: the tool service's news as events
- ``policy/``, ``secrets/``, ``knowledge/``, ``mcp_tools/``: the services; ``comms/``: the
  message bus; ``audit/``: the trail; ``sandbox/``: the security tiers
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from engine.agents.executor import Executor
from engine.agents.gate import AgentGate
from engine.agents.journal import Journal
from engine.agents.launcher import Launcher
from engine.agents.model import AgentConfig, AgentInfo, AgentState, StateChange
from engine.agents.monitor import ResourceMonitor
from engine.agents.record import AgentTable
from engine.agents.recorder import AuditRecorder
from engine.agents.sampler import LimitChecker, ProcessTreeSampler
from engine.agents.store import AgentStore
from engine.agents.supervisor import Supervisor
from engine.audit import AuditTrail
from engine.clock import Clock, SystemClock
from engine.comms import KeyStore, MessageBus
from engine.config import RuntimeConfig
from engine.errors import ErrorCode, SymbiError
from engine.events import (
    AgentDeleted,
    AgentStateChanged,
    EngineStarted,
    EngineStopping,
    Event,
    EventBus,
    Subscription,
)
from engine.knowledge.service import KnowledgeService
from engine.lockfile import FileLock
from engine.mcp_tools import ToolService, open_tool_service
from engine.mcp_tools.news import TOOL_NEWS
from engine.metrics import RuntimeMetrics
from engine.notify import Notifier
from engine.policy.service import PolicyService
from engine.sandbox import SandboxRegistry
from engine.secrets.service import SecretService

log = logging.getLogger("symbi.engine")

_sdk_spec = importlib.util.find_spec("symbi_agent")
# The directory that contains the symbi_agent package; sandboxes mount it read-only.
SDK_DIR = Path(_sdk_spec.origin).parent.parent if _sdk_spec and _sdk_spec.origin else None


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
        self.engine_label = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:16]
        self.bus = EventBus()
        self.audit: AuditTrail | None = None  # these three open in start()
        self.messages: MessageBus | None = None
        self.tools: ToolService | None = None
        self.agents = AgentTable()
        self.store = AgentStore(self.data_dir / "agents.db")
        self.sandboxes = SandboxRegistry(self.config.sandbox, self.data_dir, sdk_dir=SDK_DIR)
        self._lock = FileLock(self.data_dir / "engine.lock")
        sampler = sampler or ProcessTreeSampler()
        checker = LimitChecker(self.config.resource.cpu_violation_samples)

        # the services: each is handed only the ports it uses
        recorder = self._recorder = AuditRecorder(lambda: self.audit)
        cfg, data, clk = self.config, self.data_dir, self.clock
        self.policies = PolicyService(cfg, data, clock=clk, recorder=recorder, events=self.bus)
        self.secrets = SecretService(cfg, data, recorder=recorder, redactor=recorder)
        self.knowledge = KnowledgeService(cfg, data, clock=clk, recorder=recorder, secrets=self.secrets)
        self.journal = Journal(self.store, recorder, self.bus, clk)
        self._gate = AgentGate(
            clock=clk,
            agents=self.agents,
            journal=self.journal,
            recorder=recorder,
            policies=self.policies,
            secret_read=self.secrets.plan_read,
            memory_put=self.knowledge.plan_put,
            memory_query=self.knowledge.plan_query,
            messages=lambda: self.messages,
            tools=lambda: self.tools,
        )
        launcher = self._launcher = Launcher(
            config=cfg,
            data_dir=data,
            journal=self.journal,
            recorder=recorder,
            policies=self.policies,
            sandboxes=self.sandboxes,
            sampler=sampler,
            checker=checker,
            requests=self._gate.handle,
            messages=lambda: self.messages,
            engine_label=self.engine_label,
            sdk_dir=SDK_DIR,
            executor=executor,
        )
        self.supervisor = Supervisor(
            config=cfg,
            data_dir=data,
            clock=clk,
            agents=self.agents,
            store=self.store,
            journal=self.journal,
            recorder=recorder,
            events=self.bus,
            launcher=launcher,
        )
        self._monitor = ResourceMonitor(
            config=cfg,
            clock=clk,
            agents=self.agents,
            control=self.supervisor,
            journal=self.journal,
            recorder=recorder,
            events=self.bus,
            resources=self.supervisor.resources,
            sampler=sampler,
            checker=checker,
        )
        self.notifier = Notifier(
            self.config.notify,
            self.bus,
            str(self.data_dir),
            tool_lookup=lambda: self.tools.get_tool if self.tools is not None else None,
            agent_name=lambda agent_id: a.config.name if (a := self.agents.find(agent_id)) else None,
        )
        self.tool_calls: dict[str, int] = {}  # agents' tool calls by outcome (see _counting_tool_audit)
        self._opened_at = 0.0
        self._open = False
        self._closing = False

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
        holder = self._lock.acquire()
        if holder is not None:
            raise SymbiError(
                ErrorCode.RUNTIME_002,
                f"the data dir is in use by another engine (pid {holder})",
                offending=str(self.data_dir),
                hint="stop that engine first, or use another --data-dir",
            )
        try:
            await self._open_components()
        except BaseException:
            if self.tools is not None:
                await self.tools.close()
                self.tools = None
            await self.policies.close()
            await self.store.close()
            if self.audit is not None:
                await self.audit.close()
                self.audit = None
            self._lock.release()
            raise
        self._opened_at = self.clock.time()
        self._open = True
        self._monitor.start()
        self.notifier.start()
        self.bus.publish(EngineStarted(data_dir=str(self.data_dir), agents=len(self.agents)))
        log.info("engine open: data dir %s, %d agents", self.data_dir, len(self.agents))
        if self.config.lifecycle.resume_on_start:
            resumed = await self.supervisor.resume_interrupted()
            if resumed:
                log.info("resumed what the last engine stopped: %s", ", ".join(resumed))

    async def _open_components(self) -> None:
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
        await self.store.open()
        await self.supervisor.load()
        await self.audit.append(
            type="engine.start",
            action="start",
            resource=str(self.data_dir),
            details={"pid": os.getpid(), "mode": self.mode, "agents": len(self.agents)},
        )
        await self.policies.open()
        self.tools = await open_tool_service(
            self.config,
            self.data_dir,
            policy_check=self.policies.check,
            audit=self._counting_tool_audit(self.audit.append),
            clock=self.clock,
            on_wait_start=self.supervisor.tool_wait_start,
            on_wait_end=self.supervisor.tool_wait_end,
            on_change=self._tool_news,
        )
        keys = KeyStore.in_data_dir(self.data_dir)
        self.messages = MessageBus.from_config(
            self.config.communication, keys, clock=self.clock, audit=self._recorder.bus_hook
        )
        await self._launcher.rejoin_bus(self.agents.records())
        await self.sandboxes.adoctor()
        await self.supervisor.reconcile()
        await self.supervisor.scheduler.start()

    async def close(self, reason: str = "engine shutdown") -> None:
        """Stop every agent cleanly, flush the registry and release the data dir."""
        if not self._open or self._closing:
            return
        self._closing = True
        self.bus.publish(EngineStopping(reason=reason))
        await self.supervisor.stop_all(reason)
        await self._monitor.stop()
        await self.notifier.close()
        await self.supervisor.close()
        if self.messages is not None:
            await self.messages.close()
        if self.tools is not None:
            await self.tools.close()
        await self.knowledge.close()
        await self.policies.close()
        self.secrets.close()
        await self.store.close()
        if self.audit is not None:
            try:
                await self.audit.append(
                    type="engine.stop", action="stop", resource=str(self.data_dir), details={"reason": reason}
                )
            except SymbiError as exc:
                log.error("could not record the engine stop: %s", exc.render())
            await self.audit.close()
        self._lock.release()
        self.bus.close()
        self._open = False
        log.info("engine closed: %s", reason)

    def _require_open(self) -> None:
        if not self._open or self._closing:
            raise SymbiError(ErrorCode.RUNTIME_001, "the runtime is not open", hint="open it with Runtime.open()")

    def _tool_news(self, kind: str, d: dict[str, Any]) -> None:
        """Tool review news from the ToolService, published for the console."""
        make = TOOL_NEWS.get(kind)
        if make is not None:
            self.bus.publish(make(d))

    # -- the operator's verbs: checked, recorded, then done by the supervisor --------------

    async def create_agent(self, config: AgentConfig, *, actor: str = "operator") -> AgentInfo:
        """Register a new agent (state Created). Durable when it returns."""
        self._require_open()
        return (await self.supervisor.create(config, actor=actor)).info()

    async def update_agent(self, ref: str, config: AgentConfig, *, actor: str = "operator") -> AgentInfo:
        """Replace the configuration of an agent that is not running. Durable when it returns."""
        self._require_open()
        agent = self.agents.get(ref)
        await self.supervisor.update(agent, config, actor=actor)
        return agent.info()

    async def start_agent(self, ref: str, input: Any = None, *, actor: str = "operator") -> AgentInfo:
        """Queue the agent for execution: Initializing -> Ready -> (scheduler) -> Running.

        A Scheduled agent is armed instead: Initializing -> Waiting until its
        cron expression is due. ``input`` (JSON data) is what the agent's
        ``agent.input()`` returns.
        """
        self._require_open()
        agent = self.agents.get(ref)
        await self.supervisor.authorize(agent, "start", actor=actor)
        self.supervisor.start(agent, input)
        return agent.info()

    async def stop_agent(self, ref: str, *, actor: str = "operator") -> AgentInfo:
        """Graceful stop: SIGTERM to the process group, SIGKILL after the grace period."""
        self._require_open()
        agent = self.agents.get(ref)
        await self.supervisor.authorize(agent, "stop", actor=actor)
        await self.supervisor.stop(agent, force=False, why="stop", reason="stop requested by operator")
        return agent.info()

    async def terminate_agent(self, ref: str, *, actor: str = "operator") -> AgentInfo:
        """Immediate stop: SIGKILL to the process group."""
        self._require_open()
        agent = self.agents.get(ref)
        await self.supervisor.authorize(agent, "terminate", actor=actor)
        await self.supervisor.stop(agent, force=True, why="terminate", reason="terminated by operator")
        return agent.info()

    async def suspend_agent(
        self, ref: str, reason: str = "suspended by operator", *, actor: str = "operator"
    ) -> AgentInfo:
        self._require_open()
        agent = self.agents.get(ref)
        await self.supervisor.suspend(agent, reason, actor=actor)
        return agent.info()

    async def resume_agent(self, ref: str, *, actor: str = "operator") -> AgentInfo:
        self._require_open()
        agent = self.agents.get(ref)
        await self.supervisor.resume(agent, actor=actor)
        return agent.info()

    async def delete_agent(self, ref: str, *, actor: str = "operator") -> None:
        """Remove a stopped agent, its history, workspace and logs."""
        self._require_open()
        await self.supervisor.delete(self.agents.get(ref), actor=actor)

    # -- queries -------------------------------------------------------------

    async def list_agents(self) -> list[AgentInfo]:
        return [a.info() for a in sorted(self.agents, key=lambda a: a.created_at)]

    async def get_agent(self, ref: str) -> AgentInfo:
        return self.agents.get(ref).info()

    async def agent_history(self, ref: str) -> list[StateChange]:
        return list(self.agents.get(ref).history)

    async def agent_logs(self, ref: str, lines: int = 200) -> list[str]:
        tail = list(self.agents.get(ref).log.tail)
        return tail[-lines:] if lines else tail

    def subscribe(self, types: Iterable[type[Event]] = (), maxsize: int = 1000) -> Subscription:
        return self.bus.subscribe(types, maxsize)

    async def wait_for_state(self, ref: str, *states: AgentState, timeout: float = 30.0) -> AgentInfo:
        """Wait until the agent is in one of ``states`` (for scripts and tests)."""
        agent = self.agents.get(ref)
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
        return await self.sandboxes.adoctor()

    def _counting_tool_audit(self, append: Callable[..., Any]) -> Callable[..., Any]:
        """The tool service's audit, counting agents' calls by outcome on the way (for /metrics)."""

        async def counted(*args: Any, **fields: Any) -> Any:
            record = await append(*args, **fields)
            if fields.get("type") == "tool.call" and fields.get("action") in ("call", "result"):
                decision = fields.get("decision")
                outcome = "denied" if decision == "deny" else "error" if decision == "error" else None
                if outcome is None and fields.get("action") == "result":
                    outcome = "ok"
                if outcome is not None:
                    self.tool_calls[outcome] = self.tool_calls.get(outcome, 0) + 1
            return record

        return counted

    async def metrics(self) -> RuntimeMetrics:
        by_state: dict[str, int] = {s.value: 0 for s in AgentState}
        for agent in self.agents:
            by_state[agent.state.value] += 1
        m = self._monitor.machine
        totals = self.supervisor.resources.totals
        used = self.supervisor.resources.used()
        stats = self.supervisor.scheduler.stats()
        return RuntimeMetrics(
            data_dir=str(self.data_dir),
            mode=self.mode,
            uptime=max(0.0, self.clock.time() - self._opened_at) if self._open else 0.0,
            agents_total=len(self.agents),
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
            **self._launcher.rpc_counts(self.agents.records()),
            audit_events=self.audit.head_seq if self.audit is not None else 0,
            policy_decisions=dict(self.policies.decisions),
            tool_calls=dict(self.tool_calls),
            **self._bus_counts(),
        )

    def _bus_counts(self) -> dict[str, int]:
        if self.messages is None:
            return {}
        b = self.messages.stats()
        return {
            "bus_sent": b.sent,
            "bus_delivered": b.delivered,
            "bus_rejected": b.rejected,
            "bus_dead_letters": b.dead_letters,
        }

    async def sample_once(self) -> None:
        """Sample every running agent and the machine once; enforce limits."""
        await self._monitor.sample_once()
