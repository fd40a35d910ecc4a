"""The native tier for real: plain (process group, rlimits, cgroups) and in bubblewrap.

Every test launches real agent programs with :class:`NativeSandboxExecutor`
and asserts what they could and could not do. The plain tier contains but
does not isolate: its tests document that it can read world-readable files
and reach the network (use bubblewrap, Docker or gVisor to stop that).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from test_sandbox_support import (
    ENV_CONTRACT,
    ENV_TOLERATED,
    FORK_BOMB,
    MEMORY_HOG,
    ROOT,
    Output,
    Plants,
    escape_probe,
    escape_spec,
    make_spec,
    require_bwrap,
    require_cgroups,
    require_landlock,
    run_agent,
)

from engine.config import SandboxConfig
from engine.sandbox.cgroups import CgroupManager
from engine.sandbox.native import NativeSandboxExecutor
from engine.sandbox.reaper import reap_labelled
from engine.sandbox.registry import SandboxRegistry

MB = 1024 * 1024


@pytest.fixture
def cgroups() -> CgroupManager:
    return require_cgroups()


@pytest.fixture(autouse=True, scope="module")
def _sweep_test_cgroups():
    """Whatever a failed test left under symbi/sbxtest is killed and removed afterwards."""
    yield
    reap_labelled("sbxtest", [], CgroupManager(), None)


def executor(cgroups: CgroupManager | None, bwrap: bool, **config) -> NativeSandboxExecutor:
    """bwrap=True: bubblewrap; False: unconfined (native_isolation = none)."""
    if bwrap:
        require_bwrap()
    return NativeSandboxExecutor(SandboxConfig(**config), use_bwrap=bwrap, cgroups=cgroups)


def confined(cgroups: CgroupManager | None, **config) -> NativeSandboxExecutor:
    """The built-in confinement (no bubblewrap), as the registry picks it on this machine."""
    status = require_landlock()
    return NativeSandboxExecutor(
        SandboxConfig(**config), use_bwrap=False, confine=True, mount_view=status.mount_view, cgroups=cgroups
    )


# --------------------------------------------------------------------------- #
# Escape attempts
# --------------------------------------------------------------------------- #


async def test_bwrap_hides_the_host_and_blocks_the_network(tmp_path, cgroups, rpc, tcp):
    spec = escape_spec(tmp_path, rpc, tcp)
    run = await run_agent(executor(cgroups, bwrap=True), spec)
    r = run.probe()
    assert run.rc == 0 and run.handle.tier == "native+bwrap"
    # files outside the workspace do not exist inside: a sibling of the data dir, a key, another agent's files
    assert [r["secret0"], r["secret1"], r["secret2"]] == ["denied:FileNotFoundError"] * 3
    assert r["shadow"] == "denied:PermissionError"  # the agent is really uid 65534 on the host
    assert r["tcp"].startswith("denied:") and tcp.accepted == 0
    assert r["write_usr"].startswith("denied:") and r["write_program"].startswith("denied:")
    # what it is allowed: its workspace, the RPC socket, the SDK
    assert r["write_workspace"] == "ok:1" and (spec.workspace / "probe.txt").exists()
    assert r["rpc"] == "ok:sent" and rpc.received == [b"hello from probe\n"]
    assert r["sdk"] == "ok:42"
    assert r["uid"] == 65534 and r["cwd"] == r["home"] == str(spec.workspace)
    assert set(r["env"]) <= ENV_CONTRACT | ENV_TOLERATED


async def test_bwrap_network_capability_shares_the_host_network(tmp_path, cgroups, tcp):
    spec = make_spec(tmp_path, escape_probe(Plants.make(tmp_path), tcp.port), capabilities=("Network",))
    run = await run_agent(executor(cgroups, bwrap=True), spec)
    assert run.probe()["tcp"] == "ok:connected" and tcp.accepted == 1


async def test_builtin_confinement_hides_the_host_and_blocks_the_network(tmp_path, cgroups, rpc, tcp):
    """No bubblewrap: uid change + private mount view (as root), Landlock and seccomp still refuse every escape."""
    spec = escape_spec(tmp_path, rpc, tcp)
    run = await run_agent(confined(cgroups), spec)
    r = run.probe()
    assert run.rc == 0 and run.handle.tier == "native+landlock", run.stderr
    # the sibling dir, a key in the data dir, another agent's file: gone (mount view) or refused (Landlock)
    assert all(r[f"secret{i}"] in ("denied:FileNotFoundError", "denied:PermissionError") for i in range(3)), r
    assert r["shadow"] == "denied:PermissionError"
    assert r["tcp"].startswith("denied:") and tcp.accepted == 0
    assert r["write_usr"].startswith("denied:") and r["write_program"].startswith("denied:")
    assert r["write_workspace"] == "ok:1" and (spec.workspace / "probe.txt").exists()
    assert r["rpc"] == "ok:sent" and rpc.received == [b"hello from probe\n"]
    assert r["sdk"] == "ok:42"
    assert r["uid"] == (65534 if os.geteuid() == 0 else os.geteuid())
    assert r["cwd"] == r["home"] == str(spec.workspace)
    assert set(r["env"]) <= ENV_CONTRACT


async def test_builtin_confinement_network_capability_allows_tcp(tmp_path, cgroups, tcp):
    spec = make_spec(tmp_path, escape_probe(Plants.make(tmp_path), tcp.port), capabilities=("Network",))
    run = await run_agent(confined(cgroups), spec)
    assert run.probe()["tcp"] == "ok:connected" and tcp.accepted == 1


async def test_builtin_confinement_refuses_kernel_surface(tmp_path, cgroups):
    """seccomp: ptrace, user namespaces, mount, keyctl and bpf are refused; threads and subprocesses still work."""
    code = r"""
