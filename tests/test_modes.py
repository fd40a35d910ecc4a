"""Execution modes: Scheduled agents run on their cron expression (with a
fake clock, so no test waits a minute), and cron parsing."""

from __future__ import annotations

import asyncio
import time

import pytest

from engine.agents.cron import CronExpr
from engine.agents.model import AgentState, ExecutionMode
from engine.clock import FakeClock
from engine.errors import ErrorCode, SymbiError
from engine.runtime import Runtime
from tests.helpers import agent, fast_config

S = AgentState


def ts(y, mo, d, h, mi):
    return time.mktime((y, mo, d, h, mi, 0, 0, 0, -1))


@pytest.mark.parametrize(
    "expr,now,expected",
    [
        ("*/5 * * * *", ts(2026, 11, 27, 4, 7), ts(2026, 11, 27, 4, 10)),
        ("0 9 * * mon-fri", ts(2026, 11, 28, 10, 0), ts(2026, 11, 30, 9, 0)),  # Saturday -> Monday
        ("30 2 1 * *", ts(2026, 11, 27, 4, 7), ts(2026, 12, 1, 2, 30)),
        ("0 0 29 2 *", ts(2026, 3, 1, 0, 0), ts(2028, 2, 29, 0, 0)),
        ("0 12 * * 7", ts(2026, 11, 27, 4, 7), ts(2026, 11, 29, 12, 0)),  # 7 is Sunday
        ("0 0 1 * mon", ts(2026, 11, 27, 4, 7), ts(2026, 11, 30, 0, 0)),  # dom OR dow
    ],
)
def test_cron_next_run(expr, now, expected):
    assert CronExpr.parse(expr).next_after(now) == expected


@pytest.mark.parametrize("expr", ["* * * *", "61 * * * *", "*/0 * * * *", "a b c d e", "5-1 * * * *", "0 0 30 2 *"])
def test_bad_cron_is_agent_004(expr):
    with pytest.raises(SymbiError) as err:
        CronExpr.parse(expr).next_after(ts(2026, 1, 1, 0, 0))
    assert err.value.code is ErrorCode.AGENT_004
    assert err.value.offending == expr


async def test_a_scheduled_agent_waits_runs_and_rearms(tmp_path):
    clock = FakeClock(start=ts(2026, 11, 27, 4, 7) + 10)
    async with Runtime.open(fast_config(), tmp_path, clock=clock) as rt:
        await rt.create_agent(agent("cron", "hello", execution_mode=ExecutionMode.SCHEDULED, schedule="*/5 * * * *"))
        info = await rt.start_agent("cron")
        info = await rt.get_agent("cron")
        assert info.state is S.WAITING
        assert info.next_run == ts(2026, 11, 27, 4, 10)
        clock.advance(60)  # not due yet
        await asyncio.sleep(0.05)
        assert (await rt.get_agent("cron")).state is S.WAITING
        clock.advance(180)  # 04:10:10, due
        await rt.wait_for_state("cron", S.RUNNING, timeout=10)
        info = await rt.wait_for_state("cron", S.WAITING, timeout=20)
        assert info.next_run == ts(2026, 11, 27, 4, 15)
        assert info.exit_code == 0
        states = [c.state for c in await rt.agent_history("cron")]
        assert states[-4:] == [S.WAITING, S.READY, S.RUNNING, S.WAITING]
        stopped = await rt.stop_agent("cron")
        assert stopped.state is S.TERMINATED and stopped.next_run is None


async def test_scheduled_without_schedule_is_refused(tmp_path):
    async with Runtime.open(fast_config(), tmp_path) as rt:
        with pytest.raises(SymbiError) as err:
            await rt.create_agent(agent("cron", execution_mode=ExecutionMode.SCHEDULED))
        assert "needs a schedule" in err.value.message
