"""Circuit breaker and retry, driven by a FakeClock so nothing sleeps."""

from __future__ import annotations

import asyncio
import random

import pytest

from engine.clock import FakeClock
from engine.errors import ErrorCode, SymbiError
from engine.recovery import CircuitBreaker, CircuitState, RetryPolicy, delays, retry


def breaker(clock: FakeClock, **kwargs) -> tuple[CircuitBreaker, list[tuple[str, str]]]:
    changes: list[tuple[str, str]] = []
    settings = {"failure_threshold": 3, "window": 10.0, "reset_timeout": 5.0, **kwargs}
    b = CircuitBreaker(
        "mcp:weather", clock=clock, on_state_change=lambda n, o, s: changes.append((o.value, s.value)), **settings
    )
    return b, changes


def test_breaker_opens_at_the_threshold_inside_the_window():
    clock = FakeClock()
    b, changes = breaker(clock)
    b.record_failure()
    b.record_failure()
    assert b.state is CircuitState.CLOSED and b.allow()
    b.record_failure()
    assert b.state is CircuitState.OPEN
    assert not b.allow()
    assert changes == [("Closed", "Open")]
    assert b.stats().times_opened == 1 and b.stats().total_rejected == 1


def test_failures_outside_the_window_do_not_count():
    clock = FakeClock()
    b, _ = breaker(clock)
    b.record_failure()
    b.record_failure()
    clock.advance(11)  # both fall out of the 10 s window
    b.record_failure()
    b.record_failure()
    assert b.state is CircuitState.CLOSED
    assert b.stats().failures_in_window == 2
    b.record_failure()
    assert b.state is CircuitState.OPEN


def test_half_open_after_reset_timeout_then_success_closes():
    clock = FakeClock()
    b, changes = breaker(clock, half_open_max_calls=1)
    for _ in range(3):
        b.record_failure()
    clock.advance(4.9)
    assert b.state is CircuitState.OPEN and b.retry_in() == pytest.approx(0.1)
    clock.advance(0.1)
    assert b.state is CircuitState.HALF_OPEN
    assert b.allow() is True  # the one trial call
    assert b.allow() is False  # no second trial while the first is out
    b.record_success()
    assert b.state is CircuitState.CLOSED and b.allow()
    assert changes == [("Closed", "Open"), ("Open", "HalfOpen"), ("HalfOpen", "Closed")]


def test_half_open_failure_reopens_for_another_full_timeout():
    clock = FakeClock()
    b, changes = breaker(clock)
    for _ in range(3):
        b.record_failure()
    clock.advance(5)
    assert b.allow()
    b.record_failure()
    assert b.state is CircuitState.OPEN
    assert b.retry_in() == pytest.approx(5.0)
    clock.advance(5)
    assert b.state is CircuitState.HALF_OPEN
    assert changes[-2:] == [("HalfOpen", "Open"), ("Open", "HalfOpen")]


def test_half_open_lets_the_configured_number_of_trials_through():
    clock = FakeClock()
    b, _ = breaker(clock, half_open_max_calls=2)
    for _ in range(3):
        b.record_failure()
    clock.advance(5)
    assert [b.allow() for _ in range(3)] == [True, True, False]


async def test_call_refuses_when_open_naming_breaker_and_wait():
    clock = FakeClock()
    b, _ = breaker(clock)

    async def failing():
        raise ConnectionError("down")

    for _ in range(3):
        with pytest.raises(ConnectionError):
            await b.call(failing)
    clock.advance(2)
    with pytest.raises(SymbiError) as err:
        await b.call(failing)
    assert err.value.code is ErrorCode.CIRCUIT_001
    assert "mcp:weather" in err.value.message and "retry in 3.0 s" in err.value.message


async def test_call_passes_results_and_closes_after_a_good_trial():
    clock = FakeClock()
    b, _ = breaker(clock)
    assert await b.call(lambda x: x * 2, 21) == 42  # sync callables work too
    for _ in range(3):
        b.record_failure()
    clock.advance(5)

    async def ok(value):
        return value

    assert await b.call(ok, "fine") == "fine"
    assert b.state is CircuitState.CLOSED


