"""Hot reload: last good policy kept on a broken file, events with hashes, cache invalidation, watch()."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import pytest

from engine.clock import FakeClock
from engine.config import RuntimeConfig
from engine.errors import ErrorCode, SymbiError
from engine.policy import PolicyEngine, ReloadEvent, save_atomic

ALLOW = "policies:\n  - name: open\n    effect: Allow\n"
DENY = "policies:\n  - name: closed\n    effect: Deny\n"
BROKEN = "policies:\n  - name: half\n    effect: Allow\n    resources: ['/x/[oops']\n"
REQ = {"resource_type": "File", "resource_path": "/tmp/a", "operation": "Read"}

_tick = [1_000_000_000]


def write(path: Path, text: str) -> str:
    """Write like an editor would (new inode) with a distinct mtime; return the SHA-256."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    _tick[0] += 1
    os.utime(tmp, ns=(_tick[0] * 1_000_000_000, _tick[0] * 1_000_000_000))
    os.replace(tmp, path)
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def setup(tmp_path):
    path = tmp_path / "access_policies.yaml"
    events: list[ReloadEvent] = []
    sha = write(path, ALLOW)
    engine = PolicyEngine.from_file(path, clock=FakeClock(), on_reload=events.append)
    return path, engine, events, sha


def test_initial_load_is_reported_with_the_file_hash(setup):
    path, engine, events, sha = setup
    assert len(events) == 1
    ev = events[0]
    assert (ev.ok, ev.reason, ev.sha256, ev.previous_sha256, ev.policies, ev.generation) == (
        True, "initial", sha, None, 1, 1)
    assert engine.sha256 == sha and ev.to_dict()["path"] == str(path)


def test_good_then_broken_keeps_last_good_then_fixed(setup):
    path, engine, events, sha = setup
    assert engine.evaluate(REQ).decision == "Allow"

    broken_sha = write(path, BROKEN)
    ev = engine.reload()
    assert not ev.ok and ev.sha256 == broken_sha and ev.previous_sha256 == sha
    assert ev.error.code is ErrorCode.POLICY_003
    assert f"policy reload failed at {path}:4:21: " in ev.error.message and "unclosed '['" in ev.error.message
    assert "keeping the last good policy" in ev.error.message
    assert (ev.error.details["line"], ev.error.details["column"]) == (4, 21)
    assert engine.sha256 == sha and engine.generation == 1
    assert engine.evaluate(REQ).decision == "Allow"  # the last good policy is in force

    fixed_sha = write(path, DENY)
    ev = engine.reload()
    assert ev.ok and ev.sha256 == fixed_sha and ev.previous_sha256 == sha and ev.generation == 2
    assert engine.evaluate(REQ).decision == "Deny"
    assert [e.ok for e in events] == [True, False, True]


def test_reload_empties_the_cache(setup):
    path, engine, _, _ = setup
    engine.evaluate(REQ)
    assert engine.evaluate(REQ).cached
    write(path, DENY)
    engine.reload()
    d = engine.evaluate(REQ)
    assert d.decision == "Deny" and not d.cached
    assert engine.stats()["cache_entries"] == 1


def test_poll_detects_changes_once(setup):
    path, engine, events, _ = setup
    assert engine.poll() is None
    write(path, BROKEN)
    assert engine.poll().ok is False
    write(path, BROKEN)  # same bytes again (new mtime): already reported
    assert engine.poll() is None
    write(path, DENY)
    assert engine.poll().ok is True
    assert len(events) == 3


def test_missing_file_is_reported_once_and_recovered(setup):
    path, engine, events, _ = setup
    path.unlink()
    ev = engine.poll()
    assert not ev.ok and ev.reason == "missing" and "policy file not found" in ev.error.message
    assert engine.poll() is None
    assert engine.evaluate(REQ).decision == "Allow"
    write(path, DENY)
    assert engine.poll().ok and engine.evaluate(REQ).decision == "Deny"


def test_failing_audit_callback_abandons_the_reload(setup):
    path, engine, _, sha = setup

    def refuse(event: ReloadEvent) -> None:
        raise SymbiError(ErrorCode.AUDIT_001, "audit append failed")

    engine.on_reload = refuse
    write(path, DENY)
    with pytest.raises(SymbiError, match="audit append failed"):
        engine.reload()
    assert engine.sha256 == sha and engine.evaluate(REQ).decision == "Allow"


def test_missing_ok_starts_empty_and_picks_the_file_up(tmp_path):
    path = tmp_path / "later.yaml"
    events: list[ReloadEvent] = []
    engine = PolicyEngine.from_file(path, on_reload=events.append, missing_ok=True)
    assert events[0].reason == "initial-missing" and engine.evaluate(REQ).default
    write(path, ALLOW)
    assert engine.poll().ok and engine.evaluate(REQ).decision == "Allow"


def test_initial_load_of_a_broken_file_raises_policy_002(tmp_path):
    path = tmp_path / "p.yaml"
    write(path, BROKEN)
    with pytest.raises(SymbiError) as err:
        PolicyEngine.from_file(path)
    assert err.value.code is ErrorCode.POLICY_002 and f"{path}:4:21" in err.value.message


def test_from_config_reads_the_policy_section(tmp_path):
    cfg = RuntimeConfig.default()
    write(tmp_path / "access_policies.yaml", "policies:\n  - name: t\n    effect: Allow\n    resources: ['/tmp/**']\n")
    engine = PolicyEngine.from_config(cfg, tmp_path)
    assert engine.default_effect == "Deny" and engine.evaluate(REQ).decision == "Allow"
    assert engine.evaluate(REQ | {"resource_path": "/etc/x"}).decision == "Deny"


async def _until(predicate, clock: FakeClock, step: float) -> None:
    for _ in range(500):
        clock.advance(step)
        for _ in range(5):
            await asyncio.sleep(0)
        if predicate():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not reached")


async def test_watch_reloads_on_change_and_keeps_last_good(tmp_path):
    path = tmp_path / "access_policies.yaml"
    write(path, ALLOW)
    clock = FakeClock()
    events: list[ReloadEvent] = []
    engine = PolicyEngine.from_file(path, clock=clock, on_reload=events.append)
    task = asyncio.create_task(engine.watch(interval=1.0))
    try:
        write(path, BROKEN)
        await _until(lambda: len(events) == 2, clock, 1.0)
        assert not events[1].ok and engine.evaluate(REQ).decision == "Allow"
        write(path, DENY)
        await _until(lambda: len(events) == 3, clock, 1.0)
        assert events[2].ok and engine.evaluate(REQ).decision == "Deny"
        save_atomic(path, ALLOW)  # the editor's path
        await _until(lambda: len(events) == 4, clock, 1.0)
        assert engine.evaluate(REQ).decision == "Allow"
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