import ctypes, json, os, subprocess, sys, threading
libc = ctypes.CDLL(None, use_errno=True)
def call(name, *args):
    rc = getattr(libc, name)(*args)
    return "ok" if rc >= 0 else "denied:" + os.strerror(ctypes.get_errno())
r = {
    "ptrace": call("ptrace", 16, os.getppid(), 0, 0),            # PTRACE_ATTACH to the launcher's parent
    "unshare_user": call("unshare", 0x10000000),               # CLONE_NEWUSER
    "mount": call("mount", b"none", b"/tmp", b"tmpfs", 0, None),
    "keyctl": call("syscall", 250, 0, 0, 0, 0),                  # keyctl
    "bpf": call("syscall", 321, 0, 0, 0),                        # bpf
    "signal_parent": call("kill", os.getppid(), 0),
}
t = threading.Thread(target=lambda: r.__setitem__("thread", "ok")); t.start(); t.join()
r["subprocess"] = subprocess.run([sys.executable, "-c", "print(7)"], capture_output=True, text=True).stdout.strip()
print("PROBE " + json.dumps(r), flush=True)
"""
    run = await run_agent(confined(cgroups), make_spec(tmp_path, code))
    r = run.probe()
    assert run.rc == 0, run.stderr
    assert all(r[k].startswith("denied:") for k in ("ptrace", "unshare_user", "mount", "keyctl", "bpf")), r
    assert r["signal_parent"].startswith("denied:"), r  # Landlock scopes signals (ABI 6) / another uid
    assert r["thread"] == "ok" and r["subprocess"] == "7"


async def test_unconfined_native_contains_but_does_not_isolate(tmp_path, cgroups, rpc, tcp):
    """native_isolation = none, written by the operator: world-readable files and the network stay reachable."""
    spec = escape_spec(tmp_path, rpc, tcp)
    run = await run_agent(executor(cgroups, bwrap=False), spec)
    r = run.probe()
    assert run.rc == 0 and run.handle.tier == "native (unconfined)"
    assert r["secret0"] == "ok:TOPSECRET"  # cannot be blocked without namespaces
    assert r["tcp"] == "ok:connected" and tcp.accepted == 1  # cannot be blocked without a network namespace
    # what it does enforce: cleared environment, own workspace, the contract variables
    assert set(r["env"]) <= ENV_CONTRACT
    assert r["cwd"] == r["home"] == str(spec.workspace)
    assert r["rpc"] == "ok:sent" and r["sdk"] == "ok:42"


# --------------------------------------------------------------------------- #
# Limits
# --------------------------------------------------------------------------- #


async def test_rlimits_are_set_in_the_child(tmp_path, cgroups):
    code = """
import resource
for name in ("AS", "NOFILE", "CPU", "CORE"):
    print(name, *resource.getrlimit(getattr(resource, "RLIMIT_" + name)))
files = []
try:
    while True:
        files.append(open("/dev/null"))
except OSError as exc:
    print("open refused after", len(files), exc.strerror)
