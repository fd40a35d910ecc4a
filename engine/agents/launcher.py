"""How an agent's process is started and ended: the mechanics under the supervisor.

:meth:`Launcher.launch` makes the launch-time policy checks (recorded, allow
and deny alike), gives the agent its message-bus identity, opens its RPC
channel (requests go to the agent gate) and starts the program in its
security tier. :meth:`Launcher.wait_exit` waits for the process (killing it
past its ``execution_timeout``), cleans up its sandbox and closes its
channel. The :class:`~engine.agents.supervisor.Supervisor` decides what the
states are; this module never changes one.
"""

from __future__ import annotations

import asyncio
import secrets
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.agents.executor import Executor, LaunchSpec, ProcessHandle, kill_orphan_group
from engine.agents.ports import AgentJournal, PolicyChecker, Recorder
from engine.agents.record import AgentRecord
from engine.agents.rpc_server import AgentRpcServer, rpc_dir_for
from engine.agents.sampler import LimitChecker, ProcessTreeSampler
from engine.config import RuntimeConfig
from engine.errors import ErrorCode, SymbiError

if TYPE_CHECKING:
    from engine.comms import MessageBus
    from engine.sandbox import SandboxRegistry

# (agent, method, params) -> the answer: the agent gate's door for one request on an agent's channel
RequestHandler = Callable[[AgentRecord, str, dict[str, Any]], Awaitable[Any]]