async def test_a_cancelled_trial_gives_its_slot_back():
    clock = FakeClock()
    b, _ = breaker(clock)
    for _ in range(3):
        b.record_failure()
    clock.advance(5)
    started = asyncio.Event()

    async def hang():
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(b.call(hang))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert b.state is CircuitState.HALF_OPEN
    assert b.allow()  # the trial slot is free again


def test_bad_breaker_settings_are_refused():
    with pytest.raises(SymbiError) as err:
        CircuitBreaker("x", failure_threshold=0)
    assert err.value.code is ErrorCode.CONFIG_001


# -- retry -------------------------------------------------------------


def test_delays_are_exponential_and_capped_without_jitter():
    policy = RetryPolicy(max_attempts=7, base_delay=0.5, max_delay=4.0, multiplier=2.0, jitter=0.0)
    assert delays(policy, random.Random(1)) == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_jitter_stays_within_its_fraction_and_under_the_cap():
    policy = RetryPolicy(max_attempts=8, base_delay=1.0, max_delay=20.0, multiplier=2.0, jitter=0.1)
    for seed in range(50):
        ds = delays(policy, random.Random(seed))
        assert len(ds) == 7
        for i, d in enumerate(ds):
            nominal = min(20.0, 2.0**i)
            assert nominal * 0.9 <= d <= min(20.0, nominal * 1.1)
    assert delays(policy, random.Random(3)) == delays(policy, random.Random(3))  # seeded: reproducible


async def test_retry_succeeds_on_the_third_try_after_two_waits():
    clock = FakeClock()
    calls = []
    seen = []

    async def flaky():
        calls.append(clock.monotonic())
        if len(calls) < 3:
            raise TimeoutError(f"attempt {len(calls)}")
        return "ok"

    policy = RetryPolicy(max_attempts=3, base_delay=1.0, multiplier=3.0, jitter=0.0)
    task = asyncio.create_task(retry(flaky, policy, clock=clock, on_retry=lambda n, e, d: seen.append((n, str(e), d))))
    for _ in range(2):
        while clock.pending_sleepers == 0:
            await asyncio.sleep(0)
        clock.advance(clock.slept[-1])
    assert await task == "ok"
    assert clock.slept == [1.0, 3.0]
    assert calls == [0.0, 1.0, 4.0]
    assert seen == [(1, "attempt 1", 1.0), (2, "attempt 2", 3.0)]


async def test_retry_gives_up_with_retry_001_chained_from_the_last_error():
    clock = FakeClock()
    attempts = 0

    def always_fails():
        nonlocal attempts
        attempts += 1
        raise ConnectionError(f"refused #{attempts}")

    policy = RetryPolicy(max_attempts=4, base_delay=0.0, jitter=0.0)
    with pytest.raises(SymbiError) as err:
        await retry(always_fails, policy, clock=clock)
    assert attempts == 4
    assert err.value.code is ErrorCode.RETRY_001
    assert "4 attempts" in err.value.message and "refused #4" in err.value.message
    assert isinstance(err.value.__cause__, ConnectionError)


async def test_errors_outside_retry_on_propagate_at_once():
    clock = FakeClock()
    attempts = 0

    async def broken():
        nonlocal attempts
        attempts += 1
        raise ValueError("bad input")

    with pytest.raises(ValueError):
        await retry(broken, RetryPolicy(max_attempts=5), clock=clock, retry_on=(ConnectionError,))
    assert attempts == 1 and clock.slept == []


@pytest.mark.parametrize(
    "kwargs",
    [{"max_attempts": 0}, {"base_delay": -1}, {"max_delay": 0.01, "base_delay": 1}, {"multiplier": 0.5}, {"jitter": 2}],
)
def test_bad_retry_policy_is_refused(kwargs):
    with pytest.raises(SymbiError) as err:
        RetryPolicy(**kwargs)
    assert err.value.code is ErrorCode.CONFIG_001
