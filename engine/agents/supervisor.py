"""The agent lifecycle: from create to delete, and every run in between.

:class:`Supervisor` owns what happens to agents over time:

- the operator's verbs once checked and recorded (:meth:`~Supervisor.authorize`):
  create, start, stop, suspend, resume, delete;
- a run: start -> Initializing -> Ready -> the scheduler admits it (resources
  allocated) and dispatches it -> :meth:`~Supervisor.launch` -> Running ->
  :meth:`~Supervisor.watch` waits for the exit and settles the state
  (Completed, Terminated, Failed);
- what comes next: auto-recovery restarts with backoff, Scheduled agents
  armed (Waiting) until their cron expression is due;
- stopping: SIGTERM, then SIGKILL after the grace period;
- engine start (:meth:`~Supervisor.reconcile` agents a dead engine left
  active) and shutdown (:meth:`~Supervisor.stop_all`).

It depends on the ports (:mod:`engine.agents.ports`) and the agent
components, never on the runtime. State changes and log lines go through the
:class:`~engine.agents.journal.Journal`; how a process is started and ended
(policy checks, sandbox, RPC channel, signals) is the
:class:`~engine.agents.launcher.Launcher`'s.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from engine.agents.cron import CronExpr
from engine.agents.executor import ProcessHandle, describe_exit
from engine.agents.journal import Journal
from engine.agents.launcher import Launcher
from engine.agents.lifecycle import check_action
from engine.agents.logfile import AgentLogFile
from engine.agents.model import AgentConfig, AgentState, ExecutionMode, StateChange, new_agent_id
from engine.agents.ports import EventSink, Recorder
from engine.agents.record import AgentRecord, AgentTable
from engine.agents.resources import ResourceManager, ResourceTotals
from engine.agents.scheduler import LoadBalancingStrategy, PoolSpec, Scheduler, Task
from engine.agents.store import AgentStore
from engine.clock import Clock
from engine.config import RuntimeConfig
from engine.errors import ErrorCode, SymbiError
from engine.events import AgentCreated, AgentDeleted, AgentStateChanged

log = logging.getLogger("symbi.engine")
S = AgentState
MAX_INPUT_BYTES = 1_048_576


class Supervisor:
    def __init__(
        self,
        *,
        config: RuntimeConfig,
        data_dir: Path,
        clock: Clock,
        agents: AgentTable,
        store: AgentStore,
        journal: Journal,
        recorder: Recorder,
        events: EventSink,
        launcher: Launcher,
    ) -> None:
        self.config = config
        self.data_dir = data_dir
        self.clock = clock
        self.agents = agents
        self.store = store
        self.journal = journal
        self.recorder = recorder
        self.events = events
        self.launcher = launcher
        rc = config.resource
        self.resources = ResourceManager(
            ResourceTotals.from_machine(
                memory_mb=rc.total_memory_mb,
                cpu_cores=rc.total_cpu_cores,
                disk_io_mbps=rc.total_disk_io_mbps,
                network_io_mbps=rc.total_network_io_mbps,
            ),
            rc.reservation_percentage / 100.0,  # config: percent; manager: fraction
        )
        sc = config.scheduler
        self.scheduler = Scheduler(
            max_concurrent=sc.max_concurrent_tasks,
            pools=[PoolSpec(p.name, p.capacity, p.weight) for p in sc.pools],
            strategy=LoadBalancingStrategy.parse(sc.load_balancing_strategy),
            aging_interval=sc.aging_interval,
            clock=clock,
            admit=self.admit,
            dispatch=self.dispatch,
            max_queue=sc.max_queue_size,
        )
        self.closing = False  # set at shutdown: no restart, no scheduled run, no suspend
        self._bg: set[asyncio.Task[Any]] = set()

    # -- the operator's verbs ------------------------------------------------------------

    async def authorize(self, agent: AgentRecord, action: str, *, actor: str = "operator", reason: str = "") -> None:
        """Check an action is legal now, record it durably, and check again
        (another call may have changed the agent while the record was written)."""
        check_action(action, agent.state, agent=agent.config.name)
        await self.recorder.record(
            f"agent.{action}", agent, action, actor=actor, details={"reason": reason} if reason else None
        )
        check_action(action, agent.state, agent=agent.config.name)

    async def create(self, config: AgentConfig, *, actor: str = "operator") -> AgentRecord:
        """Register a new agent (state Created). Durable when it returns."""
        config = config.validate()
        if self.agents.has_name(config.name):
            raise SymbiError(
                ErrorCode.AGENT_006,
                "an agent with this name already exists",
                offending=config.name,
                hint="choose another name or delete the existing agent",
            )
        max_agents = self.config.lifecycle.max_agents
        if len(self.agents) >= max_agents:
            raise SymbiError(
                ErrorCode.AGENT_003,
                f"the runtime already manages {len(self.agents)} agents (max_agents = {max_agents})",
                offending=config.name,
                hint="delete finished agents or raise lifecycle.max_agents (SYMBI_MAX_AGENTS)",
            )
        self.check_fits(config)
        agent_id = new_agent_id()
        await self.recorder.record(
            "agent.create",
            None,
            "create",
            actor=actor,
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
        if self.agents.has_name(config.name):  # created meanwhile by a concurrent call
            raise SymbiError(ErrorCode.AGENT_006, "an agent with this name already exists", offending=config.name)
        now = self.clock.time()
        agent = AgentRecord(
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
        self.agents.add(agent)
        try:
            await self.store.insert(agent.to_stored())
        except BaseException:
            self.agents.remove(agent)
            raise
        self.events.publish(AgentCreated(agent_id=agent_id, name=config.name))
        self.events.publish(
            AgentStateChanged(agent_id=agent_id, name=config.name, old=None, new=S.CREATED, reason="created")
        )
        return agent

    def check_fits(self, config: AgentConfig) -> None:
        """Refuse limits that could never be admitted on this runtime."""
        limits = config.resource_limits
        if self.resources.fits_at_all(limits):
            return
        cap = self.resources.capacity
        raise SymbiError(
            ErrorCode.RESOURCE_001,
            f"limits exceed what this runtime can ever allocate: memory {limits.memory_mb} MB of {cap.memory_mb} MB, "
            f"cpu {limits.cpu_cores:g} of {cap.cpu_cores:g} cores, disk {limits.disk_io_mbps} of "
            f"{cap.disk_io_mbps} MB/s, network {limits.network_io_mbps} of {cap.network_io_mbps} MB/s",
            offending=config.name,
            hint="lower the agent's resource_limits or raise resource.total_* in the config",
        )

    def start(self, agent: AgentRecord, input: Any = None, *, reason: str = "start requested") -> None:
        """Queue the agent (or arm a Scheduled one) with ``input`` as what ``agent.input()`` returns."""
        if input is not None:
            try:
                encoded = json.dumps(input)
            except (TypeError, ValueError) as exc:
                raise SymbiError(
                    ErrorCode.AGENT_004, f"agent input is not JSON data: {exc}", offending=agent.config.name
                ) from None
            if len(encoded) > MAX_INPUT_BYTES:
                raise SymbiError(ErrorCode.AGENT_004, "agent input is over 1 MiB", offending=agent.config.name)
            agent.input = input
            self.journal.persist(agent, input=encoded)
        if agent.restart_task is not None:
            agent.restart_task.cancel()
            agent.restart_task = None
        agent.restart_count = 0
        self.begin(agent, reason)

    async def suspend(self, agent: AgentRecord, reason: str, *, actor: str) -> None:
        if self.closing:
            raise SymbiError(ErrorCode.RUNTIME_001, "the runtime is not open", hint="open it with Runtime.open()")
        await self.authorize(agent, "suspend", actor=actor, reason=reason)
        if agent.handle is not None:
            await agent.handle.suspend()
        self.journal.transition(agent, S.SUSPENDED, reason)

    async def update(self, agent: AgentRecord, config: AgentConfig, *, actor: str = "operator") -> None:
        """Replace the configuration of an agent that is not running (its name may change to a free one).
        Recorded first (what changed, never the program text); durable when it returns."""
        check_action("update", agent.state, agent=agent.config.name)
        config = config.validate()
        old = agent.config
        if config.name != old.name and self.agents.has_name(config.name):
            raise SymbiError(
                ErrorCode.AGENT_006,
                "an agent with this name already exists",
                offending=config.name,
                hint="choose another name or delete the existing agent",
            )
        self.check_fits(config)
        changed = sorted(k for k, v in config.to_dict().items() if old.to_dict().get(k) != v)
        await self.recorder.record(
            "agent.update",
            agent,
            "update",
            actor=actor,
            details={
                "changed": changed,
                "name": config.name,
                "program_sha256": hashlib.sha256(config.dsl_source.encode()).hexdigest(),
            },
        )
        check_action("update", agent.state, agent=old.name)  # it may have been started meanwhile
        self.agents.remove(agent)
        agent.config = config
        self.agents.add(agent)
        agent.updated_at = self.clock.time()
        self.journal.persist(agent, name=config.name, config=json.dumps(config.to_dict()), updated_at=agent.updated_at)
        await self.store.flush()

    async def resume(self, agent: AgentRecord, *, actor: str = "operator") -> None:
        await self.authorize(agent, "resume", actor=actor)
        if agent.handle is not None:
            await agent.handle.resume()
        self.journal.transition(agent, S.RUNNING, "resumed by operator")

    async def delete(self, agent: AgentRecord, *, actor: str = "operator") -> None:
        """Remove a stopped agent, its history, workspace and logs."""
        await self.authorize(agent, "delete", actor=actor)
        if agent.restart_task is not None:
            agent.restart_task.cancel()
        await self.store.delete(agent.id)
        agent.log.close()
        self.agents.remove(agent)
        shutil.rmtree(self.data_dir / "agents" / agent.id, ignore_errors=True)
        await self.launcher.leave_bus(agent)
        self.events.publish(AgentDeleted(agent_id=agent.id, name=agent.config.name))

    # -- one run: begin, schedule, launch, watch -------------------------------------------

    def begin(self, agent: AgentRecord, reason: str) -> None:
        self.check_fits(agent.config)
        agent.stop_requested = None
        agent.kill_reason = None
        agent.exit_code = None
        agent.peak_rss = 0
        self.journal.transition(agent, S.INITIALIZING, reason, persist_fields={"restart_count": agent.restart_count})
        try:
            workspace = self.data_dir / "agents" / agent.id / "workspace"
            workspace.mkdir(parents=True, exist_ok=True)
            program = self.data_dir / "agents" / agent.id / "agent.py"
            tmp = program.with_suffix(".py.tmp")
            tmp.write_text(agent.config.dsl_source, encoding="utf-8")
            os.replace(tmp, program)
        except OSError as exc:
            self.journal.fail(agent, f"could not prepare the workspace: {exc.strerror or exc}")
            return
        if agent.config.execution_mode is ExecutionMode.SCHEDULED:
            self.arm(agent)
            return
        self.journal.transition(agent, S.READY, "queued for execution")
        self.submit(agent)

    def submit(self, agent: AgentRecord) -> None:
        limits = agent.config.resource_limits
        try:
            self.scheduler.submit(
                agent.id, agent.config.priority, agent, cpu_cores=limits.cpu_cores, memory_mb=limits.memory_mb
            )
        except SymbiError as exc:
            self.journal.fail(agent, exc.render())
            raise

    def admit(self, task: Task) -> bool:
        """The scheduler's admission check: allocate the agent's resources, or keep it queued."""
        agent: AgentRecord = task.payload
        try:
            self.resources.allocate(agent.id, agent.config.resource_limits)
        except SymbiError as exc:
            if exc.code is ErrorCode.RESOURCE_003:
                return True  # already holds its allocation
            if agent.last_error != exc.message:
                agent.last_error = exc.message
                self.journal.log(agent, f"waiting for resources: {exc.message}")
            return False
        return True

    def dispatch(self, task: Task, pool: str) -> None:
        agent: AgentRecord = task.payload
        self.spawn(self.launch(agent, pool), f"launch-{agent.config.name}")

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        self._bg.add(task)
        task.add_done_callback(self._bg.discard)
        return task

    def finish_slot(self, agent: AgentRecord) -> None:
        if self.resources.release(agent.id) is not None:
            self.recorder.note("resource.release", agent, "release")
        self.scheduler.complete(agent.id)
        self.scheduler.notify()

    async def launch(self, agent: AgentRecord, pool: str) -> None:
        """The scheduler dispatched the agent to ``pool``: launch it (unless it was stopped
        meanwhile), make it Running and watch for its exit."""
        if agent.state is not S.READY:
            self.finish_slot(agent)
            return
        agent.launching = True
        agent.launched.clear()
        try:
            await self._launch(agent, pool)
        finally:
            agent.launching = False
            agent.launched.set()

    async def _launch(self, agent: AgentRecord, pool: str) -> None:
        try:
            handle, rpc, fallback_note = await self.launcher.launch(agent, pool)
        except SymbiError as exc:
            self.finish_slot(agent)
            if agent.state is S.READY:
                self.journal.fail(agent, exc.render())
            return
        except OSError as exc:
            self.finish_slot(agent)
            if agent.state is S.READY:
                self.journal.fail(agent, f"{ErrorCode.AGENT_005.value}: could not launch: {exc.strerror or exc}")
            return
        if fallback_note:
            self.journal.log(agent, fallback_note)
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
            self.journal.transition(
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
            self.journal.log(agent, f"started {where} in tier {handle.tier}")
        agent.watcher = self.spawn(self.watch(agent, handle), f"watch-{agent.config.name}")

    async def watch(self, agent: AgentRecord, handle: ProcessHandle) -> None:
        """Wait for the run to end (or its execution_timeout), clean up, and settle the state."""
        rc = await self.launcher.wait_exit(agent, handle)
        agent.exit_code = rc
        agent.finished_at = self.clock.time()
        self.finish_slot(agent)
        outcome = describe_exit(rc)
        self.journal.log(agent, f"process {outcome}")
        fields = {"pid": None, "exit_code": rc, "finished_at": agent.finished_at, "sandbox_ref": None}
        agent.pid = None
        agent.sandbox_ref = None
        if agent.stop_requested is not None and agent.kill_reason is None:
            self.journal.transition(
                agent, S.TERMINATED, f"{agent.stop_requested}: process {outcome}", persist_fields=fields
            )
            return
        if agent.kill_reason is not None:
            self.journal.fail(agent, agent.kill_reason, exit_code=rc)
            return  # enforcement kills are not auto-restarted: they would repeat
        if rc == 0 and agent.state is S.RUNNING:
            mode = agent.config.execution_mode
            if mode is ExecutionMode.SCHEDULED:
                self.journal.persist(agent, **fields)
                self.arm(agent)
                return
            why = "completed" if mode is ExecutionMode.EPHEMERAL else f"{mode.value.lower()} agent exited"
            self.journal.transition(agent, S.COMPLETED, f"{why}: {outcome}", persist_fields=fields)
            if agent.config.restart_policy == "always":
                self.maybe_restart(agent)
            return
        agent.exit_code = rc
        self.journal.fail(agent, f"agent program {outcome}", exit_code=rc)
        self.maybe_restart(agent)

    # -- what comes next: restarts and scheduled runs --------------------------------------------

    def maybe_restart(self, agent: AgentRecord) -> None:
        lc = self.config.lifecycle
        if not lc.enable_auto_recovery or self.closing or agent.config.restart_policy == "never":
            return
        if agent.restart_count >= lc.max_restart_attempts:
            msg = f"restart budget exhausted ({agent.restart_count}/{lc.max_restart_attempts}); left Failed"
            agent.last_error = f"{agent.last_error}; {msg}"
            self.journal.persist(agent, last_error=agent.last_error)
            self.journal.log(agent, msg)
            return
        delay = min(lc.restart_backoff_base * (2**agent.restart_count), lc.restart_backoff_max)
        self.journal.log(
            agent, f"restarting in {delay:g}s (attempt {agent.restart_count + 1}/{lc.max_restart_attempts})"
        )
        agent.restart_task = self.spawn(self._restart_later(agent, delay), f"restart-{agent.config.name}")

    async def _restart_later(self, agent: AgentRecord, delay: float) -> None:
        await self.clock.sleep(delay)
        agent.restart_task = None
        if agent.state not in (S.FAILED, S.COMPLETED) or self.closing:
            return
        agent.restart_count += 1
        try:
            self.begin(
                agent, f"auto-recovery restart {agent.restart_count}/{self.config.lifecycle.max_restart_attempts}"
            )
        except SymbiError as exc:
            self.journal.log(agent, f"auto-recovery failed: {exc.render()}")

    def arm(self, agent: AgentRecord) -> None:
        """Put a Scheduled agent in Waiting until its next run."""
        assert agent.config.schedule is not None
        agent.next_run = CronExpr.parse(agent.config.schedule).next_after(self.clock.time())
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(agent.next_run))
        self.journal.transition(agent, S.WAITING, f"scheduled ({agent.config.schedule}); next run {when}")
        if agent.schedule_task is not None:
            agent.schedule_task.cancel()
        agent.schedule_task = self.spawn(self._run_when_due(agent), f"schedule-{agent.config.name}")

    async def _run_when_due(self, agent: AgentRecord) -> None:
        assert agent.next_run is not None
        await self.clock.sleep(max(0.0, agent.next_run - self.clock.time()))
        agent.schedule_task = None
        if agent.state is not S.WAITING or self.closing:
            return
        agent.next_run = None
        self.journal.transition(agent, S.READY, "scheduled run due")
        try:
            self.submit(agent)
        except SymbiError as exc:
            self.journal.log(agent, f"scheduled run refused: {exc.render()}")

    # -- stopping ------------------------------------------------------------------------

    async def stop(self, agent: AgentRecord, *, force: bool, why: str, reason: str) -> None:
        """Stop the agent (``why``: stop, terminate, shutdown, idle): Terminating, then Terminated
        once its process has exited. ``force``: SIGKILL now, else SIGTERM and SIGKILL after the grace."""
        agent.stop_requested = why
        if agent.schedule_task is not None:
            agent.schedule_task.cancel()
            agent.schedule_task = None
            agent.next_run = None
        if agent.state is not S.TERMINATING:
            self.journal.transition(agent, S.TERMINATING, reason)
        if agent.launching:
            await agent.launched.wait()  # the launch sees Terminating and kills what it started
        if agent.handle is None:
            if agent.watcher is not None and not agent.watcher.done():
                await asyncio.shield(agent.watcher)
                return
            self.scheduler.cancel(agent.id)
            self.resources.release(agent.id)
            self.scheduler.notify()
            if agent.state is S.TERMINATING:
                self.journal.transition(agent, S.TERMINATED, f"{why}: no process was running")
            return
        handle = agent.handle
        if force:
            handle.kill()
        else:
            await self.launcher.kill_gracefully(agent, handle)
        if agent.watcher is not None:
            await asyncio.shield(agent.watcher)

    async def stop_all(self, reason: str) -> None:
        """Shutdown: no more restarts or scheduled runs; stop every active agent and wait for the exits."""
        self.closing = True
        for agent in self.agents:
            if agent.restart_task is not None:
                agent.restart_task.cancel()
            if agent.schedule_task is not None:
                agent.schedule_task.cancel()
        active = [a for a in self.agents if a.state.is_active and a.state is not S.TERMINATING]
        await asyncio.gather(
            *(self.stop(a, force=False, why="shutdown", reason=reason) for a in active),
            return_exceptions=True,
        )
        # agents already terminating finish on their own
        watchers = [a.watcher for a in self.agents if a.watcher is not None]
        if watchers:
            await asyncio.wait(watchers, timeout=self.config.lifecycle.termination_timeout + 5)

    async def close(self) -> None:
        """After :meth:`stop_all`: cancel what is left in the background, close the scheduler and
        the logs, remove any sandbox still labelled for this engine."""
        for task in list(self._bg):
            task.cancel()
        await self.scheduler.close()
        for agent in self.agents:
            agent.log.close()
        try:
            for line in await self.launcher.reap_labelled():
                log.warning("removed a leftover sandbox at shutdown: %s", line)
        except Exception:  # noqa: BLE001 - shutdown goes on
            log.exception("sandbox cleanup at shutdown failed")

    # -- engine start --------------------------------------------------------------------

    async def load(self) -> None:
        """Adopt every agent the registry holds (the store is open)."""
        for stored in await self.store.load():
            logfile = AgentLogFile(
                self.data_dir / "agents" / stored.id / "agent.log", self.config.resource.log_max_bytes
            )
            self.agents.add(AgentRecord.from_stored(stored, logfile))

    async def reconcile(self) -> None:
        """Make the states of agents left active by a dead engine truthful, and
        remove whatever they left running (processes, containers, cgroups)."""
        for agent in self.agents:
            if not agent.state.is_active:
                continue
            was = agent.state.value
            what = await self.launcher.reap(agent)
            target = S.TERMINATED if agent.state is S.TERMINATING else S.FAILED
            reason = f"engine stopped unexpectedly while the agent was {was}; {what}"
            agent.last_error = reason if target is S.FAILED else agent.last_error
            agent.finished_at = agent.finished_at or self.clock.time()
            agent.pid = None
            agent.sandbox_ref = None
            self.journal.transition(
                agent, target, reason, persist_fields={"pid": None, "sandbox_ref": None, "last_error": agent.last_error}
            )
        for line in await self.launcher.reap_labelled():
            log.warning("removed a leftover of a previous engine: %s", line)

    async def resume_interrupted(self) -> list[str]:
        """At engine start (after :meth:`reconcile`): what the last engine stopped comes back. A
        Scheduled agent is armed again; an agent with ``restart_policy = "always"`` that was running
        is started again. Each is recorded (actor ``engine``). The names resumed."""
        resumed: list[str] = []
        for agent in self.agents:
            last = agent.history[-1] if agent.history else None
            if agent.state.is_active or last is None or not _interrupted(last.reason):
                continue
            scheduled = agent.config.execution_mode is ExecutionMode.SCHEDULED
            if not scheduled and agent.config.restart_policy != "always":
                continue
            why = "re-armed at engine start" if scheduled else "resumed at engine start (restart_policy always)"
            try:
                await self.authorize(agent, "start", actor="engine", reason=why)
                self.start(agent, agent.input, reason=why)
            except SymbiError as exc:
                self.journal.log(agent, f"not resumed: {exc.render()}")
                continue
            resumed.append(agent.config.name)
        return resumed

    # -- tool calls waiting for a human -----------------------------------------------------

    def tool_wait_start(self, agent: AgentRecord, pending: Any) -> None:
        """A tool call waits for a human: the agent is Waiting meanwhile."""
        if agent.state is S.RUNNING:
            self.journal.transition(agent, S.WAITING, f"waiting for a human to approve a call of {pending.tool_id}")

    def tool_wait_end(self, agent: AgentRecord, pending: Any) -> None:
        if agent.state is S.WAITING and agent.handle is not None:
            self.journal.transition(agent, S.RUNNING, f"tool call approval decided ({pending.tool_id})")


def _interrupted(reason: str) -> bool:
    """Whether a final state change says the engine, not the agent or the operator, ended the run:
    a clean engine shutdown, or an engine that died (see :meth:`Supervisor.reconcile`)."""
    return reason.startswith("shutdown:") or reason.startswith("engine stopped unexpectedly")
