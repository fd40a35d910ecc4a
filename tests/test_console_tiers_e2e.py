"""The agent detail over a real crash, end to end.

How the create form offers tiers and what the detail shows are tested fast over the scripted
fake in ``test_console_tiers.py``. This test stays on a real runtime because its point is a real
crash: a real agent process exits with code 1, the engine records the exit reason, the restart
count and the sandbox that ran it, and the detail screen shows what the engine recorded.
"""

from __future__ import annotations

from console_fixtures import agent_config, fake_clock, make_app, ready, runtime_of, until
from textual.widgets import DataTable, Static

from console.screens import AgentDetailScreen
from engine.agents.model import AgentState


async def test_a_crashed_agent_shows_its_exit_reason_restarts_and_tier_end_to_end(tmp_path):
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
