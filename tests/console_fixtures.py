"""Shared helpers for the console tests (``tests/test_console_*.py``).

The console tests drive the real app on a real :class:`Runtime` opened on a
temporary directory, with real agent processes (small standard-library
programs defined here; the create form also picks from ``examples/agents``).
Two stand-ins exist only to make screenshots stable:

* :class:`engine.clock.FakeClock` freezes time (uptimes, event timestamps).
* :class:`FixedSampler` replaces the psutil process sampler and returns fixed
  numbers. Real sampling is tested in ``tests/test_sampler.py``; here we only
  need CPU and memory figures that do not change between runs.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from console.app import SymbiConsole
from engine.agents.model import AgentConfig, AgentState, Priority, ResourceLimits
from engine.agents.sampler import ProcessTreeSampler, TreeSample
from engine.clock import FakeClock
from engine.config import RuntimeConfig
from engine.runtime import Runtime

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "agents"
MIB = 1024 * 1024


class FixedSampler(ProcessTreeSampler):
    """A stand-in for ``ProcessTreeSampler`` that returns fixed numbers.

    Every live agent reads 12.5 % CPU and 48 MiB resident; the machine reads
    23 % CPU and 6 of 16 GiB used. Only for snapshot tests, whose output must
    not depend on what the machine happens to be doing. (It subclasses the
    real sampler only to keep its interface; no real measurement happens.)
    """

    CPU_PERCENT = 12.5
    RSS_BYTES = 48 * MIB
    MACHINE = (23.0, 6 * 1024 * MIB, 16 * 1024 * MIB)

    def sample(self, pid: int) -> TreeSample:
        return TreeSample(pid, self.CPU_PERCENT, self.RSS_BYTES, 0, 0, 1, alive=True)

    def sample_many(self, pids: Iterable[int]) -> dict[int, TreeSample]:
        return {pid: self.sample(pid) for pid in pids}

    def forget(self, pid: int) -> None:
        pass

    def machine(self) -> tuple[float, int, int]:  # type: ignore[override]
        return self.MACHINE


def console_config(*, keymap: dict[str, str] | None = None, **sections: dict[str, Any]) -> RuntimeConfig:
    """Defaults with short timeouts and fixed totals (4 cores, 4096 MB).

    ``sections`` maps a section name to field overrides, e.g.
    ``console_config(resource={"monitoring_interval": 3600})``.
    """
    base: dict[str, dict[str, Any]] = {
        "lifecycle": {"termination_timeout": 3.0},
        "resource": {"monitoring_interval": 0.2, "total_memory_mb": 4096, "total_cpu_cores": 4.0},
        "console": {"theme": "symbi-dark", "refresh_interval": 0.5},
    }
    if keymap is not None:
        base["console"]["keymap"] = keymap
    for name, fields in sections.items():
        base.setdefault(name, {}).update(fields)
    cfg = RuntimeConfig.default()
    for name, fields in base.items():
        cfg = dataclasses.replace(cfg, **{name: dataclasses.replace(getattr(cfg, name), **fields)})
    return cfg


# Agent programs owned by these tests (standard library only), so the console
# tests and their screenshots do not change when examples/agents/ evolves.
PROGRAMS: dict[str, str] = {
    "heartbeat": (
        "import signal, sys, time\n"
        "running = True\n"
        "def stop(signum, frame):\n"
        "    global running\n"
        "    running = False\n"
        "signal.signal(signal.SIGTERM, stop)\n"
        "beat = 0\n"
        "while running:\n"
        "    beat += 1\n"
        "    print(f'heartbeat {beat}', flush=True)\n"
        "    time.sleep(0.5)\n"
        "print('heartbeat stopping on SIGTERM', flush=True)\n"
        "sys.exit(0)\n"
    ),
    "crasher": "import sys, time\nprint('crasher: working', flush=True)\ntime.sleep(0.2)\nsys.exit(1)\n",
    "hello": "print('hello', flush=True)\n",
}


def program(name: str) -> str:
    return PROGRAMS[name]


def agent_config(
    name: str,
    kind: str = "hello",
    *,
    priority: Priority = Priority.NORMAL,
    memory_mb: int = 256,
    cpu_cores: float = 1.0,
) -> AgentConfig:
    return AgentConfig(
        name=name,
        dsl_source=program(kind),
        priority=priority,
        resource_limits=ResourceLimits(memory_mb=memory_mb, cpu_cores=cpu_cores),
    )


def make_app(tmp_path: Path, *, readonly: bool = False, config: RuntimeConfig | None = None, **kw: Any) -> SymbiConsole:
    """An app over a not-yet-open runtime on ``tmp_path`` (the app opens and closes it)."""
    cfg = config or console_config()
    runtime = Runtime(cfg, tmp_path / "data", **kw)
    return SymbiConsole(runtime, readonly=readonly, config=cfg, data_dir_label="~/symbi-data")


async def ready(app: SymbiConsole, timeout: float = 10.0) -> None:
    await asyncio.wait_for(app.engine_ready.wait(), timeout)


async def until(pilot: Any, predicate: Callable[[], bool], timeout: float = 15.0, what: str = "") -> None:
    """Let the app run until ``predicate`` holds."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                await pilot.pause()
                if predicate():
                    return
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what or predicate}") from None


def model_state(app: SymbiConsole, name: str) -> AgentState | None:
    info = app.model.by_name(name)
    return info.state if info else None


def fake_clock() -> FakeClock:
    return FakeClock(start=1_700_000_000.0)
