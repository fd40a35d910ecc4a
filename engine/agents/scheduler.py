"""The priority scheduler: which queued task runs next, and in which pool.

The scheduler owns the run queue and the pool slots. It does not run anything
itself: when a task is picked it calls ``dispatch(task, pool_name)``
synchronously and the runtime starts its own coroutine. It does not own
resources either: ``admit(task)`` is the resource manager's allocation
attempt, and a refusal simply leaves the task queued.

Dispatch is event-driven. ``submit``, ``complete`` and ``notify`` set an
:class:`asyncio.Event` that wakes the dispatcher coroutine, which drains as
many tasks as slots and admission allow. No timer ticks: nothing the
scheduler decides can change with time alone between two events.

Ordering: FIFO within a priority; across priorities the head with the highest
*effective* priority wins, where ``effective = base + floor(wait /
aging_interval)``, so a Low task is never starved. Ties go to the older task.
One deque per priority level keeps a pick at O(levels).

Admission skip-over: a task refused by ``admit`` stays at the front of its
level and the pass tries the next candidates, so one big task does not block
many small ones. Once a task has been refused for longer than
``aging_interval`` it becomes a barrier: the pass stops at it, so the small
tasks behind it can no longer take the resources it is waiting for.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from engine.agents.model import Priority
from engine.clock import Clock
from engine.errors import ErrorCode, SymbiError

log = logging.getLogger(__name__)

LEVELS = tuple(sorted(Priority))  # LOW .. CRITICAL; index == int(priority)


class LoadBalancingStrategy(str, Enum):
    ROUND_ROBIN = "RoundRobin"
    LEAST_CONNECTIONS = "LeastConnections"
    RESOURCE_BASED = "ResourceBased"
    WEIGHTED_ROUND_ROBIN = "WeightedRoundRobin"

    @classmethod
    def parse(cls, value: Any) -> LoadBalancingStrategy:
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            wanted = value.strip().replace("_", "").replace("-", "").lower()
            for member in cls:
                if wanted in (member.value.lower(), member.name.replace("_", "").lower()):
                    return member
        raise SymbiError(
            ErrorCode.SCHED_001,
            "unknown load balancing strategy",
            offending=value,
            hint=f"use one of {', '.join(m.value for m in cls)}",
        )


@dataclass
class PoolSpec:
    name: str
    capacity: int
    weight: int = 1


@dataclass(slots=True)
class Task:
    """A unit of work waiting for (or holding) a slot.

    ``seq`` is the submission order (the tie-breaker); ``blocked_since`` is
    when admission first refused the task, None while it has not been refused.
    """

    task_id: str
    priority: Priority
    submitted_at: float
    payload: Any = None
    cpu_cores: float = 0.0
    memory_mb: int = 0
    seq: int = field(default=0, repr=False)
    blocked_since: float | None = field(default=None, repr=False)


@dataclass(frozen=True)
class SchedulerStats:
    queued: int
    running: int
    dispatched_total: int
    rejected_admission_total: int
    cancelled_total: int
    dispatch_errors_total: int
    max_concurrent: int
    pool_running: dict[str, int]
    pool_capacity: dict[str, int]
    queued_by_priority: dict[str, int]


class Scheduler:
    """Priority run queue with aging, admission control and pool balancing."""

    def __init__(
        self,
        *,
        max_concurrent: int,
        pools: list[PoolSpec],
        strategy: LoadBalancingStrategy,
        aging_interval: float,
        clock: Clock,
        dispatch: Callable[[Task, str], None],
        admit: Callable[[Task], bool] | None = None,
        max_queue: int = 10000,
        skip_limit: int = 64,
        batch: int = 1000,
    ) -> None:
        _check_config(max_concurrent, pools, aging_interval, max_queue)
        self._max_concurrent = max_concurrent
        self._pools = [PoolSpec(p.name, p.capacity, p.weight) for p in pools]
        self._strategy = LoadBalancingStrategy.parse(strategy)
        self._aging = float(aging_interval)
        self._clock = clock
        self._dispatch = dispatch
        self._admit = admit
        self._max_queue = max_queue
        self._skip_limit = max(1, skip_limit)
        self._batch = max(1, batch)

        self._levels: list[deque[Task]] = [deque() for _ in LEVELS]
        self._level_count = [0] * len(LEVELS)
        self._queued: dict[str, Task] = {}
        self._running: dict[str, int] = {}  # task id -> pool index
        self._pool_running = [0] * len(self._pools)
        # Every running task holds one pool slot, so this bounds both limits at once.
        self._slots = min(max_concurrent, sum(p.capacity for p in self._pools))
        self._rr_next = 0
        self._wrr_current = [0] * len(self._pools)
        self._seq = 0
        self._dispatched = 0
        self._rejected = 0
        self._cancelled = 0
        self._dispatch_errors = 0
        self._draining = False
        self._closed = False
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None

    # -- queue -----------------------------------------------------------

    def submit(
        self,
        task_id: str,
        priority: Priority | str | int,
        payload: Any = None,
        *,
        cpu_cores: float = 0.0,
        memory_mb: int = 0,
    ) -> Task:
        if self._closed:
            raise SymbiError(ErrorCode.SCHED_001, "scheduler is closed", offending=task_id)
        if task_id in self._queued or task_id in self._running:
            raise SymbiError(
                ErrorCode.SCHED_001,
                "task is already scheduled",
                offending=task_id,
                hint="wait for it to complete or cancel it first",
            )
        if len(self._queued) >= self._max_queue:
            raise SymbiError(
                ErrorCode.SCHED_002,
                f"scheduler queue is full ({self._max_queue} tasks waiting)",
                offending=task_id,
                hint="wait for running tasks to finish, or raise the queue size",
            )
        prio = Priority.parse(priority)
        self._seq += 1
        task = Task(task_id, prio, self._clock.monotonic(), payload, cpu_cores, memory_mb, self._seq)
        self._queued[task_id] = task
        self._levels[prio].append(task)
        self._level_count[prio] += 1
        self._wake.set()
        return task

    def cancel(self, task_id: str) -> bool:
        """Remove a queued task; False if it is not queued (running ones are not touched)."""
        task = self._queued.pop(task_id, None)
        if task is None:
            return False
        self._level_count[task.priority] -= 1
        self._cancelled += 1
        # The deque entry is dropped lazily when it reaches the head.
        return True

    def complete(self, task_id: str) -> None:
        """A running task finished: free its pool slot and wake the dispatcher."""
        index = self._running.pop(task_id, None)
        if index is None:
            raise SymbiError(ErrorCode.SCHED_001, "task is not running", offending=task_id)
        self._pool_running[index] -= 1
        self._wake.set()

    def notify(self) -> None:
        """Resources changed: retry admission of queued tasks."""
        self._wake.set()

    def is_queued(self, task_id: str) -> bool:
        return task_id in self._queued

    def queued(self) -> list[Task]:
        """Queued tasks in the order they would be offered for dispatch now."""
        now = self._clock.monotonic()
        return sorted(self._queued.values(), key=lambda t: (-self._effective(t, now), t.seq))

    def running(self) -> dict[str, str]:
        return {task_id: self._pools[i].name for task_id, i in self._running.items()}

    def stats(self) -> SchedulerStats:
        return SchedulerStats(
            queued=len(self._queued),
            running=len(self._running),
            dispatched_total=self._dispatched,
            rejected_admission_total=self._rejected,
            cancelled_total=self._cancelled,
            dispatch_errors_total=self._dispatch_errors,
            max_concurrent=self._max_concurrent,
            pool_running={p.name: n for p, n in zip(self._pools, self._pool_running, strict=True)},
            pool_capacity={p.name: p.capacity for p in self._pools},
            queued_by_priority={p.label: self._level_count[p] for p in LEVELS},
        )

    @property
    def strategy(self) -> LoadBalancingStrategy:
        return self._strategy

    # -- dispatch --------------------------------------------------------

    def dispatch_ready(self, limit: int | None = None) -> int:
        """One drain pass: dispatch as many tasks as slots and admission allow.

        Returns how many were dispatched. Re-entrant calls (from inside a
        ``dispatch`` callback) only wake the dispatcher.
        """
        if self._draining:
            self._wake.set()
            return 0
        self._draining = True
        refused: list[Task] = []
        dispatched = 0
        try:
            now = self._clock.monotonic()
            while limit is None or dispatched < limit:
                if len(self._running) >= self._slots:
                    break
                level = self._best_level(now)
                if level is None:
                    break
                task = level.popleft()
                if self._admit is not None and not self._try_admit(self._admit, task):
                    self._rejected += 1
                    if task.blocked_since is None:
                        task.blocked_since = now
                    refused.append(task)
                    if now - task.blocked_since >= self._aging or len(refused) >= self._skip_limit:
                        break  # a long-blocked task holds the line; or this pass has tried enough
                    continue
                if self._start(task):
                    dispatched += 1
        finally:
            # Refused tasks go back to the front of their levels, in their original order.
            for task in reversed(refused):
                if self._queued.get(task.task_id) is task:
                    self._levels[task.priority].appendleft(task)
            self._draining = False
        return dispatched

    @staticmethod
    def _try_admit(admit: Callable[[Task], bool], task: Task) -> bool:
        try:
            return bool(admit(task))
        except Exception:
            log.exception("admission of task %s failed; it stays queued", task.task_id)
            return False

    def _start(self, task: Task) -> bool:
        """Move an admitted task to a pool and hand it to ``dispatch``; False if that raised."""
        del self._queued[task.task_id]
        self._level_count[task.priority] -= 1
        index = self._pick_pool()
        self._running[task.task_id] = index
        self._pool_running[index] += 1
        try:
            self._dispatch(task, self._pools[index].name)
        except Exception:
            self._dispatch_errors += 1
            if self._running.pop(task.task_id, None) is not None:
                self._pool_running[index] -= 1
            log.exception("dispatch of task %s failed", task.task_id)
            return False
        self._dispatched += 1
        return True

    def _effective(self, task: Task, now: float) -> int:
        return int(task.priority) + int((now - task.submitted_at) // self._aging)

    def _best_level(self, now: float) -> deque[Task] | None:
        best: deque[Task] | None = None
        best_eff = best_seq = 0
        aging = self._aging
        queued = self._queued
        for level in self._levels:
            while level and queued.get(level[0].task_id) is not level[0]:
                level.popleft()  # cancelled (or cancelled and resubmitted) entry
            if not level:
                continue
            head = level[0]
            eff = head.priority + int((now - head.submitted_at) // aging)
            if best is None or eff > best_eff or (eff == best_eff and head.seq < best_seq):
                best, best_eff, best_seq = level, eff, head.seq
        return best

    # -- pools -----------------------------------------------------------

    def _pick_pool(self) -> int:
        """Choose a pool with a free slot (the caller guarantees one exists)."""
        pools, running = self._pools, self._pool_running
        strategy = self._strategy
        if strategy is LoadBalancingStrategy.ROUND_ROBIN:
            n = len(pools)
            for step in range(n):
                i = (self._rr_next + step) % n
                if running[i] < pools[i].capacity:
                    self._rr_next = (i + 1) % n
                    return i
        free = [i for i, p in enumerate(pools) if running[i] < p.capacity]
        if strategy is LoadBalancingStrategy.LEAST_CONNECTIONS:
            return min(free, key=lambda i: running[i])
        if strategy is LoadBalancingStrategy.RESOURCE_BASED:
            return max(free, key=lambda i: (pools[i].capacity - running[i]) / pools[i].capacity)
        # Smooth weighted round robin (nginx): every eligible pool gains its weight,
        # the richest is chosen and pays back the total.
        current = self._wrr_current
        total = 0
        for i in free:
            current[i] += pools[i].weight
            total += pools[i].weight
        chosen = max(free, key=lambda i: current[i])
        current[chosen] -= total
        return chosen

    # -- the dispatcher coroutine ----------------------------------------

    async def start(self) -> None:
        if self._closed:
            raise SymbiError(ErrorCode.SCHED_001, "scheduler is closed")
        if self._loop_task is None:
            self._wake.set()
            self._loop_task = asyncio.create_task(self._run(), name="symbi-scheduler")

    async def close(self) -> None:
        self._closed = True
        task, self._loop_task = self._loop_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while not self._closed:
            await self._wake.wait()
            self._wake.clear()
            if self.dispatch_ready(self._batch) >= self._batch:
                self._wake.set()  # more may be ready: yield to the loop, then continue
                await asyncio.sleep(0)


def _check_config(max_concurrent: int, pools: list[PoolSpec], aging_interval: float, max_queue: int) -> None:
    def bad(what: str, value: Any, hint: str) -> SymbiError:
        return SymbiError(ErrorCode.SCHED_001, f"invalid scheduler {what}", offending=value, hint=hint)

    if not isinstance(max_concurrent, int) or max_concurrent < 1:
        raise bad("max_concurrent", max_concurrent, "a whole number of at least 1")
    if not isinstance(max_queue, int) or max_queue < 1:
        raise bad("max_queue", max_queue, "a whole number of at least 1")
    if not isinstance(aging_interval, (int, float)) or not aging_interval > 0:
        raise bad("aging_interval", aging_interval, "seconds greater than 0")
    if not pools:
        raise bad("pools", pools, "configure at least one pool")
    names = [p.name for p in pools]
    if len(set(names)) != len(names):
        raise bad("pools", names, "pool names must be unique")
    for p in pools:
        if not isinstance(p.capacity, int) or p.capacity < 1:
            raise bad(f"capacity for pool {p.name}", p.capacity, "a whole number of at least 1")
        if not isinstance(p.weight, int) or p.weight < 1:
            raise bad(f"weight for pool {p.name}", p.weight, "a whole number of at least 1")
