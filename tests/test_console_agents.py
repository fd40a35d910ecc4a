"""The agents workflow through the console, on a real runtime with real agent processes:
create with the form, start, watch it run, drill in, read its log, stop it with confirmation."""

from __future__ import annotations

from console_fixtures import EXAMPLES, agent_config, make_app, model_state, program, ready, runtime_of, until
from textual.widgets import DataTable, Label, Log, Select

from console.dialogs import ConfirmDialog
from console.screens import AgentDetailScreen, AgentsScreen, CreateAgentDialog
from engine.agents.model import AgentState, Priority


def cell(app, agent_id: str, column: str) -> str:
    table = app.screen.query_one("#agents-table", DataTable)
    value = table.get_cell(agent_id, column)
    return getattr(value, "plain", str(value))


async def test_create_start_inspect_and_stop_an_agent(tmp_path):
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
        beat = tmp_path / "beat.py"
        beat.write_text(program("heartbeat"))
        await pilot.press("tab", *str(beat), "tab")  # path, then on to priority
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


async def test_form_shows_engine_errors_inline(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app)
        await runtime_of(app).create_agent(agent_config("taken"))
        await pilot.press("2", "n")
        await until(pilot, lambda: isinstance(app.screen, CreateAgentDialog), what="the create form")
        form = app.screen

        # a bad number: refused before the engine is asked
        await pilot.press(*"ok-name", "tab", "tab", "tab", "tab", *"lots", "ctrl+s")
        error = form.query_one("#e-memory", Label)
        await until(pilot, lambda: "memory_mb" in str(error.render()), what="the memory error")
        assert "AGENT_004" in str(error.render())
        assert form.focused is form.query_one("#f-memory")

        # a name the engine refuses: its SymbiError, next to the name
        form.query_one("#f-memory").value = "64"
        form.query_one("#f-name").value = "taken"
        await pilot.press("ctrl+s")
        name_error = form.query_one("#e-name", Label)
        await until(pilot, lambda: "AGENT_006" in str(name_error.render()), what="the duplicate-name error")
        assert "already exists" in str(name_error.render())
        assert "Hint:" in str(form.query_one("#form-error").render())
        assert not form.query_one("#e-memory", Label).has_class("-shown")

        # a missing file
        form.query_one("#f-name").value = "fresh"
        form.query_one("#f-path").value = str(tmp_path / "missing.py")
        await pilot.press("ctrl+s")
        program_error = form.query_one("#e-program", Label)
        await until(pilot, lambda: "cannot read the program file" in str(program_error.render()), what="file error")

        # esc cancels; nothing was created
        await pilot.press("escape")
        assert isinstance(app.screen, AgentsScreen)
        assert [a.name for a in await runtime_of(app).list_agents()] == ["taken"]


async def test_lifecycle_errors_are_notifications_not_tracebacks(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app)
        await runtime_of(app).create_agent(agent_config("idle"))
        await pilot.press("2")
        await until(pilot, lambda: app.screen.query_one(DataTable).row_count == 1, what="the row")
        await pilot.press("u")  # resume a Created agent: AGENT_002
        await until(pilot, lambda: any("AGENT_002" in n.message for n in app._notifications), what="AGENT_002")
        message = next(n.message for n in app._notifications if "AGENT_002" in n.message)
        assert "cannot resume" in message and "Hint:" in message
        assert model_state(app, "idle") is AgentState.CREATED


async def test_delete_asks_first_and_removes_the_row(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app)
        info = await runtime_of(app).create_agent(agent_config("doomed"))
        await pilot.press("2")
        table = app.screen.query_one(DataTable)
        await until(pilot, lambda: table.row_count == 1, what="the row")
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the delete confirmation")
        await pilot.press("y")
        await until(pilot, lambda: table.row_count == 0, what="the row to go")
        assert info.id not in app.model.agents
        assert await runtime_of(app).list_agents() == []


async def test_filter_and_sort(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app)
        for name, priority in (("beta", Priority.LOW), ("alpha", Priority.CRITICAL), ("gamma", Priority.NORMAL)):
            await runtime_of(app).create_agent(agent_config(name, priority=priority))
        await pilot.press("2")
        screen = app.screen
        table = screen.query_one(DataTable)
        await until(pilot, lambda: table.row_count == 3, what="three rows")

        def names() -> list[str]:
            return [str(table.get_row_at(i)[0]) for i in range(table.row_count)]

        assert names() == ["beta", "alpha", "gamma"]  # creation order
        await pilot.press("s")  # name
        assert names() == ["alpha", "beta", "gamma"]
        await pilot.press("s", "s")  # state, then priority (highest first)
        assert names() == ["alpha", "gamma", "beta"]
        assert "priority" in str(table.border_subtitle)

        await pilot.press("slash", *"al")
        assert names() == ["alpha"]
        assert str(table.border_title) == "Agents (1 of 3)"
        await pilot.press("enter")  # keep the filter, back to the table
        assert screen.focused is table
        assert names() == ["alpha"]
        await pilot.press("slash", "escape")  # esc clears it
        assert len(names()) == 3
        assert screen.focused is table
