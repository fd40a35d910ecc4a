"""The review queue (screen 8) on a real runtime with real in-process MCP servers: tools listed
with their risk badges, approval with a scope through the dialog, rejection that needs a reason,
deferral of marked rows in bulk, read-only refusal, an approval that lands on a definition that
changed meanwhile (refused, shown as an error), and a real agent's tool call approved from the
screen with the arguments hash shown (the agent then completes); the header count, the toast and
the terminal bell follow the engine live. One screenshot: a poisoned tool with its findings
highlighted in place."""

from __future__ import annotations

import re
import sys
import time

import pytest
from console_fixtures import ROOT, console_config, fake_clock, make_app, ready, runtime_of, until
from textual.widgets import DataTable, Label, Static

from console.screens import ToolsScreen
from console.screens.review_dialogs import DecisionDialog
from console.screens.tool_detail import definition_text
from engine.agents.model import AgentConfig, AgentState
from engine.mcp_tools import ServerConfig

sys.path.insert(0, str(ROOT / "examples" / "mcp_servers"))
from demo_server import build_server  # noqa: E402
from poisoned_server import build_server as build_poisoned  # noqa: E402

CALLER = """
from symbi_agent import AgentError, agent
try:
    print("result", agent.call_tool("demo/echo", {"text": "hello tools"})["content"][0]["text"], flush=True)
except AgentError as exc:
    print("refused", exc.code, flush=True)
"""


def notified(app, text: str) -> bool:
    return any(text in str(n.message) for n in app._notifications)


def header(app) -> str:
    return str(app.screen.query_one("#engine-flags", Label).render())


def cells(screen: ToolsScreen, table_id: str) -> dict[str, str]:
    """Row key -> the row's cells as one line of plain text."""
    table = screen.query_one(table_id, DataTable)
    out = {}
    for row_key in table.rows:
        out[str(row_key.value)] = " | ".join(str(c) for c in table.get_row(row_key))
    return out


async def add_server(app, name: str = "demo", server=None) -> None:
    tools = runtime_of(app).tools
    tools.add_server(ServerConfig(name, server=server if server is not None else build_server(), allow_unsigned=True))
    await tools.discover(name)


async def open_queue(pilot) -> ToolsScreen:
    app = pilot.app
    await ready(app)
    await pilot.press("8")
    screen = app.screen
    assert isinstance(screen, ToolsScreen)
    await until(pilot, lambda: screen.loaded, what="the review queue")
    return screen


async def select(pilot, screen: ToolsScreen, table_id: str, key: str) -> None:
    table = screen.query_one(table_id, DataTable)
    table.focus()
    await until(pilot, lambda: key in [str(k.value) for k in table.rows], what=f"row {key}")
    table.move_cursor(row=table.get_row_index(key))
    await until(pilot, lambda: screen.shown is not None and screen.shown[1] == key, what=f"{key} shown")


async def dialog(pilot) -> DecisionDialog:
    await until(pilot, lambda: isinstance(pilot.app.screen, DecisionDialog), what="the dialog")
    return pilot.app.screen