"""
    spec = make_spec(tmp_path, code, memory_mb=100, cpu_cores=0.5, execution_timeout=7)
    run = await run_agent(executor(cgroups, bwrap=False, max_open_files=64), spec)
    values = {line.split()[0]: line.split()[1:] for line in run.stdout}
    assert values["AS"] == [str((100 + 1024) * MB)] * 2  # cgroup memory present: AS is only a backstop
    assert values["NOFILE"] == ["64", "64"]
    assert values["CPU"] == [str(math.ceil(7 * 0.5)), str(math.ceil(7 * 0.5) + 5)]
    assert values["CORE"] == ["0", "0"]
    assert values["open"][:2] == ["refused", "after"] and int(values["open"][2]) < 64


@pytest.mark.parametrize("bwrap", [False, True], ids=["plain", "bwrap"])
async def test_memory_over_the_limit_is_oom_killed_with_a_clear_reason(tmp_path, cgroups, bwrap):
    run = await run_agent(executor(cgroups, bwrap), make_spec(tmp_path, MEMORY_HOG, memory_mb=64))
    assert run.rc == -signal.SIGKILL
    assert run.detail is not None
    assert run.detail.startswith("RESOURCE_002: memory limit 64 MB exceeded: killed by the cgroup OOM killer, peak")
    assert run.handle.cgroup is None  # removed by cleanup


async def test_without_cgroups_memory_is_bounded_by_rlimit_as(tmp_path):
    run = await run_agent(executor(None, bwrap=False), make_spec(tmp_path, MEMORY_HOG, memory_mb=32))
    assert run.rc == 1 and any("MemoryError" in line for line in run.stderr)
    assert run.detail == ("RESOURCE_002: memory limit 32 MB exceeded: address-space limit 288 MB reached (MemoryError)")


async def test_cpu_time_over_execution_timeout_times_cores_is_killed(tmp_path, cgroups):
    spec = make_spec(tmp_path, "while True:\n    pass\n", cpu_cores=1.0, execution_timeout=1)
    run = await run_agent(executor(cgroups, bwrap=False), spec, timeout=15)
    assert run.rc == -signal.SIGXCPU
    assert run.detail is not None and run.detail.startswith("RESOURCE_002: CPU time limit of 1 s exceeded")


@pytest.mark.parametrize("bwrap", [False, True], ids=["plain", "bwrap"])
async def test_fork_bomb_stays_within_the_pids_limit(tmp_path, cgroups, bwrap):
    ex = executor(cgroups, bwrap, max_pids=16)
    output = Output()
    handle = await ex.launch(make_spec(tmp_path, FORK_BOMB), output)
    try:
        await output.wait_for("fork refused", timeout=20)
        pids = handle.cgroup.pids()
        assert 2 <= len(pids) <= 16
        assert psutil.cpu_count() and os.getloadavg()[0] < 50  # the machine is fine
    finally:
        handle.kill()
        await asyncio.wait_for(handle.wait(), 10)
        await handle.cleanup()
    await asyncio.sleep(0.1)
    assert not [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]


async def test_bwrap_signals_reach_the_agent_and_suspend_freezes_it(tmp_path, cgroups):
    code = """
import signal, sys, time
def stop(*_):
    print("terminated gracefully", flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
n = 0
while True:
    n += 1
    print("tick", n, flush=True)
    time.sleep(0.05)
"""
    output = Output()
    handle = await executor(cgroups, bwrap=True).launch(make_spec(tmp_path, code), output)
    await output.wait_for("tick 3")
    await handle.suspend()
    await asyncio.sleep(0.1)
    frozen = len(output.lines)
    await asyncio.sleep(0.3)
    assert len(output.lines) == frozen
    await handle.resume()
    await output.wait_for(f"tick {frozen + 2}")
    handle.signal(signal.SIGTERM)  # bwrap itself would die of it; the agent must get it instead
    assert await asyncio.wait_for(handle.wait(), 10) == 0
    assert output.stdout[-1] == "terminated gracefully"
    await handle.cleanup()


# --------------------------------------------------------------------------- #
# Outliving the engine
# --------------------------------------------------------------------------- #

ENGINE = """
import asyncio, json, sys
from pathlib import Path
from engine.agents.executor import LaunchSpec
from engine.agents.model import ResourceLimits
from engine.config import SandboxConfig
from engine.sandbox.cgroups import CgroupManager
from engine.sandbox.native import NativeSandboxExecutor
from engine.sandbox.reaper import reap_labelled

async def main():
    program, workspace, bwrap = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] == "1"
    spec = LaunchSpec("orphan-1", "orphan", program, workspace, ResourceLimits(memory_mb=64),
                      labels={"symbi.engine": "sbxtest"})
    executor = NativeSandboxExecutor(SandboxConfig(), use_bwrap=bwrap, cgroups=CgroupManager())
    handle = await executor.launch(spec, lambda stream, line: print(line, flush=True))
    print(json.dumps({"ref": handle.ref, "pid": handle.pid}), flush=True)
    await asyncio.sleep(600)

