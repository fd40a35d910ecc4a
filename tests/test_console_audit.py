"""The audit browser (screen 4) on a real runtime and a real audit trail: paging over
100,000 events, the filter bar, live tail, verify (intact and tampered) and export."""

from __future__ import annotations

import asyncio
import json
import sqlite3

from console_fixtures import (
    SEED_TS,
    SEEDED_EVENTS,
    agent_config,
    make_app,
    ready,
    runtime_of,
    seed_audit_async,
    until,
)
from textual.widgets import Input, Select, TextArea

from console.audit_window import AuditWindow, locate
from console.dialogs import ConfirmDialog
from console.screens import AuditScreen
from console.widgets import AuditList, PromptBar
from engine.agents.model import AgentState
from engine.audit import AuditFilter, AuditRecord, AuditTrail


def notified(app, text: str) -> bool:
    return any(text in str(n.message) for n in app._notifications)


async def bulk_seed(data_dir, n: int) -> None:
    data_dir.mkdir(mode=0o700, exist_ok=True)  # the engine refuses a looser data dir
    trail = AuditTrail(data_dir)
    await trail.open()
    try:
        for i in range(n):
            trail.append_nowait(
                type=("tool.call", "agent.state", "secret.read", "bus.send")[i % 4],
                agent=f"agent-{i % 7}",
                action="call",
                resource=f"/data/file-{i}.txt",
                decision=("allow", "deny", "n/a", "allow")[i % 4],
                details={"i": i},
            )
            if i % 10_000 == 0:
                await asyncio.sleep(0)
        await trail.flush()
    finally:
        await trail.close()


async def open_audit(pilot) -> tuple[AuditScreen, AuditList]:
    app = pilot.app
    await ready(app)
    await pilot.press("4")
    screen = app.screen
    assert isinstance(screen, AuditScreen)
    audit_list = screen.query_one(AuditList)
    await until(pilot, lambda: audit_list.window.total > 0 and audit_list.record is not None, what="the view")
    return screen, audit_list


async def test_browses_100k_events_page_by_page(tmp_path):
    data = tmp_path / "data"
    await bulk_seed(data, 100_000)
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        screen, audit_list = await open_audit(pilot)
        window = audit_list.window
        assert window.total >= 100_000
        assert audit_list.record.seq == window.upper  # opens on the newest event
        assert f"{window.total:,} events" in str(audit_list.border_title)

        before = audit_list.fetches
        await pilot.press("home")
        await until(pilot, lambda: audit_list.record is not None and audit_list.record.seq == 1, what="the first")
        for _ in range(30):
            await pilot.press("pagedown")
        await until(pilot, lambda: audit_list.record is not None, what="the row under the cursor")
        assert audit_list.record.seq == audit_list.cursor + 1
        # jump into the middle as a scrollbar drag would
        audit_list.cursor = 50_000
        await until(pilot, lambda: audit_list.record is not None, what="the middle row")
        assert audit_list.record.seq == 50_001
        assert json.loads(screen.query_one("#audit-detail", TextArea).text)["seq"] == 50_001

        # a few pages were read, never the whole trail; no widget per row
        assert audit_list.fetches - before <= 12
        assert window.cached_pages <= window.max_pages
        assert len(list(screen.walk_children())) < 120


async def test_filter_bar_narrows_and_keeps_the_selection(tmp_path):
    await seed_audit_async(tmp_path / "data")
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        screen, audit_list = await open_audit(pilot)
        everything = audit_list.window.total
        assert everything >= len(SEEDED_EVENTS)

        def total() -> int:
            return audit_list.window.total

        # type, with a prefix glob
        screen.query_one("#af-type", Input).focus()
        await pilot.press(*"secret.*")
        await until(pilot, lambda: total() == 2, what="two secret reads")
        assert str(audit_list.border_title) == f"Audit · 2 of {everything:,} events"
        # and an agent
        screen.query_one("#af-agent", Input).focus()
        await pilot.press(*"crawler", "enter")  # enter applies at once and goes back to the list
        await until(pilot, lambda: total() == 1, what="crawler's secret read")
        assert audit_list.record.resource == "app/api_key"
        assert screen.focused is audit_list

        # esc on the list clears every filter, keeping the selected event
        await pilot.press("escape")
        await until(pilot, lambda: total() == everything, what="all events again")
        assert audit_list.record.seq == 5

        # decision: the selection stays on seq 5 (a denied read)
        screen.query_one("#af-decision", Select).value = "deny"
        await until(pilot, lambda: total() == 3, what="three denials")
        assert audit_list.record.seq == 5
        assert {audit_list.window.record(i).decision for i in range(3)} == {"deny"}

        # free text with a time bound: events from the sixth minute on
        screen.query_one("#af-decision", Select).clear()
        await pilot.press("slash")
        assert screen.focused is screen.query_one("#af-text", Input)
        await pilot.press(*f"web.fetch since:{int(SEED_TS) + 360}")
        await until(pilot, lambda: total() == 1, what="the review of web.fetch")
        assert audit_list.window.record(0).type == "tool.review"

        # a bad type filter is reported where the status line is; the view stays
        await pilot.press("escape")
        screen.query_one("#af-type", Input).value = "bad type!"
        await until(pilot, lambda: "AUDIT_003" in screen.status_text, what="the filter error")
        assert screen.status_colour == "error"
        assert total() == 1


