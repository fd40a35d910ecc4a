"""The HTTP API and the attached console: request latency at 1,000 agents, event-stream
throughput to one client, and the console's frame time attached beside embedded.

All in one process and one run, so the figures compare: the engine serves on
loopback TCP (uvicorn) and on its Unix socket; clients are httpx; the console
is driven headless by Textual's pilot. Run alone: ``python benchmarks/bench_http.py``.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from engine.api import AgentConfig  # noqa: E402
from engine.api.http.server import HttpSettings, open_listeners  # noqa: E402
from engine.api.local import LocalEngine  # noqa: E402
from engine.api.remote import RemoteEngine  # noqa: E402
from engine.config import RuntimeConfig  # noqa: E402
from engine.events import AgentLog  # noqa: E402
from engine.runtime import Runtime  # noqa: E402

AGENTS = 1_000
REQUESTS = 200
EVENTS = 20_000
TOKEN = "bench-token-0123456789abcdef"


def _config() -> RuntimeConfig:
    import dataclasses

    cfg = RuntimeConfig.default()
    return dataclasses.replace(cfg, lifecycle=dataclasses.replace(cfg.lifecycle, max_agents=AGENTS + 10))


async def _p50(client: httpx.AsyncClient, method: str, path: str, n: int = REQUESTS) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        response = await client.request(method, path)
        response.raise_for_status()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


async def _stream_rate(local: LocalEngine, remote: RemoteEngine) -> float:
    """Events a second from publish to the client's hands, over the socket, for EVENTS events."""
    position = await remote.events.position()
    stream = remote.events.stream(after=position)
    bus = local.runtime.bus
    got = 0
    t0 = time.perf_counter()

    async def publish() -> None:
        for i in range(EVENTS):
            bus.publish(AgentLog(agent_id="bench", name="bench", stream="stdout", line=f"line {i}"))
            if i % 500 == 0:
                await asyncio.sleep(0)

    producer = asyncio.create_task(publish())
    async for batch in stream:
        got += len(batch.events) + batch.missed
        if got >= EVENTS:
            break
    elapsed = time.perf_counter() - t0
    await producer
    await stream.aclose()
    return EVENTS / elapsed


async def _frame_ms(engine: object) -> float:
    """Median time of one refresh of the agents screen (key '2' then redraws) with 1,000 agents."""
    from console.app import SymbiConsole

    app = SymbiConsole(engine, data_dir_label="~/bench")  # type: ignore[arg-type]
    times = []
    async with app.run_test(size=(120, 40)) as pilot:
        await asyncio.wait_for(app.engine_ready.wait(), 60)
        await pilot.press("2")
        await pilot.pause()
        for key in ["1", "2"] * 10:
            t0 = time.perf_counter()
            await pilot.press(key)
            await pilot.pause()
            times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


async def measure() -> list[tuple[str, float, str, str]]:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "d"
        local = LocalEngine(Runtime(_config(), data), mode="headless")
        await local.open()
        settings = HttpSettings(enabled=True, port=0, rate_limit=0.0)
        listeners = await open_listeners(local, data, settings, env={"SYMBI_API_TOKEN": TOKEN})
        try:
            for i in range(AGENTS):
                await local.agents.create(AgentConfig(name=f"a{i:04d}", dsl_source="print(1)\n"))
            headers = {"authorization": f"Bearer {TOKEN}"}
            async with httpx.AsyncClient(base_url=listeners.url, headers=headers) as tcp:
                seed_list = await _p50(tcp, "GET", "/api/v1/agents")
                full_list = await _p50(tcp, "POST", "/api/v1/engine/agents/list_all", n=50)
                health = await _p50(tcp, "GET", "/api/v1/health")
            sock = httpx.AsyncHTTPTransport(uds=str(listeners.socket_path))
            async with httpx.AsyncClient(transport=sock, base_url="http://engine") as uds:
                uds_list = await _p50(uds, "GET", "/api/v1/agents")
            t0 = time.perf_counter()
            direct = [await local.agents.list_all() for _ in range(50)]
            in_process = (time.perf_counter() - t0) / len(direct) * 1000
            remote = RemoteEngine(socket_path=listeners.socket_path)
            await remote.open()
            rate = await _stream_rate(local, remote)
            attached = await _frame_ms(remote)
            await remote.close()
            embedded = await _frame_ms(local)
        finally:
            await listeners.close()
            await local.close()
    return [
        (f"GET /api/v1/agents, {AGENTS:,} agents, p50 (TCP, token)", seed_list, "ms", "ids only, as the seed"),
        (f"engine agents.list_all over HTTP, {AGENTS:,} agents, p50", full_list, "ms", "every AgentInfo as JSON"),
        ("GET /api/v1/health p50 (TCP)", health, "ms", "floor of one request"),
        (f"GET /api/v1/agents, {AGENTS:,} agents, p50 (Unix socket)", uds_list, "ms", ""),
        (f"agents.list_all in process, {AGENTS:,} agents", in_process, "ms", "no HTTP"),
        ("event stream to one client (SSE over the socket)", rate, "events/s", f"{EVENTS:,} AgentLog events"),
        (f"console frame, agents screen, {AGENTS:,} agents, attached", attached, "ms", "key + redraw, median"),
        (f"console frame, agents screen, {AGENTS:,} agents, embedded", embedded, "ms", "same, in process"),
    ]


def run() -> list[tuple[str, float, str, str]]:
    return asyncio.run(measure())


if __name__ == "__main__":
    for row in run():
        print(f"| {row[0]:<60} | {row[1]:>12,.2f} | {row[2]:<9} | {row[3]} |")
