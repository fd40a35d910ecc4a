"""The console shell: screens, command mode, help, palette, read-only mode, keymap,
pause, themes and quitting, driven with keys over the scripted :class:`FakeEngine`.

What the console asks the engine is checked on the fake's record of calls; that a
real engine stops its agents when the console quits is in ``test_console_app_e2e.py``.
"""

from __future__ import annotations

import dataclasses

from console_fixtures import make_fake_app, model_state, mutating_calls, notified, ready, until
from fake_engine import FakeEngine, agent_info
from textual.command import CommandPalette
from textual.widgets import DataTable, OptionList

from console.actions import ACTIONS, BY_ID
from console.app import SymbiConsole
from console.dialogs import ConfirmDialog
from console.model import UNCONFINED_TIER
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
from engine.api import AgentState, ConsoleSettings
from engine.errors import ErrorCode, SymbiError


async def test_number_keys_and_header():
    fake = FakeEngine()
    app = make_fake_app(fake)
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
        fake.add_agent(agent_info("one"))  # created by another client: the header follows the event
        await until(pilot, lambda: dict(app.summary.counts)[AgentState.CREATED] == 1, what="the header count")
        where = str(app.screen.query_one("#engine-where").render())
        assert "embedded" in where and "~/symbi-data" in where
        assert "Created 1" in str(app.screen.query_one("#engine-counts").render())
        assert mutating_calls(fake) == []  # looking around changes nothing


async def test_command_mode_switches_screens():
    app = make_fake_app(FakeEngine())
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


async def test_help_lists_every_registry_action():
    app = make_fake_app(FakeEngine())
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


async def test_palette_offers_every_action():
    fake = FakeEngine()
    app = make_fake_app(fake)
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
        assert fake.called("audit.verify") == []
        await pilot.press("escape", "colon", *"verify", "enter")
        await until(pilot, lambda: isinstance(app.screen, AuditScreen), what="the audit screen")
        await until(pilot, lambda: app.screen.last_report is not None, what="the verdict")
        assert app.screen.last_report.ok
        assert fake.called("audit.verify") == [()]


async def test_readonly_refuses_and_hides_mutations():
    fake = FakeEngine(agents=[agent_info("idle")])
    app = make_fake_app(fake, readonly=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app)
        await pilot.press("2")
        await until(pilot, lambda: app.screen.query_one(DataTable).row_count == 1, what="the row")

        await pilot.press("r")
        await until(pilot, lambda: notified(app, "CONSOLE_001"), what="the read-only refusal")
        assert notified(app, "agents.start changes engine state and this engine connection is read-only")
        assert notified(app, "Hint: reconnect without --readonly")
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
    # refused in the console, before the engine was asked (not even through the read-only wrapper)
    assert fake.called("agents.start") == [] and fake.called("agents.create") == []
    assert mutating_calls(fake) == []


async def test_keymap_from_config_rebinds():
    fake = FakeEngine(agents=[agent_info("quick")])
    app = make_fake_app(fake, keymap={"agents.start": "g", "app.help": "f1"})
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app)
        await pilot.press("2")
        await until(pilot, lambda: app.screen.query_one(DataTable).row_count == 1, what="the row")

        await pilot.press("r")  # no longer bound
        await pilot.pause()
        assert fake.called("agents.start") == []
        assert model_state(app, "quick") is AgentState.CREATED
        await pilot.press("g")
        await until(pilot, lambda: model_state(app, "quick") is AgentState.RUNNING, what="g to start it")
        assert fake.called("agents.start") == [("agent-quick",)]

        await pilot.press("question_mark")
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        table = app.screen.query_one(DataTable)
        assert table.get_row(BY_ID["agents.start"].id)[0] == "g"


async def test_a_bad_keymap_entry_is_a_warning_not_a_crash():
    app = make_fake_app(FakeEngine(), keymap={"agents.fly": "f"})
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app)
        await until(pilot, lambda: notified(app, "keymap: no action with id 'agents.fly'"), what="the warning")
        assert app.is_running


async def test_pause_freezes_the_views():
    fake = FakeEngine()
    app = make_fake_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app)
        await pilot.press("2", "p")
        assert app.paused and app.summary.paused
        assert "PAUSED" in str(app.screen.query_one("#engine-flags").render())
        table = app.screen.query_one(DataTable)
        fake.add_agent(agent_info("late"))
        await until(pilot, lambda: app.model.by_name("late") is not None, what="the model to see it")
        await pilot.pause()
        assert table.row_count == 0  # the view is frozen
        await pilot.press("p")
        await until(pilot, lambda: table.row_count == 1, what="the row after resuming")
        assert "PAUSED" not in str(app.screen.query_one("#engine-flags").render())


async def test_ctrl_t_cycles_the_three_themes():
    app = make_fake_app(FakeEngine())
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app)
        seen = [app.theme]
        for _ in range(3):
            await pilot.press("ctrl+t")
            seen.append(app.theme)
        assert seen == ["symbi-dark", "symbi-light", "symbi-ansi", "symbi-dark"]


