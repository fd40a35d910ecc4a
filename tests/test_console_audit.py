"""The audit browser (screen 4) over the scripted :class:`FakeEngine`: paging over 100,000
events, the filter bar, live tail, verify (intact and broken) and export, and the engine's errors
shown where the status line is. What the browser asks the engine is checked on the fake's record
of calls; the trail's own paging, tamper detection and export are tested in ``test_audit_*.py``."""

from __future__ import annotations

import json

from console_fixtures import SEED_TS, SEEDED_EVENTS, make_fake_app, notified, ready, seed_fake_audit, until
from fake_engine import START, FakeEngine, agent_info, audit_record
from textual.widgets import Input, Select, TextArea

from console.audit_window import AuditWindow, locate
from console.dialogs import ConfirmDialog
from console.screens import AuditScreen
from console.widgets import AuditList, PromptBar
from engine.api import AuditFilter, AuditRecord, VerifyReport
from engine.errors import ErrorCode, SymbiError


def bulk(n: int) -> list[AuditRecord]:
    """``n`` events in seq order, four types and decisions in turn, seven agents."""
    return [
        audit_record(
            i + 1,
            ("tool.call", "agent.state", "secret.read", "bus.send")[i % 4],
            agent=f"agent-{i % 7}",
            action="call",
            resource=f"/data/file-{i}.txt",
            decision=("allow", "deny", "n/a", "allow")[i % 4],
            details={"i": i},
            ts=START - n + i,
        )
        for i in range(n)
    ]


def seeded(**kw) -> FakeEngine:
    fake = FakeEngine(**kw)
    seed_fake_audit(fake)
    return fake


async def open_audit(pilot) -> tuple[AuditScreen, AuditList]:
    app = pilot.app
    await ready(app)
    await pilot.press("4")
    screen = app.screen
    assert isinstance(screen, AuditScreen)
    audit_list = screen.query_one(AuditList)
    await until(pilot, lambda: audit_list.window.total > 0 and audit_list.record is not None, what="the view")
    return screen, audit_list


async def test_browses_100k_events_page_by_page():
    fake = FakeEngine(records=bulk(100_000))
    app = make_fake_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        screen, audit_list = await open_audit(pilot)
        window = audit_list.window
        assert window.total == 100_000
        assert audit_list.record.seq == window.upper == 100_000  # opens on the newest event
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
        assert len(fake.called("audit.query")) < 60  # pages and a short search, not a scan per row


async def test_filter_bar_narrows_and_keeps_the_selection():
    fake = seeded()
    app = make_fake_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        screen, audit_list = await open_audit(pilot)
        everything = audit_list.window.total
        assert everything == len(SEEDED_EVENTS)

        def total() -> int:
            return audit_list.window.total

        # type, with a prefix glob
        screen.query_one("#af-type", Input).focus()
        await pilot.press(*"secret.*")
        await until(pilot, lambda: total() == 2, what="two secret reads")
        assert str(audit_list.border_title) == f"Audit · 2 of {everything:,} events"
        assert (AuditFilter(types=("secret.*",)),) in fake.called("audit.count")
        # and an agent
        screen.query_one("#af-agent", Input).focus()
        await pilot.press(*"crawler", "enter")  # enter applies at once and goes back to the list
        await until(pilot, lambda: total() == 1 and audit_list.record is not None, what="crawler's secret read")
        assert audit_list.record.resource == "app/api_key"
        assert screen.focused is audit_list

        # esc on the list clears every filter, keeping the selected event
        await pilot.press("escape")
        await until(pilot, lambda: total() == everything and audit_list.record is not None, what="all events again")
        assert audit_list.record.seq == 5

        # decision: the selection stays on seq 5 (a denied read)
        screen.query_one("#af-decision", Select).value = "deny"
        await until(pilot, lambda: total() == 3 and audit_list.record is not None, what="three denials")
        assert audit_list.record.seq == 5
        assert {audit_list.window.record(i).decision for i in range(3)} == {"deny"}

        # free text with a time bound: events from the sixth minute on
        screen.query_one("#af-decision", Select).clear()
        await pilot.press("slash")
        assert screen.focused is screen.query_one("#af-text", Input)
        await pilot.press(*f"web.fetch since:{int(SEED_TS) + 360}")
        await until(
            pilot, lambda: total() == 1 and audit_list.window.record(0) is not None, what="the review of web.fetch"
        )
        assert audit_list.window.record(0).type == "tool.review"
        assert (AuditFilter(since=SEED_TS + 360, text="web.fetch"),) in fake.called("audit.count")

        # a bad type filter is reported where the status line is; the view stays, the engine is not asked
        await pilot.press("escape")
        asked = len(fake.calls)
        screen.query_one("#af-type", Input).value = "bad type!"
        await until(pilot, lambda: "AUDIT_003" in screen.status_text, what="the filter error")
        assert screen.status_colour == "error"
        assert "invalid event type filter" in screen.status_text and "(bad type!)" in screen.status_text
        assert total() == 1
        assert len(fake.calls) == asked


