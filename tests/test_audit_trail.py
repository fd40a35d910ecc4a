"""The audit writer for real: group commit, ordering, restart, crash recovery,
fail-closed on real write failures, secret redaction, keys."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from engine.audit import MASK, AuditEvent, AuditTrail, redact, verify
from engine.audit.redact import is_secret_key
from engine.clock import FakeClock
from engine.errors import ErrorCode, SymbiError
from tests.test_audit_support import fill

ROOT = Path(__file__).resolve().parent.parent


async def test_append_returns_the_durable_record(tmp_path):
    clock = FakeClock(1_800_000_000.25)
    async with AuditTrail(tmp_path, clock=clock) as trail:
        rec = await trail.append(type="engine.start", action="start", details={"pid": 42})
        assert (rec.seq, rec.ts, rec.prev_hash) == (1, 1_800_000_000.25, "0" * 64)
        assert rec.details == {"pid": 42} and rec.actor == "engine" and rec.decision == "n/a"
        again = await trail.append(AuditEvent(type="agent.create", agent="a1", actor="operator", decision="allow"))
        assert again.prev_hash == rec.hash
        # durable means visible to an independent reader right away
        con = sqlite3.connect(tmp_path / "audit.db")
        assert con.execute("SELECT seq, hash FROM events ORDER BY seq").fetchall() == [(1, rec.hash), (2, again.hash)]
        con.close()
    assert verify(tmp_path).ok


async def test_concurrent_appends_form_one_chain_in_call_order(tmp_path):
    async with AuditTrail(tmp_path, checkpoint_every=100) as trail:
        records = await asyncio.gather(
            *(trail.append(type="tool.call", agent=f"a{i % 7}", details={"n": i}) for i in range(1000))
        )
        assert [r.seq for r in records] == list(range(1, 1001))
        assert [r.details["n"] for r in records] == list(range(1000))
        assert all(b.prev_hash == a.hash for a, b in zip(records, records[1:], strict=False))
        assert trail.batches < 1000  # they really shared transactions
    report = verify(tmp_path)
    assert report.ok and report.events_checked == 1000, report.render()


async def test_append_nowait_keeps_order_and_chain(tmp_path):
    async with AuditTrail(tmp_path) as trail:
        first = await trail.append(type="engine.start")
        for i in range(50):
            trail.append_nowait(type="resource.allocate", details={"i": i})
        last = await trail.append(type="engine.stop")
        assert last.seq == 52
        mids = await trail.query(types="resource.allocate", limit=100)
        assert [r.details["i"] for r in mids] == list(range(50)) and mids[0].prev_hash == first.hash
    assert verify(tmp_path).ok


async def test_event_durability_mode(tmp_path):
    async with AuditTrail(tmp_path, durability="event", checkpoint_every=5) as trail:
        records = await asyncio.gather(*(trail.append(type="tool.call", details={"i": i}) for i in range(23)))
        assert trail._writer.commits >= 23  # one commit per event
    assert [r.seq for r in records] == list(range(1, 24))
    assert verify(tmp_path).ok


async def test_restart_continues_the_chain(tmp_path):
    async with AuditTrail(tmp_path, checkpoint_every=4) as trail:
        await fill(trail, 6)
        head = trail.head_hash
    async with AuditTrail(tmp_path, checkpoint_every=4) as trail:
        assert not trail.recovered and trail.head_seq == 6
        rec = await trail.append(type="engine.start")
        assert (rec.seq, rec.prev_hash) == (7, head)
    report = verify(tmp_path)
    assert report.ok and report.events_checked == 7 and report.clean_close


CRASHER = textwrap.dedent(
    """
    import asyncio, sys
    from engine.audit import AuditTrail
    async def main():
        trail = await AuditTrail(sys.argv[1], checkpoint_every=20).open()
        for i in range(47):
            await trail.append(type="agent.state", agent="a", details={"i": i})
        print("ready", flush=True)
        await asyncio.sleep(60)
    asyncio.run(main())
    """
)


async def test_unclean_shutdown_is_verifiable_and_recorded(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", CRASHER, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
    finally:
        proc.kill()  # SIGKILL: no close checkpoint, no cleanup
        proc.wait()
    report = verify(tmp_path)
    assert report.ok, report.render()
    assert (report.events_checked, report.unsigned_tail, report.clean_close) == (47, 7, False)
    assert report.warnings  # the unsigned tail is pointed out
    async with AuditTrail(tmp_path, checkpoint_every=20) as trail:
        assert trail.recovered
        (rec,) = await trail.query(types="engine.recovered")
        assert rec.seq == 48 and rec.details["last_seq"] == 47 and rec.details["unsigned_events"] == 7
    report = verify(tmp_path)
    assert report.ok and report.clean_close


async def test_one_writer_per_data_dir(tmp_path):
    async with AuditTrail(tmp_path):
        with pytest.raises(SymbiError) as exc:
            await AuditTrail(tmp_path).open()
        assert exc.value.code is ErrorCode.AUDIT_001


async def test_readers_work_while_the_writer_runs(tmp_path):
    async with AuditTrail(tmp_path) as trail:
        await fill(trail, 12)
        report = await asyncio.to_thread(verify, tmp_path)
        assert report.ok and report.events_checked == 12 and report.unsigned_tail == 12
        from engine.audit import AuditReader

        async with AuditReader(tmp_path) as reader:
            assert await reader.count() == 12
            await trail.append(type="engine.stop")
            assert (await reader.head())[0] == 13


# -- fail closed ------------------------------------------------------------------


def _assert_audit_001(exc: SymbiError, path: Path) -> None:
    assert exc.code is ErrorCode.AUDIT_001, exc.render()
    assert str(path) in exc.render()


async def test_fail_closed_when_another_process_holds_the_write_lock(tmp_path):
    """A real SQLite failure that works as root: another connection holds the database's write lock."""
    async with AuditTrail(tmp_path, busy_timeout=0.05) as trail:
        await fill(trail, 3)
        blocker = sqlite3.connect(tmp_path / "audit.db", isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            with pytest.raises(SymbiError) as exc:
                await trail.append(type="agent.create", agent="x")
            _assert_audit_001(exc.value, tmp_path / "audit.db")
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        # the trail stays failed although the lock is gone, and refuses synchronously too
        assert trail.failed is not None
        with pytest.raises(SymbiError) as exc:
            await trail.append(type="agent.create", agent="y")
        _assert_audit_001(exc.value, tmp_path / "audit.db")
        with pytest.raises(SymbiError):
            trail.append_nowait(type="agent.state")
        with pytest.raises(SymbiError):
            trail.ensure_writable()
    # nothing was reported as appended, and nothing was: the chain is the 3 events + recovery on reopen
    report = verify(tmp_path)
    assert report.ok and report.events_checked == 3
    async with AuditTrail(tmp_path) as trail:
        assert trail.recovered  # the failed session could not sign its close
        assert trail.head_seq == 4
    assert verify(tmp_path).ok


async def test_fail_closed_when_the_database_is_replaced_while_open(tmp_path):
    """SQLite would keep writing into the unlinked file; the trail notices and refuses instead."""
    data = tmp_path / "data"
    trail = await AuditTrail(data).open()
    try:
        await fill(trail, 4)
        (data / "audit.db").rename(tmp_path / "moved.db")
        (data / "audit.db").mkdir()  # the path is now a directory
        with pytest.raises(SymbiError) as exc:
            await trail.append(type="agent.create", agent="x")
        _assert_audit_001(exc.value, data / "audit.db")
        assert "replaced" in exc.value.message or "disappeared" in exc.value.message
        with pytest.raises(SymbiError):
            await trail.append(type="agent.create", agent="y")
    finally:
        await trail.close()
    for suffix in ("-wal", "-shm"):
        if (data / f"audit.db{suffix}").exists():
            (data / f"audit.db{suffix}").rename(tmp_path / f"moved.db{suffix}")
    (tmp_path / "keys").symlink_to(data / "keys")
    report = verify(tmp_path / "moved.db")
    assert report.ok and report.events_checked == 4, report.render()


def _mount_tmpfs(where: Path, size: str) -> bool:
    if os.geteuid() != 0:
        return False
    where.mkdir()
    return (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True
        ).returncode
        == 0
    )


