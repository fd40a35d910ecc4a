"""The agents workflow through the console over the scripted :class:`FakeEngine`: create with
the form, start, watch the row follow the engine's events, drill in, read the log, stop with
confirmation, delete, filter and sort, and the engine's refusals shown where they belong.

What the console asks the engine is checked on the fake's record of calls. The same workflow
with a real agent process is ``test_console_agents_e2e.py``.
"""

from __future__ import annotations

from console_fixtures import EXAMPLES, make_fake_app, model_state, notified, program, ready, until
from fake_engine import START, FakeEngine, agent_info
from textual.widgets import DataTable, Label, Log, Select, Static

from console.dialogs import ConfirmDialog
from console.screens import AgentDetailScreen, AgentsScreen, CreateAgentDialog
from engine.api import AgentConfig, AgentState, Priority, StateChange
from engine.errors import ErrorCode, SymbiError


def cell(app, agent_id: str, column: str) -> str:
    table = app.screen.query_one("#agents-table", DataTable)
    value = table.get_cell(agent_id, column)
    return getattr(value, "plain", str(value))


def history_states(detail: AgentDetailScreen) -> list[str]:
    history = detail.query_one("#detail-history", DataTable)
    return [history.get_row_at(i)[1].plain for i in range(history.row_count)]


async def test_create_start_inspect_and_stop_an_agent(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a short relative path to type
    fake = FakeEngine()
    app = make_fake_app(fake)
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

        # the engine was asked once, with what the form said
        [(config,)] = fake.called("agents.create")
        assert config.name == "hb-1"
        assert config.priority is Priority.HIGH
        assert config.resource_limits.memory_mb == 128
        assert config.dsl_source == program("heartbeat")
        info = fake.agent("hb-1")
        assert cell(app, info.id, "name") == "hb-1"
        assert cell(app, info.id, "state") == "Created"
        assert notified(app, "created hb-1 (r starts it)")

        # r starts the selected agent; the row follows the engine's events
        await pilot.press("r")
        await until(pilot, lambda: cell(app, info.id, "state") == "Running", what="Running in the table")
        assert fake.called("agents.start") == [(info.id,)]
        assert notified(app, "hb-1: start requested")

        # Enter drills in: config, the engine's state history and the log tail, then live lines
        fake.log(info.id, "heartbeat 1")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, AgentDetailScreen), what="the detail screen")
        detail = app.screen
        log = detail.query_one("#detail-log", Log)
        await until(pilot, lambda: list(log.lines) == ["heartbeat 1"], what="the log tail")
        assert fake.called("agents.logs") == [(info.id, 200)]
        assert history_states(detail) == ["Created", "Running"]
        assert "Agent hb-1" in str(detail.query_one("#detail-summary").border_title)
        config_text = str(detail.query_one("#detail-config", Static).render())
        assert "priority High" in config_text and "128 MB" in config_text
        fake.log(info.id, "heartbeat 2", "heartbeat 3")
        await until(pilot, lambda: list(log.lines)[-1] == "heartbeat 3", what="live log lines")
        assert list(log.lines) == ["heartbeat 1", "heartbeat 2", "heartbeat 3"]

        # x asks first; "n" keeps it running and the engine is not asked
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the stop confirmation")
        question = str(app.screen.query_one("#dialog-question").render())
        assert question == "Stop hb-1? It gets SIGTERM and up to 3s to exit before SIGKILL."
        await pilot.press("n")
        await until(pilot, lambda: app.screen is detail, what="back on the detail screen")
        assert model_state(app, "hb-1") is AgentState.RUNNING
        assert fake.called("agents.stop") == []

        # x then y stops it: the engine is asked, and its Terminated shows everywhere
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the stop confirmation")
        await pilot.press("y")
        await until(pilot, lambda: model_state(app, "hb-1") is AgentState.TERMINATED, what="Terminated")
        assert fake.called("agents.stop") == [(info.id,)]
        await until(pilot, lambda: history_states(detail)[-1] == "Terminated", what="Terminated in the history")

        # Esc goes back to the table, which shows the new state
        await pilot.press("escape")
        assert isinstance(app.screen, AgentsScreen)
        assert cell(app, info.id, "state") == "Terminated"


