"""Message bus benchmarks: end-to-end throughput and request/response latency.

"End to end" means every message is encrypted (AES-256-GCM under the pair
key), signed (Ed25519, per message or per Merkle batch), queued, verified
(signature and GCM tag) and delivered as plaintext to the receiver: one
producer task sends N messages, one consumer task receives them, on one
event loop (one core), with the default queue size (1000, so backpressure
is exercised). Audit hook off, except in the row that says otherwise, where
an in-memory hook shows the bus's own cost of auditing (two records per
message: sent and delivered). Figures are medians of several runs; the
machine is shared, so compare ratios rather than absolutes.

Run ``python benchmarks/bench_comms.py`` for the table; :func:`run` gives the
rows ``(name, value, unit, seed's claim)`` to ``run_all.py``.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: E402

from engine.comms import KeyStore, MessageBus, MessageType, seal, sign_batch, to_bytes, to_dict  # noqa: E402

Row = tuple[str, float, str, str]
CLAIM = "10,000+ msgs/s (unencrypted)"


def _bus(keys: KeyStore, batched: bool, audit: bool = False) -> MessageBus:
    records: list[dict] = []

    async def hook(record: dict) -> None:  # an in-memory stand-in: the bus's own cost of auditing
        records.append(record)
        if len(records) > 10_000:
            records.clear()

    bus = MessageBus(keys, batch_signing=batched, max_message_size=1 << 20, queue_size=1000,
                     audit=hook if audit else None)
    bus.register("producer")
    bus.register("consumer")
    return bus


async def _throughput(
    keys: KeyStore, size: int, n: int, batched: bool, audit: bool = False
) -> tuple[float, float]:
    """(messages per wall-clock second, messages per CPU second of this process)."""
    bus = _bus(keys, batched, audit)
    payload = os.urandom(size)

    async def produce() -> None:
        for _ in range(n):
            await bus.send("producer", "consumer", payload)

    async def consume() -> None:
        for _ in range(n):
            got = await bus.receive("consumer")
            assert got is not None and got.verified and len(got.payload) == size

    start, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(produce(), consume())
    return n / (time.perf_counter() - start), n / (time.process_time() - cpu)


async def _ingress(keys: KeyStore, size: int, n: int, as_json: bool = False, batch: int = 256) -> float:
    """Envelopes sealed and batch-signed by an agent process, submitted as bytes (or as decoded
    JSON objects, as the agent protocol hands them over), then received."""
    bus = _bus(keys, True)
    aead = AESGCM(bus.pair_key("producer", "consumer"))
    signer = bus.identity("producer").signing_key
    payload = os.urandom(size)
    wire: list[Any] = []
    for _ in range(0, n, batch):
        drafts = [
            seal(aead, os.urandom(12), sender="producer", type=MessageType.DIRECT, payload=payload,
                 timestamp=time.time(), ttl=60.0, recipient="consumer")
            for _ in range(batch)
        ]
        wire.extend((to_dict if as_json else to_bytes)(e) for e in sign_batch(signer, drafts))
    start = time.perf_counter()
    for i in range(0, len(wire), 500):
        for raw in wire[i : i + 500]:
            await bus.receive_envelope(raw)
        while await bus.receive("consumer", timeout=0) is not None:
            pass
    return len(wire) / (time.perf_counter() - start)


async def _round_trip_p50(keys: KeyStore, rounds: int, batched: bool = True) -> float:
    """Median microseconds for request() -> receive -> respond() -> request returns."""
    bus = _bus(keys, batched)

    async def server() -> None:
        while True:
            req = await bus.receive("consumer")
            await bus.respond("consumer", req, req.payload)

    task = asyncio.create_task(server())
    samples = []
    try:
        for _ in range(rounds):
            start = time.perf_counter()
            await bus.request("producer", "consumer", b"x" * 256, timeout=10)
            samples.append(time.perf_counter() - start)
    finally:
        task.cancel()
    return statistics.median(samples) * 1e6


def _median(runs: int, make) -> float:  # type: ignore[no-untyped-def]
    return statistics.median(asyncio.run(make()) for _ in range(runs))


def _medians(runs: int, make) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    results = [asyncio.run(make()) for _ in range(runs)]
    return statistics.median(r[0] for r in results), statistics.median(r[1] for r in results)


def run(quick: bool = False) -> list[Row]:
    scale = 4 if quick else 1
    with tempfile.TemporaryDirectory(prefix="bench-comms-") as tmp:
        keys = KeyStore.in_data_dir(tmp)
        rows: list[Row] = []
        for size, label in ((256, "256 B"), (4096, "4 KiB")):
            wall, cpu = _medians(5, lambda s=size: _throughput(keys, s, 40_000 // scale, True))
            rows.append((f"bus end to end {label}, batch-signed", wall, "msgs/s", CLAIM))
            rows.append((f"bus end to end {label}, batch-signed, CPU time", cpu, "msgs/CPU-s", CLAIM))
        wall, _ = _medians(5, lambda: _throughput(keys, 256, 40_000 // scale, True, audit=True))
        rows.append(("bus end to end 256 B, batch-signed, audit hook on", wall, "msgs/s", CLAIM))
        for size, label in ((256, "256 B"), (4096, "4 KiB")):
            wall, _ = _medians(3, lambda s=size: _throughput(keys, s, 3_000 // scale, False))
            rows.append((f"bus end to end {label}, signed per message", wall, "msgs/s", CLAIM))
        rows.append(("bus ingress 256 B, bytes (agent-signed batches)", _median(
            3, lambda: _ingress(keys, 256, 20_480 // scale)), "msgs/s", CLAIM))
        rows.append(("bus ingress 256 B, JSON objects (agent-signed batches)", _median(
            3, lambda: _ingress(keys, 256, 20_480 // scale, as_json=True)), "msgs/s", CLAIM))
        rows.append(("bus request/response round trip, p50", _median(
            3, lambda: _round_trip_p50(keys, 1000 // scale)), "µs", "-"))
        return rows


def format_table(rows: list[Row]) -> str:
    header = ("benchmark", "value", "unit", "seed's claim")
    cells = [header] + [
        (name, f"{value:,.1f}" if value < 1000 else f"{value:,.0f}", unit, claim) for name, value, unit, claim in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(4)]
    lines = []
    for k, row in enumerate(cells):
        lines.append("  ".join(c.rjust(w) if i == 1 else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))))
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


if __name__ == "__main__":
    print(format_table(run(quick="--quick" in sys.argv)))
