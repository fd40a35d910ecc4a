"""``symbi-console --headless``: the engine without a UI.

Opens the engine, serves its API (the data dir's socket always, TCP when
``[http_api]`` is enabled), logs where, and runs until SIGINT or SIGTERM, then
stops its agents cleanly and exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from pathlib import Path

from engine.api.http.served import ServedEngine
from engine.api.http.server import settings_from_config
from engine.api.local import LocalEngine
from engine.config import RuntimeConfig
from engine.events import AgentStateChanged
from engine.runtime import Runtime

log = logging.getLogger("symbi.headless")


async def run_headless(config: RuntimeConfig, data_dir: str, *, stop: asyncio.Event | None = None) -> int:
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    engine = ServedEngine(
        LocalEngine(Runtime(config, data_dir), mode="headless"), Path(data_dir), settings_from_config(config)
    )
    try:
        await engine.open()
        try:
            agents = await engine.agents.list_all()
            listeners = engine.listeners
            where = [str(listeners.socket_path)] if listeners and listeners.socket_path else []
            if listeners is not None and listeners.url:
                where.append(listeners.url)
            log.info(
                "headless engine running; data dir %s; %d agents; serving on %s; stop with SIGINT or SIGTERM",
                data_dir,
                len(agents),
                ", ".join(where) or "nothing",
            )
            events = engine.events.stream(after=await engine.events.position(), types=("AgentStateChanged",))

            async def report() -> None:
                async for batch in events:
                    for ev in batch.events:
                        assert isinstance(ev, AgentStateChanged)
                        old = ev.old.value if ev.old else "-"
                        log.info("agent %s: %s -> %s (%s)", ev.name, old, ev.new.value, ev.reason)

            reporter = asyncio.create_task(report())
            await stop.wait()
            log.info("signal received: stopping agents")
            reporter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reporter
        finally:
            await engine.close("engine shutdown")
        log.info("engine stopped cleanly")
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    return 0
