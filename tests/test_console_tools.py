"""The review queue (screen 8): tools listed with their risk badges, approval with a scope through
the dialog, rejection that needs a reason, deferral of marked rows in bulk, read-only refusal, an
approval that lands on a definition that changed meanwhile (refused, shown as an error), an
agent's tool call approved with the arguments hash shown, a signing key change refused then
accepted, engine errors shown with their code; the header count, the toast and the terminal bell
follow the engine live. One screenshot: a poisoned tool with its findings highlighted in place.

The screen runs over the scripted engine (:class:`fake_scenarios.ScenarioFake`). Its tools are
what the example MCP servers list, pinned and analyzed as discovery does (the engine's own
offline analyzer gives the findings and scores), and engine events announce what changes. The
tool service itself (discovery, SchemaPin, key pins, the gate that holds a call until it is
approved, the agent that then completes) runs end to end through the console in
``tests/test_console_tools_e2e.py``, and with the screenshot below."""

from __future__ import annotations

import dataclasses
import re
import sys
import time

import pytest
from console_fixtures import ROOT, console_config, fake_clock, make_app, make_fake_app, ready, runtime_of, until
from fake_engine import START, agent_info
from fake_scenarios import ScenarioFake, changed_record, served_tools
from textual.widgets import DataTable, Input, Label, Static

from console.screens import ToolsScreen
from console.screens.review_dialogs import DecisionDialog
from console.screens.tool_detail import definition_text
from engine.api import KeyChangeView, PendingCallView, ServerView
from engine.errors import ErrorCode, SymbiError
from engine.events import AgentCreated
from engine.mcp_tools import ServerConfig
from engine.mcp_tools.gate import arguments_hash

sys.path.insert(0, str(ROOT / "examples" / "mcp_servers"))
from demo_server import RUG_PULL_DESCRIPTION, build_server  # noqa: E402
from poisoned_server import build_server as build_poisoned  # noqa: E402

DEMO_TOOLS = {"demo/echo", "demo/add", "demo/read_time", "demo/slow", "demo/fail"}
DECISIONS = ("tools.approve", "tools.reject", "tools.defer", "tools.reanalyze")
OLD_FP = "sha256:" + "a1" * 32
NEW_FP = "sha256:" + "b2" * 32


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


def demo_fake() -> ScenarioFake:
    """An engine with the demo server configured (allowed unsigned) and nothing discovered yet."""
    fake = ScenarioFake()
    fake.servers = [ServerView("demo", "python examples/mcp_servers/demo_server.py", allow_unsigned=True)]
    return fake


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


def dialog_body(box: DecisionDialog) -> str:
    return str(box.query_one("#decision-body", Static).render())


async def test_queue_lists_tools_with_badges_and_approves_with_the_chosen_scope():
    fake = demo_fake()
    records = await served_tools(build_server(), "demo")
    fake.tool_history["demo/echo"] = [
        {"ts": START, "from_state": None, "to_state": "PendingReview", "actor": "engine", "note": "discovered"},
        {"ts": START, "from_state": "PendingReview", "to_state": "AwaitingHumanReview", "actor": "engine"},
    ]
    app = make_fake_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app)
        assert "review" not in header(app)
        fake.add_tools(records)  # discovery: one event per tool, one look once they settle
        await until(pilot, lambda: "review 5" in header(app), what="the header count")
        await until(pilot, lambda: notified(app, "tool demo/echo waits for review"), what="the toast")
        screen = await open_queue(pilot)
        rows = cells(screen, "#tools-table")
        assert set(rows) == DEMO_TOOLS
        assert all("clean" in line or "Low" in line or "Medium" in line or "High" in line for line in rows.values())
        assert "✔ clean" in rows["demo/echo"] and "· Low" in rows["demo/read_time"]
        assert "awaiting you" in rows["demo/echo"]
        assert list(rows)[0] == "demo/fail"  # newest first

        await select(pilot, screen, "#tools-table", "demo/echo")
        detail = screen.detail_plain()
        assert "server      demo" in detail and '"description": "Echo the given text back."' in detail
        assert "this server is allowed unsigned" in detail
        await until(pilot, lambda: "discovered" in screen.detail_plain(), what="the history")
        assert "PendingReview → AwaitingHumanReview  by engine" in screen.detail_plain()
        assert fake.called("tools.history")[-1] == ("demo/echo",)
        shown = screen.shown_hash
        assert shown == fake.tool_records["demo/echo"].def_hash

        # the dialog names the tool; "n" decides nothing
        await pilot.press("a")
        box = await dialog(pilot)
        assert "demo/echo" in dialog_body(box) and f"definition {shown[:12]}…" in dialog_body(box)
        await pilot.press("n")
        await until(pilot, lambda: app.screen is screen, what="the dialog to close")
        assert fake.called("tools.approve") == []

        await pilot.press("a")
        await dialog(pilot)
        await pilot.press("2")  # session
        await pilot.press("y")
        await until(pilot, lambda: notified(app, "approved demo/echo (session)"), what="the approval")
        # bound to the definition shown, with the scope chosen
        assert fake.called("tools.approve") == [("demo/echo", "approved in the console", shown, "session")]
        rec = fake.tool_records["demo/echo"]
        assert rec.approved and rec.scope == "session" and rec.approved_hash == shown
        await until(pilot, lambda: "demo/echo" not in cells(screen, "#tools-table"), what="echo to leave the queue")
        await until(pilot, lambda: "review 4" in header(app), what="the header count to drop")

        # f lists every tool: the approved one is there, with its state
        await pilot.press("f")
        await until(pilot, lambda: "demo/echo" in cells(screen, "#tools-table"), what="all tools")
        assert "approved" in cells(screen, "#tools-table")["demo/echo"]
        assert screen.query_one("#tools-table", DataTable).border_title == "All tools · 5"


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


