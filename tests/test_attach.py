"""A headless engine in its own process, and consoles attached to it: through the data dir's socket
and over HTTP with a token. Quitting an attached console leaves the engine and its agents running."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from console_fixtures import until

from console.app import SymbiConsole
from engine.api import AgentConfig, AgentState, ExecutionMode, boot
from engine.api.remote import RemoteEngine
from engine.errors import ErrorCode, SymbiError

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "attach-test-token-0123456789"
HEARTBEAT = "import time\nwhile True:\n    print('beat', flush=True)\n    time.sleep(0.5)\n"


@pytest.fixture
def headless(tmp_path):
    """``symbi-console --headless`` serving HTTP on a free loopback port and on its socket."""
    data = tmp_path / "d"
    env = {
        **os.environ,
        "SYMBI_HTTP_ENABLED": "1",
        "SYMBI_HTTP_PORT": "0",
        "SYMBI_API_TOKEN": TOKEN,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "console.main", "--headless", "--data-dir", str(data)],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = None
    try:
        for _ in range(200):
            line = proc.stderr.readline()
            assert line or proc.poll() is None, "the headless engine exited early"
            found = re.search(r"serving on .*?(http://127\.0\.0\.1:\d+)", line)
            if found:
                url = found.group(1)
                break
        assert url, "the headless engine did not say where it serves"
        yield data, url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()


async def _start_heartbeat(engine: RemoteEngine) -> str:
    info = await engine.agents.create(
        AgentConfig(name="beat", dsl_source=HEARTBEAT, execution_mode=ExecutionMode.PERSISTENT)
    )
    await engine.agents.start(info.id)
    async with asyncio.timeout(30):
        while (await engine.agents.get(info.id)).state is not AgentState.RUNNING:
            await asyncio.sleep(0.05)
    return info.id


@pytest.mark.parametrize("how", ["socket", "http"])
async def test_a_console_attaches_to_a_headless_engine_and_quitting_leaves_the_agents_running(headless, how):
    data, url = headless
    setup = boot.load_setup(None, str(data))
    control = RemoteEngine(url, token=TOKEN)
    await control.open()
    try:
        agent_id = await _start_heartbeat(control)
        engine = boot.attach(setup) if how == "socket" else boot.connect(url, token=TOKEN)
        assert engine is not None, "the running engine's socket did not answer"
        app = SymbiConsole(engine, data_dir_label="~/d")
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: app.engine_ready.is_set(), what="the attached console to load")
            assert app.attached and app.info is not None
            assert app.info.mode == ("attached" if how == "socket" else "remote")
            assert f"pid {app.info.pid}" in app.summary.location
            await until(pilot, lambda: agent_id in app.model.agents, what="the engine's agents")
            assert app.model.agents[agent_id].state is AgentState.RUNNING
            await pilot.press("q")  # a running agent: the console asks first, and says it keeps running
            await pilot.pause()
            question = app.screen.query_one("#dialog-question").render()
            assert "left running in the engine" in str(question)
            await pilot.click("#yes")
            await pilot.pause()
        assert (await control.agents.get(agent_id)).state is AgentState.RUNNING  # still running
        assert any("beat" in line for line in await control.agents.logs(agent_id))
    finally:
        await control.close()


async def test_a_wrong_token_and_a_dead_engine_are_clear_errors(headless, tmp_path):
    _data, url = headless
    wrong = RemoteEngine(url, token="not-the-token")
    with pytest.raises(SymbiError) as err:
        await wrong.open()
    assert err.value.code is ErrorCode.API_003
    await wrong.close()
    nowhere = RemoteEngine("http://127.0.0.1:9", token=TOKEN)
    with pytest.raises(SymbiError) as err:
        await nowhere.open()
    assert err.value.code is ErrorCode.API_007 and "out of reach" in err.value.message
    await nowhere.close()
    assert boot.attach(boot.load_setup(None, str(tmp_path / "empty"))) is None  # no engine there


def _symbiont(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", "--data-dir", str(data), "agents", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_symbiont_operates_agents_through_the_running_engine(headless, tmp_path):
    data, _url = headless
    program = tmp_path / "beat.py"
    program.write_text(HEARTBEAT)
    created = _symbiont(data, "create", "cli-beat", "--program", str(program), "--mode", "Persistent")
    assert created.returncode == 0, created.stderr
    assert "cli-beat: created" in created.stdout
    started = _symbiont(data, "start", "cli-beat")
    assert started.returncode == 0 and "start requested" in started.stdout, started.stderr
    for _ in range(100):  # the engine (not the command) runs it
        if "beat" in _symbiont(data, "logs", "cli-beat").stdout:
            break
    else:
        raise AssertionError("the agent started by symbiont never logged")
    stopped = _symbiont(data, "stop", "cli-beat")
    assert stopped.returncode == 0 and "stopped" in stopped.stdout, stopped.stderr
    gone = _symbiont(data, "delete", "cli-beat")
    assert gone.returncode == 0 and "deleted" in gone.stdout
    missing = _symbiont(data, "start", "cli-beat")
    assert missing.returncode == 2 and "AGENT_001" in missing.stderr and "Traceback" not in missing.stderr


def test_symbiont_without_an_engine_creates_but_refuses_to_start(tmp_path):
    data = tmp_path / "offline"
    program = tmp_path / "hello.py"
    program.write_text("print('hello')\n")
    created = _symbiont(data, "create", "offline-hello", "--program", str(program))
    assert created.returncode == 0, created.stderr
    listed = _symbiont(data, "list")
    assert "offline-hello" in listed.stdout and "Created" in listed.stdout
    refused = _symbiont(data, "start", "offline-hello")
    assert refused.returncode == 2
    assert "RUNTIME_001" in refused.stderr and "symbi-console --headless" in refused.stderr
    bad = _symbiont(data, "create", "x", "--program", str(tmp_path / "missing.py"))
    assert bad.returncode == 2 and "AGENT_004" in bad.stderr and "Traceback" not in bad.stderr


async def test_an_attached_console_says_when_the_engine_is_out_of_reach_and_catches_up_after(tmp_path):
    from engine.api.http.server import HttpSettings, open_listeners
    from engine.api.local import LocalEngine
    from engine.runtime import Runtime
    from tests.helpers import fast_config

    data = tmp_path / "d"
    local = LocalEngine(Runtime(fast_config(), data), mode="headless")
    await local.open()
    listeners = await open_listeners(local, data, HttpSettings(enabled=False))
    app = SymbiConsole(RemoteEngine(socket_path=listeners.socket_path), data_dir_label="~/d")
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: app.engine_ready.is_set(), what="the attached console")
            before = await local.agents.create(AgentConfig(name="before", dsl_source="print(1)\n"))
            await until(pilot, lambda: before.id in app.model.agents, what="the first agent")
            await listeners.close()  # the engine stops answering (it keeps running)
            await until(pilot, lambda: not app.connected, timeout=20, what="the console to notice")
            assert app.summary.disconnected
            await pilot.press("2")
            await pilot.press("n")  # create: refused at once, nothing asked of the engine
            await pilot.pause()
            assert any("API_007" in str(n.message) for n in app._notifications), "no refusal shown"
            meanwhile = await local.agents.create(AgentConfig(name="meanwhile", dsl_source="print(1)\n"))
            listeners = await open_listeners(local, data, HttpSettings(enabled=False))  # back
            await until(pilot, lambda: app.connected, timeout=30, what="the console to reconnect")
            await until(pilot, lambda: meanwhile.id in app.model.agents, what="what happened meanwhile")
            assert not app.summary.disconnected
    finally:
        await listeners.close()
        await local.close()