async def test_form_shows_engine_errors_inline(tmp_path):
    fake = FakeEngine(agents=[agent_info("taken")])
    app = make_fake_app(fake)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app)
        await pilot.press("2", "n")
        await until(pilot, lambda: isinstance(app.screen, CreateAgentDialog), what="the create form")
        form = app.screen

        # a bad number: refused before the engine is asked
        await pilot.press(*"ok-name", "tab", "tab", "tab", "tab", *"lots", "ctrl+s")
        error = form.query_one("#e-memory", Label)
        await until(pilot, lambda: "memory_mb" in str(error.render()), what="the memory error")
        assert "AGENT_004" in str(error.render())
        assert form.focused is form.query_one("#f-memory")
        assert fake.called("agents.create") == []

        # a name the engine refuses: its SymbiError, next to the name
        form.query_one("#f-memory").value = "64"
        form.query_one("#f-name").value = "taken"
        await pilot.press("ctrl+s")
        name_error = form.query_one("#e-name", Label)
        await until(pilot, lambda: "AGENT_006" in str(name_error.render()), what="the duplicate-name error")
        assert "already exists" in str(name_error.render()) and "(input: 'taken')" in str(name_error.render())
        assert "Hint: choose another name" in str(form.query_one("#form-error").render())
        assert not form.query_one("#e-memory", Label).has_class("-shown")
        assert form.focused is form.query_one("#f-name")
        assert len(fake.called("agents.create")) == 1

        # a missing file: refused before the engine is asked
        form.query_one("#f-name").value = "fresh"
        form.query_one("#f-path").value = str(tmp_path / "missing.py")
        await pilot.press("ctrl+s")
        program_error = form.query_one("#e-program", Label)
        await until(pilot, lambda: "cannot read the program file" in str(program_error.render()), what="file error")
        assert not name_error.has_class("-shown")
        assert len(fake.called("agents.create")) == 1

        # an engine error about no one field: code, message and hint below the form
        form.query_one("#f-path").value = ""
        fake.fail(
            "agents.create",
            SymbiError(ErrorCode.RESOURCE_001, "not enough free memory", offending="64 MB", hint="stop another agent"),
        )
        await pilot.press("ctrl+s")
        bottom = form.query_one("#form-error", Static)
        await until(pilot, lambda: "RESOURCE_001" in str(bottom.render()), what="the form-wide error")
        assert "not enough free memory" in str(bottom.render()) and "stop another agent" in str(bottom.render())
        assert isinstance(app.screen, CreateAgentDialog)

        # esc cancels; nothing was created
        await pilot.press("escape")
        assert isinstance(app.screen, AgentsScreen)
        assert [a.name for a in fake.roster.values()] == ["taken"]
        assert [a.name for a in app.model.agents.values()] == ["taken"]


async def test_lifecycle_errors_are_notifications_not_tracebacks():
    fake = FakeEngine(agents=[agent_info("idle")])
    app = make_fake_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app)
        await pilot.press("2")
        await until(pilot, lambda: app.screen.query_one(DataTable).row_count == 1, what="the row")
        await pilot.press("u")  # resume a Created agent: the engine refuses with AGENT_002
        await until(pilot, lambda: notified(app, "AGENT_002"), what="AGENT_002")
        message = next(n.message for n in app._notifications if "AGENT_002" in n.message)
        assert "cannot resume an agent that is Created" in message and "Hint: resume applies to" in message
        assert fake.called("agents.resume") == [("agent-idle",)]
        assert model_state(app, "idle") is AgentState.CREATED
        assert app.is_running and isinstance(app.screen, AgentsScreen)


