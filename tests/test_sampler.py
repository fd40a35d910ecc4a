"""Process-tree sampling on real processes, and the limit checker's rules."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from engine.agents.sampler import MB, LimitChecker, ProcessTreeSampler, TreeSample

# Allocates ~50 MB (touched, so it is resident), starts a sleeping grandchild,
# then burns a fixed amount of CPU time when told to. Synchronised by pipes, not by wall time.
CHILD = textwrap.dedent(
    """
    import subprocess, sys, time
    data = b"\\x01" * (50 * 1024 * 1024)
    grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    print("ready", grandchild.pid, flush=True)
    sys.stdin.readline()
    start = time.process_time()
    while time.process_time() - start < 0.3:
        pass
    print("busy", flush=True)
    sys.stdin.readline()
    grandchild.kill()
    grandchild.wait()
    """
)


@pytest.fixture
def tree():
    proc = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline().split()
    assert line[0] == "ready"
    grandchild = int(line[1])
    yield proc, grandchild
    for pid in (grandchild, proc.pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()


def test_sample_sums_the_whole_tree(tree):
    proc, grandchild = tree
    sampler = ProcessTreeSampler()
    first = sampler.sample(proc.pid)
    assert first.alive and first.pid == proc.pid
    assert first.num_procs == 2  # the child and its grandchild
    assert first.rss_bytes > 40 * MB
    assert first.cpu_percent == 0.0  # first sample of a new process
    assert first.read_bytes >= 0 and first.write_bytes >= 0

    proc.stdin.write("go\n")
    proc.stdin.flush()
    assert proc.stdout.readline().strip() == "busy"
    second = sampler.sample(proc.pid)
    assert second.cpu_percent > 0.0  # the cached process object measured the burn
    assert second.num_procs == 2

    os.kill(grandchild, signal.SIGKILL)
    proc.stdin.write("quit\n")
    proc.stdin.flush()
    proc.wait()
    gone = sampler.sample(proc.pid)
    assert gone == TreeSample(proc.pid, 0.0, 0, 0, 0, 0, alive=False)


def test_sample_many_reads_several_trees_with_one_scan(tree):
    proc, grandchild = tree
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    sampler = ProcessTreeSampler()
    samples = sampler.sample_many([proc.pid, done.pid, grandchild])
    assert samples[proc.pid].alive and samples[proc.pid].num_procs == 2
    assert samples[proc.pid].rss_bytes > 40 * MB
    assert samples[grandchild].num_procs == 1  # a subtree on its own
    assert samples[done.pid].alive is False
    # same numbers as one-at-a-time sampling (memory does not move while the child waits)
    single = ProcessTreeSampler().sample(proc.pid)
    assert single.num_procs == 2
    assert abs(single.rss_bytes - samples[proc.pid].rss_bytes) < 5 * MB


def test_a_zombie_root_reads_as_dead(tree):
    proc, grandchild = tree
    sampler = ProcessTreeSampler()
    assert sampler.sample(proc.pid).alive
    os.kill(grandchild, signal.SIGKILL)
    os.kill(proc.pid, signal.SIGKILL)
    # not reaped yet: the child is a zombie until proc.wait()
    os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
    assert sampler.sample(proc.pid).alive is False
    proc.wait()
    assert sampler.sample(proc.pid).alive is False


def test_a_dead_pid_is_not_alive_and_does_not_raise():
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    sampler = ProcessTreeSampler()
    sample = sampler.sample(done.pid)
    assert sample.alive is False and sample.num_procs == 0
    sampler.forget(done.pid)
    sampler.forget(12345678)  # forgetting an unknown pid is fine


def test_forget_restarts_cpu_measurement():
    sampler = ProcessTreeSampler()
    me = os.getpid()
    sampler.sample(me)
    sampler.forget(me)
    assert sampler.sample(me).cpu_percent == 0.0  # a fresh process object again


def test_machine_reports_cpu_and_memory():
    cpu, used, total = ProcessTreeSampler.machine()
    assert 0.0 <= cpu <= 100.0
    assert 0 < used <= total


def sample(rss_mb: float = 10, cpu: float = 0.0, alive: bool = True) -> TreeSample:
    return TreeSample(1, cpu, int(rss_mb * MB), 0, 0, 1, alive)


def test_memory_violation_is_immediate_and_in_mb():
    checker = LimitChecker(cpu_violation_samples=3)
    assert checker.check("a", sample(rss_mb=64), memory_limit_mb=64, cpu_limit_cores=1.0) == []
    assert checker.check("a", sample(rss_mb=100), memory_limit_mb=64, cpu_limit_cores=1.0) == [("memory", 64.0, 100.0)]


def test_cpu_violation_needs_consecutive_samples():
    checker = LimitChecker(cpu_violation_samples=3)
    over = sample(cpu=150.0)  # 1.5 cores against a 1-core limit
    assert checker.check("a", over, 256, 1.0) == []
    assert checker.check("a", over, 256, 1.0) == []
    assert checker.check("a", over, 256, 1.0) == [("cpu", 1.0, 1.5)]
    assert checker.check("a", over, 256, 1.0) == [("cpu", 1.0, 1.5)]  # and on while it lasts
    # a sample under the limit breaks the streak
    assert checker.check("a", sample(cpu=50.0), 256, 1.0) == []
    assert checker.check("a", over, 256, 1.0) == []
    assert checker.check("a", over, 256, 1.0) == []
    # streaks are per agent, and reset() clears one
    assert checker.check("b", over, 256, 1.0) == []
    checker.reset("a")
    assert checker.check("a", over, 256, 1.0) == []


def test_a_dead_sample_has_no_violations():
    checker = LimitChecker(cpu_violation_samples=1)
    assert checker.check("a", sample(rss_mb=999, cpu=400.0, alive=False), 64, 1.0) == []
