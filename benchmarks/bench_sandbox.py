"""Sandbox tiers: start latency per tier and how many idle native agents this machine holds.

* start-to-first-output-line latency (p50, p95 over ``RUNS`` launches) of a
  one-line agent on every tier that works here (native unconfined, native
  with the built-in confinement, native+bwrap, Docker, gVisor), in one run so
  the cost of confinement is read beside the unconfined start;
* density: idle agents (sleeping Python in bubblewrap, each in its own
  cgroup) started one after another for at most ``DENSITY_SECONDS`` (and at
  most ``DENSITY_MAX``), with the resident and unique memory per agent and
  the engine's own memory per agent (pipes, reader tasks, handles).

Prints a table; ``run()`` returns its rows. Tiers that do not work here are
listed with their reason and no figures.
"""

from __future__ import annotations

import asyncio
import math
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.agents.executor import LaunchSpec  # noqa: E402
from engine.agents.model import ResourceLimits, SecurityTier  # noqa: E402
from engine.config import SandboxConfig  # noqa: E402
from engine.sandbox.registry import SandboxRegistry  # noqa: E402

Row = tuple[str, float, str, str]
RUNS = 20
DENSITY_SECONDS = 20.0
DENSITY_MAX = 300
MB = 1024 * 1024
CLAIMS = {  # what FACTS.md measured for a bare `docker run` here, for comparison
    "docker": "docker run ~0.45 s",
    "gvisor": "runsc run ~0.6 s",
}


def _spec(root: Path, code: str, name: str, memory_mb: int = 64) -> LaunchSpec:
    agent_id = str(uuid.uuid4())
    agent_dir = root / "agents" / agent_id
    (agent_dir / "workspace").mkdir(parents=True)
    (agent_dir / "agent.py").write_text(code)
    return LaunchSpec(
        agent_id=agent_id,
        name=name,
        program=agent_dir / "agent.py",
        workspace=agent_dir / "workspace",
        limits=ResourceLimits(memory_mb=memory_mb),
        labels={"symbi.engine": "bench"},
    )


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


async def _first_line_latency(executor, root: Path, runs: int) -> list[float]:
    samples = []
    for i in range(runs):
        spec = _spec(root, "print('ready', flush=True)\n", f"lat{i}")
        first = asyncio.get_running_loop().create_future()
        started = time.perf_counter()

        def on_output(stream: str, line: str, first=first) -> None:
            if not first.done():
                first.set_result(time.perf_counter())

        handle = await executor.launch(spec, on_output)
        samples.append(await asyncio.wait_for(first, 30) - started)
        await handle.wait()
        await handle.cleanup()
    return samples


def _launcher_cost(root: Path, runs: int) -> list[Row]:
    """The exec wrapper alone, to ``/bin/true``: plain vs with the built-in confinement plan (interleaved)."""
    import subprocess

    from engine.sandbox.bwrap import base_python
    from engine.sandbox.confinement import plan_for
    from engine.sandbox.environment import launcher_argv

    spec = _spec(root, "", "launcher")
    if os.geteuid() == 0:
        os.chown(spec.workspace, 65534, 65534)
    plan = plan_for(spec, python=base_python(), config=SandboxConfig(), mount_view=os.geteuid() == 0)
    plain, confined = launcher_argv(["/bin/true"], [], []), launcher_argv(["/bin/true"], [], [], plan)
    got: dict[str, list[float]] = {"plain": [], "confined": []}
    for _ in range(runs):
        for name, argv in (("plain", plain), ("confined", confined)):
            started = time.perf_counter()
            subprocess.run(argv, check=True, cwd=spec.workspace)
            got[name].append(time.perf_counter() - started)
    extra = statistics.median(got["confined"]) - statistics.median(got["plain"])
    return [
        ("exec wrapper to /bin/true, no plan, p50", statistics.median(got["plain"]) * 1000, "ms", "-"),
        ("exec wrapper to /bin/true, confinement plan, p50", statistics.median(got["confined"]) * 1000, "ms", "-"),
        ("cost of the confinement itself (difference of p50s)", extra * 1000, "ms", "-"),
    ]


def _tree_memory(pid: int) -> tuple[int, int]:
    """(rss, uss) summed over a process tree."""
    rss = uss = 0
    try:
        procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return 0, 0
    for proc in procs:
        try:
            info = proc.memory_full_info()
        except psutil.Error:
            continue
        rss += info.rss
        uss += info.uss
    return rss, uss