async def test_fail_closed_when_the_disk_is_full(tmp_path):
    """A real ENOSPC: the data dir lives on a 2 MiB tmpfs that we fill up (needs mount rights)."""
    mnt = tmp_path / "small"
    if not _mount_tmpfs(mnt, "2m"):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        trail = await AuditTrail(mnt / "data").open()
        await fill(trail, 5)
        fd = os.open(mnt / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            while True:
                os.write(fd, b"\0" * 65536)
        except OSError:
            pass
        finally:
            os.close(fd)
        with pytest.raises(SymbiError) as exc:
            for i in range(200):  # the WAL has some slack; the disk is full long before 200 x 40 KB
                await trail.append(type="tool.call", details={"blob": "x" * 40_000, "i": i})
        _assert_audit_001(exc.value, mnt / "data" / "audit.db")
        assert "full" in exc.value.message
        written = trail.head_seq
        (mnt / "filler").unlink()  # space is back, but the trail stays failed until reopened
        with pytest.raises(SymbiError):
            await trail.append(type="tool.call")
        await trail.close()
        report = verify(mnt / "data")
        assert report.ok and report.events_checked == written, report.render()
        async with AuditTrail(mnt / "data") as again:
            assert again.recovered
        assert verify(mnt / "data").ok
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


async def test_open_fails_closed_when_the_database_is_a_directory(tmp_path):
    (tmp_path / "audit.db").mkdir()
    with pytest.raises(SymbiError) as exc:
        await AuditTrail(tmp_path).open()
    _assert_audit_001(exc.value, tmp_path / "audit.db")


async def test_open_fails_closed_when_the_data_dir_cannot_exist(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(SymbiError) as exc:
        await AuditTrail(tmp_path / "file" / "data").open()
    assert exc.value.code is ErrorCode.AUDIT_001 and "file" in exc.value.render()


async def test_open_fails_closed_on_a_garbage_database(tmp_path):
    (tmp_path / "audit.db").write_bytes(b"not a database at all" * 200)
    with pytest.raises(SymbiError) as exc:
        await AuditTrail(tmp_path).open()
    _assert_audit_001(exc.value, tmp_path / "audit.db")


async def test_closed_trail_refuses_appends(tmp_path):
    trail = await AuditTrail(tmp_path).open()
    await trail.close()
    with pytest.raises(SymbiError) as exc:
        await trail.append(type="agent.create")
    assert exc.value.code is ErrorCode.AUDIT_001


def test_bad_trail_settings_are_input_errors(tmp_path):
    for kwargs in ({"durability": "fsync"}, {"checkpoint_every": 0}):
        with pytest.raises(SymbiError) as exc:
            AuditTrail(tmp_path, **kwargs)
        assert exc.value.code is ErrorCode.AUDIT_003


async def test_manual_checkpoint_is_signed_and_verifies(tmp_path):
    async with AuditTrail(tmp_path) as trail:
        await fill(trail, 4)
        cp = await trail.checkpoint()
        assert (cp.seq, cp.head_hash, cp.kind) == (4, trail.head_hash, "manual")
        report = await trail.verify()
        assert report.ok and report.unsigned_tail == 0 and report.checkpoints_checked == 2


async def test_bad_events_are_input_errors_and_do_not_fail_the_trail(tmp_path):
    async with AuditTrail(tmp_path) as trail:
        for bad in (
            {"type": "has spaces"},
            {"type": ""},
            {"type": "ok", "actor": "somebody else"},
            {"type": "ok", "decision": "ALLOW!"},
            {"type": "ok", "details": ["not", "a", "mapping"]},
            {"type": "ok", "ts": float("nan")},
            {"type": "ok", "unknown_field": 1},
            {"type": "ok", "action": 5},
        ):
            with pytest.raises(SymbiError) as exc:
                await trail.append(**bad)
            assert exc.value.code is ErrorCode.AUDIT_003, bad
        assert trail.failed is None
        assert (await trail.append(type="ok")).seq == 1


# -- secrets ------------------------------------------------------------------------


async def test_secrets_never_reach_the_file(tmp_path):
    planted = "hunter2-planted-Secret-value"
    api_key = "sk-live-0123456789abcdef"
    async with AuditTrail(tmp_path) as trail:
        trail.register_secret(planted)
        rec = await trail.append(
            type="secret.read",
            actor="agent:a1",
            agent="a1",
            action=f"read with {planted}",
            resource=f"https://api.example.com/v1?api_key={api_key}&q=1",
            details={
                "api_key": api_key,
                "nested": [{"Authorization": "Bearer abc.def.ghi123"}, {"msg": f"the value is {planted}!"}],
                "headers": {"X-Auth-Token": "tok-999999"},
                "max_tokens": 512,
            },
        )
        assert planted not in repr(rec) and api_key not in repr(rec)
        assert rec.details["max_tokens"] == 512  # token counts are not secrets
        assert rec.details["api_key"] == MASK
        await trail.checkpoint()
    data = b"".join(p.read_bytes() for p in tmp_path.glob("audit.db*"))
    for secret in (planted, api_key, "abc.def.ghi123", "tok-999999"):
        assert secret.encode() not in data, secret
    assert verify(tmp_path).ok


def test_redact_helper():
    out = redact(
        {
            "password": {"nested": "x"},
            "private_key": "-----BEGIN PRIVATE KEY-----",
            "ok": ("a", 1, 2.5, None, True),
            5: {3, 1},
            "inf": float("inf"),
            "bytes": b"\x00raw",
            "note": "Authorization: Bearer eyJhbGciOi.J9x",
        },
        secrets=["J9x-extra", "ab"],  # "ab" is too short to mask
    )
    assert out["password"] == MASK and out["private_key"] == MASK
    assert out["ok"] == ["a", 1, 2.5, None, True] and out["5"] == [1, 3]
    assert out["inf"] == "inf" and out["bytes"] == "<4 bytes>"
    assert "eyJhbGciOi" not in out["note"] and "Bearer" in out["note"]
    assert is_secret_key("db_password") and is_secret_key("X-Api-Key") and not is_secret_key("tokens_used")
    assert not is_secret_key("public_key_id")


# -- keys -----------------------------------------------------------------------------


async def test_signing_key_is_private_and_its_public_half_exportable(tmp_path):
    async with AuditTrail(tmp_path) as trail:
        pem = trail.public_key_pem
    key = tmp_path / "keys" / "runtime_ed25519.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert (tmp_path / "keys" / "runtime_ed25519.pub.pem").read_bytes() == pem
    assert b"PRIVATE" not in pem


async def test_loose_key_permissions_are_refused(tmp_path):
    async with AuditTrail(tmp_path):
        pass
    key = tmp_path / "keys" / "runtime_ed25519.pem"
    key.chmod(0o644)
    with pytest.raises(SymbiError) as exc:
        await AuditTrail(tmp_path).open()
    assert exc.value.code is ErrorCode.SEC_003 and str(key) in exc.value.render()
    key.chmod(0o600)
    async with AuditTrail(tmp_path):
        pass
