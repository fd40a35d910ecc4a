"""The engine as a process: killed with SIGKILL and reopened, and headless."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from engine.agents.model import AgentState
from engine.runtime import Runtime
from tests.helpers import ROOT, fast_config

S = AgentState

ENGINE_SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    from engine.runtime import Runtime
    from engine.agents.model import AgentState
    from tests.helpers import agent, fast_config

    async def main():
        rt = await Runtime.open(fast_config(sandbox={"native_isolation": sys.argv[2]}), sys.argv[1])
        # silent, so it cannot die of a broken pipe when its engine is gone
        await rt.create_agent(agent("survivor", source="import time\\ntime.sleep(3600)\\n"))
        await rt.create_agent(agent("idle"))
        await rt.create_agent(agent("finished"))
        await rt.start_agent("finished")
        await rt.wait_for_state("finished", AgentState.COMPLETED)
        await rt.start_agent("survivor")
        info = await rt.wait_for_state("survivor", AgentState.RUNNING)
        await rt.store.flush()
        print("RUNNING", info.pid, flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())
    """
)


@pytest.mark.parametrize("isolation", ["none", "landlock", "bwrap"])
async def test_engine_killed_with_sigkill_reopens_with_truthful_states(tmp_path, isolation):
    if isolation == "bwrap" and not shutil.which("bwrap"):
        pytest.skip("bubblewrap is not installed on this machine")
    data = tmp_path / "data"
    proc = subprocess.Popen(
        [sys.executable, "-c", ENGINE_SCRIPT, str(data), isolation], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("RUNNING"), line
        agent_pid = int(line.split()[1])
        tree = [agent_pid] + [p.pid for p in psutil.Process(agent_pid).children(recursive=True)]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        if isolation == "none":
            # an unconfined native agent outlives its engine: an orphan the next engine must find
            assert psutil.pid_exists(agent_pid)
        async with Runtime.open(fast_config(sandbox={"native_isolation": isolation}), data) as rt:
            survivor = await rt.get_agent("survivor")
            assert survivor.state is S.FAILED
            assert "engine stopped unexpectedly while the agent was Running" in survivor.last_error
            if isolation == "none":
                assert f"orphan process group {agent_pid} killed" in survivor.last_error
            assert (await rt.get_agent("idle")).state is S.CREATED
            assert (await rt.get_agent("finished")).state is S.COMPLETED
            deadline = time.time() + 5
            while any(_alive(pid) for pid in tree):
                assert time.time() < deadline, "an agent process is still running after the engine restarted"
                time.sleep(0.05)
            # and the operator can run it again
            await rt.start_agent("survivor")
            await rt.wait_for_state("survivor", S.RUNNING)
    finally:
        if proc.poll() is None:
            proc.kill()


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_headless_runs_until_sigterm_and_exits_zero(tmp_path):
    env = dict(os.environ, SYMBI_DATA_DIR=str(tmp_path / "hd"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "console.main", "--headless"],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = ""
        deadline = time.time() + 30
        while "headless engine running" not in line:
            line = proc.stderr.readline()
            assert line or proc.poll() is None, "headless engine exited early"
            assert time.time() < deadline
        assert str(tmp_path / "hd") in line
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        rest = proc.stderr.read()
        assert "engine stopped cleanly" in rest
        assert "Traceback" not in rest
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--config", "/nonexistent/runtime_config.toml"], "CONFIG_002"),
    ],
)
def test_console_bad_input_is_one_clear_line(tmp_path, args, needle):
    proc = subprocess.run(
        [sys.executable, "-m", "console.main", "--headless", "--data-dir", str(tmp_path), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert needle in proc.stderr
    assert "Traceback" not in proc.stderr


def test_console_bad_config_value_names_key_and_value(tmp_path):
    cfg = tmp_path / "runtime_config.toml"
    cfg.write_text('[lifecycle]\nmax_agents = "lots"\n')
    proc = subprocess.run(
        [sys.executable, "-m", "console.main", "--headless", "--data-dir", str(tmp_path), "--config", str(cfg)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "CONFIG_001" in proc.stderr and "lifecycle.max_agents" in proc.stderr and "lots" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_engine_refuses_a_data_dir_held_by_another_engine(tmp_path):
    env = dict(os.environ, SYMBI_DATA_DIR=str(tmp_path))
    first = subprocess.Popen(
        [sys.executable, "-m", "console.main", "--headless"], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        while "headless engine running" not in first.stderr.readline():
            assert first.poll() is None
        second = subprocess.run(
            [sys.executable, "-m", "console.main", "--headless"], cwd=ROOT, env=env, capture_output=True, text=True,
            timeout=60,
        )
        assert second.returncode == 2
        assert "RUNTIME_002" in second.stderr and str(first.pid) in second.stderr
    finally:
        first.send_signal(signal.SIGINT)
        assert first.wait(30) == 0
