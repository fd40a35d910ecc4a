"""Security tiers in the console: the create form offers the tiers the sandbox doctor found
working and greys out the others with the reason; the agent detail shows the tier used,
the limits against live usage, the exit reason of a failed agent and its restart count."""

from __future__ import annotations

from console_fixtures import agent_config, fake_clock, make_app, ready, runtime_of, until
from textual.widgets import DataTable, Label, OptionList, Select, Static

from console.screens import AgentDetailScreen, AgentsScreen, CreateAgentDialog
from console.screens.create_agent import tier_choices
from engine.agents.model import AgentState, SecurityTier
from engine.sandbox.registry import TierStatus

DOCTOR = [
    TierStatus(SecurityTier.NATIVE, "native", True, "own session, rlimits"),
    TierStatus(SecurityTier.NATIVE, "native+bwrap", False, "bwrap not found", "apt-get install bubblewrap"),
    TierStatus(SecurityTier.TIER1, "docker", True, "Docker 24.0"),
    TierStatus(SecurityTier.TIER2, "gvisor", False, "runtime runsc is not registered with dockerd", "register runsc"),
    TierStatus(
        SecurityTier.TIER3,
        "firecracker",
        False,
        "firecracker binary 'firecracker' not found; no guest kernel configured",
        "install a firecracker release binary",
    ),
]


def test_tier_choices_from_the_doctor():
    choices = tier_choices(DOCTOR)
    assert [(c.tier, c.available) for c in choices] == [
        (SecurityTier.NATIVE, True),
        (SecurityTier.TIER1, True),
        (SecurityTier.TIER2, False),
        (SecurityTier.TIER3, False),
    ]
    assert choices[0].label == "Native — native"
    assert choices[1].label == "Tier1 — docker"
    assert choices[3].label == "Tier3 — unavailable: firecracker binary 'firecracker' not found"
    assert choices[3].note.endswith("Fix: install a firecracker release binary")


async def open_form(pilot, app) -> CreateAgentDialog:
    await ready(app)

    async def doctor() -> list[TierStatus]:
        return DOCTOR

    runtime_of(app).tiers = doctor
    await pilot.press("2", "n")
    await until(pilot, lambda: isinstance(app.screen, CreateAgentDialog), what="the form")
    form = app.screen
    await until(pilot, lambda: len(form.tiers) == 4, what="the tiers")
    return form


async def test_create_form_greys_out_unavailable_tiers(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        form = await open_form(pilot, app)
        select = form.query_one("#f-tier", Select)
        overlay = select.query_one(OptionList)
        labels = [str(overlay.get_option_at_index(i).prompt) for i in range(overlay.option_count)]
        assert labels[2] == "Tier2 — unavailable: runtime runsc is not registered with dockerd"
        assert [overlay.get_option_at_index(i).disabled for i in range(4)] == [False, False, True, True]
        assert select.value == "Native"
        note = str(form.query_one("#tier-note", Static).render())
        assert "Tier3: firecracker binary 'firecracker' not found" in note and "Fix: register runsc" in note

        # with the keyboard, the list skips the greyed tiers
        select.focus()
        await pilot.press("enter", "down", "down", "down", "enter")
        await pilot.pause()
        assert select.value in ("Native", "Tier1")

        # and a greyed tier cannot be submitted even if set from code
        form.query_one("#f-name").value = "tiered"
        select.value = "Tier3"
        await pilot.press("ctrl+s")
        label = form.query_one("#e-tier", Label)
        await until(pilot, lambda: label.has_class("-shown"), what="the tier error")
        assert "security tier Tier3 is not available here" in str(label.render())
        assert isinstance(app.screen, CreateAgentDialog)
        assert app.model.by_name("tiered") is None


async def test_create_with_a_working_tier(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        form = await open_form(pilot, app)
        form.query_one("#f-name").value = "native-one"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, AgentsScreen), what="the form to close")
        info = await runtime_of(app).get_agent("native-one")
        assert info.config.security_tier is SecurityTier.NATIVE


async def test_detail_shows_tier_used_exit_reason_restarts_and_limits(tmp_path):
    app = make_app(tmp_path, clock=fake_clock())  # a frozen clock: the crasher's restart waits
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app)
        runtime = runtime_of(app)
        await runtime.create_agent(agent_config("crasher", "crasher", memory_mb=128))
        await runtime.start_agent("crasher")
        failed = await runtime.wait_for_state("crasher", AgentState.FAILED, timeout=20)
        await pilot.press("2")
        await until(pilot, lambda: app.screen.query_one(DataTable).row_count == 1, what="the row")
        await until(pilot, lambda: app.model.by_name("crasher").state is AgentState.FAILED, what="Failed")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, AgentDetailScreen), what="the detail screen")
        detail = app.screen
        await until(pilot, lambda: "exit reason" in str(detail.query_one("#detail-status", Static).render()))
        status = str(detail.query_one("#detail-status", Static).render())
        config = str(detail.query_one("#detail-config", Static).render())
        assert f"restarts {failed.restart_count}" in status
        assert "exit code 1" in status and failed.last_error in status
        assert failed.tier_used and f"tier Native · ran as {failed.tier_used}" in config
        assert "128 MB" in config
        assert detail.query_one("#detail-run").text == "-"  # not running: no run time against the limit


async def test_detail_gauges_show_run_time_against_the_timeout(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app)
        runtime = runtime_of(app)
        await runtime.create_agent(agent_config("beat", "heartbeat"))
        await runtime.start_agent("beat")
        await runtime.wait_for_state("beat", AgentState.RUNNING, timeout=20)
        await pilot.press("2")
        await until(pilot, lambda: app.model.by_name("beat").state is AgentState.RUNNING, what="Running")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, AgentDetailScreen), what="the detail screen")
        detail = app.screen
        await until(pilot, lambda: detail.query_one("#detail-run").text.endswith("of 1h00m"), what="the run gauge")
        assert detail.query_one("#detail-gauges").has_class("-narrow")  # stacked on 80 columns