async def test_poisoned_tools_show_their_findings_in_place():
    fake = ScenarioFake()
    fake.add_tools(await served_tools(build_poisoned(), "weather"))
    app = make_fake_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
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

        # approving a tool with High or Critical findings warns in the dialog
        await select(pilot, screen, "#tools-table", "weather/add")
        await pilot.press("a")
        box = await dialog(pilot)
        assert "1 tool has High or Critical findings" in dialog_body(box)
        await pilot.press("n")

        # every finding with a span is highlighted exactly over its evidence, in every poisoned tool
        checked = 0
        for tool_id in ("weather/add", "weather/weather", "weather/run", "weather/notes", "weather/read-file"):
            rec = screen.tools[tool_id]
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


async def test_reject_needs_a_reason_and_bulk_defer_takes_one_confirmation():
    fake = demo_fake()
    fake.add_tools(await served_tools(build_server(), "demo"))
    app = make_fake_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_queue(pilot)
        await select(pilot, screen, "#tools-table", "demo/fail")
        await pilot.press("x")
        box = await dialog(pilot)
        await pilot.press("enter")  # no reason
        error = box.query_one("#decision-error", Label)
        assert error.has_class("-shown") and "reason is required" in str(error.render())
        assert app.screen is box
        assert fake.called("tools.reject") == [] and fake.tool_records["demo/fail"].state != "Rejected"
        box.query_one("#decision-reason", Input).value = "always fails by design"
        await pilot.press("enter")
        await until(pilot, lambda: notified(app, "rejected demo/fail"), what="the rejection")
        assert fake.called("tools.reject") == [("demo/fail", "always fails by design")]
        rec = fake.tool_records["demo/fail"]
        assert rec.state == "Rejected" and rec.note == "always fails by design"

        # mark two rows, one confirmation lists both, both deferred
        await select(pilot, screen, "#tools-table", "demo/slow")
        await pilot.press("space")
        await select(pilot, screen, "#tools-table", "demo/add")
        await pilot.press("space")
        assert {k for _, k in screen.marks} == {"demo/slow", "demo/add"}
        assert "✓" in cells(screen, "#tools-table")["demo/add"]
        assert screen.query_one("#tools-table", DataTable).border_subtitle == "2 marked"
        await pilot.press("d")
        box = await dialog(pilot)
        body = dialog_body(box)
        assert "demo/slow" in body and "demo/add" in body
        box.query_one("#decision-reason", Input).value = "after the audit"
        await pilot.press("enter")
        await until(pilot, lambda: notified(app, "deferred"), what="the deferral")
        assert notified(app, "deferred demo/slow, demo/add")
        assert fake.called("tools.defer") == [("demo/slow", "after the audit"), ("demo/add", "after the audit")]
        for tool_id in ("demo/slow", "demo/add"):
            rec = fake.tool_records[tool_id]
            assert rec.deferred and rec.state in ("PendingReview", "AwaitingHumanReview", "Expired")
        assert not screen.marks
        await until(pilot, lambda: "deferred" in cells(screen, "#tools-table").get("demo/add", ""), what="the mark")


