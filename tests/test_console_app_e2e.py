"""The console shell on the real engine, end to end.

The shell's behaviour (keys, dialogs, read-only refusals, themes) is tested fast over the
scripted fake in ``test_console_app.py``. This test stays on a real runtime because its point
is what the engine does when the console quits: a real agent process that is running when the
operator confirms the quit is stopped cleanly and the runtime closes.
"""

from __future__ import annotations

from console_fixtures import agent_config, make_app, model_state, ready, runtime_of, until

from console.dialogs import ConfirmDialog
from engine.agents.model import AgentState


async def test_quit_with_a_running_agent_stops_it_end_to_end(tmp_path):
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