async def test_agent_filter_takes_names_and_the_list_shows_them():
    records = [
        audit_record(1, "agent.create", agent="agent-worker", resource="worker", ts=START - 3),
        audit_record(2, "agent.create", agent="agent-other", resource="other", ts=START - 2),
        audit_record(3, "agent.state", agent="agent-worker", resource="worker", ts=START - 1),
    ]
    fake = FakeEngine(agents=[agent_info("worker"), agent_info("other")], records=records)
    app = make_fake_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        screen, audit_list = await open_audit(pilot)
        assert screen._agent_name("agent-worker") == "worker"
        assert screen._agent_name("3f2c9a1b-0000-4000-8000-00000000abcd") == "3f2c9a1b…"  # unknown: shortened
        screen.query_one("#af-agent", Input).value = "worker"
        await until(pilot, lambda: audit_list.window.flt.agent == "agent-worker", what="the id filter")
        await until(pilot, lambda: audit_list.record is not None, what="the agent's events")
        assert audit_list.window.total == 2
        assert [audit_list.window.record(i).seq for i in range(2)] == [1, 3]


async def test_live_tail_follows_new_events():
    fake = FakeEngine(records=[audit_record(1, "engine.start", ts=START - 2), audit_record(2, "policy.reload")])
    app = make_fake_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        screen, audit_list = await open_audit(pilot)
        start = audit_list.window.total

        await pilot.press("f")
        assert screen.tailing and "tail: on" in str(audit_list.border_subtitle)
        await until(pilot, lambda: fake.following == 1, what="the engine's follow stream")
        assert fake.called("audit.follow") == [(AuditFilter(), start)]  # from the newest event shown
        for i in range(5):
            fake.append_audit("tool.call", action="call", resource=f"tail-{i}", decision="allow")
        await until(pilot, lambda: audit_list.window.total == start + 5, what="five new events")
        await until(pilot, lambda: audit_list.record is not None and audit_list.record.resource == "tail-4")
        assert audit_list.cursor == audit_list.window.total - 1

        # a filtered tail only takes what matches (a new view: a new follow, the old one closed)
        screen.query_one("#af-type", Input).value = "bus.*"
        await until(pilot, lambda: audit_list.window.total == 0, what="an empty bus view")
        await until(pilot, lambda: len(fake.called("audit.follow")) == 2 and fake.following == 1, what="refollow")
        assert fake.called("audit.follow")[-1] == (AuditFilter(types=("bus.*",)), 0)
        fake.append_audit("tool.call", action="call", resource="not-a-bus-event")
        fake.append_audit("bus.send", action="send", resource="peer")
        await until(pilot, lambda: audit_list.window.total == 1 and audit_list.record is not None, what="the bus event")
        assert audit_list.record.resource == "peer"

        # f again: the console closes the engine's stream; new events wait for a refresh
        await pilot.press("f")
        assert not screen.tailing
        await until(pilot, lambda: fake.following == 0, what="the follow stream to close")
        fake.append_audit("bus.send", action="send", resource="while-off")
        await pilot.pause()
        assert audit_list.window.total == 1  # not followed
        await pilot.press("r")
        await until(pilot, lambda: audit_list.window.total == 2, what="the refresh")


async def test_leaving_the_screen_stops_the_tail():
    fake = seeded()
    app = make_fake_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        screen, audit_list = await open_audit(pilot)
        await pilot.press("f")
        await until(pilot, lambda: fake.following == 1, what="the engine's follow stream")
        await pilot.press("2")
        await until(pilot, lambda: fake.following == 0, what="the follow stream to close")
        fake.append_audit("bus.send", action="send", resource="while-away")
        await pilot.press("4")  # back: the view is loaded again and the tail resumes
        await until(pilot, lambda: audit_list.window.total == len(SEEDED_EVENTS) + 1, what="the event from away")
        await until(pilot, lambda: fake.following == 1, what="the tail again")


