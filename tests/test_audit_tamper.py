"""Tampering with a real audit.db, and verify() naming what happened and where.

Each test copies a cleanly closed 35-event log (checkpoints at 0, 10, 20, 30
and the close at 35), edits the SQLite file directly as an attacker would,
and checks the problem kind and the first bad sequence number.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from engine.audit import AuditTrail, verify
from engine.audit.canonical import record_hash
from engine.audit.keys import key_id, public_pem
from engine.audit.store import checkpoint_payload
from engine.errors import ErrorCode, SymbiError
from tests.test_audit_support import (  # noqa: F401
    EVENTS,
    log_dir_fixture,
    rehash_from,
    row,
    shift_seqs,
    tampered,
    template_log_fixture,
)


def check(data_dir, kind: str, seq: int | None) -> None:
    report = verify(data_dir)
    assert not report.ok, report.render()
    assert (report.problem, report.first_bad_seq) == (kind, seq), report.render()
    assert kind in report.render()


def test_intact_log_passes(log_dir):
    report = verify(log_dir)
    assert report.ok, report.render()
    assert report.events_checked == EVENTS
    assert report.checkpoints_checked == 5
    assert report.clean_close and report.unsigned_tail == 0 and not report.warnings
    assert report.last_seq == EVENTS


def test_modified_field(log_dir):
    with tampered(log_dir) as con:
        con.execute("UPDATE events SET decision = 'allow' WHERE seq = 15 AND decision = 'deny'")
        con.execute('UPDATE events SET details = \'{"i":14,"note":"nothing to see"}\' WHERE seq = 15')
    check(log_dir, "modified", 15)


def test_modified_and_rehashed_single_event(log_dir):
    with tampered(log_dir) as con:
        con.execute("UPDATE events SET action = 'innocent' WHERE seq = 7")
        s, ts, t, ag, ac, act, res, dec, det, prev, _h = row(con, 7)
        con.execute(
            "UPDATE events SET hash = ? WHERE seq = 7", (record_hash(s, ts, t, ag, ac, act, res, dec, det, prev),)
        )
    check(log_dir, "modified", 7)


def test_inserted_event_with_valid_links(log_dir):
    # renumber 13.. up by one and slip a well-formed event in at 13, linked to 12
    with tampered(log_dir) as con:
        shift_seqs(con, 13, 1)
        prev = row(con, 12)[10]
        fields = (13, 1, "secret.read", None, "operator", "read", "vault/x", "allow", "{}", prev)
        con.execute("INSERT INTO events VALUES (?,?,?,?,?,?,?,?,?,?,?)", (*fields, record_hash(*fields)))
    check(log_dir, "inserted", 13)


def test_inserted_event_with_garbage_hash(log_dir):
    with tampered(log_dir) as con:
        shift_seqs(con, 22, 1)
        con.execute(
            "INSERT INTO events VALUES (22, 1, 'tool.call', NULL, 'operator', 'x', '', 'allow', '{}', ?, ?)",
            ("ab" * 32, "cd" * 32),
        )
    check(log_dir, "inserted", 22)


def test_event_appended_after_clean_close(log_dir):
    with tampered(log_dir) as con:
        prev = row(con, EVENTS)[10]
        fields = (EVENTS + 1, 1, "tool.call", None, "operator", "call", "", "allow", "{}", prev)
        con.execute("INSERT INTO events VALUES (?,?,?,?,?,?,?,?,?,?,?)", (*fields, record_hash(*fields)))
    check(log_dir, "inserted", EVENTS + 1)


def test_deleted_event_gap(log_dir):
    with tampered(log_dir) as con:
        con.execute("DELETE FROM events WHERE seq = 18")
    check(log_dir, "deleted", 18)


def test_deleted_event_and_renumbered(log_dir):
    with tampered(log_dir) as con:
        con.execute("DELETE FROM events WHERE seq = 24")
        shift_seqs(con, 25, -1)
    check(log_dir, "deleted", 24)


def test_deleted_first_events(log_dir):
    with tampered(log_dir) as con:
        con.execute("DELETE FROM events WHERE seq <= 3")
    check(log_dir, "deleted", 1)


def test_reordered_adjacent_swap(log_dir):
    with tampered(log_dir) as con:
        con.execute("UPDATE events SET seq = -1 WHERE seq = 8")
        con.execute("UPDATE events SET seq = 8 WHERE seq = 9")
        con.execute("UPDATE events SET seq = 9 WHERE seq = -1")
    check(log_dir, "reordered", 8)


def test_reordered_distant_swap(log_dir):
    with tampered(log_dir) as con:
        con.execute("UPDATE events SET seq = -1 WHERE seq = 4")
        con.execute("UPDATE events SET seq = 4 WHERE seq = 17")
        con.execute("UPDATE events SET seq = 17 WHERE seq = -1")
    check(log_dir, "reordered", 4)


def test_truncated_tail(log_dir):
    with tampered(log_dir) as con:
        con.execute("DELETE FROM events WHERE seq > 27")
    check(log_dir, "truncated", 28)


def test_truncated_tail_with_its_checkpoints(log_dir):
    # the attacker also drops every checkpoint after the cut, including the close
    with tampered(log_dir) as con:
        con.execute("DELETE FROM events WHERE seq > 26")
        con.execute("DELETE FROM checkpoints WHERE seq > 20")
    check(log_dir, "truncated", 27)


def test_all_checkpoints_deleted(log_dir):
    with tampered(log_dir) as con:
        con.execute("DELETE FROM checkpoints")
        con.execute("UPDATE meta SET value = 'open' WHERE key = 'session'")  # pretend a crash
    check(log_dir, "missing_checkpoint", 1)


def test_middle_checkpoint_deleted(log_dir):
    with tampered(log_dir) as con:
        con.execute("DELETE FROM checkpoints WHERE seq = 20")
    check(log_dir, "missing_checkpoint", 11)


def test_forged_checkpoint_wrong_key(log_dir):
    forger = Ed25519PrivateKey.generate()
    with tampered(log_dir) as con:
        head = row(con, 20)[10]
        kid = key_id(forger.public_key())
        payload = checkpoint_payload(20, head, 20, 1, "periodic", 10, kid)
        sig = base64.b64encode(forger.sign(payload)).decode()
        con.execute(
            "UPDATE checkpoints SET key_id = ?, signature = ? WHERE seq = 20",
            (kid, sig),
        )
    check(log_dir, "bad_checkpoint_signature", 20)


def test_checkpoint_with_edited_head(log_dir):
    with tampered(log_dir) as con:
        con.execute("UPDATE checkpoints SET head_hash = ? WHERE seq = 10", ("e" * 64,))
    check(log_dir, "bad_checkpoint_signature", 10)


def test_whole_chain_rewrite_is_caught_by_the_signed_heads(log_dir):
    # a consistent rewrite from 15 on: every hash and link recomputed, only signatures are out of reach
    with tampered(log_dir) as con:
        con.execute("UPDATE events SET decision = 'allow', details = '{}' WHERE seq = 15")
        rehash_from(con, 15)
    check(log_dir, "rewritten", 11)


def test_rewrite_with_resigned_checkpoints_needs_the_exported_key(log_dir, tmp_path):
    """An attacker who replaces the key files and re-signs everything fools a verifier that
    trusts the data dir, not one holding the exported public key."""
    exported = tmp_path / "runtime.pub.pem"
    exported.write_bytes((log_dir / "keys" / "runtime_ed25519.pub.pem").read_bytes())
    forger = Ed25519PrivateKey.generate()
    kid = key_id(forger.public_key())
    with tampered(log_dir) as con:
        con.execute("UPDATE events SET action = 'nothing happened' WHERE seq = 5")
        rehash_from(con, 5)
        for cid, seq, _head, count, ts, kind, interval in con.execute(
            "SELECT id, seq, head_hash, count, ts_us, kind, interval FROM checkpoints"
        ).fetchall():
            head = row(con, seq)[10] if seq else "0" * 64
            sig = base64.b64encode(forger.sign(checkpoint_payload(seq, head, count, ts, kind, interval, kid))).decode()
            con.execute("UPDATE checkpoints SET head_hash=?, key_id=?, signature=? WHERE id=?", (head, kid, sig, cid))
    (log_dir / "keys" / "runtime_ed25519.pub.pem").write_bytes(public_pem(forger.public_key()))
    (log_dir / "keys" / "runtime_ed25519.pem").unlink()
    assert verify(log_dir).ok  # the data dir's own (replaced) key is fooled...
    report = verify(log_dir, public_key=exported)  # ...the exported one is not
    assert (report.ok, report.problem) == (False, "bad_checkpoint_signature")


def test_missing_public_key(log_dir, tmp_path):
    exported = tmp_path / "pub.pem"
    exported.write_bytes((log_dir / "keys" / "runtime_ed25519.pub.pem").read_bytes())
    for name in os.listdir(log_dir / "keys"):
        (log_dir / "keys" / name).unlink()
    report = verify(log_dir)
    assert (report.ok, report.problem) == (False, "missing_key")
    assert verify(log_dir, public_key=exported).ok


def test_garbage_file_is_not_a_log(tmp_path):
    (tmp_path / "audit.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(SymbiError) as exc:
        verify(tmp_path)
    assert exc.value.code is ErrorCode.AUDIT_003 and "audit.db" in exc.value.render()


def test_corrupted_pages_are_reported_not_raised(log_dir):
    db = log_dir / "audit.db"
    data = bytearray(db.read_bytes())
    for i in range(8192, min(len(data), 8192 + 4096)):
        data[i] = 0xFF  # trash the second and third pages
    db.write_bytes(bytes(data))
    try:
        report = verify(log_dir)
    except SymbiError as exc:  # the schema page itself may be gone: then it is bad input
        assert exc.code is ErrorCode.AUDIT_003
    else:
        assert not report.ok


def test_open_refuses_to_extend_a_damaged_chain(log_dir):
    with tampered(log_dir) as con:
        con.execute("DELETE FROM events WHERE seq > 31")  # after the last periodic checkpoint
        con.execute("DELETE FROM checkpoints WHERE kind = 'close'")
        con.execute("UPDATE events SET details = '{}' WHERE seq = 31")

    async def go() -> None:
        await AuditTrail(log_dir, checkpoint_every=10).open()

    with pytest.raises(SymbiError) as exc:
        asyncio.run(go())
    assert exc.value.code is ErrorCode.AUDIT_002
    assert "audit.db" in exc.value.render() and "31" in exc.value.message


def test_open_rehashes_the_event_its_last_checkpoint_signed(log_dir):
    with tampered(log_dir) as con:
        con.execute("UPDATE events SET action = 'quietly changed' WHERE seq = ?", (EVENTS,))

    async def go() -> None:
        await AuditTrail(log_dir, checkpoint_every=10).open()

    with pytest.raises(SymbiError) as exc:
        asyncio.run(go())
    assert exc.value.code is ErrorCode.AUDIT_002 and f"modified at seq {EVENTS}" in exc.value.message


def test_verify_report_json_round_trips(log_dir):
    report = verify(log_dir)
    assert json.loads(json.dumps(report.to_dict()))["ok"] is True
