"""Measuring what agent processes actually use, and spotting limit breaches.

:class:`ProcessTreeSampler` sums CPU, resident memory and IO over an agent's
process and all its descendants with psutil. It keeps the ``psutil.Process``
objects between calls, because ``cpu_percent`` is measured since the previous
call on the same object (the first sample of a new process reads 0.0).
Processes that vanish, are zombies or deny access are skipped, never raised.

:class:`LimitChecker` turns samples into violations: memory at once, CPU only
after several consecutive samples over the limit, so a short burst is not
punished. What to do about a violation is the runtime's decision.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import psutil

from engine.agents.model import AgentId

MB = 1024 * 1024
_GONE = (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied)


@dataclass(frozen=True, slots=True)
class TreeSample:
    pid: int
    cpu_percent: float
    rss_bytes: int
    read_bytes: int
    write_bytes: int
    num_procs: int
    alive: bool


class ProcessTreeSampler:
    """Samples process trees; one cache of ``psutil.Process`` objects per root pid."""

    def __init__(self) -> None:
        self._trees: dict[int, dict[int, psutil.Process]] = {}

    def sample(self, pid: int) -> TreeSample:
        """One tree. Finding the descendants scans the process table (~1 ms);
        use :meth:`sample_many` to sample several trees with one scan."""
        return self._sample(pid, _descendants_of_root)

    def sample_many(self, pids: Iterable[int]) -> dict[int, TreeSample]:
        """Several trees, reading the process table once for all of them."""
        children = _children_map()
        return {pid: self._sample(pid, lambda root: _walk(children, root.pid)) for pid in pids}

    def _sample(self, pid: int, descendants: Callable[[psutil.Process], list[int]]) -> TreeSample:
        cache = self._trees.setdefault(pid, {})
        root = self._root(cache, pid)
        if root is None:
            if not cache:  # never seen alive: nothing worth remembering
                self._trees.pop(pid, None)
            return _dead(pid)
        try:
            child_pids = descendants(root)
        except _GONE:
            child_pids = []
        procs = [root]
        for child_pid in child_pids:
            proc = self._process(cache, child_pid)
            if proc is not None:
                procs.append(proc)
        seen: set[int] = set()
        cpu = 0.0
        rss = read = write = count = 0
        for proc in procs:
            try:
                with proc.oneshot():
                    if proc.status() == psutil.STATUS_ZOMBIE:
                        continue
                    cpu += proc.cpu_percent(interval=None)
                    rss += proc.memory_info().rss
                    r, w = _io(proc)
            except _GONE:
                continue
            read += r
            write += w
            count += 1
            seen.add(proc.pid)
        for gone in set(cache) - seen - {pid}:
            del cache[gone]
        if pid not in seen:  # the root is gone, a zombie, or died while we were reading it
            return _dead(pid)
        return TreeSample(pid, cpu, rss, read, write, count, alive=True)

    def forget(self, pid: int) -> None:
        """Drop what is cached for a root. Until then a dead root keeps reading as dead,
        even if the kernel hands its pid to a new process."""
        self._trees.pop(pid, None)

    @staticmethod
    def machine() -> tuple[float, int, int]:
        """(cpu percent of the whole machine since the last call, memory used, memory total) in bytes."""
        vm = psutil.virtual_memory()
        return psutil.cpu_percent(interval=None), vm.total - vm.available, vm.total

    @staticmethod
    def _root(cache: dict[int, psutil.Process], pid: int) -> psutil.Process | None:
        """The root's process object; a cached root that stopped running stays dead."""
        proc = cache.get(pid)
        if proc is None:
            try:
                proc = cache[pid] = psutil.Process(pid)
            except _GONE:
                return None
        try:
            return proc if proc.is_running() else None
        except _GONE:
            return None

    @staticmethod
    def _process(cache: dict[int, psutil.Process], pid: int) -> psutil.Process | None:
        """The cached object for a descendant, replaced if its pid was reused by a new process."""
        proc = cache.get(pid)
        if proc is not None:
            try:
                if proc.is_running():  # compares creation time, so a reused pid reads as not running
                    return proc
            except _GONE:
                pass
        try:
            proc = psutil.Process(pid)
        except _GONE:
            cache.pop(pid, None)
            return None
        cache[pid] = proc
        return proc


def _descendants_of_root(root: psutil.Process) -> list[int]:
    return [child.pid for child in root.children(recursive=True)]


def _children_map() -> dict[int, list[int]]:
    """parent pid -> child pids, from one scan of the process table."""
    # psutil's own (private) helper is ~3x faster than process_iter; fall back if it ever goes away.
    ppid_map = getattr(psutil, "_ppid_map", None)
    if ppid_map is not None:
        try:
            pairs = ppid_map().items()
        except Exception:
            pairs = None
        if pairs is not None:
            children: dict[int, list[int]] = {}
            for pid, ppid in pairs:
                children.setdefault(ppid, []).append(pid)
            return children
    children = {}
    for proc in psutil.process_iter(["ppid"]):
        children.setdefault(proc.info["ppid"], []).append(proc.pid)
    return children


def _walk(children: dict[int, list[int]], root: int) -> list[int]:
    out: list[int] = []
    stack = list(children.get(root, ()))
    seen = {root}
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        out.append(pid)
        stack.extend(children.get(pid, ()))
    return out


def _dead(pid: int) -> TreeSample:
    return TreeSample(pid, 0.0, 0, 0, 0, 0, alive=False)


def _io(proc: psutil.Process) -> tuple[int, int]:
    try:
        counters = proc.io_counters()  # absent on macOS; denied for other users' processes
    except (AttributeError, NotImplementedError, *_GONE):
        return 0, 0
    return counters.read_bytes, counters.write_bytes


class LimitChecker:
    """Compares samples with an agent's limits.

    Violations are ``(resource, limit, observed)``: memory in MB, cpu in
    cores. CPU is reported only once ``cpu_violation_samples`` samples in a
    row were over the limit, and again on every further sample over it.
    """

    def __init__(self, cpu_violation_samples: int = 3) -> None:
        self._needed = max(1, cpu_violation_samples)
        self._cpu_streak: dict[AgentId, int] = {}

    def check(
        self, agent_id: AgentId, sample: TreeSample, memory_limit_mb: int, cpu_limit_cores: float
    ) -> list[tuple[str, float, float]]:
        if not sample.alive:
            self._cpu_streak.pop(agent_id, None)
            return []
        violations: list[tuple[str, float, float]] = []
        rss_mb = sample.rss_bytes / MB
        if memory_limit_mb and memory_limit_mb > 0 and rss_mb > memory_limit_mb:
            violations.append(("memory", float(memory_limit_mb), rss_mb))
        if cpu_limit_cores and cpu_limit_cores > 0 and sample.cpu_percent > cpu_limit_cores * 100.0:
            streak = self._cpu_streak.get(agent_id, 0) + 1
            self._cpu_streak[agent_id] = streak
            if streak >= self._needed:
                violations.append(("cpu", float(cpu_limit_cores), sample.cpu_percent / 100.0))
        else:
            self._cpu_streak.pop(agent_id, None)
        return violations

    def reset(self, agent_id: AgentId) -> None:
        self._cpu_streak.pop(agent_id, None)