async def test_queue_lists_tools_with_badges_and_approves_with_the_chosen_scope(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app)
        await add_server(app)
        await until(pilot, lambda: "review 5" in header(app), what="the header count")
        screen = await open_queue(pilot)
        rows = cells(screen, "#tools-table")
        assert set(rows) == {"demo/echo", "demo/add", "demo/read_time", "demo/slow", "demo/fail"}
        assert all("clean" in line or "Low" in line or "Medium" in line or "High" in line for line in rows.values())
        assert "awaiting you" in rows["demo/echo"]

        await select(pilot, screen, "#tools-table", "demo/echo")
        detail = screen.detail_plain()
        assert "server      demo" in detail and '"description": "Echo the given text back."' in detail
        assert "this server is allowed unsigned" in detail
        shown = screen.shown_hash
        assert shown == (await runtime_of(app).tools.get_tool("demo/echo")).def_hash

        await pilot.press("a")
        box = await dialog(pilot)
        assert "demo/echo" in str(box.query_one("#decision-body", Static).render())
        await pilot.press("2")  # session
        await pilot.press("y")
        await until(pilot, lambda: notified(app, "approved demo/echo (session)"), what="the approval")
        rec = await runtime_of(app).tools.get_tool("demo/echo")
        assert rec.approved and rec.scope == "session" and rec.approved_hash == shown
        history = await runtime_of(app).tools.tool_history("demo/echo")
        assert history[-1]["actor"] == "operator" and history[-1]["to_state"] == "Approved"
        await until(pilot, lambda: "demo/echo" not in cells(screen, "#tools-table"), what="echo to leave the queue")
        await until(pilot, lambda: "review 4" in header(app), what="the header count to drop")

        # f lists every tool: the approved one is there, with its state
        await pilot.press("f")
        await until(pilot, lambda: "demo/echo" in cells(screen, "#tools-table"), what="all tools")
        assert "approved" in cells(screen, "#tools-table")["demo/echo"]


TAG = re.compile(r"‹(\d+)›")


def untagged(plain: str) -> tuple[str, list[int], dict[int, int]]:
    """``plain`` without the ``‹n›`` finding tags; where each kept character was; where each tag stood."""
    keep: list[int] = []
    tags: dict[int, int] = {}
    i = 0
    for m in TAG.finditer(plain):
        keep.extend(range(i, m.start()))
        tags.setdefault(int(m.group(1)), len(keep))
        i = m.end()
    keep.extend(range(i, len(plain)))
    return "".join(plain[k] for k in keep), keep, tags


