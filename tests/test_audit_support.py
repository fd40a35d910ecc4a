"""Helpers shared by the audit tests (``tests/test_audit_*.py``); no tests live here.

* ``build_log`` writes a real, cleanly closed audit log (real SQLite, real
  Ed25519) with small checkpoint spacing so tampering lands between checkpoints.
* ``tampered`` opens the real database file with ``sqlite3`` for an attacker's edits;
  ``rehash_from`` recomputes hashes and links from a seq on, as a careful attacker would.
* fixtures ``log_dir`` (a private copy of a closed 35-event log) and ``template_log``:
  import ``log_dir_fixture`` and ``template_log_fixture`` to use them.
* ``run_cli`` runs ``symbiont`` in-process with the audit plugin registered.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

import engine.cli
from engine.audit import AuditTrail
from engine.audit.canonical import GENESIS_HASH, record_hash

EVENTS = 35
EVERY = 10  # checkpoints at seq 0 (open), 10, 20, 30, and the close at 35


async def fill(trail: AuditTrail, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        await trail.append(
            type="agent.state" if i % 3 else "tool.call",
            agent=f"agent-{i % 4}",
            actor=f"agent:agent-{i % 4}" if i % 2 else "engine",
            action="transition" if i % 3 else "call",
            resource=f"agent/agent-{i % 4}",
            decision="allow" if i % 5 else "deny",
            details={"i": i, "note": f"event number {i}"},
        )


def build_log(data_dir: Path, n: int = EVENTS, every: int = EVERY) -> Path:
    async def go() -> None:
        async with AuditTrail(data_dir, checkpoint_every=every) as trail:
            await fill(trail, n)

    asyncio.run(go())
    return data_dir


@pytest.fixture(scope="session", name="template_log")
def template_log_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_log(tmp_path_factory.mktemp("audit-template") / "data")


@pytest.fixture(name="log_dir")
def log_dir_fixture(template_log: Path, tmp_path: Path) -> Path:
    """A private copy of a closed 35-event log."""
    dest = tmp_path / "data"
    shutil.copytree(template_log, dest)
    return dest


@contextlib.contextmanager
def tampered(data_dir: Path) -> Iterator[sqlite3.Connection]:
    con = sqlite3.connect(data_dir / "audit.db")
    try:
        yield con
        con.commit()
    finally:
        con.close()


COLS = "seq, ts_us, type, agent, actor, action, resource, decision, details, prev_hash, hash"


def rehash_from(con: sqlite3.Connection, seq: int) -> None:
    """Recompute hash and prev_hash for every event from ``seq`` on (a consistent rewrite)."""
    prev_row = con.execute("SELECT hash FROM events WHERE seq = ?", (seq - 1,)).fetchone()
    prev = prev_row[0] if prev_row else GENESIS_HASH
    for row in con.execute(f"SELECT {COLS} FROM events WHERE seq >= ? ORDER BY seq", (seq,)).fetchall():
        s, ts, t, ag, ac, act, res, dec, det, _p, _h = row
        h = record_hash(s, ts, t, ag, ac, act, res, dec, det, prev)
        con.execute("UPDATE events SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, h, s))
        prev = h


def shift_seqs(con: sqlite3.Connection, from_seq: int, by: int) -> None:
    """Renumber events >= from_seq by ``by`` (via negatives, the primary key is unique)."""
    con.execute("UPDATE events SET seq = -seq WHERE seq >= ?", (from_seq,))
    con.execute("UPDATE events SET seq = -seq + ? WHERE seq < 0", (by,))


def row(con: sqlite3.Connection, seq: int) -> tuple:
    return con.execute(f"SELECT {COLS} FROM events WHERE seq = ?", (seq,)).fetchone()


def run_cli(*argv: str) -> tuple[int, str, str]:
    """``symbiont ARGV`` in-process with the audit plugin; returns (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    saved = engine.cli._PLUGINS
    engine.cli._PLUGINS = (*saved, "engine.audit.cli") if "engine.audit.cli" not in saved else saved
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = engine.cli.main(list(argv))
            except SystemExit as exc:  # argparse usage errors
                code = int(exc.code or 0)
    finally:
        engine.cli._PLUGINS = saved
    return code, out.getvalue(), err.getvalue()
