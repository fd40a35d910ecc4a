"""Typed engine events and the in-process event bus.

Publishing never blocks and never fails: each subscriber has a bounded
queue, and when it is full the event is dropped for that subscriber and
counted, so a slow console can never stall the engine.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from dataclasses import dataclass, field
from itertools import islice

from engine.agents.model import AgentId, AgentState


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    at: float = field(default_factory=time.time)


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineStarted(Event):
    data_dir: str
    agents: int


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineStopping(Event):
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentCreated(Event):
    agent_id: AgentId
    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentDeleted(Event):
    agent_id: AgentId
    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentStateChanged(Event):
    agent_id: AgentId
    name: str
    old: AgentState | None
    new: AgentState
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentLog(Event):
    agent_id: AgentId
    name: str
    stream: str  # "stdout", "stderr" or "engine"
    line: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ResourceSample(Event):
    agent_id: AgentId
    name: str
    cpu_percent: float
    rss_bytes: int
    read_bytes: int
    write_bytes: int
    num_procs: int
    memory_limit_mb: int
    cpu_limit_cores: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ResourceViolation(Event):
    agent_id: AgentId
    name: str
    resource: str  # "memory" or "cpu"
    limit: float
    observed: float
    action: str  # "warn", "suspend" or "terminate"


@dataclass(frozen=True, slots=True, kw_only=True)
class MachineSample(Event):
    cpu_percent: float
    memory_used_bytes: int
    memory_total_bytes: int
    allocated_memory_mb: int
    allocated_cpu_cores: float
    total_memory_mb: int
    total_cpu_cores: float


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicyReloaded(Event):
    ok: bool
    path: str
    sha256: str | None
    policies: int
    error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolReviewChanged(Event):
    """An MCP tool's review state changed (``event``: new, changed, analyzed, approved, rejected, ...)."""

    tool_id: str
    state: str
    event: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCallPending(Event):
    """A tool call waits for a human's per-call approval."""

    call_id: str
    tool_id: str
    agent_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCallDecided(Event):
    """A waiting tool call was decided: approved, denied, expired or arguments-changed."""

    call_id: str
    tool_id: str
    outcome: str


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyChangePending(Event):
    """A SchemaPin domain now serves another key; its tools are blocked until the operator decides."""

    domain: str
    old_fingerprint: str
    new_fingerprint: str


class Subscription:
    """A subscriber's bounded queue of events. Iterate it with ``async for``."""

    def __init__(self, bus: EventBus, types: tuple[type[Event], ...], maxsize: int) -> None:
        self._bus = bus
        self._types = types
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue(maxsize=maxsize)
        self.dropped = 0
        self.closed = False

    def wants(self, event: Event) -> bool:
        return not self._types or isinstance(event, self._types)

    def _offer(self, event: Event) -> None:
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1
            self._bus.dropped += 1

    async def get(self) -> Event:
        event = await self._queue.get()
        if event is None:
            raise StopAsyncIteration
        return event

    def get_nowait(self) -> Event | None:
        try:
            event = self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return None
        return event

    def pending(self) -> int:
        return self._queue.qsize()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._bus._remove(self)
        try:
            self._queue.put_nowait(None)
        except asyncio.QueueFull:
            # make room for the end marker: the subscriber is going away anyway
            self._queue.get_nowait()
            self._queue.put_nowait(None)

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        return await self.get()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class EventBus:
    """Fan-out of engine events to any number of bounded subscriptions, and a journal.

    The journal keeps the last ``retain`` events with their positions (the
    n-th event published has position n), so a reader that reconnects can go
    on from the last position it saw (:meth:`read`, :meth:`wait_beyond`) and
    is told how many it missed if it fell further behind than that.
    """

    def __init__(self, retain: int = 10_000) -> None:
        self._subs: list[Subscription] = []
        self.published = 0
        self.dropped = 0
        self.closed = False
        self._journal: deque[Event] = deque(maxlen=max(1, retain))
        self._tick = asyncio.Event()

    def subscribe(self, types: Iterable[type[Event]] = (), maxsize: int = 1000) -> Subscription:
        sub = Subscription(self, tuple(types), maxsize)
        self._subs.append(sub)
        return sub

    def publish(self, event: Event) -> None:
        self.published += 1
        self._journal.append(event)
        for sub in self._subs:
            if sub.wants(event):
                sub._offer(event)
        tick, self._tick = self._tick, asyncio.Event()
        tick.set()

    def read(self, after: int, limit: int = 500) -> tuple[list[Event], int]:
        """Up to ``limit`` journalled events after position ``after``, and how many events after
        ``after`` are no longer kept (0 unless the reader fell behind the journal)."""
        oldest = self.published - len(self._journal) + 1  # the position of the journal's first event
        start = max(after + 1, oldest)
        missed = start - (after + 1)
        if start > self.published:
            return [], missed
        begin = start - oldest
        return list(islice(self._journal, begin, begin + max(1, limit))), missed

    async def batches(
        self, after: int | None = None, types: Iterable[str] = (), limit: int = 500
    ) -> AsyncGenerator[tuple[int, list[Event], int], None]:
        """(position, events, missed) for the events after ``after`` (None: from now on), waiting for
        more when there are none, until the bus closes. ``types`` keeps those event classes (by
        name); ``missed`` counts what the journal no longer had. ``API_002`` if ``after`` is not a
        position of this bus."""
        if after is not None and not 0 <= after <= self.published:
            from engine.errors import ErrorCode, SymbiError

            raise SymbiError(
                ErrorCode.API_002,
                f"event position {after} is not one of this engine run (it has published {self.published})",
                offending=after,
                hint="the engine restarted: reload what you show and stream from now on (after = None)",
            )
        position = self.published if after is None else after
        wanted = frozenset(types)
        while True:
            events, missed = self.read(position, limit)
            if events or missed:
                position += missed + len(events)
                kept = [e for e in events if not wanted or type(e).__name__ in wanted]
                if kept or missed:
                    yield position, kept, missed
                continue
            if not await self.wait_beyond(position):
                return

    async def wait_beyond(self, position: int) -> bool:
        """Wait until an event after ``position`` is published (True) or the bus closes (False)."""
        while self.published <= position:
            if self.closed:
                return False
            await self._tick.wait()
        return True

    def _remove(self, sub: Subscription) -> None:
        try:
            self._subs.remove(sub)
        except ValueError:
            pass

    def close(self) -> None:
        self.closed = True
        for sub in list(self._subs):
            sub.close()
        self._tick.set()

    @property
    def subscribers(self) -> int:
        return len(self._subs)
