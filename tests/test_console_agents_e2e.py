"""The agents workflow on the real engine, end to end.

What the agents screens show and do (the form, keys, confirmations, errors, filter and sort)
is tested fast over the scripted fake in ``test_console_agents.py``. This test stays on a real
runtime because its point is the engine behind the console: an agent created with the form is
a real process that starts (Created, Initializing, Ready, Running), writes log lines the detail
screen tails live, and stops gracefully on SIGTERM when the operator confirms the stop.
"""

from __future__ import annotations

from console_fixtures import EXAMPLES, make_app, model_state, program, ready, runtime_of, until
from textual.widgets import DataTable, Log, Select

from console.dialogs import ConfirmDialog
from console.screens import AgentDetailScreen, AgentsScreen, CreateAgentDialog
from engine.agents.model import AgentState, Priority


def cell(app, agent_id: str, column: str) -> str:
    table = app.screen.query_one("#agents-table", DataTable)
    value = table.get_cell(agent_id, column)
    return getattr(value, "plain", str(value))


async def test_create_start_inspect_and_stop_an_agent_end_to_end(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a short relative path to type
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app)
        await pilot.press("2")
        assert isinstance(app.screen, AgentsScreen)

        # n opens the form; fill it with keys only
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, CreateAgentDialog), what="the create form")
        form = app.screen
        await pilot.press(*"hb-1")
        await pilot.press("tab")  # program select
        assert form.focused is form.query_one("#f-program", Select)
        await pilot.press("enter", *"heart", "enter")  # type-to-search in the example list
        assert form.query_one("#f-program", Select).value == str(EXAMPLES / "heartbeat.py")
        # a file path beats the example: use the tests' own heartbeat program
        (tmp_path / "beat.py").write_text(program("heartbeat"))
        await pilot.press("tab", *"beat.py", "tab")  # path, then on to priority
        await pilot.press("enter", "down", "enter")  # Normal -> High
        await pilot.press("tab", *"128")  # memory (focus selects the old value)
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, AgentsScreen), what="the form to close")

        info = await runtime_of(app).get_agent("hb-1")
        assert info.state is AgentState.CREATED
        assert info.priority is Priority.HIGH
        assert info.limits.memory_mb == 128
        assert info.config.dsl_source == program("heartbeat")
        assert cell(app, info.id, "name") == "hb-1"
        assert cell(app, info.id, "state") == "Created"

        # r starts the selected agent; the row follows the engine's events
        await pilot.press("r")
        await runtime_of(app).wait_for_state("hb-1", AgentState.RUNNING, timeout=15)
        await until(pilot, lambda: cell(app, info.id, "state") == "Running", what="Running in the table")

        # Enter drills in: config, history and the live log tail
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, AgentDetailScreen), what="the detail screen")
        detail = app.screen
        log = detail.query_one("#detail-log", Log)
        await until(pilot, lambda: any("heartbeat 2" in line for line in log.lines), what="log lines")
        history = detail.query_one("#detail-history", DataTable)
        states = [history.get_row_at(i)[1].plain for i in range(history.row_count)]
        assert states[:4] == ["Created", "Initializing", "Ready", "Running"]

        # x asks first; "n" keeps it running
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the stop confirmation")
        await pilot.press("n")
        await until(pilot, lambda: app.screen is detail, what="back on the detail screen")
        assert model_state(app, "hb-1") is AgentState.RUNNING

        # x then y stops it gracefully: Terminated
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the stop confirmation")
        await pilot.press("y")
        await runtime_of(app).wait_for_state("hb-1", AgentState.TERMINATED, timeout=15)
        await until(pilot, lambda: model_state(app, "hb-1") is AgentState.TERMINATED, what="Terminated")
        await until(
            pilot, lambda: any("heartbeat stopping on SIGTERM" in line for line in log.lines), what="the exit line"
        )
        await until(
            pilot,
            lambda: history.get_row_at(history.row_count - 1)[1].plain == "Terminated",
            what="Terminated in the history",
        )

        # Esc goes back to the table, which shows the new state
        await pilot.press("escape")
        assert isinstance(app.screen, AgentsScreen)
        assert cell(app, info.id, "state") == "Terminated"
