"""What the engine brings back when it starts, and restart policies (Docker's never, on-failure, always).

A Scheduled agent is armed again; an agent with ``restart_policy = "always"`` that the last
engine stopped while it ran (cleanly, or by dying) is started again; every other agent keeps the
state the last engine left. Each resumption is recorded with the engine as actor.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from engine.agents.model import AgentState, ExecutionMode
from engine.audit import AuditFilter
from engine.errors import ErrorCode, SymbiError
from engine.runtime import Runtime
from tests.helpers import ROOT, agent, fast_config

S = AgentState
LOOP = "import time\nwhile True:\n    time.sleep(0.2)\n"
SMALL = {"cpu_cores": 0.25, "memory_mb": 64}  # several run at once on a 2-core machine


async def test_always_agents_come_back_scheduled_ones_are_rearmed_the_rest_stay_down(tmp_path):
    data = tmp_path / "data"
    async with Runtime.open(fast_config(), data) as rt:
        await rt.create_agent(
            agent(
                "keeper",
                limit_fields=SMALL,
                source=LOOP,
                execution_mode=ExecutionMode.PERSISTENT,
                restart_policy="always",
            )
        )
        await rt.create_agent(agent("plain", limit_fields=SMALL, source=LOOP, execution_mode=ExecutionMode.PERSISTENT))
        await rt.create_agent(
            agent(
                "nightly",
                limit_fields=SMALL,
                execution_mode=ExecutionMode.SCHEDULED,
                schedule="0 2 * * *",
                restart_policy="never",
            )
        )
        await rt.create_agent(agent("stopped", limit_fields=SMALL, source=LOOP, restart_policy="always"))
        for name in ("keeper", "plain", "stopped"):
            await rt.start_agent(name)
            await rt.wait_for_state(name, S.RUNNING)
        await rt.start_agent("nightly")
        await rt.wait_for_state("nightly", S.WAITING)
        await rt.stop_agent("stopped")  # the operator stopped this one: it stays stopped
    async with Runtime.open(fast_config(), data) as rt:
        keeper = await rt.wait_for_state("keeper", S.RUNNING, timeout=30)
        assert keeper.pid is not None
        nightly = await rt.wait_for_state("nightly", S.WAITING, timeout=30)
        assert nightly.next_run is not None
        assert (await rt.get_agent("plain")).state is S.TERMINATED
        assert (await rt.get_agent("stopped")).state is S.TERMINATED
        history = [c.reason for c in await rt.agent_history("keeper")]
        assert any("resumed at engine start" in r for r in history)
        records = await rt.audit.query(AuditFilter(types=("agent.start",), actor="engine"))
        assert sorted(r.resource for r in records) == ["keeper", "nightly"]


async def test_resume_can_be_switched_off(tmp_path):
    data = tmp_path / "data"
    async with Runtime.open(fast_config(), data) as rt:
        await rt.create_agent(agent("keeper", limit_fields=SMALL, source=LOOP, restart_policy="always"))
        await rt.start_agent("keeper")
        await rt.wait_for_state("keeper", S.RUNNING)
    async with Runtime.open(fast_config(lifecycle={"resume_on_start": False}), data) as rt:
        await asyncio.sleep(0.3)
        assert (await rt.get_agent("keeper")).state is S.TERMINATED


ENGINE = textwrap.dedent(
    """
    import asyncio, sys
    from engine.runtime import Runtime
    from engine.agents.model import AgentState, ExecutionMode
    from tests.helpers import agent, fast_config

    async def main():
        rt = await Runtime.open(fast_config(), sys.argv[1])
        await rt.create_agent(agent("keeper", limit_fields={"cpu_cores": 0.25}, source="import time\\ntime.sleep(3600)\\n",
                                    execution_mode=ExecutionMode.PERSISTENT, restart_policy="always"))
        await rt.start_agent("keeper")
        info = await rt.wait_for_state("keeper", AgentState.RUNNING)
        await rt.store.flush()
        print("RUNNING", info.pid, flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())
    """
)


async def test_an_always_agent_is_running_again_after_the_engine_is_killed_and_started(tmp_path):
    data = tmp_path / "data"
    proc = subprocess.Popen([sys.executable, "-c", ENGINE, str(data)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("RUNNING"), line
        old_pid = int(line.split()[1])
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        async with Runtime.open(fast_config(), data) as rt:
            keeper = await rt.wait_for_state("keeper", S.RUNNING, timeout=30)
            assert keeper.pid is not None and keeper.pid != old_pid
            reasons = [c.reason for c in await rt.agent_history("keeper")]
            assert any(r.startswith("engine stopped unexpectedly") for r in reasons)
            assert "resumed at engine start (restart_policy always)" in " ".join(reasons)
    finally:
        if proc.poll() is None:
            proc.kill()


async def test_never_does_not_restart_a_failed_run_and_always_restarts_a_clean_exit(tmp_path):
    async with Runtime.open(fast_config(), tmp_path / "data") as rt:
        await rt.create_agent(
            agent("fails", limit_fields=SMALL, source="import sys\nsys.exit(3)\n", restart_policy="never")
        )
        await rt.start_agent("fails")
        failed = await rt.wait_for_state("fails", S.FAILED)
        await asyncio.sleep(0.5)  # longer than the test config's restart backoff
        assert (await rt.get_agent("fails")).restart_count == failed.restart_count == 0
        await rt.create_agent(agent("again", limit_fields=SMALL, source="print('run')\n", restart_policy="always"))
        await rt.start_agent("again")
        async with asyncio.timeout(20):
            while sum("run" == line.split()[-1] for line in await rt.agent_logs("again")) < 2:
                await asyncio.sleep(0.05)


def test_an_unknown_restart_policy_is_refused():
    with pytest.raises(SymbiError) as err:
        agent("x", limit_fields=SMALL, restart_policy="sometimes").validate()
    assert err.value.code is ErrorCode.AGENT_004 and err.value.offending == "sometimes"
    assert agent("x", limit_fields=SMALL, restart_policy="On_Failure").validate().restart_policy == "on-failure"