async def test_a_decision_the_engine_refuses_is_shown_and_the_others_go_on():
    fake = demo_fake()
    fake.add_tools(await served_tools(build_server(), "demo"))
    app = make_fake_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_queue(pilot)
        await select(pilot, screen, "#tools-table", "demo/slow")
        await pilot.press("space")
        await select(pilot, screen, "#tools-table", "demo/add")
        await pilot.press("space")
        fake.fail(
            "tools.defer",
            SymbiError(
                ErrorCode.MCP_007,
                "demo/slow cannot move from Rejected to AwaitingHumanReview",
                offending="demo/slow",
                hint="read the queue again",
            ),
        )
        await pilot.press("d")
        await dialog(pilot)
        await pilot.press("enter")
        await until(pilot, lambda: notified(app, "deferred demo/add"), what="the other deferral")
        assert notified(app, "MCP_007: demo/slow cannot move from Rejected to AwaitingHumanReview")
        assert notified(app, "Hint: read the queue again")
        assert [args[0] for args in fake.called("tools.defer")] == ["demo/slow", "demo/add"]
        assert not fake.tool_records["demo/slow"].deferred and fake.tool_records["demo/add"].deferred

        # nothing selected: said, no dialog
        fake.review = dataclasses.replace(fake.review, tools=())
        await pilot.press("r")
        await until(pilot, lambda: not screen.tools, what="the empty queue")
        await pilot.press("a")
        await pilot.pause()
        assert not isinstance(app.screen, DecisionDialog)
        assert notified(app, "nothing selected: pick a row")


async def test_readonly_refuses_every_decision():
    fake = demo_fake()
    fake.add_tools(await served_tools(build_server(), "demo"))
    app = make_fake_app(fake, readonly=True)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_queue(pilot)
        assert screen.query_one("#tools-detail").border_subtitle == "read-only: decisions are off"
        await select(pilot, screen, "#tools-table", "demo/echo")
        for key in ("a", "x", "d", "R"):
            await pilot.press(key)
            await pilot.pause()
            assert not isinstance(app.screen, DecisionDialog)
        assert notified(app, "CONSOLE_001") and notified(app, "read-only")
        assert all(notified(app, f"{call} changes engine state") for call in DECISIONS)
        assert all(fake.called(call) == [] for call in DECISIONS)
        assert fake.tool_records["demo/echo"].state == "AwaitingHumanReview"


async def test_an_approval_never_lands_on_a_definition_that_changed():
    fake = demo_fake()
    fake.add_tools(await served_tools(build_server(), "demo"))
    app = make_fake_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_queue(pilot)
        await select(pilot, screen, "#tools-table", "demo/echo")
        seen = screen.shown_hash
        await pilot.press("a")
        await dialog(pilot)
        # meanwhile the server serves another description for echo (a rug pull)
        echo = fake.tool_records["demo/echo"]
        pulled = dict(echo.definition, description=RUG_PULL_DESCRIPTION)
        fake.add_tools([changed_record(echo, pulled, at=START + 60)], event="changed")
        await pilot.press("y")
        await until(pilot, lambda: notified(app, "MCP_003"), what="the refusal")
        assert notified(app, "changed while it was being reviewed")
        assert notified(app, "Hint: review the current definition again")
        assert fake.called("tools.approve") == [("demo/echo", "approved in the console", seen, "always")]
        rec = fake.tool_records["demo/echo"]
        assert rec.def_hash != seen and not rec.approved
        # the detail now shows the served definition, its "changed" finding and the diff
        await until(pilot, lambda: screen.shown_hash == rec.def_hash, what="the new definition")
        detail = screen.detail_plain()
        assert "changes against the" in detail and "~/.ssh/id_rsa" in detail
        assert "changed" in detail
        assert "tool definition changed since it was pinned (possible rug pull)" in detail


