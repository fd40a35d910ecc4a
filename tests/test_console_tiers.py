"""Security tiers in the console, over the scripted :class:`FakeEngine`: the create form offers
the tiers the sandbox doctor found working and greys out the others with the reason; the agent
detail shows the tier used, the limits against live usage, the exit reason of a failed agent and
its restart count. (A real crash shown in the detail is ``test_console_tiers_e2e.py``.)"""

from __future__ import annotations

from console_fixtures import make_fake_app, notified, ready, until
from fake_engine import START, FakeEngine, agent_info
from textual.widgets import DataTable, Label, OptionList, Select, Static

from console.screens import AgentDetailScreen, AgentsScreen, CreateAgentDialog
from console.screens.create_agent import tier_choices
from engine.api import AgentConfig, AgentState, ResourceLimits, SecurityTier, TierStatus
from engine.errors import ErrorCode, SymbiError
from engine.events import ResourceSample

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


async def open_form(pilot, app, fake: FakeEngine) -> CreateAgentDialog:
    await ready(app)
    fake.tiers = list(DOCTOR)
    await pilot.press("2", "n")
    await until(pilot, lambda: isinstance(app.screen, CreateAgentDialog), what="the form")
    form = app.screen
    await until(pilot, lambda: len(form.tiers) == 4, what="the tiers")
    assert fake.called("resources.tiers") == [()]
    return form


async def test_create_form_greys_out_unavailable_tiers():
    fake = FakeEngine()
    app = make_fake_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        form = await open_form(pilot, app, fake)
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

        # and a greyed tier cannot be submitted even if set from code: the engine is not asked
        form.query_one("#f-name").value = "tiered"
        select.value = "Tier3"
        await pilot.press("ctrl+s")
        label = form.query_one("#e-tier", Label)
        await until(pilot, lambda: label.has_class("-shown"), what="the tier error")
        assert "security tier Tier3 is not available here" in str(label.render())
        assert isinstance(app.screen, CreateAgentDialog)
        assert app.model.by_name("tiered") is None
        assert fake.called("agents.create") == []


async def test_create_with_a_working_tier():
    fake = FakeEngine()
    app = make_fake_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        form = await open_form(pilot, app, fake)
        form.query_one("#f-name").value = "docker-one"
        form.query_one("#f-tier", Select).value = "Tier1"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, AgentsScreen), what="the form to close")
        [(config,)] = fake.called("agents.create")
        assert config.name == "docker-one" and config.security_tier is SecurityTier.TIER1
        assert fake.agent("docker-one").tier is SecurityTier.TIER1
        table = app.screen.query_one(DataTable)
        assert table.get_cell("agent-docker-one", "tier") == "Tier1"


async def test_a_failing_sandbox_doctor_leaves_native_and_says_why():
    fake = FakeEngine()
    fake.fail("resources.tiers", SymbiError(ErrorCode.SANDBOX_003, "docker did not answer", hint="is dockerd up?"))
    app = make_fake_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app)
        await pilot.press("2", "n")
        await until(pilot, lambda: isinstance(app.screen, CreateAgentDialog), what="the form")
        form = app.screen
        await until(pilot, lambda: len(form.tiers) == 1, what="the fallback tier")
        assert [(c.tier, c.available) for c in form.tiers] == [(SecurityTier.NATIVE, True)]
        assert form.query_one("#f-tier", Select).value == "Native"
        await until(pilot, lambda: notified(app, "SANDBOX_003"), what="the doctor's error")
        assert notified(app, "docker did not answer") and notified(app, "is dockerd up?")


async def test_detail_shows_tier_used_exit_reason_restarts_and_limits():
    config = AgentConfig(
        name="crasher",
        dsl_source="import sys; sys.exit(1)\n",
        resource_limits=ResourceLimits(memory_mb=128, cpu_cores=1.0),
    )
    failed = agent_info(
        "crasher",
        AgentState.FAILED,
        config=config,
        started_at=START - 20,
        finished_at=START - 19,
        restart_count=3,
        exit_code=1,
        last_error="process exited with code 1",
        tier_used="native+bwrap",
    )
    fake = FakeEngine(agents=[failed])
    app = make_fake_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app)
        await pilot.press("2")
        await until(pilot, lambda: app.screen.query_one(DataTable).row_count == 1, what="the row")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, AgentDetailScreen), what="the detail screen")
        detail = app.screen
        await until(pilot, lambda: "exit reason" in str(detail.query_one("#detail-status", Static).render()))
        status = str(detail.query_one("#detail-status", Static).render())
        config_text = str(detail.query_one("#detail-config", Static).render())
        assert "Failed" in status and "restarts 3" in status
        assert "exit code 1" in status and "exit reason process exited with code 1" in status
        assert "tier Native · ran as native+bwrap" in config_text
        assert "128 MB · 1 cores" in config_text
        assert detail.query_one("#detail-run").text == "-"  # not running: no run time against the limit
        assert detail.query_one("#detail-cpu").text == "-" and detail.query_one("#detail-mem").text == "-"


async def test_a_running_agents_last_error_is_not_an_exit_reason():
    running = agent_info(
        "flaky",
        AgentState.RUNNING,
        started_at=START - 5,
        restart_count=1,
        last_error="crashed once",
        tier_used="native",
    )
    fake = FakeEngine(agents=[running])
    app = make_fake_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app)
        await pilot.press("2", "enter")
        await until(pilot, lambda: isinstance(app.screen, AgentDetailScreen), what="the detail screen")
        status = app.screen.query_one("#detail-status", Static)
        await until(pilot, lambda: "last error crashed once" in str(status.render()), what="the last error")
        assert "exit reason" not in str(status.render()) and "restarts 1" in str(status.render())


async def test_detail_gauges_show_run_time_and_usage_against_the_limits():
    beat = agent_info("beat", AgentState.RUNNING, started_at=START - 125)
    fake = FakeEngine(agents=[beat])
    app = make_fake_app(fake)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app)
        await pilot.press("2")
        await until(pilot, lambda: app.model.by_name("beat").state is AgentState.RUNNING, what="Running")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, AgentDetailScreen), what="the detail screen")
        detail = app.screen
        await until(pilot, lambda: detail.query_one("#detail-run").text.endswith("of 1h00m"), what="the run gauge")
        assert detail.query_one("#detail-run").text == "2m05s of 1h00m"
        assert detail.query_one("#detail-gauges").has_class("-narrow")  # stacked on 80 columns

        # a usage sample from the engine fills the CPU and memory gauges against the limits
        fake.emit(
            ResourceSample(
                agent_id=beat.id,
                name="beat",
                cpu_percent=12.5,
                rss_bytes=48 * 1_048_576,
                read_bytes=0,
                write_bytes=0,
                num_procs=1,
                memory_limit_mb=256,
                cpu_limit_cores=1.0,
                at=START,
            )
        )
        await until(pilot, lambda: detail.query_one("#detail-mem").text == "48.0 of 256 MB", what="the memory gauge")
        assert detail.query_one("#detail-cpu").text == "12.5% of 100%"
