"""The witness: every signed head is also kept outside the data dir, so a trail cut back
together with its checkpoints (and dressed as a crash) or re-signed with a new key is caught.

Real SQLite, real Ed25519 keys, real files; the witness goes under ``tmp_path`` (an autouse
fixture points ``XDG_STATE_HOME`` there, which is what platformdirs' ``user_state_dir`` reads).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from engine.audit import AuditReader, AuditTrail, verify
from engine.audit.keys import key_id, public_pem
from engine.audit.store import checkpoint_payload
from engine.audit.witness import read_witness, resolve_witness_path, witness_name
from engine.clock import FakeClock
from engine.config import load_config
from engine.runtime import Runtime
from tests.helpers import fast_config
from tests.test_audit_support import fill, rehash_from, row, run_cli, tampered


@pytest.fixture(autouse=True)
def state_home(tmp_path, monkeypatch) -> Path:
    """platformdirs' user_state_dir (the default witness dir) inside this test's tmp dir."""
    home = tmp_path / "state"
    monkeypatch.setenv("XDG_STATE_HOME", str(home))
    return home


def build(data_dir: Path, n: int = 35, every: int = 10) -> AuditTrail:
    """A cleanly closed trail: checkpoints at 0 (open), 10, 20, 30 and 35 (close), all witnessed."""

    async def go() -> AuditTrail:
        async with AuditTrail(data_dir, checkpoint_every=every, checkpoint_interval=0) as trail:
            await fill(trail, n)
        return trail

    return asyncio.run(go())


def reopen(data_dir: Path) -> AuditTrail:
    """One more engine start and stop on ``data_dir``."""

    async def go() -> AuditTrail:
        async with AuditTrail(data_dir, checkpoint_every=10, checkpoint_interval=0) as trail:
            pass
        return trail

    return asyncio.run(go())


def disguise_truncation(data_dir: Path, keep: int = 26, keep_checkpoints_upto: int = 20) -> None:
    """Delete the newest events and the checkpoints after them, and pretend the engine crashed."""
    with tampered(data_dir) as con:
        con.execute("DELETE FROM events WHERE seq > ?", (keep,))
        con.execute("DELETE FROM checkpoints WHERE seq > ?", (keep_checkpoints_upto,))
        con.execute("UPDATE meta SET value = 'open' WHERE key = 'session'")


def cli_verify(data_dir: Path, *extra: str) -> tuple[int, str]:
    code, out, err = run_cli("audit", "verify", "--data-dir", str(data_dir), *extra)
    return code, out + err


# -- the witness file ---------------------------------------------------------------------


def test_every_signed_head_is_witnessed_in_a_private_file(tmp_path, state_home):
    data = tmp_path / "data"
    trail = build(data)
    path = state_home / "symbi-console" / "witness" / witness_name(data)
    assert trail.witness_path == path == resolve_witness_path(data)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert [(x["seq"], x["kind"]) for x in lines] == [
        (0, "open"), (10, "periodic"), (20, "periodic"), (30, "periodic"), (35, "close")
    ]  # fmt: skip
    assert trail.witness_writes == 5 and trail.witness_failures == 0
    kid = key_id(trail.public_key)
    first = lines[-1]
    assert first["key_id"] == kid and first["data_dir"] == str(data.resolve()) and first["time"].endswith("Z")
    assert first["head_hash"] == trail.head_hash and first["signature"]

    code, out = cli_verify(data)
    assert code == 0, out
    assert out.startswith("OK: audit chain intact") and "witness: agrees with 5 witnessed heads up to seq 35" in out
    assert "warning" not in out
    code, out, _ = run_cli("audit", "verify", "--data-dir", str(data), "--json")
    report = json.loads(out)
    assert report["ok"] and report["witness_path"] == str(path) and report["witness_seq"] == 35


def test_a_missing_witness_file_is_a_warning_not_a_failure(tmp_path):
    data = tmp_path / "data"
    trail = build(data)
    trail.witness_path.unlink()
    code, out = cli_verify(data)
    assert code == 0, out
    assert "warning: no witness file at" in out and str(trail.witness_path) in out


# -- the defect: a truncation dressed as a crash ------------------------------------------


def test_truncation_dressed_as_a_crash_is_caught_by_the_witness(tmp_path, caplog):
    data = tmp_path / "data"
    build(data)
    disguise_truncation(data)  # events 27..35 and the checkpoints at 30 and 35 are gone

    # what the log alone says: intact, with a warning about an unsigned tail (the defect)
    code, out = cli_verify(data, "--no-witness")
    assert code == 0 and "warning:" in out

    code, out = cli_verify(data)
    assert code == 1, out
    assert out.startswith("FAILED: truncated at seq 27:")
    assert "signed head at seq 35" in out and "events 27..35 were removed" in out

    # one more engine start and stop: it says so loudly, and verify still catches it
    with caplog.at_level(logging.WARNING, logger="symbi.audit"):
        trail = reopen(data)
    assert trail.recovered
    assert trail.witness_finding is not None
    assert trail.witness_finding["problem"] == "truncated" and trail.witness_finding["witnessed_seq"] == 35
    assert any("DOES NOT MATCH ITS WITNESS" in r.getMessage() and "truncated" in r.getMessage() for r in caplog.records)

    async def recorded() -> list:
        async with AuditReader(data) as reader:  # read-only: opening a writer would record it again
            return await reader.query(types="audit.witness_mismatch")

    (finding,) = asyncio.run(recorded())
    assert finding.decision == "error" and finding.details["problem"] == "truncated"
    assert finding.details["witnessed_seq"] == 35 and finding.details["head_seq"] == 26

    code, out = cli_verify(data)
    assert code == 1, out
    assert out.startswith("FAILED: truncated at seq") and "signed head at seq 35" in out
    assert verify(data).ok  # the log alone is self-consistent: only the witness remembers


def test_truncation_is_caught_even_after_the_log_grew_past_the_witnessed_head(tmp_path):
    data = tmp_path / "data"
    build(data)
    disguise_truncation(data)

    async def grow() -> None:
        async with AuditTrail(data, checkpoint_every=10, checkpoint_interval=0) as trail:
            await fill(trail, 20, start=100)

    asyncio.run(grow())  # the log now reaches seq 48: seq 30 and 35 exist again, with other events
    code, out = cli_verify(data)
    assert code == 1, out
    # the newest head that still matches is the reopened engine's (seq 28); the old one at 30 does not
    assert out.startswith("FAILED: rewritten at seq 29:") and "at seq 30" in out


def test_an_explicit_witness_file_and_a_plain_tail_cut(tmp_path):
    data = tmp_path / "data"
    trail = build(data)
    copy = tmp_path / "elsewhere.jsonl"
    copy.write_bytes(trail.witness_path.read_bytes())
    trail.witness_path.unlink()
    disguise_truncation(data, keep=33, keep_checkpoints_upto=30)
    code, out = cli_verify(data, "--witness", str(copy))
    assert code == 1 and out.startswith("FAILED: truncated at seq 34:") and "seq 35" in out
    code, out = cli_verify(data, "--witness", str(tmp_path / "nope.jsonl"))
    assert code == 0 and "warning: no witness file" in out


# -- a rewrite re-signed with a new key -----------------------------------------------------


def resign_with_new_key(data_dir: Path, rewrite_from: int | None) -> Ed25519PrivateKey:
    """Replace the runtime key, optionally rewrite events from ``rewrite_from`` on, and re-sign
    every checkpoint so that the log verifies against the (new) key in its data dir."""
    forger = Ed25519PrivateKey.generate()
    kid = key_id(forger.public_key())
    with tampered(data_dir) as con:
        if rewrite_from is not None:
            con.execute("UPDATE events SET action = 'nothing happened' WHERE seq = ?", (rewrite_from,))
            rehash_from(con, rewrite_from)
        for cid, seq, count, ts, kind, interval in con.execute(
            "SELECT id, seq, count, ts_us, kind, interval FROM checkpoints"
        ).fetchall():
            head = row(con, seq)[10] if seq else "0" * 64
            sig = base64.b64encode(forger.sign(checkpoint_payload(seq, head, count, ts, kind, interval, kid))).decode()
            con.execute("UPDATE checkpoints SET head_hash=?, key_id=?, signature=? WHERE id=?", (head, kid, sig, cid))
    keys = data_dir / "keys"
    private = keys / "runtime_ed25519.pem"
    private.unlink()
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(
            forger.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    (keys / "runtime_ed25519.pub.pem").write_bytes(public_pem(forger.public_key()))
    return forger


def test_rewrite_resigned_with_a_new_key_is_caught_by_the_witness_and_the_pinned_key(tmp_path):
    data = tmp_path / "data"
    build(data)
    old_key = tmp_path / "runtime.pub.pem"
    assert run_cli("audit", "key", "--data-dir", str(data), "--out", str(old_key))[0] == 0
    resign_with_new_key(data, rewrite_from=15)
    assert verify(data).ok  # internally consistent, signed by the key now in the data dir

    code, out = cli_verify(data)
    assert code == 1, out
    assert out.startswith("FAILED: rewritten at seq 11:") and "at seq 20" in out

    code, out = cli_verify(data, "--no-witness", "--public-key", str(old_key))
    assert code == 1 and out.startswith("FAILED: bad_checkpoint_signature"), out

    # the engine, opening it, records the finding (and does not refuse to start)
    trail = reopen(data)
    assert trail.witness_finding is not None and trail.witness_finding["problem"] == "rewritten"
    code, out = cli_verify(data)
    assert code == 1 and "rewritten" in out.splitlines()[0]


def test_resigning_alone_with_a_new_key_is_caught_by_the_witnessed_fingerprint(tmp_path):
    data = tmp_path / "data"
    trail = build(data)
    old_kid = trail.key_id
    forger = resign_with_new_key(data, rewrite_from=None)  # the events are untouched
    assert verify(data).ok
    code, out = cli_verify(data)
    assert code == 1, out
    assert out.startswith("FAILED: rewritten at seq 1:") and "re-signed with another key" in out
    assert old_kid in out and key_id(forger.public_key()) in out and "seq 35" in out


def test_a_forged_witness_line_is_ignored_with_a_warning(tmp_path):
    data = tmp_path / "data"
    trail = build(data)
    lines = trail.witness_path.read_text().splitlines()
    fake = json.loads(lines[-1])
    fake["seq"] = fake["count"] = 99  # a head the engine never signed, under the engine's key id
    with trail.witness_path.open("a") as fh:
        fh.write(json.dumps(fake) + "\n")
        fh.write('{"torn": \n')
    code, out = cli_verify(data)
    assert code == 0, out
    assert "1 witnessed head(s)" in out and "1 unreadable line(s)" in out


def test_the_engine_reads_only_the_tail_of_a_long_witness(tmp_path):
    from engine.audit.store import Checkpoint
    from engine.audit.witness import Witness

    w = Witness(tmp_path / "w" / "long.jsonl", tmp_path)
    assert w.record([Checkpoint(i, f"{i:064x}", i, i, "periodic", 1, "sha256:x", "sig") for i in range(1000)])
    assert w.writes == 1000 and (tmp_path / "w" / "long.jsonl").stat().st_size > 64 * 1024
    full = read_witness(w.path)
    tail = read_witness(w.path, tail_only=True)
    assert [h.seq for h in full.heads] == list(range(1000)) and full.heads[5].line == 6
    assert 0 < len(tail.heads) < 1000 and tail.heads[-1].seq == 999 and tail.unreadable == 0
    assert [h.seq for h in tail.heads] == list(range(1000 - len(tail.heads), 1000))


# -- interval checkpoints ---------------------------------------------------------------------


async def _until(predicate, rounds: int = 200) -> None:
    for _ in range(rounds):
        if predicate():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not reached")


async def test_interval_checkpoint_is_signed_and_witnessed_without_reaching_checkpoint_every(tmp_path):
    clock = FakeClock(1_800_000_000.0)
    data = tmp_path / "data"
    async with AuditTrail(data, checkpoint_every=1000, checkpoint_interval=30, clock=clock) as trail:
        assert clock.pending_sleepers == 0  # idle: no timer at all
        await fill(trail, 3)
        await _until(lambda: clock.pending_sleepers == 1)
        clock.advance(29)
        await trail.flush()
        assert trail.interval_checkpoints == 0
        clock.advance(1)
        await _until(lambda: trail.interval_checkpoints == 1)
        await trail.flush()
        heads = read_witness(trail.witness_path).heads
        assert [(h.seq, h.kind) for h in heads] == [(0, "open"), (3, "interval")]
        assert heads[-1].ts_us == 1_800_000_030_000_000  # the trail's clock, not the wall clock
        assert heads[-1].head_hash == trail.head_hash
        await asyncio.sleep(0)
        assert clock.pending_sleepers == 0  # everything is signed: idle again, no timer
        clock.advance(3600)
        await trail.flush()
        assert trail.interval_checkpoints == 1  # nothing new, nothing signed
        await fill(trail, 1, start=3)
        await _until(lambda: clock.pending_sleepers == 1)
        clock.advance(30)
        await _until(lambda: trail.interval_checkpoints == 2)
    report = verify(data, witness=trail.witness_path)
    assert report.ok and report.witness_seq == 4, report.render()


async def test_interval_zero_sets_no_timer(tmp_path):
    clock = FakeClock()
    async with AuditTrail(tmp_path, checkpoint_interval=0, clock=clock) as trail:
        await fill(trail, 3)
        await asyncio.sleep(0)
        assert clock.pending_sleepers == 0 and trail.interval_checkpoints == 0


def test_bad_interval_is_an_input_error(tmp_path):
    from engine.errors import ErrorCode, SymbiError

    for bad in (-1, float("nan"), "30s", True):
        with pytest.raises(SymbiError) as exc:
            AuditTrail(tmp_path, checkpoint_interval=bad)
        assert exc.value.code is ErrorCode.AUDIT_003


# -- failures and configuration ---------------------------------------------------------------


async def test_a_failed_witness_write_is_logged_and_counted_and_the_checkpoint_stands(tmp_path, caplog):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the witness directory should be")
    with caplog.at_level(logging.ERROR, logger="symbi.audit"):
        async with AuditTrail(tmp_path / "data", checkpoint_interval=0, witness_path=blocker / "w") as trail:
            await fill(trail, 2)
    assert trail.witness_failures == 2 and trail.witness_writes == 0  # open and close
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 2 and all("audit witness: could not record" in e and "checkpoint stands" in e for e in errors)
    assert verify(tmp_path / "data").ok  # the trail itself is whole


async def test_configured_witness_path_reaches_the_runtime_and_the_cli(tmp_path, state_home):
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    data.chmod(0o700)
    wdir = tmp_path / "other-disk"
    (data / "runtime_config.toml").write_text(
        f'[audit]\nwitness_path = "{wdir}"\ncheckpoint_interval = "0s"\n', encoding="utf-8"
    )
    cfg = load_config(data / "runtime_config.toml", env={}).config
    assert cfg.audit.witness_path == str(wdir) and cfg.audit.checkpoint_interval == 0.0
    async with Runtime.open(fast_config(audit={"witness_path": str(wdir), "checkpoint_interval": 0.0}), data) as rt:
        assert rt.audit.witness_path == wdir / witness_name(data)
        assert rt.audit.checkpoint_interval == 0.0
    witnessed = wdir / witness_name(data)
    assert witnessed.is_file() and read_witness(witnessed).heads
    assert not (state_home / "symbi-console" / "witness").exists()
    code, out = await asyncio.to_thread(cli_verify, data)
    assert code == 0 and str(witnessed) in out, out
    file_target = tmp_path / "w" / "one.jsonl"
    assert resolve_witness_path(data, str(file_target)) == file_target
    assert resolve_witness_path(data, "rel") == data / "rel" / witness_name(data)


def test_config_defaults_and_bad_values(tmp_path):
    from engine.config import RuntimeConfig
    from engine.errors import SymbiError

    audit = RuntimeConfig.default().audit
    assert audit.checkpoint_interval == 30.0 and audit.witness_path is None
    bad = tmp_path / "bad.toml"
    bad.write_text('[audit]\ncheckpoint_interval = "-5s"\n', encoding="utf-8")
    with pytest.raises(SymbiError) as exc:
        load_config(bad, env={})
    assert "audit.checkpoint_interval" in exc.value.render()