def as_json(evidence: str) -> str:
    """Evidence (raw text, invisible characters already written <U+…>) as it reads inside a JSON string."""
    for raw, escaped in (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t")):
        evidence = evidence.replace(raw, escaped)
    return evidence


def highlighted(text, index: int) -> bool:
    """The character at ``index`` of ``text`` is drawn highlighted (reversed or underlined)."""
    styles = [sp.style for sp in text.spans if sp.start <= index < sp.end and not isinstance(sp.style, str)]
    return any(s.reverse or s.underline for s in styles)


async def test_poisoned_tools_show_their_findings_in_place(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app)
        await add_server(app, "weather", build_poisoned())
        screen = await open_queue(pilot)
        rows = cells(screen, "#tools-table")
        assert "Critical" in rows["weather/add"] and "Critical" in rows["weather/weather"]
        assert "High" in rows["weather/run"]

        # the classic poisoning: the <IMPORTANT> block is highlighted where it is, the list quotes it
        await select(pilot, screen, "#tools-table", "weather/add")
        detail = screen.detail_plain()
        assert "hidden-instructions" in detail and "credential-reference" in detail
        assert "<IMPORTANT>" in detail and "~/.ssh/id_rsa" in detail

        # invisible characters are drawn visibly, in the JSON and in the evidence
        await select(pilot, screen, "#tools-table", "weather/weather")
        detail = screen.detail_plain()
        assert "<U+200B>" in detail and "<U+202E>" in detail and "<U+E0041>" in detail
        assert "\u200b" not in detail and "\U000e0041" not in detail
        assert "invisible-unicode" in detail and "bidi-unicode" in detail

        # every finding with a span is highlighted exactly over its evidence, in every poisoned tool
        checked = 0
        for tool_id in ("weather/add", "weather/weather", "weather/run", "weather/notes", "weather/read-file"):
            rec = await runtime_of(app).tools.get_tool(tool_id)
            text, placed = definition_text(rec.definition, rec.findings, app.theme_variables)
            assert placed == set(range(1, len(rec.findings) + 1)), (tool_id, rec.findings)
            clean, keep, tags = untagged(text.plain)
            for number, finding in enumerate(rec.findings, 1):
                if finding.get("span") is None:
                    continue
                shown = as_json(finding["evidence"])
                at = tags[number]
                assert clean[:at].endswith(shown), (tool_id, finding, clean[max(0, at - len(shown) - 20) : at])
                assert all(highlighted(text, keep[k]) for k in range(at - len(shown), at)), (tool_id, finding)
                checked += 1
        assert checked >= 8


async def test_reject_needs_a_reason_and_bulk_defer_takes_one_confirmation(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app)
        await add_server(app)
        screen = await open_queue(pilot)
        await select(pilot, screen, "#tools-table", "demo/fail")
        await pilot.press("x")
        box = await dialog(pilot)
        await pilot.press("enter")  # no reason
        error = box.query_one("#decision-error", Label)
        assert error.has_class("-shown") and "reason is required" in str(error.render())
        assert app.screen is box
        assert (await runtime_of(app).tools.get_tool("demo/fail")).state != "Rejected"
        await pilot.press(*"always fails by design", "enter")
        await until(pilot, lambda: notified(app, "rejected demo/fail"), what="the rejection")
        rec = await runtime_of(app).tools.get_tool("demo/fail")
        assert rec.state == "Rejected" and rec.note == "always fails by design"

        # mark two rows, one confirmation lists both, both deferred
        await select(pilot, screen, "#tools-table", "demo/slow")
        await pilot.press("space")
        await select(pilot, screen, "#tools-table", "demo/add")
        await pilot.press("space")
        assert {k for _, k in screen.marks} == {"demo/slow", "demo/add"}
        assert "✓" in cells(screen, "#tools-table")["demo/add"]
        await pilot.press("d")
        box = await dialog(pilot)
        body = str(box.query_one("#decision-body", Static).render())
        assert "demo/slow" in body and "demo/add" in body
        await pilot.press(*"after the audit", "enter")
        await until(pilot, lambda: notified(app, "deferred"), what="the deferral")
        for tool_id in ("demo/slow", "demo/add"):
            rec = await runtime_of(app).tools.get_tool(tool_id)
            assert rec.deferred and rec.state in ("PendingReview", "AwaitingHumanReview", "Expired")
        assert not screen.marks
        await until(pilot, lambda: "deferred" in cells(screen, "#tools-table").get("demo/add", ""), what="the mark")


async def test_readonly_refuses_every_decision(tmp_path):
    app = make_app(tmp_path, readonly=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app)
        await add_server(app)
        screen = await open_queue(pilot)
        await select(pilot, screen, "#tools-table", "demo/echo")
        for key in ("a", "x", "d", "R"):
            await pilot.press(key)
            await pilot.pause()
            assert not isinstance(app.screen, DecisionDialog)
        assert notified(app, "CONSOLE_001") and notified(app, "read-only")
        assert (await runtime_of(app).tools.get_tool("demo/echo")).state not in ("Approved", "Signed", "Rejected")


async def test_an_approval_never_lands_on_a_definition_that_changed(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app)
        await add_server(app, server=build_server(rug_pull=True))
        screen = await open_queue(pilot)
        await select(pilot, screen, "#tools-table", "demo/echo")
        seen = screen.shown_hash
        await pilot.press("a")
        await dialog(pilot)
        await runtime_of(app).tools.discover("demo")  # the server now serves another description for echo
        await pilot.press("y")
        await until(pilot, lambda: notified(app, "MCP_003"), what="the refusal")
        assert notified(app, "changed while it was being reviewed")
        rec = await runtime_of(app).tools.get_tool("demo/echo")
        assert rec.def_hash != seen and not rec.approved
        # the detail now shows the served definition, its "changed" finding and the diff
        await until(pilot, lambda: screen.shown_hash == rec.def_hash, what="the new definition")
        detail = screen.detail_plain()
        assert "changes against the" in detail and "~/.ssh/id_rsa" in detail
        assert "changed" in detail


async def test_an_agents_call_is_approved_from_the_screen_with_the_sha_shown(tmp_path):
    app = make_app(tmp_path)
    bells: list[float] = []
    app.bell = lambda: bells.append(time.monotonic())  # a spy on the terminal bell
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app)
        rt = runtime_of(app)
        await add_server(app)
        await rt.tools.approve_tool("demo/echo", "reviewed by the test", scope="always")
        screen = await open_queue(pilot)
        await pilot.press("1")  # the call must be announced on another screen too
        await rt.create_agent(AgentConfig(name="caller", dsl_source=CALLER))
        await rt.start_agent("caller")
        await rt.wait_for_state("caller", AgentState.WAITING, timeout=30)
        await until(pilot, lambda: notified(app, "caller asks to call demo/echo"), what="the toast")
        assert bells, "no bell for the waiting call"
        await until(pilot, lambda: "review 5" in header(app), what="the call in the header count")

        await pilot.press("8")
        await until(pilot, lambda: app.screen is screen and screen.calls, what="the call in the queue")
        call = next(iter(screen.calls.values()))
        await select(pilot, screen, "#tools-calls", call.id)
        detail = screen.detail_plain()
        assert '"text": "hello tools"' in detail and call.arguments_sha256 in detail
        assert "agent       caller" in detail and "expires     in " in detail
        await pilot.press("a")
        box = await dialog(pilot)
        assert call.arguments_sha256 in str(box.query_one("#decision-body", Static).render())
        await pilot.press("y")
        await until(pilot, lambda: notified(app, f"approved call {call.id}"), what="the approval")
        info = await rt.wait_for_state("caller", AgentState.COMPLETED, AgentState.FAILED, timeout=30)
        logs = "\n".join(await rt.agent_logs("caller"))
        assert info.state is AgentState.COMPLETED and "result hello tools" in logs, logs
        await until(pilot, lambda: not screen.calls and "review 4" in header(app), what="the call to leave")
        # the approval on record carries the operator and the hash that was shown
        records = await rt.audit.query(types="tool.call", limit=50)
        assert any(
            r.action == "approval-approved" and r.details.get("arguments_sha256") == call.arguments_sha256
            for r in records
        )


