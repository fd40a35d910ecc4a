"""The runtime driven for real: SQLite registry, real child processes."""

from __future__ import annotations

import asyncio
import os
import signal

import psutil
import pytest

from engine.agents.model import AgentState, ExecutionMode, Priority, ResourceLimits
from engine.errors import ErrorCode, SymbiError
from engine.events import AgentLog, AgentStateChanged, ResourceSample, ResourceViolation
from engine.runtime import Runtime
from tests.helpers import agent, fast_config, until, wait_for_log

S = AgentState


@pytest.fixture
async def rt(tmp_path):
    async with Runtime.open(fast_config(), tmp_path / "data") as runtime:
        yield runtime


async def test_create_persists_and_refuses_duplicates(rt):
    info = await rt.create_agent(agent("alpha"))
    assert info.state is S.CREATED
    assert (await rt.get_agent("alpha")).id == info.id
    with pytest.raises(SymbiError) as err:
        await rt.create_agent(agent("alpha"))
    assert err.value.code is ErrorCode.AGENT_006
    with pytest.raises(SymbiError) as err:
        await rt.get_agent("nobody")
    assert err.value.code is ErrorCode.AGENT_001 and err.value.offending == "nobody"


async def test_max_agents_is_enforced(tmp_path):
    async with Runtime.open(fast_config(lifecycle={"max_agents": 2}), tmp_path) as rt:
        await rt.create_agent(agent("a"))
        await rt.create_agent(agent("b"))
        with pytest.raises(SymbiError) as err:
            await rt.create_agent(agent("c"))
        assert err.value.code is ErrorCode.AGENT_003
        assert "max_agents = 2" in err.value.message


async def test_an_ephemeral_agent_runs_to_completion_with_its_log(rt):
    await rt.create_agent(agent("hello"))
    await rt.start_agent("hello")
    info = await rt.wait_for_state("hello", S.COMPLETED, S.FAILED, timeout=20)
    assert info.state is S.COMPLETED, info.last_error
    assert info.exit_code == 0
    logs = "\n".join(await rt.agent_logs("hello"))
    assert "hello from hello" in logs and "done: result 14" in logs
    states = [c.state for c in await rt.agent_history("hello")]
    assert states == [S.CREATED, S.INITIALIZING, S.READY, S.RUNNING, S.COMPLETED]
    log_file = rt.data_dir / "agents" / info.id / "agent.log"
    assert "done: result 14" in log_file.read_text()


async def test_a_crashing_agent_is_restarted_until_its_budget_is_spent(tmp_path):
    cfg = fast_config(lifecycle={"max_restart_attempts": 2})
    async with Runtime.open(cfg, tmp_path) as rt:
        await rt.create_agent(agent("crash", "crasher"))
        sub = rt.subscribe([AgentStateChanged])
        await rt.start_agent("crash")
        failures = 0
        async with asyncio.timeout(30):
            async for ev in sub:
                if ev.new is S.FAILED:
                    failures += 1
                    if failures == 3:
                        break
        await asyncio.sleep(0.5)  # no fourth run may start
        info = await rt.get_agent("crash")
        assert info.state is S.FAILED
        assert info.restart_count == 2
        assert info.exit_code == 1
        assert "exited with status 1" in info.last_error
        assert "restart budget exhausted (2/2)" in info.last_error
        assert "RuntimeError: crasher: simulated failure" in "\n".join(await rt.agent_logs("crash"))


async def test_stop_is_graceful_and_terminate_is_not(rt):
    for name in ("hb1", "hb2"):
        await rt.create_agent(agent(name, "heartbeat", execution_mode=ExecutionMode.PERSISTENT))
        await rt.start_agent(name)
        await rt.wait_for_state(name, S.RUNNING)
        await wait_for_log(rt, name, "heartbeat 1")
    stopped = await rt.stop_agent("hb1")
    assert stopped.state is S.TERMINATED and stopped.exit_code == 0
    assert any("stopping on SIGTERM" in line for line in await rt.agent_logs("hb1"))
    killed = await rt.terminate_agent("hb2")
    assert killed.state is S.TERMINATED and killed.exit_code == -signal.SIGKILL
    # a terminated agent can be started again
    await rt.start_agent("hb1")
    await rt.wait_for_state("hb1", S.RUNNING)


def agent_status(pid: int) -> set[str]:
    """Statuses of the agent's processes: the Python program(s) under the tier's root process
    (bwrap itself is not stopped; the agent inside it is)."""
    root = psutil.Process(pid)
    procs = [p for p in [root, *root.children(recursive=True)] if "python" in p.cmdline()[0]]
    return {p.status() for p in procs}