asyncio.run(main())
"""

# the agent forks a grandchild that leaves its process group (setsid): only the cgroup still holds it
DAEMONISING_AGENT = """
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        print("grandchild", flush=True)
        time.sleep(600)
    os._exit(0)
time.sleep(0.2)
print("ready", flush=True)
time.sleep(600)
"""


def start_engine(spec, bwrap: bool) -> tuple[subprocess.Popen, dict, list[int]]:
    """A separate engine process that launches the agent; returns it, the handle's ref/pid and the agent's pids."""
    proc = subprocess.Popen(
        [sys.executable, "-c", ENGINE, str(spec.program), str(spec.workspace), "1" if bwrap else "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    info: dict = {}
    deadline = time.monotonic() + 20
    seen: set[str] = set()
    while time.monotonic() < deadline and not ({"ready", "grandchild"} <= seen and info):
        line = proc.stdout.readline().strip()
        if line.startswith("{"):
            info = json.loads(line)
        elif line:
            seen.add(line)
    assert info and "ready" in seen, f"engine did not start the agent: {seen}"
    root = psutil.Process(info["pid"])
    pids = {root.pid, *(p.pid for p in root.children(recursive=True))}
    for path in json.loads(info["ref"])["cgroups"]:  # also what left the tree (the daemonised grandchild)
        pids.update(int(p) for p in (Path(path) / "cgroup.procs").read_text().split())
    return proc, info, sorted(pids)


def alive(pids: list[int]) -> list[int]:
    out = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                out.append(pid)
        except psutil.NoSuchProcess:
            pass
    return out


async def wait_gone(pids: list[int], timeout: float = 5.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while alive(pids) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return alive(pids)


async def test_bwrap_agent_dies_with_the_engine(tmp_path, cgroups):
    require_bwrap()
    spec = make_spec(tmp_path, DAEMONISING_AGENT)
    engine, info, pids = start_engine(spec, bwrap=True)
    assert len(pids) >= 4  # bwrap, its PID-namespace init, the agent, the daemonised grandchild
    engine.kill()
    engine.wait()
    assert await wait_gone(pids) == []
    # what is left is an empty cgroup: the next engine reaps it from the persisted ref
    registry = SandboxRegistry(SandboxConfig(), tmp_path / "data")
    note = await registry.reap(info["ref"])
    assert note == "its empty cgroup and removed"
    assert not any(Path(p).exists() for p in json.loads(info["ref"])["cgroups"])
    assert await registry.reap(info["ref"]) is None


async def test_plain_agent_outlives_the_engine_until_reaped(tmp_path, cgroups):
    spec = make_spec(tmp_path, DAEMONISING_AGENT)
    engine, info, pids = start_engine(spec, bwrap=False)
    engine.kill()
    engine.wait()
    await asyncio.sleep(0.2)
    assert len(alive(pids)) == 2  # no namespace to take them down: the agent and its grandchild live on
    note = await SandboxRegistry(SandboxConfig(), tmp_path / "data").reap(info["ref"])
    assert note is not None and note.startswith(f"orphan process group {info['pid']} killed; ")
    assert "left in its cgroup killed and removed" in note  # the grandchild that left the group
    assert await wait_gone(pids) == []


def test_launch_wrapper_applies_limits_and_refuses_bad_input(tmp_path):
    """The exec wrapper agents start through: limits are in force in the program it execs; bad
    options or a missing program exit 127 with a message, and nothing is started."""
    import resource
    import subprocess
    import sys

    from engine.sandbox.environment import LAUNCHER, launcher_argv

    probe = "import resource; print(resource.getrlimit(resource.RLIMIT_NOFILE))"
    argv = launcher_argv([sys.executable, "-c", probe], [], [(resource.RLIMIT_NOFILE, 64, 64)])
    out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and out.stdout.strip() == "(64, 64)", out.stderr
    bad = subprocess.run([sys.executable, "-S", "-I", str(LAUNCHER), "--rlimit", "7:x:1", "--", "/bin/true"],
                         capture_output=True, text=True, timeout=30)
    assert bad.returncode == 127 and "symbi launch:" in bad.stderr and "Traceback" not in bad.stderr
    missing = subprocess.run(launcher_argv([str(tmp_path / "nope")], [], []), capture_output=True, text=True, timeout=30)
    assert missing.returncode == 127 and "could not start" in missing.stderr and "nope" in missing.stderr
