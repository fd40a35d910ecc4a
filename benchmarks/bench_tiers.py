"""Start-to-first-heartbeat latency per security tier, through the whole
runtime (policy, audit, scheduler, sandbox, agent protocol), and the engine's
own memory per registered agent. Prints a table; ``run()`` returns its rows."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.agents.model import AgentConfig, AgentState, ResourceLimits, SecurityTier  # noqa: E402
from engine.config import RuntimeConfig  # noqa: E402
from engine.events import AgentLog  # noqa: E402
from engine.runtime import Runtime  # noqa: E402

Row = tuple[str, float, str, str]
HEARTBEAT = "from symbi_agent import agent\nagent.heartbeat()\nagent.log('first heartbeat')\n"
RUNS = 10


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


async def _latency(rt: Runtime, tier: SecurityTier, runs: int) -> list[float]:
    out = []
    for i in range(runs):
        name = f"hb-{tier.value.lower()}-{i}"
        await rt.create_agent(
            AgentConfig(name, HEARTBEAT, security_tier=tier, resource_limits=ResourceLimits(memory_mb=128, cpu_cores=0.5))
        )
        sub = rt.subscribe([AgentLog])
        t0 = time.perf_counter()
        await rt.start_agent(name)
        async with asyncio.timeout(60):
            async for ev in sub:
                if ev.name == name and ev.line.endswith("first heartbeat"):
                    break
        out.append(time.perf_counter() - t0)
        sub.close()
        await rt.wait_for_state(name, AgentState.COMPLETED, AgentState.FAILED, timeout=60)
        await rt.delete_agent(name)
    return out


async def _bench() -> list[Row]:
    rows: list[Row] = []
    cfg = RuntimeConfig.default()
    cfg.lifecycle = dataclasses.replace(cfg.lifecycle, max_agents=100_000)
    with tempfile.TemporaryDirectory() as tmp:
        async with Runtime.open(cfg, Path(tmp) / "data") as rt:
            tiers = {t.tier: t for t in await rt.tiers()}
            for tier in (SecurityTier.NATIVE, SecurityTier.TIER1, SecurityTier.TIER2):
                status = tiers.get(tier)
                if status is None or not status.available:
                    rows.append((f"start to first heartbeat, {tier.value}", float("nan"), "ms", "unavailable here"))
                    continue
                await _latency(rt, tier, 1)  # warm-up (image layers, page cache)
                lat = await _latency(rt, tier, RUNS)
                label = {SecurityTier.NATIVE: "native+bwrap" if "bwrap" in str(await _tier_used(rt)) else "native",
                         SecurityTier.TIER1: "docker", SecurityTier.TIER2: "gvisor"}[tier]
                rows.append((f"start to first heartbeat p50, {label}", statistics.median(lat) * 1e3, "ms", "-"))
                rows.append((f"start to first heartbeat p95, {label}", _pct(lat, 0.95) * 1e3, "ms", "-"))
            gc.collect()
            tracemalloc.start()
            before = tracemalloc.get_traced_memory()[0]
            n = 2000
            await asyncio.gather(*(rt.create_agent(AgentConfig(f"idle-{i}", "print(1)\n")) for i in range(n)))
            gc.collect()
            after = tracemalloc.get_traced_memory()[0]
            tracemalloc.stop()
            rows.append(("engine memory per registered agent (tracemalloc)", (after - before) / n / 1024, "KiB", "-"))
    return rows


async def _tier_used(rt: Runtime) -> str:
    return rt.sandboxes.status("native+bwrap").available and "bwrap" or "native"


def run() -> list[Row]:
    return asyncio.run(_bench())


if __name__ == "__main__":
    for name, value, unit, claim in run():
        print(f"{name:<48} {value:>10,.1f} {unit:<5} {claim}")