async def _density(executor, root: Path) -> list[Row]:
    engine = psutil.Process()
    engine_before = engine.memory_info().rss
    handles = []
    started = time.perf_counter()
    code = "import time\nprint('idle', flush=True)\ntime.sleep(3600)\n"
    try:
        while time.perf_counter() - started < DENSITY_SECONDS and len(handles) < DENSITY_MAX:
            ready = asyncio.get_running_loop().create_future()

            def on_output(stream: str, line: str, ready=ready) -> None:
                if not ready.done():
                    ready.set_result(None)

            handle = await executor.launch(_spec(root, code, f"idle{len(handles)}"), on_output)
            handles.append(handle)
            await asyncio.wait_for(ready, 30)
        elapsed = time.perf_counter() - started
        await asyncio.sleep(0.5)
        engine_per_agent = (engine.memory_info().rss - engine_before) / len(handles)
        sample = handles[:: max(1, len(handles) // 20)]
        memory = [_tree_memory(h.pid) for h in sample]
        rss = statistics.median(m[0] for m in memory)
        uss = statistics.median(m[1] for m in memory)
        load = os.getloadavg()[0]
    finally:
        for handle in handles:
            handle.kill()
        for handle in handles:
            await handle.wait()
            await handle.cleanup()
    name = executor.name
    return [
        (f"{name}: idle agents started in {DENSITY_SECONDS:.0f} s (cap {DENSITY_MAX})", len(handles), "agents", "-"),
        (f"{name}: start rate while filling", len(handles) / elapsed, "agents/s", "-"),
        (f"{name}: resident memory per idle agent (tree RSS)", rss / MB, "MB", "-"),
        (f"{name}: unique memory per idle agent (tree USS)", uss / MB, "MB", "-"),
        (f"{name}: engine memory per agent", engine_per_agent / 1024, "KB", "-"),
        (f"{name}: 1-min load average with them idle", load, "", "-"),
    ]


async def _bench() -> tuple[list[Row], list[str]]:
    rows: list[Row] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="symbi-bench-") as tmp:
        root = Path(tmp) / "data"
        registry = SandboxRegistry(SandboxConfig(), root)
        status = {s.name: s for s in await registry.adoctor()}
        tiers = [
            ("native", SandboxRegistry(SandboxConfig(native_isolation="none"), root), SecurityTier.NATIVE),
            ("native+landlock", SandboxRegistry(SandboxConfig(native_isolation="landlock"), root), SecurityTier.NATIVE),
            ("native+bwrap", SandboxRegistry(SandboxConfig(native_isolation="bwrap"), root), SecurityTier.NATIVE),
            ("docker", registry, SecurityTier.TIER1),
            ("gvisor", registry, SecurityTier.TIER2),
        ]
        executors = {}
        for name, reg, tier in tiers:
            if not status[name].available:
                notes.append(f"{name}: not measured, unavailable here: {status[name].detail}")
                continue
            executors[name], _ = reg.executor_for(tier)
        # interleaved (one launch per tier per round), so the machine's noise falls on every tier alike
        samples: dict[str, list[float]] = {name: [] for name in executors}
        for _ in range(RUNS):
            for name, executor in executors.items():
                samples[name] += await _first_line_latency(executor, root, 1)
        for name, got in samples.items():
            claim = CLAIMS.get(name, "-")
            rows.append((f"{name}: start to first output line, p50", statistics.median(got) * 1000, "ms", claim))
            rows.append((f"{name}: start to first output line, p95", _percentile(got, 0.95) * 1000, "ms", claim))
        if status["native+landlock"].available:
            rows += _launcher_cost(root, 3 * RUNS)
        if status["native+bwrap"].available:
            executor, _ = registry.executor_for(SecurityTier.NATIVE)
            rows += await _density(executor, root)
        await registry.reap_all_labelled("bench")
    return rows, notes


def run() -> list[Row]:
    rows, notes = asyncio.run(_bench())
    for note in notes:
        print(f"# {note}")
    return rows


if __name__ == "__main__":
    results = run()
    print(f"{'measure':<64} {'value':>10}  {'unit':<9} {'reference':<20}")
    for name, value, unit, claim in results:
        print(f"{name:<64} {value:>10,.1f}  {unit:<9} {claim:<20}")