async def test_an_agents_call_is_approved_from_the_screen_with_the_sha_shown():
    fake = demo_fake()
    records = await served_tools(build_server(), "demo")
    signed = dataclasses.replace(records[0], state="Signed", scope="always", approved_hash=records[0].def_hash)
    fake.add_tools([signed, *records[1:]])
    app = make_fake_app(fake)
    bells: list[float] = []
    app.bell = lambda: bells.append(time.monotonic())  # a spy on the terminal bell
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_queue(pilot)
        await until(pilot, lambda: "review 4" in header(app), what="the header count")
        await pilot.press("1")  # the call must be announced on another screen too
        caller = agent_info("caller", agent_id="c0ffee00-caller")
        fake.roster[caller.id] = caller
        fake.emit(AgentCreated(agent_id=caller.id, name="caller", at=fake.now()))
        arguments = {"text": "hello tools"}
        call = PendingCallView(
            id="call-5f1e2d3c4b5a6978",
            agent_id=caller.id,
            tool_id="demo/echo",
            arguments=arguments,
            arguments_sha256=arguments_hash(arguments),
            created_at=fake.now(),
            expires_at=fake.now() + 300,
            policy="tools-need-approval",
        )
        fake.add_call(call)
        await until(pilot, lambda: notified(app, "caller asks to call demo/echo"), what="the toast")
        assert bells, "no bell for the waiting call"
        await until(pilot, lambda: "review 5" in header(app), what="the call in the header count")

        await pilot.press("8")
        await until(pilot, lambda: app.screen is screen and screen.calls, what="the call in the queue")
        assert "caller" in cells(screen, "#tools-calls")[call.id]
        await select(pilot, screen, "#tools-calls", call.id)
        detail = screen.detail_plain()
        assert '"text": "hello tools"' in detail and call.arguments_sha256 in detail
        assert "agent       caller" in detail and "expires     in 5m" in detail
        assert "policy      tools-need-approval" in detail
        await pilot.press("a")
        box = await dialog(pilot)
        assert call.arguments_sha256 in dialog_body(box)
        await pilot.press("y")
        await until(pilot, lambda: notified(app, f"approved call {call.id}"), what="the approval")
        # the approval carries the hash that was shown
        assert fake.called("tools.approve_call") == [(call.id, call.arguments_sha256)]
        await until(pilot, lambda: not screen.calls and "review 4" in header(app), what="the call to leave")


async def test_a_call_denied_with_a_reason_and_one_that_expired_meanwhile():
    fake = demo_fake()
    fake.add_tools(await served_tools(build_server(), "demo"))
    calls = [
        PendingCallView(
            f"call-{n}", "c0ffee00-caller", "demo/echo", {"n": n}, arguments_hash({"n": n}), START, START + 90
        )
        for n in (1, 2)
    ]
    for call in calls:
        fake.add_call(call)
    app = make_fake_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_queue(pilot)
        await select(pilot, screen, "#tools-calls", "call-1")
        assert "c0ffee00-caller" in screen.detail_plain()  # an agent the console does not know: its id
        await pilot.press("x")
        box = await dialog(pilot)
        assert calls[0].arguments_sha256 in dialog_body(box)
        box.query_one("#decision-reason", Input).value = "not today"  # the reason is optional for a call
        await pilot.press("enter")
        await until(pilot, lambda: notified(app, "rejected call call-1"), what="the denial")
        assert fake.called("tools.deny_call") == [("call-1", "not today")]

        # the engine no longer holds the call: its answer is shown, the list is read again
        await select(pilot, screen, "#tools-calls", "call-2")
        fake.fail("tools.approve_call", SymbiError(ErrorCode.MCP_006, "no pending call call-2", offending="call-2"))
        await pilot.press("a")
        await dialog(pilot)
        await pilot.press("y")
        await until(pilot, lambda: notified(app, "MCP_006: no pending call call-2"), what="the refusal")
        assert not notified(app, "approved call call-2")


