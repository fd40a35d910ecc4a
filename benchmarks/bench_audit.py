"""Audit trail benchmarks: group-commit appends, sequential appends, verification, queries.

Run ``python benchmarks/bench_audit.py`` to print the table; :func:`run` gives
the rows ``(name, value, unit, claim)`` to other benchmark scripts. Every
durability figure names its mode: ``batch`` = one fsync'd commit per group of
concurrent appends (``synchronous=FULL``), ``event`` = one fsync'd commit per
event. The 1,000,000-event log for the verify figure is built through the real
API (``append_nowait`` in chunks of 10,000, each followed by ``flush``); its
build time is reported too. Everything runs on real files in a temp dir.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from engine.audit import AuditReader, AuditTrail, verify  # noqa: E402

Row = tuple[str, float, str, str]

VERIFY_EVENTS = int(os.environ.get("BENCH_AUDIT_VERIFY_EVENTS", "1000000"))
QUERY_EVENTS = 100_000


def _event(i: int) -> dict:
    return {
        "type": ("agent.state", "tool.call", "resource.allocate", "secret.read")[i % 4],
        "agent": f"agent-{i % 50}",
        "actor": f"agent:agent-{i % 50}" if i % 3 else "engine",
        "action": "transition" if i % 4 == 0 else "call",
        "resource": f"agents/agent-{i % 50}",
        "decision": "deny" if i % 17 == 0 else "allow",
        "details": {"i": i, "from": "Ready", "to": "Running", "reason": "scheduled by pool native"},
    }


async def _concurrent(path: Path, durability: str, workers: int, per_worker: int) -> float:
    async with AuditTrail(path, durability=durability) as trail:

        async def worker(w: int) -> None:
            for i in range(per_worker):
                await trail.append(**_event(w * per_worker + i))

        start = time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(workers)))
        return workers * per_worker / (time.perf_counter() - start)


async def _sequential(path: Path, durability: str, n: int) -> float:
    async with AuditTrail(path, durability=durability) as trail:
        start = time.perf_counter()
        for i in range(n):
            await trail.append(**_event(i))
        return n / (time.perf_counter() - start)


async def _nowait(path: Path, n: int, chunk: int = 10_000) -> float:
    async with AuditTrail(path) as trail:
        start = time.perf_counter()
        for base in range(0, n, chunk):
            for i in range(base, min(n, base + chunk)):
                trail.append_nowait(**_event(i))
            await trail.flush()
        return n / (time.perf_counter() - start)


def _fresh(root: Path, name: str) -> Path:
    path = root / name
    shutil.rmtree(path, ignore_errors=True)
    return path


def _median_rate(runs: int, fn) -> float:  # type: ignore[no-untyped-def]
    return statistics.median(fn() for _ in range(runs))


async def _query_latencies(path: Path) -> list[tuple[str, float]]:
    """Median milliseconds of the console's typical reads over a QUERY_EVENTS log."""
    async with AuditReader(path) as reader:
        cases = {
            "newest page (100)": lambda: reader.query(limit=100, newest_first=True),
            "type+agent filter page (100)": lambda: reader.query(types="tool.call", agent="agent-7", limit=100),
            "decision=deny, 1h window": lambda: reader.query(decision="deny", since="1h", limit=100),
            "text search page (100)": lambda: reader.query(text="agent-42", limit=100),
            "text search, no match (full scan)": lambda: reader.query(text="no-such-text", limit=100),
            "keyset page deep (after_seq)": lambda: reader.query(limit=100, after_seq=QUERY_EVENTS - 1000),
            "offset page deep (offset 90k)": lambda: reader.query(limit=100, offset=90_000),
            "count with filter": lambda: reader.count(types="secret.read", decision="allow"),
        }
        out = []
        for name, make in cases.items():
            times = []
            for _ in range(7):
                start = time.perf_counter()
                await make()
                times.append((time.perf_counter() - start) * 1000)
            out.append((name, statistics.median(times)))
        return out


def run() -> list[Row]:
    rows: list[Row] = []
    root = Path(tempfile.mkdtemp(prefix="bench-audit-"))
    try:
        for durability, workers, per in (("batch", 1000, 50), ("batch", 100, 300), ("event", 100, 20)):
            rate = _median_rate(
                3, lambda d=durability, w=workers, p=per: asyncio.run(_concurrent(_fresh(root, "c"), d, w, p))
            )
            claim = "issue: > 20,000/s" if durability == "batch" else "one fsync per event"
            rows.append((f"audit append, {workers} concurrent (durability={durability})", rate, "events/s", claim))
        for durability in ("batch", "event"):
            rate = _median_rate(3, lambda d=durability: asyncio.run(_sequential(_fresh(root, "s"), d, 300)))
            rows.append(
                (f"audit append, 1 writer sequential (durability={durability})", rate, "events/s", "fsync-bound")
            )
        rate = _median_rate(3, lambda: asyncio.run(_nowait(_fresh(root, "n"), 50_000)))
        rows.append(("audit append_nowait + flush per 10k (durability=batch)", rate, "events/s", ""))

        big = _fresh(root, "big")
        start = time.perf_counter()
        asyncio.run(_nowait(big, VERIFY_EVENTS))
        rows.append(
            (f"audit build {VERIFY_EVENTS:,} events (append_nowait, batch)", time.perf_counter() - start, "s", "")
        )
        times = []
        for _ in range(3):
            report = verify(big)
            assert report.ok, report.render()
            times.append(report.seconds)
        rows.append((f"audit verify {VERIFY_EVENTS:,} events", statistics.median(times), "s", "issue: 1M < 10 s"))
        rows.append(("audit verify rate", VERIFY_EVENTS / statistics.median(times), "events/s", ""))
        shutil.rmtree(big, ignore_errors=True)

        qpath = _fresh(root, "q")
        asyncio.run(_nowait(qpath, QUERY_EVENTS))
        for name, ms in asyncio.run(_query_latencies(qpath)):
            claim = "scans every row" if "full scan" in name else "console: < 50 ms"
            rows.append((f"audit query over 100k: {name}", ms, "ms", claim))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return rows


def main() -> None:
    rows = run()
    print(f"| {'measure':<62} | {'value':>12} | {'unit':<9} | {'claim':<20} |")
    print(f"|{'-' * 64}|{'-' * 14}|{'-' * 11}|{'-' * 22}|")
    for name, value, unit, claim in rows:
        shown = f"{value:,.2f}" if value < 100 else f"{value:,.0f}"
        print(f"| {name:<62} | {shown:>12} | {unit:<9} | {claim:<20} |")


if __name__ == "__main__":
    main()
