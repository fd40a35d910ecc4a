"""Agent creation and state-transition costs on a real runtime (SQLite on a
temporary data dir). Prints a table; ``run()`` returns its rows."""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.agents.model import AgentConfig, AgentState  # noqa: E402
from engine.config import RuntimeConfig  # noqa: E402
from engine.runtime import Runtime  # noqa: E402

Row = tuple[str, float, str, str]
SOURCE = "print('hi')\n"


def _median_us(samples: list[float]) -> float:
    return statistics.median(samples) * 1e6


async def _bench(n: int = 2000, rounds: int = 5) -> list[Row]:
    rows: list[Row] = []
    cfg = RuntimeConfig.default()
    cfg.lifecycle.max_agents = 10 * n * rounds
    with tempfile.TemporaryDirectory() as tmp:
        async with Runtime.open(cfg, Path(tmp) / "data") as rt:
            # validation alone
            per = []
            for r in range(rounds):
                t0 = time.perf_counter()
                for i in range(n):
                    AgentConfig(name=f"v{r}-{i}", dsl_source=SOURCE).validate()
                per.append((time.perf_counter() - t0) / n)
            rows.append(("agent config validation", _median_us(per), "µs/agent", "-"))

            # durable creation, one at a time (each waits for its commit)
            per = []
            for r in range(rounds):
                t0 = time.perf_counter()
                for i in range(n // 4):
                    await rt.create_agent(AgentConfig(name=f"s{r}-{i}", dsl_source=SOURCE))
                per.append((time.perf_counter() - t0) / (n // 4))
            rows.append(("agent creation, durable, sequential", _median_us(per), "µs/agent", "~1 ms"))

            # durable creation, concurrent callers share group commits
            per = []
            for r in range(rounds):
                t0 = time.perf_counter()
                await asyncio.gather(
                    *(rt.create_agent(AgentConfig(name=f"c{r}-{i}", dsl_source=SOURCE)) for i in range(n))
                )
                per.append((time.perf_counter() - t0) / n)
            rows.append(("agent creation, durable, 2000 concurrent", _median_us(per), "µs/agent", "~1 ms"))

            # state transitions: checked, recorded in history, persisted write-behind, published
            record = rt.agents.records()[0]
            record.state = AgentState.RUNNING
            per = []
            for _ in range(rounds):
                t0 = time.perf_counter()
                for _ in range(n // 2):
                    rt.journal.transition(record, AgentState.SUSPENDED, "bench")
                    rt.journal.transition(record, AgentState.RUNNING, "bench")
                per.append((time.perf_counter() - t0) / n)
            await rt.store.flush()
            rows.append(("state transition (checked, persisted, published)", _median_us(per), "µs", "~50 µs"))
            record.state = AgentState.TERMINATING
            rt.journal.transition(record, AgentState.TERMINATED, "bench")
    return rows


def run() -> list[Row]:
    return asyncio.run(_bench())


def print_table(rows: list[Row]) -> None:
    print(f"{'measure':<52} {'value':>12}  {'unit':<10} {'seed claim':<12}")
    for name, value, unit, claim in rows:
        print(f"{name:<52} {value:>12,.1f}  {unit:<10} {claim:<12}")


if __name__ == "__main__":
    print_table(run())
