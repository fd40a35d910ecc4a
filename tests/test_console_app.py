"""The console shell: screens, command mode, help, palette, read-only mode, keymap,
pause, themes and quitting, driven with keys on a real runtime."""

from __future__ import annotations

from console_fixtures import agent_config, app_over, console_config, make_app, model_state, ready, runtime_of, until
from textual.command import CommandPalette
from textual.widgets import DataTable, OptionList

from console.actions import ACTIONS, BY_ID
from console.dialogs import ConfirmDialog
from console.palette import RegistryCommands
from console.screens import (
    AgentsScreen,
    AuditScreen,
    DashboardScreen,
    HelpScreen,
    PolicyScreen,
    ResourcesScreen,
    VaultScreen,
)
from console.widgets import PromptBar
from engine.agents.model import AgentState
from engine.runtime import Runtime


def notified(app, text: str) -> bool:
    return any(text in n.message for n in app._notifications)


async def test_number_keys_and_header(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app)
        assert isinstance(app.screen, DashboardScreen)
        await pilot.press("2")
        assert isinstance(app.screen, AgentsScreen)
        await pilot.press("3")
        assert isinstance(app.screen, ResourcesScreen)
        await pilot.press("4")
        assert isinstance(app.screen, AuditScreen)
        await pilot.press("5")
        assert isinstance(app.screen, PolicyScreen)
        await pilot.press("6")  # the policy editor does not take the keys until asked (e)
        assert isinstance(app.screen, VaultScreen)
        await pilot.press("1")
        assert isinstance(app.screen, DashboardScreen)
        summary = app.summary
        assert summary.mode == "embedded"
        assert summary.location == "~/symbi-data"
        await runtime_of(app).create_agent(agent_config("one"))
        await until(pilot, lambda: dict(app.summary.counts)[AgentState.CREATED] == 1, what="the header count")
        where = str(app.screen.query_one("#engine-where").render())
        assert "embedded" in where and "~/symbi-data" in where
        assert "Created 1" in str(app.screen.query_one("#engine-counts").render())


async def test_command_mode_switches_screens(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app)
        for command, screen_type in (
            ("ag", AgentsScreen),
            ("res", ResourcesScreen),
            ("dash", DashboardScreen),
            ("a", AgentsScreen),
            ("resources", ResourcesScreen),
            ("d", DashboardScreen),
            ("agents", AgentsScreen),
            ("au", AuditScreen),
            ("pol", PolicyScreen),
            ("vault", VaultScreen),
            ("a", AgentsScreen),
        ):
            await pilot.press("colon")
            prompt = app.screen.query_one(PromptBar)
            assert prompt.is_open and app.screen.focused is prompt.input
            await pilot.press(*command, "enter")
            assert isinstance(app.screen, screen_type), command
        assert not app.screen.query_one(PromptBar).is_open

        await pilot.press("colon", *"help", "enter")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")

        await pilot.press("colon", *"nope", "enter")
        assert notified(app, "unknown command :nope")

        await pilot.press("colon", *"q?1", "escape")  # keys go to the prompt, esc abandons it
        assert not app.screen.query_one(PromptBar).is_open
        assert isinstance(app.screen, AgentsScreen)
        assert app.is_running


async def test_help_lists_every_registry_action(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        table = app.screen.query_one(DataTable)
        ids = [table.get_row_at(i)[3] for i in range(table.row_count)]
        assert ids == [a.id for a in ACTIONS]
        keys = {table.get_row_at(i)[3]: table.get_row_at(i)[0] for i in range(table.row_count)}
        assert keys["app.help"] == "?"
        assert keys["agents.terminate"] == "^k"
        await pilot.press("question_mark")
        assert isinstance(app.screen, DashboardScreen)


async def test_palette_offers_every_action(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app)
        provider = RegistryCommands(app.screen)
        found = [hit.text async for hit in provider.discover()]
        assert len(found) == len(ACTIONS) - 1  # all but "open the palette"
        assert any(str(text).startswith("Agents: Stop") for text in found)

        # through the real palette: ctrl+p, search, enter
        await pilot.press("ctrl+p")
        assert isinstance(app.screen, CommandPalette)
        await pilot.press(*"per-agent resource")
        await until(pilot, lambda: app.screen.query_one(OptionList).option_count > 0, what="palette hits")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ResourcesScreen), what="the resources screen")

        # choosing an action of another screen goes there
        await app.run_registry_action("agents.filter")
        await pilot.pause()
        assert isinstance(app.screen, AgentsScreen)
        assert app.screen.query_one(PromptBar).is_open

        # also for the audit screen's actions (here through command mode: :verify)
        await pilot.press("escape", "colon", *"verify", "enter")
        await until(pilot, lambda: isinstance(app.screen, AuditScreen), what="the audit screen")
        await until(pilot, lambda: app.screen.last_report is not None, what="the verdict")
        assert app.screen.last_report.ok


async def test_readonly_refuses_and_hides_mutations(tmp_path):
    app = make_app(tmp_path, readonly=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app)
        await runtime_of(app).create_agent(agent_config("idle", "heartbeat"))
        await pilot.press("2")
        await until(pilot, lambda: app.screen.query_one(DataTable).row_count == 1, what="the row")

        await pilot.press("r")
        await until(pilot, lambda: notified(app, "CONSOLE_001"), what="the read-only refusal")
        await pilot.pause()
        assert model_state(app, "idle") is AgentState.CREATED
        await pilot.press("n")
        assert isinstance(app.screen, AgentsScreen)  # no form

        shown = {b.binding.id for b in app.screen.active_bindings.values() if b.binding.show}
        assert "agents.filter" in shown
        assert not shown & {a.id for a in ACTIONS if a.readonly_off}
        provider = RegistryCommands(app.screen)
        offered = [str(hit.text) async for hit in provider.discover()]
        assert not any(text.startswith(("Agents: Run", "Agents: Delete", "Agents: New")) for text in offered)
        assert not any(text.startswith(("Vault: Reveal", "Vault: Copy", "Policy: Save")) for text in offered)
        assert any(text.startswith("Audit: Verify") for text in offered)
        assert app.summary.readonly
        assert "READ-ONLY" in str(app.screen.query_one("#engine-flags").render())


