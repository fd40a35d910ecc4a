"""Tier1 (Docker) and Tier2 (gVisor) for real: escape attempts, limits, lifecycle, reaping.

Each test starts real containers of the local agent image (built by
``symbiont sandbox prepare-image`` if missing). The number of container runs
is kept small (about ten, ~0.5 s each).
"""

from __future__ import annotations

import asyncio
import os
import signal
import uuid

import docker.errors
import pytest
from test_sandbox_support import (
    ENV_CONTRACT,
    ENV_TOLERATED,
    FORK_BOMB,
    IMAGE,
    MEMORY_HOG,
    SLEEPER,
    Output,
    escape_spec,
    make_spec,
    require_docker,
    run_agent,
)

from engine.config import SandboxConfig
from engine.errors import ErrorCode, SymbiError
from engine.sandbox.docker_tier import DockerExecutor
from engine.sandbox.registry import SandboxRegistry

RUNTIMES = [pytest.param(None, id="docker"), pytest.param("runsc", id="gvisor")]


def executor(runtime: str | None, **config) -> DockerExecutor:
    client = require_docker(runtime)
    return DockerExecutor(SandboxConfig(docker_image=IMAGE, **config), runtime=runtime, client=client)


def gone(client, container_id: str) -> bool:
    try:
        client.containers.get(container_id)
    except docker.errors.NotFound:
        return True
    return False


@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_escape_attempts_fail(tmp_path, runtime, rpc, tcp):
    ex = executor(runtime)
    spec = escape_spec(tmp_path, rpc, tcp)
    run = await run_agent(ex, spec)
    r = run.probe()
    assert run.rc == 0 and run.handle.tier == ("gvisor" if runtime else "docker")
    assert [r["secret0"], r["secret1"], r["secret2"]] == ["denied:FileNotFoundError"] * 3
    assert r["shadow"] == "denied:PermissionError"
    assert r["tcp"].startswith("denied:") and tcp.accepted == 0
    assert r["write_usr"].startswith("denied:") and r["write_program"].startswith("denied:")
    assert r["write_workspace"] == "ok:1"
    assert r["rpc"] == "ok:sent" and rpc.received == [b"hello from probe\n"]
    assert r["sdk"] == "ok:42"
    assert r["uid"] == 65534 and r["cwd"] == r["home"] == "/work"
    assert set(r["env"]) <= ENV_CONTRACT | ENV_TOLERATED
    assert gone(ex.client(), run.handle.container_id)  # cleanup removed it


@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_memory_over_the_limit_is_oom_killed_with_a_clear_reason(tmp_path, runtime):
    run = await run_agent(executor(runtime), make_spec(tmp_path, MEMORY_HOG, memory_mb=64))
    assert run.rc == -signal.SIGKILL
    assert run.detail is not None and run.detail.startswith("RESOURCE_002: memory limit 64 MB exceeded")
    if runtime is None:  # runc: Docker always sees the OOM kill
        assert run.detail == "RESOURCE_002: memory limit 64 MB exceeded: OOM-killed in the container, peak 64 MB"


async def test_docker_fork_bomb_stays_within_the_pids_limit(tmp_path):
    ex = executor(None, max_pids=16)
    output = Output()
    handle = await ex.launch(make_spec(tmp_path, FORK_BOMB, memory_mb=128), output)
    try:
        await output.wait_for("fork refused", timeout=30)
        stats = ex.client().api.stats(handle.container_id, stream=False, one_shot=True)
        assert 2 <= stats["pids_stats"]["current"] <= 16
        assert os.getloadavg()[0] < 50
    finally:
        handle.kill()
        await asyncio.wait_for(handle.wait(), 20)
        await handle.cleanup()
    assert gone(ex.client(), handle.container_id)


async def test_gvisor_fork_bomb_is_stopped_by_the_memory_limit(tmp_path):
    """Under gVisor processes are tasks of the sandbox kernel: the memory limit, not pids, ends a fork bomb."""
    run = await run_agent(executor("runsc", max_pids=16), make_spec(tmp_path, FORK_BOMB, memory_mb=64), timeout=60)
    assert run.rc == -signal.SIGKILL
    # gVisor's OOM-killed sandbox is not always reported as OOMKilled: then the detail says "(probably)"
    assert run.detail is not None and run.detail.startswith("RESOURCE_002: memory limit 64 MB exceeded")
    assert os.getloadavg()[0] < 50


TICKER = """
import signal, sys, time
def stop(*_):
    print("terminated gracefully", flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
block = bytearray(20 << 20)  # something for the stats to see
n = 0
while True:
    n += 1
    print("tick", n, flush=True)
    time.sleep(0.05)
"""


@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_stats_pause_resume_and_graceful_signal(tmp_path, runtime):
    ex = executor(runtime)
    output = Output()
    handle = await ex.launch(make_spec(tmp_path, TICKER), output)
    try:
        await output.wait_for("tick 3")
        async with asyncio.timeout(10):
            while handle.sample().rss_bytes < 10 << 20:
                await asyncio.sleep(0.1)
        sample = handle.sample()
        assert sample.alive and sample.num_procs >= 1 and sample.rss_bytes < 64 << 20
        await handle.suspend()
        await asyncio.sleep(0.2)
        frozen = len(output.lines)
        await asyncio.sleep(0.4)
        assert len(output.lines) == frozen
        await handle.resume()
        await output.wait_for(f"tick {frozen + 2}")
        handle.signal(signal.SIGTERM)
        assert await asyncio.wait_for(handle.wait(), 15) == 0
        assert output.stdout[-1] == "terminated gracefully"
        assert not handle.sample().alive
    finally:
        handle.kill()
        await handle.cleanup()


async def test_leftover_containers_are_reaped(tmp_path):
    ex = executor(None)
    client = ex.client()
    label = f"sbxtest-{uuid.uuid4().hex[:8]}"
    output = Output()
    handle = await ex.launch(make_spec(tmp_path, SLEEPER, labels={"symbi.engine": label}), output)
    await output.wait_for("ready")
    # the engine "dies" here: no cleanup. A never-started container of the same engine is also left.
    stray = client.containers.create(IMAGE, ["true"], labels={"symbi.engine": label, "symbi.managed": "1"})
    registry = SandboxRegistry(SandboxConfig(docker_image=IMAGE), tmp_path / "data")
    assert await registry.reap_all_labelled(label, keep_refs=[handle.ref]) == [
        f"container {stray.short_id} of agent ? (created) removed"
    ]
    assert gone(client, stray.id) and not gone(client, handle.container_id)
    note = await registry.reap(handle.ref)
    assert note == f"container {handle.container_id[:12]} (running) removed"
    assert gone(client, handle.container_id)
    assert await registry.reap(handle.ref) is None
    assert await asyncio.wait_for(handle.wait(), 10) == -signal.SIGKILL


async def test_network_capability_is_refused_without_a_bridge(tmp_path):
    ex = executor(None)
    with pytest.raises(SymbiError) as err:
        await ex.launch(make_spec(tmp_path, "print(1)", capabilities=("Network",)), Output())
    assert err.value.code is ErrorCode.SANDBOX_003
    assert "Network capability" in err.value.message and "bridge" in err.value.message


async def test_missing_image_is_sandbox_002(tmp_path):
    require_docker()
    ex = DockerExecutor(SandboxConfig(docker_image="symbi-no-such-image:never"))
    with pytest.raises(SymbiError) as err:
        await ex.launch(make_spec(tmp_path, "print(1)"), Output())
    assert err.value.code is ErrorCode.SANDBOX_002
    assert "prepare-image" in (err.value.hint or "")
