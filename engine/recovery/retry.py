"""Retrying with exponential backoff.

:class:`RetryPolicy` says how often and how patiently; :func:`delays` turns it
into the waits between attempts (exponential, jittered by a fraction, capped);
:func:`retry` runs a call under it and, when every attempt failed, raises
``RETRY_001`` chained from the last error. Waiting goes through a
:class:`~engine.clock.Clock`, so tests never sleep.
"""

from __future__ import annotations

import asyncio
import inspect
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from engine.clock import Clock, SystemClock
from engine.errors import ErrorCode, SymbiError

T = TypeVar("T")

OnRetry = Callable[[int, BaseException, float], Any]


@dataclass(frozen=True)
class RetryPolicy:
    """``jitter`` is a fraction: each delay is moved by up to ±jitter of itself."""

    max_attempts: int = 3
    base_delay: float = 0.1
    max_delay: float = 10.0
    multiplier: float = 2.0
    jitter: float = 0.1

    def __post_init__(self) -> None:
        problems: list[tuple[str, object, str]] = []
        if not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            problems.append(("max_attempts", self.max_attempts, "a whole number of at least 1"))
        if not self.base_delay >= 0:
            problems.append(("base_delay", self.base_delay, "seconds, 0 or more"))
        if not self.max_delay >= self.base_delay:
            problems.append(("max_delay", self.max_delay, "seconds, at least base_delay"))
        if not self.multiplier >= 1:
            problems.append(("multiplier", self.multiplier, "a factor of at least 1"))
        if not 0 <= self.jitter <= 1:
            problems.append(("jitter", self.jitter, "a fraction from 0 to 1"))
        if problems:
            name, value, hint = problems[0]
            raise SymbiError(ErrorCode.CONFIG_001, f"invalid retry policy {name}", offending=value, hint=hint)


def delays(policy: RetryPolicy, rng: random.Random | None = None) -> list[float]:
    """The waits before attempts 2..max_attempts."""
    rng = rng or random.Random()
    out = []
    delay = policy.base_delay
    for _ in range(policy.max_attempts - 1):
        base = min(delay, policy.max_delay)
        jittered = base * (1.0 + rng.uniform(-policy.jitter, policy.jitter)) if policy.jitter else base
        out.append(min(policy.max_delay, max(0.0, jittered)))
        delay = base * policy.multiplier
    return out


async def retry(
    fn: Callable[[], Awaitable[T] | T],
    policy: RetryPolicy,
    *,
    clock: Clock | None = None,
    rng: random.Random | None = None,
    retry_on: tuple[type[BaseException], ...] = (Exception,),
    on_retry: OnRetry | None = None,
) -> T:
    """Call ``fn`` (sync or async) until it succeeds or the policy is spent.

    Errors outside ``retry_on`` propagate at once; cancellation is never
    retried. ``on_retry(attempt, error, delay)`` runs before each wait.
    """
    clock = clock or SystemClock()
    waits = delays(policy, rng)
    last: BaseException | None = None
    for attempt in range(1, policy.max_attempts + 1):
        try:
            result = fn()
            if inspect.isawaitable(result):
                result = await result
            return result
        except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):
            raise
        except retry_on as error:
            last = error
            if attempt == policy.max_attempts:
                break
            wait = waits[attempt - 1]
            if on_retry is not None:
                maybe = on_retry(attempt, error, wait)
                if inspect.isawaitable(maybe):
                    await maybe
            await clock.sleep(wait)
    name = getattr(fn, "__qualname__", None) or repr(fn)
    raise SymbiError(
        ErrorCode.RETRY_001,
        f"gave up on {name} after {policy.max_attempts} attempts; last error: {last!r}",
        offending=name,
        hint="the operation kept failing; see the chained error for the cause",
        details={"attempts": policy.max_attempts, "last_error": repr(last)},
    ) from last