async def test_keymap_from_config_rebinds(tmp_path):
    cfg = console_config(keymap={"agents.start": "g", "app.help": "f1"})
    app = make_app(tmp_path, config=cfg)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app)
        await runtime_of(app).create_agent(agent_config("quick", "hello"))
        await pilot.press("2")
        await until(pilot, lambda: app.screen.query_one(DataTable).row_count == 1, what="the row")

        await pilot.press("r")  # no longer bound
        await pilot.pause()
        assert model_state(app, "quick") is AgentState.CREATED
        await pilot.press("g")
        await until(pilot, lambda: model_state(app, "quick") is not AgentState.CREATED, what="g to start it")
        await runtime_of(app).wait_for_state("quick", AgentState.COMPLETED, timeout=15)

        await pilot.press("question_mark")
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        table = app.screen.query_one(DataTable)
        assert table.get_row(BY_ID["agents.start"].id)[0] == "g"


async def test_pause_freezes_the_views(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app)
        await pilot.press("2", "p")
        assert app.paused and app.summary.paused
        table = app.screen.query_one(DataTable)
        await runtime_of(app).create_agent(agent_config("late"))
        await until(pilot, lambda: app.model.by_name("late") is not None, what="the model to see it")
        assert table.row_count == 0  # the view is frozen
        await pilot.press("p")
        await until(pilot, lambda: table.row_count == 1, what="the row after resuming")
        assert "PAUSED" not in str(app.screen.query_one("#engine-flags").render())


async def test_ctrl_t_cycles_the_three_themes(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app)
        seen = [app.theme]
        for _ in range(3):
            await pilot.press("ctrl+t")
            seen.append(app.theme)
        assert seen == ["symbi-dark", "symbi-light", "symbi-ansi", "symbi-dark"]


async def test_quit_with_a_running_agent_asks_then_stops_it(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app)
        runtime = runtime_of(app)
        await runtime.create_agent(agent_config("beat", "heartbeat"))
        await runtime.start_agent("beat")
        await runtime.wait_for_state("beat", AgentState.RUNNING, timeout=15)
        await until(pilot, lambda: model_state(app, "beat") is AgentState.RUNNING, what="Running")

        await pilot.press("q")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the quit question")
        assert "beat (Running)" in str(app.screen.query_one("#dialog-question").render())
        await pilot.press("n")  # stay
        await pilot.pause()
        assert app.is_running and runtime.is_open

        await pilot.press("q")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the quit question")
        await pilot.press("y")
        await until(pilot, lambda: not runtime.is_open, what="the runtime to close")
    assert (await runtime.get_agent("beat")).state is AgentState.TERMINATED


async def test_quit_without_active_agents_does_not_ask(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app)
        await runtime_of(app).create_agent(agent_config("idle"))
        await pilot.press("q")
        await until(pilot, lambda: not runtime_of(app).is_open, what="the runtime to close")
        assert not isinstance(app.screen, ConfirmDialog)


async def test_engine_already_in_use_is_reported_not_raised(tmp_path):
    first = make_app(tmp_path)
    async with first.run_test(size=(80, 24)):
        await ready(first)
        second = make_app(tmp_path)  # same data dir: the lock is held
        async with second.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
        assert second.return_code == 2
        assert second.startup_error is not None and second.startup_error.code.value == "RUNTIME_002"


async def test_every_theme_renders_every_screen(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app)
        await runtime_of(app).create_agent(agent_config("one"))
        for theme in ("symbi-dark", "symbi-light", "symbi-ansi"):
            app.theme = theme
            for key in ("1", "2", "3", "4", "5", "6"):
                await pilot.press(key)
                await pilot.pause()
                assert app.export_screenshot()


async def test_theme_from_flag_beats_config_and_unknown_falls_back(tmp_path):
    cfg = console_config(console={"theme": "symbi-ansi"})
    app = app_over(Runtime(cfg, tmp_path / "a"), theme_name="symbi-light")
    assert app.theme == "symbi-light"
    app = app_over(Runtime(cfg, tmp_path / "b"))
    assert app.theme == "symbi-ansi"
    app = app_over(Runtime(cfg, tmp_path / "c"), theme_name="neon")
    assert app.theme == "symbi-dark"
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app)
        await pilot.pause()
        assert notified(app, "unknown theme 'neon'")


async def test_unconfined_agents_raise_a_standing_warning(tmp_path):
    """native_isolation = "none" written on purpose: while such an agent runs the header says so, on every screen."""
    app = make_app(tmp_path, config=console_config(sandbox={"native_isolation": "none"}))
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app)
        assert app.summary.unconfined == 0
        runtime = runtime_of(app)
        await runtime.create_agent(agent_config("beat", "heartbeat"))
        await runtime.start_agent("beat")
        await runtime.wait_for_state("beat", AgentState.RUNNING, timeout=15)
        await until(pilot, lambda: app.summary.unconfined == 1, what="the unconfined count")
        for key in ("2", "4"):
            await pilot.press(key)
            await pilot.pause()
            assert "UNCONFINED 1" in str(app.screen.query_one("#engine-flags").render())
        await runtime.stop_agent("beat")
        await until(pilot, lambda: app.summary.unconfined == 0, what="the warning to clear")
        assert "UNCONFINED" not in str(app.screen.query_one("#engine-flags").render())
