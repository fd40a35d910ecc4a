"""The priority scheduler: ordering, aging, admission, pools, strategies, and the event-driven loop."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from engine.agents.model import Priority
from engine.agents.scheduler import LoadBalancingStrategy, PoolSpec, Scheduler, Task
from engine.clock import FakeClock
from engine.errors import ErrorCode, SymbiError

P = Priority


class Harness:
    """A scheduler with a recording dispatch callback; tasks only finish when the test says so."""

    def __init__(
        self,
        *,
        max_concurrent: int = 100,
        pools: list[PoolSpec] | None = None,
        strategy: LoadBalancingStrategy = LoadBalancingStrategy.ROUND_ROBIN,
        aging: float = 10.0,
        admit=None,
        max_queue: int = 10000,
        auto_complete: bool = False,
    ) -> None:
        self.clock = FakeClock()
        self.dispatched: list[tuple[str, str]] = []
        self.peak_running = 0
        self.peak_pool: Counter[str] = Counter()
        self.auto_complete = auto_complete
        self.sched = Scheduler(
            max_concurrent=max_concurrent,
            pools=pools or [PoolSpec("default", 1000)],
            strategy=strategy,
            aging_interval=aging,
            clock=self.clock,
            admit=admit,
            dispatch=self._dispatch,
            max_queue=max_queue,
        )

    def _dispatch(self, task: Task, pool: str) -> None:
        self.dispatched.append((task.task_id, pool))
        stats = self.sched.stats()
        self.peak_running = max(self.peak_running, stats.running)
        for name, n in stats.pool_running.items():
            self.peak_pool[name] = max(self.peak_pool[name], n)
        if self.auto_complete:
            self.sched.complete(task.task_id)

    @property
    def order(self) -> list[str]:
        return [task_id for task_id, _ in self.dispatched]


def test_fifo_within_a_priority():
    h = Harness(max_concurrent=1)
    for i in range(5):
        h.sched.submit(f"t{i}", P.NORMAL)
    for _ in range(5):
        assert h.sched.dispatch_ready() == 1
        h.sched.complete(h.order[-1])
    assert h.order == ["t0", "t1", "t2", "t3", "t4"]


def test_higher_priority_first_then_fifo():
    h = Harness(max_concurrent=1, auto_complete=True)
    h.sched.submit("low", P.LOW)
    h.sched.submit("n1", P.NORMAL)
    h.sched.submit("crit", P.CRITICAL)
    h.sched.submit("n2", P.NORMAL)
    h.sched.submit("high", "High")
    assert [t.task_id for t in h.sched.queued()] == ["crit", "high", "n1", "n2", "low"]
    assert h.sched.dispatch_ready() == 5
    assert h.order == ["crit", "high", "n1", "n2", "low"]


def test_aging_lets_a_low_task_overtake_after_enough_time():
    h = Harness(max_concurrent=1, aging=10.0)
    h.sched.submit("old-low", P.LOW)
    h.clock.advance(15)  # effective Low+1 = Normal, and older: it wins the tie
    h.sched.submit("new-normal", P.NORMAL)
    h.sched.submit("new-high", P.HIGH)
    assert [t.task_id for t in h.sched.queued()] == ["new-high", "old-low", "new-normal"]
    h.clock.advance(5)  # t=20: Low+2 = High, and new-high (waited 5 s) is still High: the older wins
    assert h.sched.queued()[0].task_id == "old-low"
    h.sched.dispatch_ready()
    assert h.order == ["old-low"]


def test_low_task_is_not_starved_by_a_stream_of_normal_tasks():
    h = Harness(max_concurrent=1, aging=5.0)
    h.sched.submit("low", P.LOW)
    n = 0
    while "low" not in h.order:
        h.sched.submit(f"n{n}", P.NORMAL)
        h.sched.submit(f"n{n + 1}", P.NORMAL)
        n += 2
        h.sched.dispatch_ready()
        h.sched.complete(h.order[-1])
        h.clock.advance(1)
        assert n < 100, "low task starved"
    assert h.order.index("low") <= 6


def test_max_concurrent_is_never_exceeded_and_complete_frees_a_slot():
    h = Harness(max_concurrent=3)
    for i in range(10):
        h.sched.submit(f"t{i}", P.NORMAL)
    assert h.sched.dispatch_ready() == 3
    assert h.sched.dispatch_ready() == 0
    stats = h.sched.stats()
    assert (stats.running, stats.queued) == (3, 7)
    h.sched.complete("t1")
    assert h.sched.dispatch_ready() == 1
    assert h.order[-1] == "t3"
    assert h.peak_running == 3


def test_pool_capacities_are_never_exceeded():
    pools = [PoolSpec("a", 2), PoolSpec("b", 3)]
    h = Harness(max_concurrent=100, pools=pools, strategy=LoadBalancingStrategy.LEAST_CONNECTIONS)
    for i in range(20):
        h.sched.submit(f"t{i}", P.NORMAL)
    assert h.sched.dispatch_ready() == 5  # total pool capacity binds before max_concurrent
    assert h.peak_pool == {"a": 2, "b": 3}
    assert h.sched.stats().pool_running == {"a": 2, "b": 3}
    # churn: finish one at a time, the freed pool is refilled and capacities hold
    for _ in range(15):
        done = next(iter(h.sched.running()))
        h.sched.complete(done)
        assert h.sched.dispatch_ready() == 1
    assert h.peak_pool == {"a": 2, "b": 3}
    assert h.peak_running == 5


def test_complete_of_an_unknown_task_is_refused():
    h = Harness()
    with pytest.raises(SymbiError) as err:
        h.sched.complete("ghost")
    assert err.value.code is ErrorCode.SCHED_001
    assert "ghost" in str(err.value)


def _distribution(strategy, pools, n):
    h = Harness(max_concurrent=1000, pools=pools, strategy=strategy, auto_complete=True)
    for i in range(n):
        h.sched.submit(f"t{i}", P.NORMAL)
    h.sched.dispatch_ready()
    return h, Counter(pool for _, pool in h.dispatched)


def test_round_robin_cycles_through_pools():
    pools = [PoolSpec("a", 10), PoolSpec("b", 10), PoolSpec("c", 10)]
    h, counts = _distribution(LoadBalancingStrategy.ROUND_ROBIN, pools, 9)
    assert counts == {"a": 3, "b": 3, "c": 3}
    assert [pool for _, pool in h.dispatched] == ["a", "b", "c"] * 3


def test_round_robin_skips_full_pools():
    pools = [PoolSpec("a", 1), PoolSpec("b", 10)]
    h = Harness(pools=pools, strategy=LoadBalancingStrategy.ROUND_ROBIN)
    for i in range(4):
        h.sched.submit(f"t{i}", P.NORMAL)
    h.sched.dispatch_ready()
    assert [pool for _, pool in h.dispatched] == ["a", "b", "b", "b"]


def test_least_connections_fills_the_emptiest_pool():
    pools = [PoolSpec("a", 10), PoolSpec("b", 10)]
    h = Harness(pools=pools, strategy=LoadBalancingStrategy.LEAST_CONNECTIONS)
    for i in range(3):
        h.sched.submit(f"t{i}", P.NORMAL)
    h.sched.dispatch_ready()
    assert Counter(p for _, p in h.dispatched) == {"a": 2, "b": 1}
    h.sched.complete("t0")
    h.sched.complete("t1")  # a has 1 (t2), b has 0 now
    h.sched.submit("x", P.NORMAL)
    h.sched.dispatch_ready()
    assert h.dispatched[-1] == ("x", "b")


def test_resource_based_picks_the_largest_free_fraction():
    pools = [PoolSpec("small", 2), PoolSpec("big", 8)]
    h = Harness(pools=pools, strategy=LoadBalancingStrategy.RESOURCE_BASED)
    for i in range(10):
        h.sched.submit(f"t{i}", P.NORMAL)
    h.sched.dispatch_ready()
    counts = Counter(p for _, p in h.dispatched)
    assert counts == {"small": 2, "big": 8}
    # the first pick goes to the pool with the most free fraction; ties go to the first listed
    assert h.dispatched[0][1] == "small"
    # while both have room, each pick keeps free fractions balanced: big never drops far below small
    h2 = Harness(pools=pools, strategy=LoadBalancingStrategy.RESOURCE_BASED)
    for i in range(5):
        h2.sched.submit(f"t{i}", P.NORMAL)
    h2.sched.dispatch_ready()
    assert Counter(p for _, p in h2.dispatched) == {"small": 1, "big": 4}


def test_weighted_round_robin_gives_3_to_1():
    pools = [PoolSpec("heavy", 1000, weight=3), PoolSpec("light", 1000, weight=1)]
    h, counts = _distribution(LoadBalancingStrategy.WEIGHTED_ROUND_ROBIN, pools, 400)
    assert counts == {"heavy": 300, "light": 100}
    # smooth: never more than 3 heavy in a row
    first = [pool for _, pool in h.dispatched[:8]]
    assert first.count("light") == 2 and "light" in first[:4]


def test_strategy_parse_and_unknown_name():
    assert LoadBalancingStrategy.parse("WeightedRoundRobin") is LoadBalancingStrategy.WEIGHTED_ROUND_ROBIN
    assert LoadBalancingStrategy.parse("least_connections") is LoadBalancingStrategy.LEAST_CONNECTIONS
    with pytest.raises(SymbiError) as err:
        LoadBalancingStrategy.parse("Random")
    assert err.value.code is ErrorCode.SCHED_001
    assert "Random" in str(err.value) and "RoundRobin" in str(err.value)


def test_admission_refusal_keeps_task_queued_until_notify():
    budget = {"mem": 100}

    def admit(task: Task) -> bool:
        if task.memory_mb > budget["mem"]:
            return False
        budget["mem"] -= task.memory_mb
        return True

    h = Harness(admit=admit)
    h.sched.submit("big", P.NORMAL, memory_mb=500)
    assert h.sched.dispatch_ready() == 0
    assert h.sched.is_queued("big")
    assert h.sched.stats().rejected_admission_total == 1
    budget["mem"] = 1000
    h.sched.notify()
    assert h.sched.dispatch_ready() == 1
    assert h.order == ["big"] and not h.sched.is_queued("big")


def test_admission_skip_over_lets_small_tasks_past_a_big_one():
    free = {"mem": 300}

    def admit(task: Task) -> bool:
        if task.memory_mb > free["mem"]:
            return False
        free["mem"] -= task.memory_mb
        return True

    h = Harness(admit=admit, aging=10.0)
    h.sched.submit("big", P.HIGH, memory_mb=500)
    h.sched.submit("s1", P.NORMAL, memory_mb=100)
    h.sched.submit("s2", P.NORMAL, memory_mb=100)
    assert h.sched.dispatch_ready() == 2
    assert h.order == ["s1", "s2"]
    assert [t.task_id for t in h.sched.queued()] == ["big"]


def test_a_task_blocked_longer_than_aging_holds_the_line():
    free = {"mem": 300}

    def admit(task: Task) -> bool:
        if task.memory_mb > free["mem"]:
            return False
        free["mem"] -= task.memory_mb
        return True

    h = Harness(admit=admit, aging=10.0)
    h.sched.submit("big", P.NORMAL, memory_mb=500)
    h.sched.dispatch_ready()  # refused once: blocked from now
    h.clock.advance(11)
    h.sched.submit("small", P.NORMAL, memory_mb=100)
    assert h.sched.dispatch_ready() == 0  # small may not take what big is waiting for
    assert h.sched.is_queued("small")
    free["mem"] = 550
    h.sched.notify()
    assert h.sched.dispatch_ready() == 1
    assert h.order == ["big"]  # big first, then small no longer fits
    free["mem"] += 500
    assert h.sched.dispatch_ready() == 1
    assert h.order == ["big", "small"]


def test_cancel_removes_a_queued_task():
    h = Harness(max_concurrent=1)
    for name in ("a", "b", "c"):
        h.sched.submit(name, P.NORMAL)
    assert h.sched.cancel("b") is True
    assert h.sched.cancel("b") is False
    assert h.sched.cancel("nope") is False
    assert [t.task_id for t in h.sched.queued()] == ["a", "c"]
    assert h.sched.stats().queued_by_priority["Normal"] == 2
    h.sched.dispatch_ready()
    h.sched.complete("a")
    h.sched.dispatch_ready()
    assert h.order == ["a", "c"]
    assert h.sched.cancel("c") is False  # running tasks are not cancelled here


def test_a_cancelled_id_can_be_resubmitted_and_keeps_its_new_place():
    h = Harness(max_concurrent=10)
    h.sched.submit("a", P.NORMAL)
    h.sched.submit("b", P.NORMAL)
    h.sched.cancel("a")
    h.sched.submit("a", P.NORMAL)
    h.sched.dispatch_ready()
    assert h.order == ["b", "a"]


def test_duplicate_id_is_refused_while_queued_or_running():
    h = Harness()
    h.sched.submit("x", P.NORMAL)
    with pytest.raises(SymbiError) as err:
        h.sched.submit("x", P.HIGH)
    assert err.value.code is ErrorCode.SCHED_001 and "x" in str(err.value)
    h.sched.dispatch_ready()
    with pytest.raises(SymbiError):
        h.sched.submit("x", P.HIGH)
    h.sched.complete("x")
    h.sched.submit("x", P.HIGH)  # finished: the id is free again


def test_queue_full_names_the_size():
    h = Harness(max_queue=3)
    for i in range(3):
        h.sched.submit(f"t{i}", P.NORMAL)
    with pytest.raises(SymbiError) as err:
        h.sched.submit("t3", P.NORMAL)
    assert err.value.code is ErrorCode.SCHED_002
    assert "3" in err.value.message
    assert h.sched.stats().queued == 3


def test_bad_configuration_is_refused():
    clock = FakeClock()
    good = dict(max_concurrent=1, pools=[PoolSpec("a", 1)], strategy="RoundRobin", aging_interval=1.0, clock=clock)
    Scheduler(dispatch=lambda t, p: None, **good)
    for change in (
        {"max_concurrent": 0},
        {"pools": []},
        {"pools": [PoolSpec("a", 1), PoolSpec("a", 2)]},
        {"pools": [PoolSpec("a", 0)]},
        {"pools": [PoolSpec("a", 1, weight=0)]},
        {"aging_interval": 0},
        {"strategy": "Fastest"},
    ):
        with pytest.raises(SymbiError) as err:
            Scheduler(dispatch=lambda t, p: None, **{**good, **change})
        assert err.value.code is ErrorCode.SCHED_001


def test_stats_count_per_priority_and_totals():
    h = Harness(max_concurrent=2)
    h.sched.submit("l", P.LOW)
    h.sched.submit("n", P.NORMAL)
    h.sched.submit("h", P.HIGH)
    h.sched.submit("c", P.CRITICAL)
    assert h.sched.stats().queued_by_priority == {"Low": 1, "Normal": 1, "High": 1, "Critical": 1}
    h.sched.dispatch_ready()
    stats = h.sched.stats()
    assert stats.queued_by_priority == {"Low": 1, "Normal": 1, "High": 0, "Critical": 0}
    assert (stats.queued, stats.running, stats.dispatched_total) == (2, 2, 2)
    assert h.sched.running() == {"c": "default", "h": "default"}


def test_a_failing_dispatch_callback_does_not_leak_a_slot():
    clock = FakeClock()

    def dispatch(task: Task, pool: str) -> None:
        if task.task_id == "bad":
            raise RuntimeError("boom")

    s = Scheduler(
        max_concurrent=1,
        pools=[PoolSpec("a", 1)],
        strategy="RoundRobin",
        aging_interval=1.0,
        clock=clock,
        dispatch=dispatch,
    )
    s.submit("bad", P.HIGH)
    s.submit("good", P.NORMAL)
    assert s.dispatch_ready() == 1  # bad failed and gave its slot back; good took it
    assert s.running() == {"good": "a"}
    stats = s.stats()
    assert (stats.dispatch_errors_total, stats.dispatched_total) == (1, 1)


async def test_dispatch_is_event_driven_without_any_clock_tick():
    h = Harness(max_concurrent=1)
    await h.sched.start()
    try:
        h.sched.submit("a", P.NORMAL)
        h.sched.submit("b", P.NORMAL)
        for _ in range(5):
            await asyncio.sleep(0)
        assert h.order == ["a"]  # dispatched on submit; b waits for a slot
        h.sched.complete("a")
        for _ in range(5):
            await asyncio.sleep(0)
        assert h.order == ["a", "b"]
        assert h.clock.monotonic() == 0.0 and h.clock.pending_sleepers == 0  # no timer was involved
    finally:
        await h.sched.close()


async def test_notify_wakes_the_dispatcher_for_a_refused_task():
    allowed = set()
    h = Harness(admit=lambda t: t.task_id in allowed)
    await h.sched.start()
    try:
        h.sched.submit("t", P.NORMAL)
        for _ in range(5):
            await asyncio.sleep(0)
        assert h.order == [] and h.sched.is_queued("t")
        allowed.add("t")
        h.sched.notify()
        for _ in range(5):
            await asyncio.sleep(0)
        assert h.order == ["t"]
    finally:
        await h.sched.close()


async def test_the_loop_drains_large_bursts_in_batches():
    h = Harness(max_concurrent=100_000, auto_complete=True)
    await h.sched.start()
    try:
        for i in range(5000):
            h.sched.submit(f"t{i}", (P.LOW, P.NORMAL, P.HIGH)[i % 3])
        for _ in range(50):
            await asyncio.sleep(0)
            if len(h.order) == 5000:
                break
        assert len(h.order) == 5000
        assert h.sched.stats().dispatched_total == 5000
    finally:
        await h.sched.close()


async def test_close_stops_the_loop_and_refuses_new_work():
    h = Harness()
    await h.sched.start()
    await h.sched.close()
    with pytest.raises(SymbiError) as err:
        h.sched.submit("late", P.NORMAL)
    assert err.value.code is ErrorCode.SCHED_001 and "closed" in err.value.message
