"""Core runtime benchmarks: resource accounting, scheduler dispatch, breaker, sampler.

Run ``python benchmarks/bench_core.py`` to print the table; :func:`run` gives
the rows ``(name, value, unit, seed's claim)`` to other benchmark scripts.
Numbers are medians over several runs; the machine is shared, so compare
ratios rather than absolutes.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from engine.agents.model import Priority, ResourceLimits  # noqa: E402
from engine.agents.resources import ResourceManager, ResourceTotals  # noqa: E402
from engine.agents.sampler import ProcessTreeSampler  # noqa: E402
from engine.agents.scheduler import LoadBalancingStrategy, PoolSpec, Scheduler, Task  # noqa: E402
from engine.clock import SystemClock  # noqa: E402
from engine.errors import SymbiError  # noqa: E402
from engine.recovery import CircuitBreaker  # noqa: E402

Row = tuple[str, float, str, str]
PRIORITIES = (Priority.LOW, Priority.NORMAL, Priority.HIGH, Priority.CRITICAL)


def _median(runs: int, once: Callable[[], float]) -> float:
    return statistics.median(once() for _ in range(runs))


def bench_allocation(n: int = 100_000, runs: int = 5) -> float:
    """Microseconds per allocate+release pair."""
    rm = ResourceManager(ResourceTotals(memory_mb=65536, cpu_cores=64.0, disk_io_mbps=10_000, network_io_mbps=10_000))
    limits = ResourceLimits(memory_mb=256, cpu_cores=0.5, disk_io_mbps=10, network_io_mbps=10)
    ids = [f"agent-{i}" for i in range(n)]

    def once() -> float:
        allocate, release = rm.allocate, rm.release
        start = time.perf_counter()
        for agent_id in ids:
            allocate(agent_id, limits)
            release(agent_id)
        return (time.perf_counter() - start) / n * 1e6

    return _median(runs, once)


async def _dispatch_rate(n: int, with_resources: bool) -> float:
    done = asyncio.get_running_loop().create_future()
    count = 0
    rm = ResourceManager(
        ResourceTotals(memory_mb=1 << 30, cpu_cores=1e6, disk_io_mbps=1 << 30, network_io_mbps=1 << 30)
    )
    limits = ResourceLimits(memory_mb=64, cpu_cores=0.25, disk_io_mbps=1, network_io_mbps=1)
    sched: Scheduler

    def admit(task: Task) -> bool:
        try:
            rm.allocate(task.task_id, limits)
        except SymbiError:
            return False
        return True

    def dispatch(task: Task, pool: str) -> None:
        nonlocal count
        sched.complete(task.task_id)
        if with_resources:
            rm.release(task.task_id)
        count += 1
        if count == n:
            done.set_result(None)

    sched = Scheduler(
        max_concurrent=n,
        pools=[PoolSpec("a", n, weight=3), PoolSpec("b", n, weight=1)],
        strategy=LoadBalancingStrategy.WEIGHTED_ROUND_ROBIN,
        aging_interval=30.0,
        clock=SystemClock(),
        admit=admit if with_resources else (lambda task: True),
        dispatch=dispatch,
        max_queue=n,
    )
    ids = [f"task-{i}" for i in range(n)]
    await sched.start()
    start = time.perf_counter()
    submit = sched.submit
    for i, task_id in enumerate(ids):
        submit(task_id, PRIORITIES[i & 3])
    await done
    elapsed = time.perf_counter() - start
    await sched.close()
    return n / elapsed


def bench_dispatch(n: int = 100_000, runs: int = 3, with_resources: bool = False) -> float:
    """Tasks per second, submit to dispatch, through the event-driven loop."""
    return _median(runs, lambda: asyncio.run(_dispatch_rate(n, with_resources)))


def bench_breaker_allow(n: int = 1_000_000, runs: int = 5) -> float:
    """Nanoseconds per allow() on a closed breaker."""
    breaker = CircuitBreaker("bench")

    def once() -> float:
        allow = breaker.allow
        start = time.perf_counter()
        for _ in range(n):
            allow()
        return (time.perf_counter() - start) / n * 1e9

    return _median(runs, once)


def bench_sampling(trees: int = 10, rounds: int = 50, runs: int = 3) -> tuple[float, float]:
    """Microseconds per tree for one sampling round over ``trees`` idle child processes:
    (one ``sample`` call per tree, one ``sample_many`` call for all)."""
    children = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"]) for _ in range(trees)]
    try:
        pids = [child.pid for child in children]
        sampler = ProcessTreeSampler()

        def each() -> float:
            start = time.perf_counter()
            for _ in range(rounds):
                for pid in pids:
                    sampler.sample(pid)
            return (time.perf_counter() - start) / (rounds * trees) * 1e6

        def many() -> float:
            start = time.perf_counter()
            for _ in range(rounds):
                sampler.sample_many(pids)
            return (time.perf_counter() - start) / (rounds * trees) * 1e6

        return _median(runs, each), _median(runs, many)
    finally:
        for child in children:
            child.kill()
            child.wait()


def run() -> list[Row]:
    sampled_each, sampled_many = bench_sampling()
    return [
        ("resource allocate+release", bench_allocation(), "µs/op", "~100 µs (allocation)"),
        ("scheduler dispatch, 100k tasks", bench_dispatch(), "tasks/s", "10 tasks/s (one per 100 ms)"),
        (
            "scheduler dispatch + allocation",
            bench_dispatch(with_resources=True),
            "tasks/s",
            "10 tasks/s (one per 100 ms)",
        ),
        ("circuit breaker allow()", bench_breaker_allow(), "ns/op", "-"),
        ("sample 10 trees, one by one", sampled_each, "µs/tree", "-"),
        ("sample 10 trees, sample_many", sampled_many, "µs/tree", "-"),
    ]


def format_table(rows: list[Row]) -> str:
    header = ("benchmark", "value", "unit", "seed's claim")
    cells = [header] + [
        (name, f"{value:,.1f}" if value < 1000 else f"{value:,.0f}", unit, claim) for name, value, unit, claim in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(4)]
    lines = []
    for k, row in enumerate(cells):
        lines.append(
            "  ".join(
                cell.rjust(w) if i == 1 else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


if __name__ == "__main__":
    print(format_table(run()))