async def test_verify_says_intact_then_names_the_broken_event():
    fake = seeded(data_dir="/srv/symbi")
    app = make_fake_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        screen, audit_list = await open_audit(pilot)
        fake.verify_report = VerifyReport(
            ok=True, path="/srv/symbi/audit.db", events_checked=12, checkpoints_checked=2, last_seq=12, seconds=0.25
        )
        await pilot.press("v")
        await until(pilot, lambda: screen.last_report is not None, what="the verdict")
        assert screen.status_text == (
            "✔ chain intact: 12 events and 2 signed checkpoints verified in 0.25s (head seq 12)"
        )
        assert screen.status_colour == "success"
        assert notified(app, "audit chain intact: 12 events")

        # the engine finds a modified event: the verdict names it and the list jumps there
        await pilot.press("home")
        await until(pilot, lambda: audit_list.record is not None and audit_list.record.seq == 1, what="the top")
        fake.verify_report = VerifyReport(
            ok=False,
            path="/srv/symbi/audit.db",
            problem="modified",
            first_bad_seq=5,
            message="event 5 was modified: its hash no longer matches",
            events_checked=4,
        )
        screen.last_report = None
        await pilot.press("v")
        await until(pilot, lambda: screen.last_report is not None, what="the second verdict")
        assert screen.status_text == (
            "✘ chain FAILED: modified at seq 5: event 5 was modified: its hash no longer matches"
        )
        assert screen.status_colour == "error"
        assert notified(app, "modified at seq 5")
        await until(pilot, lambda: audit_list.record is not None and audit_list.record.seq == 5, what="the jump")
        assert fake.called("audit.verify") == [(), ()]


async def test_engine_errors_show_in_the_status_line_and_as_a_notification():
    fake = seeded()
    app = make_fake_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        screen, audit_list = await open_audit(pilot)
        fake.fail("audit.verify", SymbiError(ErrorCode.AUDIT_002, "the audit key is missing", hint="restore keys/"))
        await pilot.press("v")
        await until(pilot, lambda: notified(app, "AUDIT_002"), what="the verify error")
        assert notified(app, "Hint: restore keys/")
        assert screen.status_text == "AUDIT_002: the audit key is missing" and screen.status_colour == "error"
        assert screen.last_report is None

        # a view that cannot be counted keeps the one shown
        fake.fail("audit.count", SymbiError(ErrorCode.AUDIT_001, "the audit trail cannot be read"))
        await pilot.press("r")
        await until(pilot, lambda: screen.status_text.startswith("AUDIT_001"), what="the count error")
        assert notified(app, "the audit trail cannot be read")
        assert audit_list.window.total == len(SEEDED_EVENTS)


async def test_export_writes_the_filtered_view(tmp_path):
    data = tmp_path / "data"
    fake = seeded(data_dir=str(data))
    app = make_fake_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        screen, audit_list = await open_audit(pilot)
        screen.query_one("#af-decision", Select).value = "deny"
        await until(pilot, lambda: audit_list.window.total == 3, what="three denials")

        await pilot.press("e")
        prompt = screen.query_one(PromptBar)
        assert prompt.is_open and prompt.mode == "export"
        default = prompt.input.value
        assert default.startswith(str(data / "exports" / "audit-")) and default.endswith(".jsonl")
        await pilot.press("enter")
        await until(pilot, lambda: notified(app, "exported 3 events"), what="the export")
        assert fake.called("audit.export") == [(AuditFilter(decision="deny"), default)]
        lines = [json.loads(line) for line in open(default, encoding="utf-8")]
        assert [line["decision"] for line in lines] == ["deny"] * 3
        assert [line["seq"] for line in lines] == [5, 9, 12]

        # the same file again: asked first; "n" leaves it alone and the engine is not asked
        await pilot.press("e")
        prompt.input.value = default  # (the default name has the time: a second may have passed)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the overwrite question")
        assert "Replace it with the 3 filtered events?" in str(app.screen.query_one("#dialog-question").render())
        await pilot.press("n")
        await pilot.pause()
        assert len(open(default, encoding="utf-8").read().splitlines()) == 3
        assert len(fake.called("audit.export")) == 1

        # outside the engine's exports folder: the engine's error, not a traceback
        await pilot.press("e")
        prompt.input.value = str(tmp_path / "missing" / "x.jsonl")
        await pilot.press("enter")
        await until(pilot, lambda: notified(app, "AUDIT_003"), what="the export error")
        assert notified(app, "exports are written only in the engine's exports folder")
        assert app.is_running


async def test_enter_shows_the_json_full_screen():
    fake = seeded()
    app = make_fake_app(fake)
    async with app.run_test(size=(80, 24)) as pilot:
        screen, audit_list = await open_audit(pilot)
        detail = screen.query_one("#audit-detail", TextArea)
        shown = json.loads(detail.text)
        assert shown["seq"] == audit_list.record.seq == 12
        assert shown == fake.records[-1].to_dict()
        assert detail.border_title == "Event #12"
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
