"""The resource monitor: samples every running agent, publishes resource
samples, enforces limits and idle timeouts.

Each interval it asks each sandbox handle for its own stats (containers) or
samples the agent's process tree with psutil (native tiers), in a worker
thread so the event loop never blocks on /proc.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from engine.agents.model import AgentState, ExecutionMode, Usage
from engine.agents.ports import AgentControl, AgentDirectory, AgentJournal, EventSink, Recorder
from engine.agents.record import AgentRecord
from engine.agents.resources import ResourceManager
from engine.agents.sampler import LimitChecker, ProcessTreeSampler
from engine.clock import Clock
from engine.config import RuntimeConfig
from engine.errors import ErrorCode
from engine.events import MachineSample, ResourceSample, ResourceViolation

log = logging.getLogger("symbi.engine.monitor")
S = AgentState


class ResourceMonitor:
    def __init__(
        self,
        *,
        config: RuntimeConfig,
        clock: Clock,
        agents: AgentDirectory,
        control: AgentControl,
        journal: AgentJournal,
        recorder: Recorder,
        events: EventSink,
        resources: ResourceManager,
        sampler: ProcessTreeSampler,
        checker: LimitChecker,
    ) -> None:
        self.config = config
        self.clock = clock
        self.agents = agents
        self.control = control
        self.journal = journal
        self.recorder = recorder
        self.events = events
        self.resources = resources
        self.sampler = sampler
        self.checker = checker
        self.machine: MachineSample | None = None  # the last machine-wide sample
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Sample every ``monitoring_interval`` in the background until :meth:`stop`."""
        self._task = asyncio.create_task(self.loop(), name="resource-monitor")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def loop(self) -> None:
        interval = self.config.resource.monitoring_interval
        while True:
            try:
                await self.sample_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the monitor must outlive a bad sample
                log.exception("resource monitor sample failed")
            await asyncio.sleep(interval)

    async def sample_once(self) -> None:
        """Sample every running agent and the machine once; enforce limits."""
        running = [a for a in self.agents.records() if a.handle is not None]
        own: dict[str, Any] = {}
        for a in running:
            assert a.handle is not None
            sample = a.handle.sample()  # containers report their own stats
            if sample is not None:
                own[a.id] = sample
        pids = [a.pid for a in running if a.id not in own and a.pid is not None]

        def measure() -> tuple[dict[int, Any], tuple[float, int, int]]:
            return self.sampler.sample_many(pids), self.sampler.machine()

        by_pid, machine = await asyncio.to_thread(measure)
        now = self.clock.time()
        self.check_idle(now)
        for agent in running:
            sample = own.get(agent.id) or (by_pid.get(agent.pid) if agent.pid is not None else None)
            if sample is None or not sample.alive or agent.handle is None:
                continue
            agent.usage = Usage(
                cpu_percent=sample.cpu_percent,
                rss_bytes=sample.rss_bytes,
                read_bytes=sample.read_bytes,
                write_bytes=sample.write_bytes,
                num_procs=sample.num_procs,
                at=now,
            )
            agent.peak_rss = max(agent.peak_rss, sample.rss_bytes)
            limits = agent.config.resource_limits
            self.events.publish(
                ResourceSample(
                    agent_id=agent.id,
                    name=agent.config.name,
                    cpu_percent=sample.cpu_percent,
                    rss_bytes=sample.rss_bytes,
                    read_bytes=sample.read_bytes,
                    write_bytes=sample.write_bytes,
                    num_procs=sample.num_procs,
                    memory_limit_mb=limits.memory_mb,
                    cpu_limit_cores=limits.cpu_cores,
                    at=now,
                )
            )
            if self.config.resource.enforcement_enabled and agent.state in (S.RUNNING, S.WAITING):
                for resource, limit, observed in self.checker.check(
                    agent.id, sample, limits.memory_mb, limits.cpu_cores
                ):
                    await self.enforce(agent, resource, limit, observed)
        used = self.resources.used()
        totals = self.resources.totals
        self.machine = MachineSample(
            cpu_percent=machine[0],
            memory_used_bytes=machine[1],
            memory_total_bytes=machine[2],
            allocated_memory_mb=used.memory_mb,
            allocated_cpu_cores=used.cpu_cores,
            total_memory_mb=totals.memory_mb,
            total_cpu_cores=totals.cpu_cores,
            at=now,
        )
        self.events.publish(self.machine)

    def check_idle(self, now: float) -> None:
        """Persistent agents silent past their idle_timeout are suspended or terminated."""
        action = self.config.lifecycle.idle_action
        for agent in self.agents.records():
            idle = agent.config.resource_limits.idle_timeout
            if (
                idle is None
                or agent.config.execution_mode is not ExecutionMode.PERSISTENT
                or agent.state is not S.RUNNING
                or agent.handle is None
                or agent.last_activity is None
                or now - agent.last_activity < idle
            ):
                continue
            reason = f"idle_timeout of {idle:g}s passed with no heartbeat, call or output"
            agent.last_activity = now  # act once
            self.journal.log(agent, f"{reason} -> {action}")
            if action == "suspend":
                self.control.spawn(self.control.suspend(agent, reason, actor="engine"), f"idle-{agent.config.name}")
            else:
                self.control.spawn(
                    self.control.stop(agent, force=False, why="idle", reason=reason), f"idle-{agent.config.name}"
                )

    async def enforce(self, agent: AgentRecord, resource: str, limit: float, observed: float) -> None:
        action = self.config.resource.violation_action
        peak = agent.peak_rss / 1_048_576
        if resource == "memory":
            detail = f"memory limit {limit:g} MB exceeded: peak {peak:.0f} MB"
        else:
            detail = f"cpu limit {limit:g} cores exceeded: {observed:.2f} cores sustained"
        self.events.publish(
            ResourceViolation(
                agent_id=agent.id,
                name=agent.config.name,
                resource=resource,
                limit=limit,
                observed=observed,
                action=action,
            )
        )
        self.journal.log(agent, f"{ErrorCode.RESOURCE_002.value}: {detail} -> {action}")
        self.recorder.note(
            "resource.violation",
            agent,
            action,
            details={"resource": resource, "limit": limit, "observed": round(observed, 3)},
        )
        if action == "warn":
            return
        if action == "suspend":
            await self.control.suspend(agent, f"{ErrorCode.RESOURCE_002.value}: {detail}", actor="engine")
            return
        agent.kill_reason = f"{ErrorCode.RESOURCE_002.value}: {detail}"
        if agent.handle is not None:
            agent.handle.kill()