async def test_suspend_and_resume_really_stop_the_process(rt):
    await rt.create_agent(agent("hb", "heartbeat"))
    await rt.start_agent("hb")
    info = await rt.wait_for_state("hb", S.RUNNING)
    await wait_for_log(rt, "hb", "heartbeat 1")
    await rt.suspend_agent("hb")
    await until(lambda: agent_status(info.pid) == {psutil.STATUS_STOPPED})
    with pytest.raises(SymbiError) as err:
        await rt.suspend_agent("hb")
    assert err.value.code is ErrorCode.AGENT_002
    await rt.resume_agent("hb")
    await until(lambda: psutil.STATUS_STOPPED not in agent_status(info.pid))
    with pytest.raises(SymbiError):
        await rt.start_agent("hb")
    # stopping a suspended agent still lets it exit gracefully
    await rt.suspend_agent("hb")
    stopped = await rt.stop_agent("hb")
    assert stopped.state is S.TERMINATED and stopped.exit_code == 0


async def test_memory_over_the_limit_kills_the_agent_with_a_clear_reason(rt):
    sub = rt.subscribe([ResourceViolation, ResourceSample])
    await rt.create_agent(agent("hog", "memory_hog", limits=ResourceLimits(memory_mb=64)))
    await rt.start_agent("hog")
    info = await rt.wait_for_state("hog", S.FAILED, S.COMPLETED, timeout=30)
    assert info.state is S.FAILED
    # Whichever enforcer sees it first: the monitor (RSS sampled over 64 MB) or the cgroup (usage at 64 MB;
    # shared library pages count in RSS but are charged to whoever loaded them first, so the order varies).
    assert "RESOURCE_002: memory limit 64 MB exceeded: " in info.last_error
    by_monitor = "exceeded: peak" in info.last_error
    if by_monitor:
        assert int(info.last_error.split("peak ")[1].split(" MB")[0]) > 64
    else:
        assert "killed by the cgroup OOM killer" in info.last_error
    assert info.restart_count == 0  # enforcement kills are not restarted
    seen = []
    while (ev := sub.get_nowait()) is not None:
        seen.append(ev)
    assert any(isinstance(e, ResourceSample) and e.rss_bytes > 20 * 2**20 for e in seen)
    violation = any(isinstance(e, ResourceViolation) and e.resource == "memory" and e.action == "terminate" for e in seen)
    assert violation == by_monitor


async def test_warn_action_only_warns(tmp_path):
    async with Runtime.open(fast_config(resource={"violation_action": "warn"}), tmp_path) as rt:
        await rt.create_agent(agent("hog", "memory_hog", limits=ResourceLimits(memory_mb=40)))
        sub = rt.subscribe([ResourceViolation])
        await rt.start_agent("hog")
        ev = await asyncio.wait_for(sub.get(), 20)
        assert ev.action == "warn"
        assert (await rt.get_agent("hog")).state is S.RUNNING
        await rt.terminate_agent("hog")


async def test_execution_timeout_terminates(rt):
    await rt.create_agent(agent("slow", "heartbeat", limits=ResourceLimits(execution_timeout=1.0)))
    await rt.start_agent("slow")
    info = await rt.wait_for_state("slow", S.FAILED, S.COMPLETED, timeout=20)
    assert info.state is S.FAILED
    assert "execution_timeout of 1s exceeded" in info.last_error


async def test_resources_are_admitted_by_the_scheduler(tmp_path):
    cfg = fast_config(resource={"total_memory_mb": 512, "total_cpu_cores": 2.0})
    async with Runtime.open(cfg, tmp_path) as rt:
        with pytest.raises(SymbiError) as err:
            await rt.create_agent(agent("huge", limits=ResourceLimits(memory_mb=1024)))
        assert err.value.code is ErrorCode.RESOURCE_001
        assert "1024 MB" in err.value.message and "512 MB" in err.value.message
        await rt.create_agent(agent("first", "heartbeat", limits=ResourceLimits(memory_mb=300)))
        await rt.create_agent(agent("second", "heartbeat", limits=ResourceLimits(memory_mb=300)))
        await rt.start_agent("first")
        await rt.wait_for_state("first", S.RUNNING)
        await rt.start_agent("second")
        await asyncio.sleep(0.3)
        second = await rt.get_agent("second")
        assert second.state is S.READY
        assert "insufficient memory" in second.last_error
        m = await rt.metrics()
        assert m.allocated_memory_mb == 300 and m.scheduler_queued == 1
        await rt.stop_agent("first")
        await rt.wait_for_state("second", S.RUNNING, timeout=10)


