"""The thread side of the audit writer: numbering, hashing, signing, committing.

Owns :class:`BatchWriter`, which runs only inside the database connection's
thread. Given a batch of operations it assigns sequence numbers, chains and
hashes each event, signs checkpoints (every ``interval`` events, in the same
transaction as the event they cover) and commits: once per batch
(``durability="batch"``) or once per event (``"event"``), always with
``synchronous=FULL`` so a commit is on disk when it returns. The committed head
only moves after a successful commit; on an error the open transaction is
rolled back and the caller learns how many operations were committed.
Checkpoints are handed to ``on_commit`` (the witness) only once their
transaction has committed, so a witness never holds a head the file lacks.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from engine.audit.canonical import GENESIS_HASH, record_canonical
from engine.audit.keys import sign_b64
from engine.audit.model import AuditRecord, Prepared
from engine.audit.store import FORMAT_VERSION, SCHEMA, Checkpoint, checkpoint_payload

__all__ = ["CHECKPOINT", "CLOSE", "DURABILITY_MODES", "EVENT", "FLUSH", "OPEN", "BatchWriter", "init_database"]

EVENT, CHECKPOINT, OPEN, CLOSE, FLUSH = "event", "checkpoint", "open", "close", "flush"
DURABILITY_MODES = ("batch", "event")

_INSERT_EVENT = (
    "INSERT INTO events (seq, ts_us, type, agent, actor, action, resource, decision, details, prev_hash, hash) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_CP = (
    "INSERT INTO checkpoints (seq, head_hash, count, ts_us, kind, interval, key_id, signature) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_SET_META = "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)"


class FormatError(Exception):
    """The file is an audit log of another format version."""


def init_database(conn: sqlite3.Connection, busy_timeout: float) -> tuple[int, str, str | None]:
    """Pragmas and schema; returns ``(head_seq, head_hash, previous_session_state)``."""
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise sqlite3.OperationalError(f"cannot switch the journal to WAL (got {mode})")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("BEGIN IMMEDIATE")
    try:
        for statement in _split(SCHEMA):
            conn.execute(statement)
        version = conn.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
        if version is None:
            conn.execute(_SET_META, ("format", FORMAT_VERSION))
        elif version[0] != FORMAT_VERSION:
            raise FormatError(version[0])
        state = conn.execute("SELECT value FROM meta WHERE key = 'session'").fetchone()
        head = conn.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    seq, digest = head if head is not None else (0, GENESIS_HASH)
    return seq, digest, None if state is None else state[0]


def _identity(path: Path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


def _split(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


class BatchWriter:
    """Appends batches to the chain. Use from the connection's thread only."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        path: Path,
        *,
        head_seq: int,
        head_hash: str,
        signer: Ed25519PrivateKey,
        key_id: str,
        interval: int,
        durability: str,
        now: Callable[[], float],
        checkpoint_seq: int = 0,
        on_commit: Callable[[list[Checkpoint]], Any] | None = None,
    ) -> None:
        self.conn = conn
        self.path = path
        self._identity = _identity(path)
        self.seq = head_seq
        self.hash = head_hash
        self._signer = signer
        self._key_id = key_id
        self._interval = interval
        self._per_event = durability == "event"
        self._now = now
        self._on_commit = on_commit
        self.checkpoint_seq = checkpoint_seq  # seq of the newest committed checkpoint
        self.commits = 0

    def _checkpoint(self, seq: int, head: str, kind: str) -> Checkpoint:
        ts_us = round(self._now() * 1_000_000)
        payload = checkpoint_payload(seq, head, seq, ts_us, kind, self._interval, self._key_id)
        sig = sign_b64(self._signer, payload)
        return Checkpoint(seq, head, seq, ts_us, kind, self._interval, self._key_id, sig)

    def run(self, ops: list[tuple[str, Any]]) -> tuple[list[Any], BaseException | None]:
        """Apply ``ops``; returns (results of the committed prefix, the error that stopped it or None)."""
        conn = self.conn
        sha = hashlib.sha256
        results: list[Any] = []
        committed = 0
        seq, head = self.seq, self.hash
        rows: list[tuple[Any, ...]] = []
        cps: list[Checkpoint] = []
        done: list[Checkpoint] = []  # checkpoints whose transaction committed
        meta: list[tuple[str, str]] = []
        interval = self._interval
        try:
            self._check_file()
            conn.execute("BEGIN IMMEDIATE")
            for op, arg in ops:
                if op == EVENT:
                    p: Prepared = arg
                    seq += 1
                    fields = (seq, p.ts_us, p.type, p.agent, p.actor, p.action, p.resource, p.decision,
                              p.details_json, head)
                    h = sha(record_canonical(*fields).encode("utf-8")).hexdigest()
                    rows.append((*fields, h))
                    results.append(
                        AuditRecord(
                            seq, p.ts_us, p.type, p.agent, p.actor, p.action, p.resource, p.decision, p.details, head, h
                        )
                    )
                    head = h
                    if seq % interval == 0:
                        cps.append(self._checkpoint(seq, head, "periodic"))
                elif op == CHECKPOINT:
                    cp = self._checkpoint(seq, head, arg)
                    cps.append(cp)
                    results.append(cp)
                elif op == OPEN:
                    meta.append(("session", "open"))
                    cp = self._checkpoint(seq, head, "open")
                    cps.append(cp)
                    results.append(cp)
                elif op == CLOSE:
                    cp = self._checkpoint(seq, head, "close")
                    cps.append(cp)
                    meta.append(("session", "closed"))
                    results.append(cp)
                else:  # FLUSH: nothing to write, resolved with the batch
                    results.append(None)
                if self._per_event and (rows or cps or meta):
                    self._write(rows, cps, meta)
                    conn.execute("COMMIT")
                    self.commits += 1
                    self.seq, self.hash, committed = seq, head, len(results)
                    done += cps
                    rows, cps, meta = [], [], []
                    conn.execute("BEGIN IMMEDIATE")
            self._write(rows, cps, meta)
            conn.execute("COMMIT")
            self.commits += 1
            self.seq, self.hash, committed = seq, head, len(results)
            done += cps
        except BaseException as exc:  # noqa: BLE001 - reported to the waiters, the trail fails closed
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
            self._committed(done)
            return results[:committed], exc
        self._committed(done)
        return results, None

    def _committed(self, cps: list[Checkpoint]) -> None:
        if not cps:
            return
        self.checkpoint_seq = max(self.checkpoint_seq, max(c.seq for c in cps))
        if self._on_commit is not None:
            self._on_commit(cps)  # the witness: logs and counts its own failures, never raises

    def _check_file(self) -> None:
        # SQLite keeps writing through its open descriptor to a file that was deleted or
        # replaced: those events would be lost without an error, so treat it as a failure.
        try:
            same = _identity(self.path) == self._identity
        except OSError as exc:
            raise OSError(f"the audit database disappeared while open: {exc.strerror or exc}") from exc
        if not same:
            raise OSError("the audit database file was replaced while open")

    def _write(self, rows: list[tuple[Any, ...]], cps: list[Checkpoint], meta: list[tuple[str, str]]) -> None:
        if rows:
            self.conn.executemany(_INSERT_EVENT, rows)
        if cps:
            self.conn.executemany(
                _INSERT_CP,
                [(c.seq, c.head_hash, c.count, c.ts_us, c.kind, c.interval, c.key_id, c.signature) for c in cps],
            )
        if meta:
            self.conn.executemany(_SET_META, meta)
