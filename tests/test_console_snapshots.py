"""Screenshots of the dashboard, agents and resources screens at 80x24 and 120x40.

One fixed scenario on a real runtime: a frozen clock (FakeClock), fixed
resource numbers (FixedSampler, see console_fixtures), fixed totals, no
periodic sampling, UTC timestamps and a fixed data-dir label. Three agents:
``heartbeat`` running, ``crasher`` failed (its restart waits on the frozen
clock, so it stays Failed) and ``idle`` never started.

Regenerate after an intended change with
``TEXTUAL_ANIMATIONS=none pytest tests/test_console_snapshots.py --snapshot-update``.
"""

from __future__ import annotations

import time

import pytest
from console_fixtures import FixedSampler, agent_config, console_config, fake_clock, make_app, runtime_of, until

from engine.agents.model import AgentState, Priority

SIZES = {"80x24": (80, 24), "120x40": (120, 40)}
SCREENS = {"dashboard": "1", "agents": "2", "resources": "3"}


@pytest.fixture
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


async def scenario(pilot) -> None:
    app = pilot.app
    await app.engine_ready.wait()
    runtime = runtime_of(app)
    await runtime.create_agent(agent_config("heartbeat", "heartbeat", priority=Priority.HIGH, memory_mb=256))
    await runtime.create_agent(agent_config("crasher", "crasher", priority=Priority.LOW, memory_mb=128, cpu_cores=0.5))
    await runtime.create_agent(agent_config("idle", "hello"))
    await runtime.start_agent("heartbeat")
    await runtime.wait_for_state("heartbeat", AgentState.RUNNING, timeout=20)
    await runtime.start_agent("crasher")
    await runtime.wait_for_state("crasher", AgentState.FAILED, timeout=20)
    for _ in range(3):
        await runtime.sample_once()

    def settled() -> bool:
        beat, crasher = app.model.by_name("heartbeat"), app.model.by_name("crasher")
        if beat is None or crasher is None:
            return False
        usage = app.model.usage.get(beat.id)
        return (
            beat.state is AgentState.RUNNING
            and crasher.state is AgentState.FAILED
            and usage is not None
            and len(usage.cpu_percent) == 3
        )

    await until(pilot, settled, what="the app to catch up with the engine")


def snapshot_app(tmp_path):
    config = console_config(resource={"monitoring_interval": 3600.0}, console={"refresh_interval": 3600.0})
    return make_app(tmp_path, config=config, clock=fake_clock(), sampler=FixedSampler())


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("screen", SCREENS)
def test_screen_snapshot(snap_compare, tmp_path, utc, screen, size):
    app = snapshot_app(tmp_path)
    assert snap_compare(app, press=[SCREENS[screen]], terminal_size=SIZES[size], run_before=scenario)