async def test_higher_priority_runs_first_when_slots_are_scarce(tmp_path):
    cfg = fast_config(scheduler={"max_concurrent_tasks": 1})
    async with Runtime.open(cfg, tmp_path) as rt:
        await rt.create_agent(agent("blocker", "heartbeat"))
        await rt.start_agent("blocker")
        await rt.wait_for_state("blocker", S.RUNNING)
        await rt.create_agent(agent("low", priority=Priority.LOW))
        await rt.create_agent(agent("critical", priority=Priority.CRITICAL))
        await rt.start_agent("low")
        await rt.start_agent("critical")
        sub = rt.subscribe([AgentStateChanged])
        await rt.stop_agent("blocker")
        running = []
        async with asyncio.timeout(20):
            async for ev in sub:
                if ev.new is S.RUNNING:
                    running.append(ev.name)
                    if len(running) == 2:
                        break
        assert running == ["critical", "low"]


async def test_registry_survives_a_clean_restart(tmp_path):
    async with Runtime.open(fast_config(), tmp_path) as rt:
        await rt.create_agent(agent("done"))
        await rt.start_agent("done")
        await rt.wait_for_state("done", S.COMPLETED)
        await rt.create_agent(agent("hb", "heartbeat", priority="High"))
        await rt.start_agent("hb")
        await rt.wait_for_state("hb", S.RUNNING)
        await wait_for_log(rt, "hb", "heartbeat 1")
    async with Runtime.open(fast_config(), tmp_path) as rt:
        done = await rt.get_agent("done")
        hb = await rt.get_agent("hb")
        assert done.state is S.COMPLETED
        assert hb.state is S.TERMINATED  # stopped by the engine's clean shutdown
        assert hb.config.priority is Priority.HIGH
        assert [c.state for c in await rt.agent_history("hb")][-2:] == [S.TERMINATING, S.TERMINATED]
        assert any("heartbeat" in line for line in await rt.agent_logs("hb"))


async def test_a_second_engine_on_the_same_data_dir_is_refused(rt):
    with pytest.raises(SymbiError) as err:
        async with Runtime.open(fast_config(), rt.data_dir):
            pass
    assert err.value.code is ErrorCode.RUNTIME_002
    assert str(os.getpid()) in err.value.message


async def test_delete_removes_the_agent_and_its_files(rt):
    info = await rt.create_agent(agent("gone"))
    await rt.start_agent("gone")
    await rt.wait_for_state("gone", S.COMPLETED)
    assert (rt.data_dir / "agents" / info.id).exists()
    await rt.delete_agent("gone")
    assert not (rt.data_dir / "agents" / info.id).exists()
    assert await rt.list_agents() == []


async def test_a_slow_subscriber_never_stalls_the_engine(rt):
    slow = rt.subscribe([AgentLog], maxsize=2)
    await rt.create_agent(agent("chatty", source="for i in range(300):\n    print('line', i)\n"))
    await rt.start_agent("chatty")
    info = await rt.wait_for_state("chatty", S.COMPLETED, timeout=20)
    assert info.state is S.COMPLETED
    assert slow.pending() == 2
    assert slow.dropped >= 290
    assert rt.bus.dropped >= slow.dropped
    assert "line 299" in (await rt.agent_logs("chatty"))[-2]


async def test_agent_log_file_is_bounded(tmp_path):
    cfg = fast_config(resource={"log_max_bytes": 8192})
    async with Runtime.open(cfg, tmp_path) as rt:
        info = await rt.create_agent(agent("flood", source="import sys\nfor i in range(5000):\n    print('x' * 60, i)\n"))
        await rt.start_agent("flood")
        await rt.wait_for_state("flood", S.COMPLETED, timeout=20)
        log_dir = rt.data_dir / "agents" / info.id
        assert (log_dir / "agent.log").stat().st_size <= 8192 + 200
        assert (log_dir / "agent.log.1").exists()
        assert (log_dir / "agent.log.1").stat().st_size <= 8192 + 200


async def test_stopping_a_queued_agent_never_launches_it(tmp_path):
    cfg = fast_config(scheduler={"max_concurrent_tasks": 1})
    async with Runtime.open(cfg, tmp_path) as rt:
        await rt.create_agent(agent("blocker", "heartbeat"))
        await rt.create_agent(agent("queued", "heartbeat"))
        await rt.start_agent("blocker")
        await rt.wait_for_state("blocker", S.RUNNING)
        await rt.start_agent("queued")
        assert (await rt.get_agent("queued")).state is S.READY
        info = await rt.stop_agent("queued")
        assert info.state is S.TERMINATED and info.pid is None
        assert (await rt.metrics()).scheduler_queued == 0


async def test_actions_on_a_closed_runtime_are_refused(tmp_path):
    rt = Runtime(fast_config(), tmp_path)
    with pytest.raises(SymbiError) as err:
        await rt.create_agent(agent("x"))
    assert err.value.code is ErrorCode.RUNTIME_001
