"""The messages screen over real agents talking on the real bus, end to end.

How the screen lays out traffic and dead letters and filters them is tested fast over the
scripted fake in ``test_console_messages.py``. This test stays on a real runtime because its
point is the path from real agent processes to the screen: a message really sent, delivered and
left unread becomes audit rows and a dead letter, and its payload never reaches the console.
"""

from __future__ import annotations

from console_fixtures import make_app, ready, runtime_of, until
from textual.widgets import DataTable, Input

from console.screens import MessagesScreen
from engine.agents.model import AgentConfig, AgentState

PING = "from symbi_agent import agent\nagent.send('pong', 'secret-payload-9f2e')\nagent.send('pong', 'never read')\n"
PONG = "from symbi_agent import agent\nmsg = agent.receive(timeout=20)\nprint('got', msg['payload'].decode(), flush=True)\n"


def rows(table: DataTable) -> list[list[str]]:
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


async def test_traffic_and_dead_letters_are_shown_without_payloads_end_to_end(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app)
        rt = runtime_of(app)
        await rt.create_agent(AgentConfig("pong", PONG))
        await rt.create_agent(AgentConfig("ping", PING))
        await rt.start_agent("pong")
        await rt.start_agent("ping")
        for name in ("ping", "pong"):
            await rt.wait_for_state(name, AgentState.COMPLETED, AgentState.FAILED, timeout=60)
        await rt.delete_agent("pong")  # the message it never read becomes a dead letter
        await pilot.press("7")
        screen = app.screen
        assert isinstance(screen, MessagesScreen)
        screen.reload()
        traffic = screen.query_one("#traffic", DataTable)
        await until(pilot, lambda: traffic.row_count >= 2, what="bus traffic rows")
        shown = rows(traffic)
        assert any(r[1] == "send" and r[2] == "ping" for r in shown)
        assert any(r[1] == "deliver" and r[5] == "verified" for r in shown)
        dead = screen.query_one("#dead", DataTable)
        await until(pilot, lambda: dead.row_count >= 1, what="a dead letter")
        assert rows(dead)[0][1].startswith("COMM_") and rows(dead)[0][2] == "ping" and rows(dead)[0][5]
        assert "secret-payload" not in repr(shown) + repr(rows(dead))
        screen.query_one("#messages-filter", Input).value = "nobody"
        await until(pilot, lambda: traffic.row_count == 0, what="filter to an unknown agent")