async def test_quit_with_a_running_agent_asks_first():
    fake = FakeEngine(agents=[agent_info("beat", AgentState.RUNNING, started_at=1_699_999_990.0)])
    app = make_fake_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app)
        assert model_state(app, "beat") is AgentState.RUNNING

        await pilot.press("q")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the quit question")
        question = str(app.screen.query_one("#dialog-question").render())
        assert "1 agent is active: beat (Running). Quit? It will be stopped cleanly." in question
        await pilot.press("n")  # stay
        await pilot.pause()
        assert app.is_running and fake.is_open and fake.closed_with is None

        await pilot.press("q")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the quit question")
        await pilot.press("y")
        await until(pilot, lambda: fake.closed_with is not None, what="the engine to close")
    assert fake.closed_with == "console quit"  # the app opened the engine, so it closes it (stopping agents)
    assert fake.called("agents.stop") == []  # closing the engine stops them, not the console one by one


async def test_quit_without_active_agents_does_not_ask():
    fake = FakeEngine(agents=[agent_info("idle")])
    app = make_fake_app(fake)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app)
        await pilot.press("q")
        await until(pilot, lambda: fake.closed_with == "console quit", what="the engine to close")
        assert not isinstance(app.screen, ConfirmDialog)


async def test_an_engine_opened_by_the_caller_is_left_open():
    fake = FakeEngine()
    await fake.open()
    app = make_fake_app(fake)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app)
        await pilot.press("q")
        await until(pilot, lambda: not app.is_running, what="the app to exit")
    assert fake.closed_with is None and fake.called("open") == [()]  # not opened twice, not closed


async def test_engine_already_in_use_is_reported_not_raised():
    fake = FakeEngine()
    in_use = SymbiError(
        ErrorCode.RUNTIME_002,
        "the data dir is in use by another engine (pid 4242)",
        offending="/fake/symbi-data",
        hint="stop that engine first, or use another --data-dir",
    )
    fake.fail("open", in_use)
    app = make_fake_app(fake)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
    assert app.return_code == 2
    assert app.startup_error is in_use
    assert not app.engine_ready.is_set() and fake.calls == [("open", ())]


async def test_every_theme_renders_every_screen():
    fake = FakeEngine(agents=[agent_info("one"), agent_info("two", AgentState.RUNNING, started_at=1_699_999_000.0)])
    app = make_fake_app(fake)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app)
        for theme in ("symbi-dark", "symbi-light", "symbi-ansi"):
            app.theme = theme
            for key in ("1", "2", "3", "4", "5", "6"):
                await pilot.press(key)
                await pilot.pause()
                assert app.export_screenshot()


async def test_theme_from_flag_beats_config_and_unknown_falls_back():
    fake = FakeEngine(console=ConsoleSettings(theme="symbi-ansi", refresh_interval=3600.0))
    assert make_fake_app(fake, theme_name="symbi-light").theme == "symbi-light"
    assert make_fake_app(fake).theme == "symbi-ansi"
    assert make_fake_app(fake, theme="symbi-light").theme == "symbi-light"  # the config's theme
    app = make_fake_app(fake, theme_name="neon")
    assert app.theme == "symbi-dark"
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app)
        await pilot.pause()
        assert notified(app, "unknown theme 'neon'")


async def test_settings_come_from_the_engine_when_the_caller_gives_none():
    fake = FakeEngine(console=ConsoleSettings(theme="symbi-light", keymap={"app.help": "f1"}, refresh_interval=3600.0))
    app = SymbiConsole(fake, clock=fake.now, data_dir_label="~/symbi-data")  # no settings: the engine's
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app)
        assert app.theme == "symbi-light" and app.keymap == {"app.help": "f1"}
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)


async def test_unconfined_agents_raise_a_standing_warning():
    """native_isolation = "none" written on purpose: while such an agent runs the header says so, on
    every screen. (Which runs the engine labels unconfined is tested in tests/test_sandbox_native.py.)"""
    beat = agent_info("beat")
    fake = FakeEngine(agents=[beat])
    app = make_fake_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app)
        assert app.summary.unconfined == 0
        fake.roster[beat.id] = dataclasses.replace(beat, tier_used=UNCONFINED_TIER)
        fake.set_state(beat.id, AgentState.RUNNING, "started")
        await until(pilot, lambda: app.summary.unconfined == 1, what="the unconfined count")
        for key in ("2", "4"):
            await pilot.press(key)
            await pilot.pause()
            assert "UNCONFINED 1" in str(app.screen.query_one("#engine-flags").render())
        fake.set_state(beat.id, AgentState.TERMINATED, "stopped")
        await until(pilot, lambda: app.summary.unconfined == 0, what="the warning to clear")
        assert "UNCONFINED" not in str(app.screen.query_one("#engine-flags").render())
