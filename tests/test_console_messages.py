"""The messages screen shows bus traffic (from the audit trail, metadata only) with the
verification status, and the dead letters with their reasons, over the scripted
:class:`FakeEngine`. (Real agents talking on the real bus: ``test_console_messages_e2e.py``.)"""

from __future__ import annotations

import time

from console_fixtures import make_fake_app, notified, ready, until
from fake_engine import START, FakeEngine, agent_info
from textual.widgets import DataTable, Input

from console.screens import MessagesScreen
from engine.api import DeadLetter
from engine.errors import ErrorCode, SymbiError

PING, PONG, LOGGER = "agent-ping", "agent-pong", "agent-logger"


def rows(table: DataTable) -> list[list[str]]:
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


def hms(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts))


def bus_record(fake: FakeEngine, event: str, sender: str, ts: float, **meta):
    """An audit row as the engine's bus hook writes it (metadata only, never the payload)."""
    target = meta.get("recipient") or (f"topic:{meta['topic']}" if meta.get("topic") else "")
    return fake.append_audit(
        event,
        ts=ts,
        agent=sender,
        actor=f"agent:{sender}",
        action=meta.get("stage", "send"),
        resource=target,
        decision=meta["decision"],
        details={"sender": sender, **meta},
    )


def scripted() -> FakeEngine:
    fake = FakeEngine(agents=[agent_info("ping"), agent_info("pong"), agent_info("logger")])
    fake.append_audit("agent.create", ts=START - 100, agent=PING)  # not bus traffic: not shown
    bus_record(
        fake,
        "bus.send",
        PING,
        START - 90,
        recipient=PONG,
        size=19,
        decision="accepted",
        verification="signed",
        stage="send",
    )
    bus_record(
        fake,
        "bus.deliver",
        PING,
        START - 89,
        recipient=PONG,
        size=19,
        decision="delivered",
        verification="verified",
        stage="delivery",
    )
    bus_record(
        fake,
        "bus.send",
        LOGGER,
        START - 80,
        topic="metrics",
        size=7,
        decision="accepted",
        verification="signed",
        stage="send",
    )
    bus_record(
        fake,
        "bus.reject",
        PING,
        START - 70,
        recipient=PONG,
        size=10,
        decision="rejected",
        verification="failed",
        stage="ingress",
        code="COMM_002",
        reason="bad envelope signature",
    )
    fake.dead = [
        DeadLetter(START - 70, "COMM_002", "bad envelope signature", "ingress", sender=PING, recipient=PONG),
        DeadLetter(START - 60, "COMM_007", "no agent or topic 'gone'", "send", sender=LOGGER, topic="gone"),
    ]
    return fake


async def open_messages(pilot) -> MessagesScreen:
    app = pilot.app
    await ready(app)
    await pilot.press("7")
    screen = app.screen
    assert isinstance(screen, MessagesScreen)
    return screen


async def test_traffic_and_dead_letters_are_shown_with_names_and_reasons():
    fake = scripted()
    app = make_fake_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_messages(pilot)
        traffic = screen.query_one("#traffic", DataTable)
        dead = screen.query_one("#dead", DataTable)
        await until(pilot, lambda: traffic.row_count == 4 and dead.row_count == 2, what="traffic and dead letters")
        # newest first, agents by name, a topic as a topic, the verification of each step
        assert rows(traffic) == [
            [hms(START - 70), "reject", "ping", "pong", "10", "failed", "rejected"],
            [hms(START - 80), "send", "logger", "topic metrics", "7", "signed", "accepted"],
            [hms(START - 89), "deliver", "ping", "pong", "19", "verified", "delivered"],
            [hms(START - 90), "send", "ping", "pong", "19", "signed", "accepted"],
        ]
        assert rows(dead) == [
            [hms(START - 60), "COMM_007", "logger", "topic gone", "send", "no agent or topic 'gone'"],
            [hms(START - 70), "COMM_002", "ping", "pong", "ingress", "bad envelope signature"],
        ]
        assert fake.called("messages.dead_letters")[-1] == (None,)


async def test_the_agent_filter_narrows_both_tables_by_name():
    fake = scripted()
    app = make_fake_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_messages(pilot)
        traffic = screen.query_one("#traffic", DataTable)
        dead = screen.query_one("#dead", DataTable)
        await until(pilot, lambda: traffic.row_count == 4, what="all traffic")

        screen.query_one("#messages-filter", Input).value = "logger"
        await until(pilot, lambda: traffic.row_count == 1 and dead.row_count == 1, what="the logger's messages")
        assert rows(traffic)[0][2:4] == ["logger", "topic metrics"]
        assert rows(dead)[0][1] == "COMM_007"
        assert fake.called("messages.dead_letters")[-1] == (LOGGER,)  # asked by id, typed by name

        screen.query_one("#messages-filter", Input).value = "pong"  # the recipient counts too
        await until(pilot, lambda: traffic.row_count == 3, what="what pong received")
        assert {r[3] for r in rows(traffic)} == {"pong"}

        asked = len(fake.called("messages.recent"))
        screen.query_one("#messages-filter", Input).value = "nobody"
        await until(pilot, lambda: traffic.row_count == 0 and dead.row_count == 0, what="an unknown agent")
        assert len(fake.called("messages.recent")) == asked  # no agent of that name: the engine is not asked

        screen.query_one("#messages-filter", Input).value = ""
        await until(pilot, lambda: traffic.row_count == 4 and dead.row_count == 2, what="everything again")


async def test_new_traffic_shows_on_refresh():
    fake = scripted()
    app = make_fake_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_messages(pilot)
        traffic = screen.query_one("#traffic", DataTable)
        await until(pilot, lambda: traffic.row_count == 4, what="all traffic")
        bus_record(fake, "bus.send", PONG, START, recipient=PING, size=3, decision="accepted", verification="signed")
        screen.tick()  # the console's refresh interval
        await until(pilot, lambda: traffic.row_count == 5, what="the new message")
        assert rows(traffic)[0][1:4] == ["send", "pong", "ping"]


async def test_an_engine_error_is_shown_and_the_tables_stay():
    fake = scripted()
    app = make_fake_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_messages(pilot)
        traffic = screen.query_one("#traffic", DataTable)
        await until(pilot, lambda: traffic.row_count == 4, what="all traffic")
        fake.fail(
            "messages.recent",
            SymbiError(ErrorCode.AUDIT_001, "the audit trail cannot be read", hint="see the engine log"),
        )
        screen.reload()
        await until(pilot, lambda: notified(app, "AUDIT_001"), what="the error")
        assert notified(app, "the audit trail cannot be read") and notified(app, "Hint: see the engine log")
        assert traffic.row_count == 4 and app.is_running