async def test_a_key_change_shows_both_fingerprints_and_is_refused_then_accepted():
    fake = demo_fake()
    verification = {
        "valid": True,
        "domain": "demo.local",
        "fingerprint": OLD_FP,
        "key_source": "well-known",
        "pin_status": "pinned",
    }
    fake.add_tools(await served_tools(build_server(), "demo", verification=verification))
    change = KeyChangeView(
        "demo.local", OLD_FP, NEW_FP, seen_at=START + 30, source="https://demo.local/.well-known/schemapin.json"
    )
    app = make_fake_app(fake)
    bells: list[float] = []
    app.bell = lambda: bells.append(time.monotonic())
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_queue(pilot)
        await select(pilot, screen, "#tools-table", "demo/echo")
        assert "✔ valid (SchemaPin)" in screen.detail_plain() and OLD_FP in screen.detail_plain()
        assert "pinned" in screen.detail_plain()
        rung = len(bells)

        fake.add_key_change(change)  # the domain now signs with another key
        await until(pilot, lambda: "demo.local" in screen.keys, what="the key change")
        await until(pilot, lambda: notified(app, "the signing key of demo.local changed"), what="the toast")
        assert len(bells) > rung
        assert screen.keys["demo.local"].new_fingerprint == NEW_FP
        assert "demo.local" in cells(screen, "#tools-keys")
        await select(pilot, screen, "#tools-table", "demo/echo")
        assert "CHANGED, waiting for a decision" in screen.detail_plain()

        # refuse: the old pin stays
        await select(pilot, screen, "#tools-keys", "demo.local")
        assert OLD_FP in screen.detail_plain() and NEW_FP in screen.detail_plain()
        assert "seen via    https://demo.local/.well-known/schemapin.json" in screen.detail_plain()
        await pilot.press("x")
        box = await dialog(pilot)
        body = dialog_body(box)
        assert OLD_FP in body and NEW_FP in body
        await pilot.press("enter")  # the reason is optional for a key
        await until(pilot, lambda: notified(app, "rejected new key of demo.local"), what="the refusal")
        assert fake.called("tools.reject_key") == [("demo.local",)] and fake.called("tools.accept_key") == []
        await until(pilot, lambda: not screen.keys, what="the key list to empty")

        # served again, then accepted: the new key is pinned
        fake.add_key_change(change)
        await until(pilot, lambda: "demo.local" in screen.keys, what="the key change again")
        await select(pilot, screen, "#tools-keys", "demo.local")
        await pilot.press("a")
        box = await dialog(pilot)
        assert NEW_FP in dialog_body(box)
        await pilot.press("y")
        await until(pilot, lambda: notified(app, "approved new key of demo.local"), what="the acceptance")
        assert fake.called("tools.accept_key") == [("demo.local",)]
        await until(pilot, lambda: not screen.keys, what="the key list to empty")


def test_help_lists_the_review_keys():
    from console.actions import BY_ID, resolve_command

    assert resolve_command("tools").id == resolve_command("review").id == "app.tools"
    assert BY_ID["app.tools"].keys == "8"
    assert BY_ID["tools.approve"].engine_kind == BY_ID["tools.reject"].engine_kind == "mutating"
    assert BY_ID["tools.mark"].calls is None and BY_ID["tools.mark"].engine_kind == "reads"


async def test_empty_queue_says_how_to_add_servers_and_which_failed():
    app = make_fake_app(ScenarioFake())
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_queue(pilot)
        await until(pilot, lambda: "no MCP server is configured" in screen.detail_plain(), what="the hint")
        assert "[[mcp.servers]]" in screen.detail_plain()

    fake = ScenarioFake()
    fake.servers = [
        ServerView("broken", "/tmp/no-such-server", error="could not start: [Errno 2] No such file or directory"),
        ServerView("demo", "python examples/mcp_servers/demo_server.py"),
    ]
    app = make_fake_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_queue(pilot)
        await pilot.press("r")
        await until(pilot, lambda: "broken  failed:" in screen.detail_plain(), what="the failed server")
        assert "could not start: [Errno 2]" in screen.detail_plain()
        assert "demo  python examples/mcp_servers/demo_server.py" in screen.detail_plain()

        # the queue cannot be read: the error with its code, and the screen keeps what it showed
        fake.fail("tools.queue", SymbiError(ErrorCode.MCP_005, "the tool service is unreachable", hint="restart it"))
        await pilot.press("r")
        await until(pilot, lambda: notified(app, "MCP_005: the tool service is unreachable"), what="the error")
        assert notified(app, "Hint: restart it") and "broken  failed:" in screen.detail_plain()

    fake = ScenarioFake()
    fake.tools_available = False
    app = make_fake_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_queue(pilot)
        assert "this engine has no tool service" in screen.detail_plain()
        assert fake.called("tools.queue") == [()]  # the header's first look only


# -- screenshot (the real engine: the poisoned server discovered and analyzed, end to end) ----------


async def add_server(app, name: str = "demo", server=None) -> None:
    tools = runtime_of(app).tools
    tools.add_server(ServerConfig(name, server=server if server is not None else build_server(), allow_unsigned=True))
    await tools.discover(name)


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