async def test_an_agent_that_vanished_is_reported_with_the_engines_hint():
    fake = FakeEngine(agents=[agent_info("ghost")])
    app = make_fake_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app)
        await pilot.press("2")
        await until(pilot, lambda: app.screen.query_one(DataTable).row_count == 1, what="the row")
        fake.fail(
            "agents.start",
            SymbiError(ErrorCode.AGENT_001, "agent not found", offending="agent-ghost", hint="see the agents screen"),
        )
        await pilot.press("r")
        await until(pilot, lambda: notified(app, "AGENT_001"), what="AGENT_001")
        note = next(n for n in app._notifications if "AGENT_001" in n.message)
        assert note.title == "Cannot start ghost"
        assert note.message == "AGENT_001: agent not found (input: 'agent-ghost')\nHint: see the agents screen"
        assert model_state(app, "ghost") is AgentState.CREATED


async def test_delete_asks_first_and_removes_the_row():
    fake = FakeEngine(agents=[agent_info("doomed")])
    app = make_fake_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app)
        await pilot.press("2")
        table = app.screen.query_one(DataTable)
        await until(pilot, lambda: table.row_count == 1, what="the row")
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the delete confirmation")
        assert "Delete doomed with its state history" in str(app.screen.query_one("#dialog-question").render())
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, AgentsScreen), what="back on the table")
        assert fake.called("agents.delete") == [] and table.row_count == 1

        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the delete confirmation")
        await pilot.press("y")
        await until(pilot, lambda: table.row_count == 0, what="the row to go")
        assert "agent-doomed" not in app.model.agents
        assert fake.called("agents.delete") == [("agent-doomed",)]
        assert fake.roster == {}


async def test_delete_of_a_running_agent_is_refused_and_the_row_stays():
    fake = FakeEngine(agents=[agent_info("busy", AgentState.RUNNING, started_at=START - 30)])
    app = make_fake_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app)
        await pilot.press("2")
        table = app.screen.query_one(DataTable)
        await until(pilot, lambda: table.row_count == 1, what="the row")
        assert cell(app, "agent-busy", "uptime") == "30s"
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the delete confirmation")
        await pilot.press("y")
        await until(pilot, lambda: notified(app, "AGENT_002"), what="the refusal")
        assert notified(app, "cannot delete an agent that is Running")
        assert table.row_count == 1 and model_state(app, "busy") is AgentState.RUNNING


async def test_filter_and_sort():
    agents = [
        agent_info(
            name,
            at=START + i,
            config=AgentConfig(name=name, dsl_source="print('hello')\n", priority=priority),
        )
        for i, (name, priority) in enumerate(
            (("beta", Priority.LOW), ("alpha", Priority.CRITICAL), ("gamma", Priority.NORMAL))
        )
    ]
    fake = FakeEngine(agents=agents)
    app = make_fake_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app)
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


async def test_a_state_filter_follows_the_engine():
    fake = FakeEngine(agents=[agent_info("one", at=START), agent_info("two", at=START + 1)])
    app = make_fake_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app)
        await pilot.press("2")
        table = app.screen.query_one(DataTable)
        await until(pilot, lambda: table.row_count == 2, what="two rows")
        await pilot.press("slash", *"running", "enter")
        assert table.row_count == 0
        fake.set_state("agent-two", AgentState.RUNNING, "started elsewhere")
        await until(pilot, lambda: table.row_count == 1, what="the running agent to appear")
        assert str(table.get_row_at(0)[0]) == "two"
        fake.set_state("agent-two", AgentState.COMPLETED, "done")
        await until(pilot, lambda: table.row_count == 0, what="the completed agent to leave")


async def test_the_detail_follows_deletion_by_another_client():
    fake = FakeEngine(agents=[agent_info("short-lived")])
    fake.history["agent-short-lived"].append(StateChange(AgentState.TERMINATED, START + 5, "stopped"))
    app = make_fake_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app)
        await pilot.press("2", "enter")
        await until(pilot, lambda: isinstance(app.screen, AgentDetailScreen), what="the detail screen")
        await until(pilot, lambda: history_states(app.screen) == ["Created", "Terminated"], what="the history")
        await fake.agents.delete("agent-short-lived")  # (another client: the event is what matters)
        await until(pilot, lambda: isinstance(app.screen, AgentsScreen), what="back on the table")
        assert notified(app, "agent short-lived was deleted")
        assert app.screen.query_one(DataTable).row_count == 0
