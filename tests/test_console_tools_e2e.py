"""Issue #6's "done when" (and issue 14's, attached), end to end through the console: the benign files server runs as a
real stdio subprocess configured in ``[[mcp.servers]]``, its tools signed with SchemaPin and its
key from a trust bundle; the operator approves the tools in the review queue (signed with the
operator's key), the example agent ``examples/agents/tool_user.py`` calls them, each call waits
(the agent is Waiting) until the operator approves it on screen with the arguments hash shown,
the agent completes with what it read, and the audit trail holds every step in order."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from console_fixtures import ROOT, console_config, make_app, ready, runtime_of, settings_of, until
from textual.widgets import DataTable, Label

from console.app import SymbiConsole
from console.screens import ToolsScreen
from console.screens.review_dialogs import DecisionDialog
from engine.agents.model import AgentConfig, AgentState
from engine.api.http.server import HttpSettings, open_listeners
from engine.api.local import LocalEngine
from engine.api.remote import RemoteEngine
from engine.audit import AuditReader
from engine.config import McpServerConfig
from engine.mcp_tools import generate_private_key, private_key_pem, public_key_pem, well_known_document
from engine.runtime import Runtime

SERVERS = ROOT / "examples" / "mcp_servers"


def header(app) -> str:
    return str(app.screen.query_one("#engine-flags", Label).render())


def rows(screen: ToolsScreen, table_id: str) -> list[str]:
    return [str(k.value) for k in screen.query_one(table_id, DataTable).rows]


async def decide(pilot, screen: ToolsScreen, table_id: str, key: str, *scope_keys: str) -> None:
    table = screen.query_one(table_id, DataTable)
    table.focus()
    await until(pilot, lambda: key in rows(screen, table_id), what=f"row {key}")
    table.move_cursor(row=table.get_row_index(key))
    await until(pilot, lambda: screen.shown is not None and screen.shown[1] == key, what=f"{key} shown")
    await pilot.press("a")
    await until(pilot, lambda: isinstance(pilot.app.screen, DecisionDialog), what="the dialog")
    for k in scope_keys:
        await pilot.press(k)
    await pilot.press("y")
    await until(pilot, lambda: not isinstance(pilot.app.screen, DecisionDialog), what="the dialog to close")


@pytest.mark.parametrize("how", ["embedded", "attached"])
async def test_an_agent_uses_the_benign_files_server_with_the_operator_in_the_loop(tmp_path: Path, how: str):
    """``embedded``: the console's own engine. ``attached``: the engine runs on its own (here in this
    process, serving its API on the data dir's socket) and the console reaches it only through
    that socket, as ``symbi-console --data-dir D`` does with a running headless engine."""
    served = tmp_path / "served"
    (served / "docs").mkdir(parents=True)
    (served / "docs" / "plan.txt").write_text("step 1: review the tools\nstep 2: approve the call\n")
    key = generate_private_key()
    (tmp_path / "files.pem").write_text(private_key_pem(key))
    bundle = {"documents": [{"domain": "files.local", **well_known_document(public_key_pem(key), "Files example")}]}
    (tmp_path / "bundle.json").write_text(json.dumps(bundle))
    files = McpServerConfig(
        name="files",
        command=[
            sys.executable,
            str(SERVERS / "files_server.py"),
            "--root",
            str(served),
            "--sign",
            str(tmp_path / "files.pem"),
            "--domain",
            "files.local",
        ],
        domain="files.local",
    )
    cfg = console_config(mcp={"servers": [files]}, schemapin={"trust_bundle": str(tmp_path / "bundle.json")})
    engine = listeners = None
    if how == "embedded":
        app = make_app(tmp_path, config=cfg)
    else:
        runtime = Runtime(cfg, tmp_path / "data")
        engine = LocalEngine(runtime, mode="headless")
        await engine.open()
        listeners = await open_listeners(engine, tmp_path / "data", HttpSettings(enabled=False))
        app = SymbiConsole(
            RemoteEngine(socket_path=listeners.socket_path),
            settings=settings_of(cfg),
            clock=runtime.clock.time,
            data_dir_label="~/symbi-data",
        )
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app)
        rt = runtime_of(app) if engine is None else engine.runtime
        assert app.attached == (how == "attached")
        # background discovery of the configured server: its four tools wait for review
        await until(pilot, lambda: "review 4" in header(app), timeout=60, what="the discovered tools in the header")
        await pilot.press("8")
        screen = app.screen
        assert isinstance(screen, ToolsScreen)
        await until(pilot, lambda: "files/read_file" in rows(screen, "#tools-table"), what="the queue")
        rec = await rt.tools.get_tool("files/read_file")
        assert rec.verified and rec.verification["domain"] == "files.local"
        assert rec.max_severity not in ("High", "Critical")
        for tool in ("files/list_files", "files/read_file"):
            await decide(pilot, screen, "#tools-table", tool, "1")  # scope: always
            await until(pilot, lambda t=tool: t not in rows(screen, "#tools-table"), what=f"{tool} to leave the queue")
            signed = await rt.tools.get_tool(tool)
            assert signed.state == "Signed" and signed.approved and signed.approval_signature

        info = await rt.create_agent(
            AgentConfig(name="reader", dsl_source=(ROOT / "examples" / "agents" / "tool_user.py").read_text())
        )
        await rt.start_agent("reader", input={"dir": "docs"})
        for tool in ("files/list_files", "files/read_file"):
            # the default policy asks a human for every call: the agent waits meanwhile
            await until(pilot, lambda: bool(rt.tools.pending_calls()), timeout=60, what=f"the {tool} call to wait")
            pending = rt.tools.pending_calls()[0]
            assert pending["tool_id"] == tool
            assert (await rt.get_agent("reader")).state is AgentState.WAITING
            await decide(pilot, screen, "#tools-calls", pending["id"])
        final = await rt.wait_for_state("reader", AgentState.COMPLETED, AgentState.FAILED, timeout=60)
        logs = "\n".join(await rt.agent_logs("reader"))
        assert final.state is AgentState.COMPLETED, logs
        assert "step 2: approve the call" in logs and "plan.txt" in logs
    if engine is not None:  # the attached console has gone; the engine decides when it stops
        assert engine.is_open
        await listeners.close()
        await engine.close()

    async with AuditReader(tmp_path / "data") as reader:
        trail = await reader.query(types="tool.review,tool.call", limit=500)
    steps = [(r.type, r.action, r.resource) for r in trail]
    for tool in ("files/list_files", "files/read_file"):
        mine = [(t, a) for t, a, res in steps if res == tool]
        wanted = [
            ("tool.review", "discovered"),
            ("tool.call", "approval-requested"),
            ("tool.call", "approval-approved"),
            ("tool.call", "call"),
            ("tool.call", "result"),
        ]
        positions = [mine.index(w) for w in wanted]
        assert positions == sorted(positions), mine
        assert any(t == "tool.review" and "approv" in a for t, a in mine), mine
    calls = [r for r in trail if r.type == "tool.call" and r.action == "call"]
    assert {r.agent for r in calls} == {info.id}
    assert all(r.details.get("arguments_sha256") for r in calls)
