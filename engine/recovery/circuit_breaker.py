"""The circuit breaker: stop calling something that keeps failing.

Closed, it counts failures inside a sliding ``window``; at
``failure_threshold`` it opens and refuses calls with ``CIRCUIT_001``. After
``reset_timeout`` it goes half-open and lets ``half_open_max_calls`` trial
calls through: a success closes it, a failure opens it again. State moves
are lazy (decided when someone asks), so no timer runs, and the
:class:`~engine.clock.Clock` makes all of it testable without sleeping.
"""

from __future__ import annotations

import asyncio
import inspect
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from engine.clock import Clock, SystemClock
from engine.errors import ErrorCode, SymbiError


class CircuitState(str, Enum):
    CLOSED = "Closed"
    OPEN = "Open"
    HALF_OPEN = "HalfOpen"


@dataclass(frozen=True)
class CircuitStats:
    name: str
    state: CircuitState
    failures_in_window: int
    total_successes: int
    total_failures: int
    total_rejected: int
    times_opened: int
    retry_in: float  # seconds until a trial call is allowed; 0 unless open


StateChange = Callable[[str, CircuitState, CircuitState], None]


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int = 5,
        window: float = 60.0,
        reset_timeout: float = 30.0,
        half_open_max_calls: int = 1,
        clock: Clock | None = None,
        on_state_change: StateChange | None = None,
    ) -> None:
        if failure_threshold < 1 or half_open_max_calls < 1 or window <= 0 or reset_timeout < 0:
            raise SymbiError(
                ErrorCode.CONFIG_001,
                f"invalid circuit breaker settings for {name}",
                offending={"failure_threshold": failure_threshold, "window": window, "reset_timeout": reset_timeout},
                hint="threshold and half-open calls at least 1, window above 0, reset timeout 0 or more",
            )
        self.name = name
        self.failure_threshold = failure_threshold
        self.window = window
        self.reset_timeout = reset_timeout
        self.half_open_max_calls = half_open_max_calls
        self._clock = clock or SystemClock()
        self._on_state_change = on_state_change
        self._state = CircuitState.CLOSED
        self._failures: deque[float] = deque()
        self._opened_at = 0.0
        self._trials = 0  # half-open calls let through and not yet resolved
        self._successes = self._failures_total = self._rejected = self._opened = 0

    @property
    def state(self) -> CircuitState:
        if self._state is CircuitState.OPEN and self._clock.monotonic() - self._opened_at >= self.reset_timeout:
            self._trials = 0
            self._move(CircuitState.HALF_OPEN)
        return self._state

    def allow(self) -> bool:
        """May a call go through now? In half-open this takes one of the trial slots."""
        if self._state is CircuitState.CLOSED:
            return True
        state = self.state
        if state is CircuitState.HALF_OPEN and self._trials < self.half_open_max_calls:
            self._trials += 1
            return True
        self._rejected += 1
        return False

    def record_success(self) -> None:
        self._successes += 1
        if self.state is CircuitState.HALF_OPEN:
            self._failures.clear()
            self._move(CircuitState.CLOSED)

    def record_failure(self) -> None:
        self._failures_total += 1
        now = self._clock.monotonic()
        state = self.state
        if state is CircuitState.HALF_OPEN:
            self._open(now)
        elif state is CircuitState.CLOSED:
            self._failures.append(now)
            self._prune(now)
            if len(self._failures) >= self.failure_threshold:
                self._open(now)

    def retry_in(self) -> float:
        """Seconds until the breaker lets a trial call through (0 unless open)."""
        if self.state is not CircuitState.OPEN:
            return 0.0
        return max(0.0, self._opened_at + self.reset_timeout - self._clock.monotonic())

    def reset(self) -> None:
        """Close the breaker by hand and forget past failures."""
        self._failures.clear()
        self._trials = 0
        self._move(CircuitState.CLOSED)

    async def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call ``fn`` (sync or async) through the breaker."""
        if not self.allow():
            raise SymbiError(
                ErrorCode.CIRCUIT_001,
                f"circuit breaker '{self.name}' is open; retry in {self.retry_in():.1f} s",
                offending=self.name,
                hint="the call kept failing; wait for the breaker to let a trial call through",
                details={"retry_in": self.retry_in()},
            )
        try:
            result = fn(*args, **kwargs)
            if inspect.isawaitable(result):
                result = await result
        except asyncio.CancelledError:
            self._release_trial()
            raise
        except Exception:
            self.record_failure()
            raise
        self.record_success()
        return result

    def stats(self) -> CircuitStats:
        state = self.state
        self._prune(self._clock.monotonic())
        return CircuitStats(
            name=self.name,
            state=state,
            failures_in_window=len(self._failures),
            total_successes=self._successes,
            total_failures=self._failures_total,
            total_rejected=self._rejected,
            times_opened=self._opened,
            retry_in=self.retry_in(),
        )

    def _release_trial(self) -> None:
        if self._state is CircuitState.HALF_OPEN and self._trials > 0:
            self._trials -= 1

    def _prune(self, now: float) -> None:
        horizon = now - self.window
        failures = self._failures
        while failures and failures[0] <= horizon:
            failures.popleft()

    def _open(self, now: float) -> None:
        self._opened_at = now
        self._opened += 1
        self._failures.clear()
        self._move(CircuitState.OPEN)

    def _move(self, new: CircuitState) -> None:
        old, self._state = self._state, new
        if old is not new and self._on_state_change is not None:
            self._on_state_change(self.name, old, new)