async def test_a_key_change_shows_both_fingerprints_and_is_refused_then_accepted(tmp_path):
    from engine.mcp_tools import generate_private_key, private_key_pem, public_key_pem, well_known_document

    app = make_app(tmp_path)
    bells: list[float] = []
    app.bell = lambda: bells.append(time.monotonic())
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app)
        tools = runtime_of(app).tools
        old_key, new_key = generate_private_key(), generate_private_key()

        async def serve(key) -> None:
            tools.verifier.resolver.add_document("demo.local", well_known_document(public_key_pem(key)))
            if "demo" in tools.pool.configs:
                await tools.pool.disconnect("demo")
            signed = build_server(sign_key=private_key_pem(key).encode(), domain="demo.local")
            tools.pool.configs["demo"] = ServerConfig("demo", server=signed, domain="demo.local")
            await tools.discover("demo")

        await serve(old_key)  # signed and pinned on first use
        old_fp = tools.keystore.get("demo.local")["fingerprint"]
        screen = await open_queue(pilot)
        await select(pilot, screen, "#tools-table", "demo/echo")
        assert "✔ valid (SchemaPin)" in screen.detail_plain() and old_fp in screen.detail_plain()
        rung = len(bells)

        await serve(new_key)  # the domain now signs with another key
        await until(pilot, lambda: "demo.local" in screen.keys, what="the key change")
        await until(pilot, lambda: notified(app, "the signing key of demo.local changed"), what="the toast")
        assert len(bells) > rung
        new_fp = screen.keys["demo.local"].new_fingerprint
        assert "demo.local" in cells(screen, "#tools-keys")
        await select(pilot, screen, "#tools-table", "demo/echo")
        assert "CHANGED, waiting for a decision" in screen.detail_plain()

        # refuse: the old pin stays
        await select(pilot, screen, "#tools-keys", "demo.local")
        assert old_fp in screen.detail_plain() and new_fp in screen.detail_plain()
        await pilot.press("x")
        box = await dialog(pilot)
        body = str(box.query_one("#decision-body", Static).render())
        assert old_fp in body and new_fp in body
        await pilot.press("enter")  # the reason is optional for a key
        await until(pilot, lambda: notified(app, "rejected new key of demo.local"), what="the refusal")
        assert tools.keystore.get("demo.local")["fingerprint"] == old_fp and tools.key_changes() == []

        # served again, then accepted: the new key is pinned
        await serve(new_key)
        await until(pilot, lambda: "demo.local" in screen.keys, what="the key change again")
        await select(pilot, screen, "#tools-keys", "demo.local")
        await pilot.press("a")
        box = await dialog(pilot)
        assert new_fp in str(box.query_one("#decision-body", Static).render())
        await pilot.press("y")
        await until(pilot, lambda: notified(app, "approved new key of demo.local"), what="the acceptance")
        assert tools.keystore.get("demo.local")["fingerprint"] == new_fp and tools.key_changes() == []
        await until(pilot, lambda: not screen.keys, what="the key list to empty")