class Launcher:
    def __init__(
        self,
        *,
        config: RuntimeConfig,
        data_dir: Path,
        journal: AgentJournal,
        recorder: Recorder,
        policies: PolicyChecker,
        sandboxes: SandboxRegistry,
        sampler: ProcessTreeSampler,
        checker: LimitChecker,
        requests: RequestHandler,
        messages: Callable[[], MessageBus | None],
        engine_label: str,
        sdk_dir: Path | None,
        executor: Executor | None = None,
    ) -> None:
        self.config = config
        self.data_dir = data_dir
        self.journal = journal
        self.recorder = recorder
        self.policies = policies
        self.sandboxes = sandboxes
        self.sampler = sampler
        self.checker = checker
        self.requests = requests
        self.messages = messages
        self.engine_label = engine_label
        self.sdk_dir = sdk_dir
        self.executor_override = executor  # overrides the tiers (tests, embedding)
        self.rpc_closed: tuple[int, int, int] = (0, 0, 0)  # requests, errors, resets of closed agent sockets

    def executor_for(self, agent: AgentRecord) -> tuple[Executor, str | None]:
        """The executor for the agent's tier, and a note when it is a fallback.

        An executor passed to the constructor overrides the tiers (tests, embedding)."""
        if self.executor_override is not None:
            return self.executor_override, None
        return self.sandboxes.executor_for(agent.config.security_tier)

    async def launch(self, agent: AgentRecord, pool: str) -> tuple[ProcessHandle, AgentRpcServer, str | None]:
        """Start the agent's program: its process handle, its RPC channel, and a note when its tier
        fell back. ``SymbiError`` (a denial, an unavailable tier) or ``OSError`` when it could not
        be started; the channel is closed then."""
        agent_dir = self.data_dir / "agents" / agent.id
        token = secrets.token_urlsafe(24)
        rpc = AgentRpcServer(
            rpc_dir_for(self.data_dir, agent.id),
            token,
            lambda method, params: self.requests(agent, method, params),
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
            allocation = ("ResourceAllocation", pool, "Allocate")
            details = {**wants, "pool": pool}
            await self._grant(
                agent, allocation, ("resource.allocate", "allocate"), "resource allocation", details, wants
            )
            if any(c.lower() == "network" for c in agent.config.capabilities):
                network = ("Network", "*", "Connect")
                await self._grant(agent, network, ("sandbox.grant", "network"), "network access", {})
            executor, fallback_note = self.executor_for(agent)
            await self.join_bus(agent)
            await rpc.start()
            spec = LaunchSpec(
                agent_id=agent.id,
                name=agent.config.name,
                program=agent_dir / "agent.py",
                workspace=agent_dir / "workspace",
                limits=agent.config.resource_limits,
                capabilities=agent.config.capabilities,
                rpc_dir=rpc.rpc_dir,
                sdk_dir=self.sdk_dir,
                env={"SYMBI_RPC_TOKEN": token},
                labels={"symbi.engine": self.engine_label, "symbi.agent_id": agent.id},
            )
            handle = await executor.launch(spec, lambda stream, line: self.journal.output(agent, stream, line))
        except (SymbiError, OSError):
            await rpc.close()
            raise
        return handle, rpc, fallback_note

    async def _grant(
        self,
        agent: AgentRecord,
        access: tuple[str, str, str],
        event: tuple[str, str],
        what: str,
        details: dict[str, Any],
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """One launch-time policy check on ``access`` (resource type, path, operation), recorded as
        ``event`` (type, action), allow and deny alike, before anything is granted."""
        decision, request = self.policies.check(agent, *access, metadata=metadata)
        await self.recorder.record(
            event[0],
            agent,
            event[1],
            actor="engine",
            decision="allow" if decision.allowed else "deny",
            details={**details, "policy": decision.policy, "policy_request": request},
        )
        if not decision.allowed:
            raise self.policies.denied(decision, what, agent.config.name)

    async def wait_exit(self, agent: AgentRecord, handle: ProcessHandle) -> int:
        """Wait for the process to exit (past its execution_timeout: kill it, setting
        ``kill_reason``), clean up its sandbox and close its channel; its exit code."""
        timeout = agent.config.resource_limits.execution_timeout
        try:
            if timeout is not None:
                rc = await asyncio.wait_for(asyncio.shield(handle.wait()), timeout)
            else:
                rc = await handle.wait()
        except TimeoutError:
            agent.kill_reason = f"{ErrorCode.RESOURCE_002.value}: execution_timeout of {timeout:g}s exceeded"
            self.journal.log(agent, agent.kill_reason)
            await self.kill_gracefully(agent, handle)
            rc = await handle.wait()
        detail = handle.exit_detail()
        if detail and agent.kill_reason is None and agent.stop_requested is None:
            agent.kill_reason = detail
        if handle.pid is not None:
            self.sampler.forget(handle.pid)
        self.checker.reset(agent.id)
        try:
            await handle.cleanup()
        except Exception as exc:  # noqa: BLE001 - cleanup trouble must not lose the exit
            self.journal.log(agent, f"sandbox cleanup failed: {exc}")
        if agent.rpc is not None:
            await agent.rpc.close()
            self.rpc_closed = _add_rpc_counts(self.rpc_closed, agent.rpc)
            agent.rpc = None
        agent.handle = None
        return rc

    async def kill_gracefully(self, agent: AgentRecord, handle: ProcessHandle) -> None:
        """SIGTERM, and SIGKILL if the process is still there after ``termination_timeout``."""
        grace = self.config.lifecycle.termination_timeout
        handle.signal(signal.SIGTERM)
        handle.signal(signal.SIGCONT)  # a suspended agent must run to handle SIGTERM
        try:
            await asyncio.wait_for(asyncio.shield(handle.wait()), grace)
        except TimeoutError:
            self.journal.log(agent, f"no exit {grace:g}s after SIGTERM; sending SIGKILL")
            handle.signal(signal.SIGKILL)

    # -- what a dead engine left -----------------------------------------------------------

    async def reap(self, agent: AgentRecord) -> str:
        """Remove what a previous engine's run of the agent left (process, container, cgroup); what was found."""
        if agent.sandbox_ref:
            left = await self.sandboxes.reap(agent.sandbox_ref)
            where = f"process {agent.pid}" if agent.pid else "its sandbox"
            return f"what it left was cleaned up: {left}" if left else f"{where} was already gone"
        if agent.pid is not None:
            killed = kill_orphan_group(agent.pid, agent.pid_started)
            return (
                f"its orphan process {agent.pid} was killed" if killed else f"its process {agent.pid} was already gone"
            )
        return "it had not been launched"

    async def reap_labelled(self) -> list[str]:
        """Remove containers and cgroups labelled for this engine; what was removed."""
        return await self.sandboxes.reap_all_labelled(self.engine_label)

    # -- the message bus ---------------------------------------------------------------------

    async def rejoin_bus(self, agents: list[AgentRecord]) -> None:
        """Agents that ran before (they have bus keys) can be messaged while stopped."""
        bus = self.messages()
        if bus is None:
            return
        keyed = [a.id for a in agents if bus.keys.exists(a.id)]
        await asyncio.to_thread(lambda: [bus.keys.identity(i) for i in keyed])
        for agent_id in keyed:
            bus.register(agent_id)

    async def join_bus(self, agent: AgentRecord) -> None:
        """Give the agent its bus identity before its first run (key files are
        created and fsynced in a worker thread, never on the event loop)."""
        bus = self.messages()
        if bus is None or bus.is_registered(agent.id):
            return
        await asyncio.to_thread(bus.keys.identity, agent.id)
        bus.register(agent.id)

    async def leave_bus(self, agent: AgentRecord) -> None:
        bus = self.messages()
        if bus is not None and bus.is_registered(agent.id):
            await bus.unregister(agent.id)

    def rpc_counts(self, agents: list[AgentRecord]) -> dict[str, int]:
        """Agent-protocol requests, errors and resets over every run since the engine opened."""
        totals = self.rpc_closed
        for agent in agents:
            if agent.rpc is not None:
                totals = _add_rpc_counts(totals, agent.rpc)
        return {"rpc_requests": totals[0], "rpc_errors": totals[1], "rpc_resets": totals[2]}


def _add_rpc_counts(totals: tuple[int, int, int], rpc: AgentRpcServer) -> tuple[int, int, int]:
    return (totals[0] + rpc.requests, totals[1] + rpc.errors, totals[2] + rpc.resets)