async def test_agent_filter_takes_names_and_the_list_shows_them(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app)
        info = await runtime_of(app).create_agent(agent_config("worker"))
        await runtime_of(app).start_agent("worker")
        await runtime_of(app).wait_for_state("worker", AgentState.COMPLETED, timeout=15)
        await until(pilot, lambda: "worker" in [a.name for a in app.model.agents.values()], what="the model")
        screen, audit_list = await open_audit(pilot)
        assert screen._agent_name(info.id) == "worker"
        screen.query_one("#af-agent", Input).value = "worker"
        await until(pilot, lambda: audit_list.window.flt.agent == info.id, what="the id filter")
        await until(pilot, lambda: audit_list.record is not None, what="the agent's events")
        assert audit_list.window.total >= 1
        assert all(audit_list.window.record(i).agent == info.id for i in range(audit_list.window.total))


async def test_live_tail_follows_new_events(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        screen, audit_list = await open_audit(pilot)
        audit = runtime_of(app).audit
        start = audit_list.window.total

        await pilot.press("f")
        assert screen.tailing and "tail: on" in str(audit_list.border_subtitle)
        for i in range(5):
            await audit.append(type="tool.call", action="call", resource=f"tail-{i}", decision="allow")
        await until(pilot, lambda: audit_list.window.total == start + 5, what="five new events")
        await until(pilot, lambda: audit_list.record is not None and audit_list.record.resource == "tail-4")
        assert audit_list.cursor == audit_list.window.total - 1

        # a filtered tail only takes what matches
        screen.query_one("#af-type", Input).value = "bus.*"
        await until(pilot, lambda: audit_list.window.total == 0, what="an empty bus view")
        await audit.append(type="tool.call", action="call", resource="not-a-bus-event")
        await audit.append(type="bus.send", action="send", resource="peer")
        await until(pilot, lambda: audit_list.window.total == 1, what="the bus event")
        assert audit_list.record.resource == "peer"

        await pilot.press("f")
        assert not screen.tailing
        await audit.append(type="bus.send", action="send", resource="while-off")
        await asyncio.sleep(0.4)
        await pilot.pause()
        assert audit_list.window.total == 1  # not followed
        await pilot.press("r")
        await until(pilot, lambda: audit_list.window.total == 2, what="the refresh")


async def test_verify_says_intact_then_names_the_tampered_event(tmp_path):
    await seed_audit_async(tmp_path / "data")
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        screen, audit_list = await open_audit(pilot)
        await pilot.press("v")
        await until(pilot, lambda: screen.last_report is not None, what="the verdict")
        assert screen.status_text.startswith("✔ chain intact:")
        assert f"{audit_list.window.total:,} events" in screen.status_text
        assert screen.status_colour == "success"

        con = sqlite3.connect(tmp_path / "data" / "audit.db")
        with con:
            con.execute("UPDATE events SET resource = 'somewhere-else' WHERE seq = 5")
        con.close()
        screen.last_report = None
        await pilot.press("v")
        await until(pilot, lambda: screen.last_report is not None, what="the second verdict")
        assert screen.status_text.startswith("✘ chain FAILED: modified at seq 5")
        assert screen.status_colour == "error"
        assert notified(app, "modified at seq 5")
        await until(pilot, lambda: audit_list.record is not None and audit_list.record.seq == 5, what="the jump")


async def test_export_writes_the_filtered_view(tmp_path):
    await seed_audit_async(tmp_path / "data")
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        screen, audit_list = await open_audit(pilot)
        screen.query_one("#af-decision", Select).value = "deny"
        await until(pilot, lambda: audit_list.window.total == 3, what="three denials")

        await pilot.press("e")
        prompt = screen.query_one(PromptBar)
        assert prompt.is_open and prompt.mode == "export"
        default = prompt.input.value
        assert default.startswith(str(runtime_of(app).data_dir / "exports" / "audit-")) and default.endswith(".jsonl")
        await pilot.press("enter")
        await until(pilot, lambda: notified(app, "exported 3 events"), what="the export")
        lines = [json.loads(line) for line in open(default, encoding="utf-8")]
        assert [line["decision"] for line in lines] == ["deny"] * 3
        assert [line["seq"] for line in lines] == [5, 9, 12]

        # the same file again: asked first; "n" leaves it alone
        await pilot.press("e")
        prompt.input.value = default  # (the default name has the time: a second may have passed)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the overwrite question")
        await pilot.press("n")
        await pilot.pause()
        assert len(open(default, encoding="utf-8").read().splitlines()) == 3

        # a directory that does not exist: an error, not a traceback
        await pilot.press("e")
        prompt.input.value = str(tmp_path / "missing" / "x.jsonl")
        await pilot.press("enter")
        await until(pilot, lambda: notified(app, "AUDIT_003"), what="the export error")


async def test_enter_shows_the_json_full_screen(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen, audit_list = await open_audit(pilot)
        detail = screen.query_one("#audit-detail", TextArea)
        assert json.loads(detail.text)["seq"] == audit_list.record.seq
        await pilot.press("enter")
        assert screen.maximized is detail
        await pilot.press("escape")
        assert screen.maximized is None


# -- the window's paging, without the app ---------------------------------------------------


def rec(seq: int) -> AuditRecord:
    return AuditRecord(seq, seq, "t", None, "engine", "", "", "n/a", {}, "", "")


def test_window_plans_keyset_next_to_a_cached_page_and_offset_from_the_nearer_end():
    window = AuditWindow(page_size=10, max_pages=3)
    window.reset(AuditFilter(), total=95, upper=190)  # every other seq: 2, 4, ... 190
    assert window.pages == 10 and window.page_length(9) == 5

    first = window.plan(0)
    assert first.kwargs == {"before_seq": 191, "limit": 10, "offset": 0} and not first.reverse
    assert window.store(first, [rec(s) for s in range(2, 22, 2)])
    assert window.record(3).seq == 8 and window.record(10) is None

    after = window.plan(1)  # keyset after page 0
    assert after.kwargs == {"after_seq": 20, "before_seq": 191, "limit": 10}

    last = window.plan(9)  # near the end: newest first, from the end
    assert last.kwargs == {"before_seq": 191, "limit": 5, "offset": 0, "newest_first": True} and last.reverse
    window.store(last, [rec(s) for s in range(190, 180, -2)])
    assert [window.record(i).seq for i in range(90, 95)] == [182, 184, 186, 188, 190]

    before = window.plan(8)  # keyset before page 9
    assert before.kwargs == {"before_seq": 182, "limit": 10, "newest_first": True}

    # a page fetched for an older view is dropped
    stale = window.plan(5)
    window.reset(AuditFilter(types=("x",)), total=1, upper=7)
    assert not window.store(stale, [rec(1)])

    # tail: appended rows extend the last page or start a new one
    window.store(window.plan(0), [rec(7)])
    assert window.append([rec(7), rec(9), rec(11)]) == 2
    assert window.total == 3 and window.upper == 11 and window.record(2).seq == 11
    assert window.find(9) == 1


async def test_locate_finds_a_seq_while_the_trail_grows():
    trail = [rec(s) for s in range(2, 192, 2)]  # the 95 rows of the view, up to seq 190

    async def query(flt, *, limit, offset=0, before_seq=None):
        trail.append(rec(trail[-1].seq + 1))  # events keep arriving at the end meanwhile
        rows = [r for r in trail if before_seq is None or r.seq < before_seq]
        return rows[offset : offset + limit]

    assert await locate(query, AuditFilter(), 95, 190, 100) == 49  # seq 100 is row 49
    assert await locate(query, AuditFilter(), 95, 190, 101) == 50  # not in the view: the next one
    assert await locate(query, AuditFilter(), 95, 190, 1) == 0
    assert await locate(query, AuditFilter(), 95, 190, 500) == 95  # past the view's end (newer events are not in it)
