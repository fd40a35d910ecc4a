"""The demo scenario, and the screenshots in ``screenshots/`` made from it.

``python -m console.demo --screenshots screenshots`` (``make screenshots``)
opens an engine on a temporary data dir, runs real agents through the
interesting states (running, completed with a result, crashed and restarted,
killed by its memory limit, scheduled), drives the console with its pilot and
saves an SVG of each screen. ``python -m console.demo --data-dir D`` only
seeds a data dir, for trying the console by hand. Everything is done through
the engine interface, as an operator would; only the in-process example MCP
servers need the engine in this process (:func:`engine.api.boot.add_example_servers`).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any

from engine.api import (
    AgentConfig,
    AgentInfo,
    AgentState,
    Engine,
    ExecutionMode,
    Priority,
    ResourceLimits,
    SecurityTier,
    boot,
)
from engine.errors import SymbiError

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "agents"
S = AgentState
SMALL = ResourceLimits(memory_mb=128, cpu_cores=0.25)
SERVERS = {"demo": "demo_server", "weather": "poisoned_server"}


def _program(name: str) -> str:
    return (EXAMPLES / f"{name}.py").read_text()


async def wait_for_state(engine: Engine, ref: str, *states: AgentState, timeout: float = 60.0) -> AgentInfo:
    """Poll until agent ``ref`` is in one of ``states``."""
    async with asyncio.timeout(timeout):
        while True:
            info = await engine.agents.get(ref)
            if info.state in states:
                return info
            await asyncio.sleep(0.1)


async def seed(engine: Engine) -> None:
    """Agents in the states an operator meets: running, completed, failed, killed, scheduled."""
    await engine.secrets.set("shared/db_password", "demo-only-not-a-real-password")
    specs = [
        AgentConfig("heartbeat", _program("heartbeat"), execution_mode=ExecutionMode.PERSISTENT, priority=Priority.HIGH,
                    resource_limits=ResourceLimits(memory_mb=128, cpu_cores=0.25)),
        AgentConfig("cpu-burner", _program("cpu_burner"), execution_mode=ExecutionMode.PERSISTENT,
                    resource_limits=ResourceLimits(memory_mb=128, cpu_cores=1.0)),
        AgentConfig("worker", _program("worker"), resource_limits=SMALL),
        AgentConfig("crasher", _program("crasher"), priority=Priority.LOW, resource_limits=SMALL),
        AgentConfig("memory-hog", _program("memory_hog"), resource_limits=ResourceLimits(memory_mb=64, cpu_cores=0.25)),
        AgentConfig("nightly-report", _program("hello"), execution_mode=ExecutionMode.SCHEDULED,
                    schedule="0 2 * * *", resource_limits=SMALL),
    ]
    tiers = {t.tier for t in await engine.resources.tiers() if t.available}
    if SecurityTier.TIER1 in tiers:
        specs.append(AgentConfig("docker-hello", _program("hello"), security_tier=SecurityTier.TIER1,
                                 resource_limits=SMALL))
    for spec in specs:
        await engine.agents.create(spec)
    await engine.agents.start("worker", input={"numbers": [3, 4, 5], "secret": "shared/db_password"})
    for name in ("heartbeat", "cpu-burner", "crasher", "memory-hog", "nightly-report"):
        await engine.agents.start(name)
    if SecurityTier.TIER1 in tiers:
        await engine.agents.start("docker-hello")
    await wait_for_state(engine, "worker", S.COMPLETED, S.FAILED)
    await wait_for_state(engine, "memory-hog", S.FAILED)
    for _ in range(100):  # the crasher spends its restart budget
        info = await engine.agents.get("crasher")
        if info.state is S.FAILED and "budget exhausted" in (info.last_error or ""):
            break
        await asyncio.sleep(0.2)


# what the worker agent knows: (kind, content, metadata, shared with everyone)
KNOWLEDGE: tuple[tuple[str, str, dict[str, str | int], bool], ...] = (
    ("knowledge", "Invoices are sent on the first working day of each month. Late invoices are flagged "
     "after 14 days and escalated to the finance lead.", {"source": "billing-runbook.md"}, False),
    ("knowledge", "Refunds go back to the original payment method within 14 days. Refunds above 500 EUR "
     "need a second approval.", {"source": "refunds.md", "owner": "finance"}, False),
    ("knowledge", "Production deployments happen every Tuesday after the integration tests pass.",
     {"source": "release.md"}, True),
    ("long_term", "The operator prefers short answers with the numbers first.", {}, False),
    ("working", "Current batch: numbers 3, 4 and 5; the sum is 12.", {"step": 2}, False),
)
QUESTION = "How long do refunds take, and who approves large ones?"


async def seed_knowledge(engine: Engine) -> None:
    """Give the worker agent some memory and knowledge (one item shared with everyone)."""
    worker = await engine.agents.get("worker")
    for kind, content, metadata, shared in KNOWLEDGE:
        await engine.knowledge.add(worker.id, content, kind, dict(metadata), share_with=["*"] if shared else None)


async def knowledge_shot(app: Any, pilot: Any, engine: Engine) -> None:
    """The knowledge screen on the worker agent, with a RAG answer and its sources."""
    from textual.widgets import DataTable, Input

    from console.screens.knowledge import show_knowledge

    await show_knowledge(app, (await engine.agents.get("worker")).id)
    screen = app.screen
    for _ in range(100):
        if len(screen.items) == len(KNOWLEDGE):
            break
        await pilot.pause(0.1)
    ask = screen.query_one("#kn-ask", Input)
    ask.value = QUESTION
    ask.focus()
    await pilot.press("enter")
    for _ in range(100):
        if screen.answer is not None:
            break
        await pilot.pause(0.1)
    screen.query_one("#kn-sources", DataTable).focus()
    await pilot.pause(0.5)


async def review_shot(app: Any, pilot: Any, engine: Engine) -> None:
    """The review queue (8): a poisoned MCP server's tools waiting beside the demo server's, the
    worst one selected with its findings highlighted in its definition."""
    from textual.widgets import DataTable

    await boot.add_example_servers(engine, SERVERS)
    await pilot.press("8")
    screen = app.screen
    for _ in range(100):
        if getattr(screen, "loaded", False) and len(screen.tools) >= 5:
            break
        await pilot.pause(0.1)
    worst = max(screen.tools.values(), key=lambda r: (r.score, r.id))
    table = screen.query_one("#tools-table", DataTable)
    table.focus()
    table.move_cursor(row=table.get_row_index(worst.id))
    await pilot.pause(1.0)
    app.clear_notifications()
    await pilot.pause(0.2)


async def screenshots(out: Path, size: tuple[int, int] = (120, 40)) -> list[Path]:
    from console.app import SymbiConsole

    out.mkdir(parents=True, exist_ok=True)
    saved: list[Path] = []
    with tempfile.TemporaryDirectory() as tmp:
        engine = boot.demo_engine(Path(tmp) / "data")
        app = SymbiConsole(engine, data_dir_label="~/.local/share/symbi-console")
        async with app.run_test(size=size) as pilot:
            await seed(engine)
            await pilot.pause(3.0)  # a few resource samples for the gauges

            def shot(name: str) -> None:
                app.save_screenshot(filename=f"{name}.svg", path=str(out))
                saved.append(out / f"{name}.svg")

            for key, name in [("1", "dashboard"), ("2", "agents"), ("3", "resources")]:
                await pilot.press(key)
                await pilot.pause(1.5)
                shot(name)
            await pilot.press("2")
            app.open_agent((await engine.agents.get("memory-hog")).id)
            await pilot.pause(1.0)
            shot("agent-detail")
            await pilot.press("escape")
            for key, name in [("4", "audit"), ("5", "policy"), ("6", "vault")]:
                if name not in app.MODES:  # screens that later capabilities bring
                    continue
                await pilot.press(key)
                await pilot.pause(1.5)
                shot(name)
            if "knowledge" in app.MODES:
                await seed_knowledge(engine)
                await knowledge_shot(app, pilot, engine)
                shot("knowledge")
            if "tools" in app.MODES:
                await review_shot(app, pilot, engine)
                shot("tools")
            await pilot.press("question_mark")
            await pilot.pause(0.5)
            shot("help")
            await pilot.press("escape")
            await pilot.pause(0.2)
            await app.close_engine()
    return saved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m console.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--screenshots", metavar="DIR", help="write an SVG of every screen to DIR")
    parser.add_argument("--data-dir", help="seed this data dir with the demo agents and exit")
    args = parser.parse_args(argv)
    if args.screenshots:
        for path in asyncio.run(screenshots(Path(args.screenshots))):
            print(f"wrote {path}")
        return 0
    if args.data_dir:
        async def run() -> None:
            engine = boot.demo_engine(args.data_dir)
            await engine.open()
            try:
                await seed(engine)
                await seed_knowledge(engine)
            finally:
                await engine.close("demo seeded")
        try:
            asyncio.run(run())
        except SymbiError as exc:  # e.g. RUNTIME_003: a data dir that is not 0700
            print(f"console.demo: {exc.render()}", file=sys.stderr)
            return 2
        print(f"seeded {args.data_dir}; open it with: symbi-console --data-dir {args.data_dir}")
        return 0
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
