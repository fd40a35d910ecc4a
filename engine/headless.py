"""``symbi-console --headless``: the engine without a UI.

Opens the runtime, logs where its data lives, and runs until SIGINT or
SIGTERM, then stops its agents cleanly and exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from engine.config import RuntimeConfig
from engine.events import AgentStateChanged
from engine.runtime import Runtime

log = logging.getLogger("symbi.headless")


async def run_headless(config: RuntimeConfig, data_dir: str, *, stop: asyncio.Event | None = None) -> int:
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with Runtime.open(config, data_dir) as rt:
            agents = await rt.list_agents()
            log.info("headless engine running; data dir %s; %d agents; stop with SIGINT or SIGTERM", rt.data_dir, len(agents))
            sub = rt.subscribe([AgentStateChanged])

            async def report() -> None:
                async for ev in sub:
                    assert isinstance(ev, AgentStateChanged)
                    old = ev.old.value if ev.old else "-"
                    log.info("agent %s: %s -> %s (%s)", ev.name, old, ev.new.value, ev.reason)

            reporter = asyncio.create_task(report())
            await stop.wait()
            log.info("signal received: stopping agents")
            sub.close()
            await reporter
        log.info("engine stopped cleanly")
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    return 0
