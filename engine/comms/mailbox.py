"""A bounded per-agent mailbox with reservations, blocking senders and FIFO fairness.

Senders first *reserve* a slot (waiting for room, or failing at once), then
fill it. Reserving before sealing means a message that was accepted always
has room when it is routed, and a non-blocking sender learns "queue full"
before anything is encrypted or signed. Waiting senders are served in
arrival order, and a new sender never overtakes one already waiting.
Timeouts use the injected :class:`~engine.clock.Clock`, so tests drive them
with a ``FakeClock``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, Generic, TypeVar

from engine.clock import Clock

T = TypeVar("T")


async def wait_for_future(fut: asyncio.Future[Any], timeout: float | None, clock: Clock) -> bool:
    """Wait until ``fut`` is done or ``timeout`` seconds pass on ``clock``; True if it is done.

    ``fut`` itself is left alone on timeout (the caller decides what that means).
    """
    if timeout is None:
        await asyncio.shield(fut)
        return True
    if fut.done():
        return True
    sleeper = asyncio.ensure_future(clock.sleep(timeout))
    try:
        await asyncio.wait((fut, sleeper), return_when=asyncio.FIRST_COMPLETED)
    finally:
        sleeper.cancel()
    return fut.done()


class MailboxClosed(Exception):
    """The mailbox's agent was unregistered while someone waited on it."""


class Mailbox(Generic[T]):
    def __init__(self, capacity: int, clock: Clock) -> None:
        self.capacity = capacity
        self.clock = clock
        self.closed = False
        self._items: deque[T] = deque()
        self._reserved = 0
        self._putters: deque[asyncio.Future[bool]] = deque()
        self._getters: deque[asyncio.Future[None]] = deque()

    def __len__(self) -> int:
        return len(self._items)

    @property
    def reserved(self) -> int:
        return self._reserved

    @property
    def free(self) -> int:
        return self.capacity - len(self._items) - self._reserved

    def _live_putters(self) -> bool:
        while self._putters and self._putters[0].done():
            self._putters.popleft()
        return bool(self._putters)

    # -- senders ---------------------------------------------------------------

    def try_reserve(self) -> bool:
        if self.closed:
            raise MailboxClosed
        if self.free <= 0 or self._live_putters():
            return False
        self._reserved += 1
        return True

    async def reserve(self, timeout: float | None = None) -> bool:
        """Reserve one slot, waiting up to ``timeout`` (None: forever); False on timeout."""
        if self.try_reserve():
            return True
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._putters.append(fut)
        try:
            await wait_for_future(fut, timeout, self.clock)
        except BaseException:
            self._abandon(fut)
            raise
        if not fut.done():
            fut.cancel()
            return False
        if fut.cancelled():
            return False
        error = fut.exception()
        if error is not None:
            raise error
        return True

    def _abandon(self, fut: asyncio.Future[bool]) -> None:
        if fut.done() and not fut.cancelled() and fut.exception() is None:
            self.release()  # granted just as we gave up: hand the slot on
        elif not fut.done():
            fut.cancel()

    def release(self) -> None:
        """Give back a reserved slot that will not be filled."""
        self._reserved -= 1
        self._wake_putters()

    def put_reserved(self, item: T) -> None:
        """Fill a reserved slot."""
        self._reserved -= 1
        self._items.append(item)
        if self._getters:
            self._wake_getter()

    def try_put(self, item: T) -> bool:
        """Put without a reservation if there is room and nobody waits; False otherwise."""
        if self.closed or not self.try_reserve():
            return False
        self.put_reserved(item)
        return True

    def _wake_putters(self) -> None:
        while self._putters and self.free > 0:
            fut = self._putters.popleft()
            if not fut.done():
                self._reserved += 1
                fut.set_result(True)

    # -- the receiver ----------------------------------------------------------

    def get_nowait(self) -> T | None:
        if not self._items:
            return None
        item = self._items.popleft()
        if self._putters:
            self._wake_putters()
        return item

    def unget(self, item: T) -> None:
        """Put an item back at the head (delivery could not complete)."""
        self._items.appendleft(item)

    async def get(self, timeout: float | None = None) -> T | None:
        """The next item, waiting up to ``timeout`` seconds (None: forever); None on timeout."""
        deadline = None if timeout is None else self.clock.monotonic() + timeout
        while True:
            if self._items:
                return self.get_nowait()
            if self.closed:
                raise MailboxClosed
            remaining = None if deadline is None else deadline - self.clock.monotonic()
            if remaining is not None and remaining <= 0:
                return None
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._getters.append(fut)
            try:
                await wait_for_future(fut, remaining, self.clock)
            finally:
                if not fut.done():
                    fut.cancel()

    def _wake_getter(self) -> None:
        while self._getters:
            fut = self._getters.popleft()
            if not fut.done():
                fut.set_result(None)
                return

    # -- closing ---------------------------------------------------------------

    def close(self) -> list[T]:
        """Refuse further use, fail every waiter, and return what was still queued."""
        self.closed = True
        left = list(self._items)
        self._items.clear()
        for putter in self._putters:
            if not putter.done():
                putter.set_exception(MailboxClosed())
        for getter in self._getters:
            if not getter.done():
                getter.set_result(None)
        self._putters.clear()
        self._getters.clear()
        return left