# -- screenshot ----------------------------------------------------------------------------


@pytest.fixture
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


async def poisoned_scene(pilot) -> None:
    app = pilot.app
    await ready(app)
    await add_server(app, "weather", build_poisoned())
    await pilot.press("8")
    screen = app.screen
    await until(pilot, lambda: isinstance(screen, ToolsScreen) and screen.loaded and screen.tools, what="the queue")
    worst = max(screen.tools.values(), key=lambda r: (r.score, r.id))
    await select(pilot, screen, "#tools-table", worst.id)
    await until(
        pilot, lambda: "history" in screen.detail_plain() and "discovered" in screen.detail_plain(), what="history"
    )
    await until(pilot, lambda: app.review is not None and app.review.total == 5, what="the header count")
    screen.query_one("#tools-detail").scroll_home(animate=False)
    app.clear_notifications()  # the arrival toast is tested elsewhere; here it would hide the detail
    await pilot.pause()


def test_snapshot_poisoned_tool_with_findings_in_place(snap_compare, tmp_path, utc):
    config = console_config(resource={"monitoring_interval": 3600.0}, console={"refresh_interval": 3600.0})
    app = make_app(tmp_path, config=config, clock=fake_clock())
    assert snap_compare(app, terminal_size=(120, 40), run_before=poisoned_scene)


def test_help_lists_the_review_keys(tmp_path):
    from console.actions import BY_ID, resolve_command

    assert resolve_command("tools").id == resolve_command("review").id == "app.tools"
    assert BY_ID["app.tools"].keys == "8"
    assert BY_ID["tools.approve"].engine_kind == BY_ID["tools.reject"].engine_kind == "mutating"
    assert BY_ID["tools.mark"].calls is None and BY_ID["tools.mark"].engine_kind == "reads"


async def test_empty_queue_says_how_to_add_servers_and_which_failed(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_queue(pilot)
        await until(pilot, lambda: "no MCP server is configured" in screen.detail_plain(), what="the hint")
        assert "[[mcp.servers]]" in screen.detail_plain()

    from console_fixtures import console_config

    from engine.config import McpServerConfig

    broken = McpServerConfig(name="broken", command=[str(tmp_path / "no-such-server")])
    app = make_app(tmp_path / "2", config=console_config(mcp={"servers": [broken]}))
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app)
        await until(pilot, lambda: "broken" in runtime_of(app).tools.discovery_errors, timeout=30, what="the failure")
        screen = await open_queue(pilot)
        await pilot.press("r")
        await until(pilot, lambda: "broken  failed:" in screen.detail_plain(), what="the failed server")
