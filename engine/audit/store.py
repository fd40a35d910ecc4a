"""The audit database file: schema, connections, checkpoint rows.

Owns the layout of ``audit.db`` (tables ``events``, ``checkpoints``, ``meta``),
opening it for writing (WAL, ``synchronous=FULL``) or read-only (safe while an
engine writes: WAL readers never block the writer), and the signed checkpoint
payload. Errors opening the file are ``AUDIT_001`` (writer: fail closed) or
``AUDIT_003`` (reader: bad input) naming the file.

``events.ts_us`` is integer microseconds since the epoch (UTC); ``details`` is
canonical JSON text. ``meta.session`` is ``open`` while a writer has the file
and ``closed`` after a clean close.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from engine.audit.canonical import canonical_bytes
from engine.errors import ErrorCode, SymbiError

__all__ = [
    "DB_NAME",
    "EVENT_COLUMNS",
    "FORMAT_VERSION",
    "SCHEMA",
    "Checkpoint",
    "checkpoint_payload",
    "connect_readonly",
    "read_checkpoints",
    "read_meta",
    "resolve_db_path",
]

DB_NAME = "audit.db"
FORMAT_VERSION = "1"
CHECKPOINT_DOMAIN = "symbi-audit-checkpoint/1"

EVENT_COLUMNS = "seq, ts_us, type, agent, actor, action, resource, decision, details, prev_hash, hash"

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    ts_us INTEGER NOT NULL,
    type TEXT NOT NULL,
    agent TEXT,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    resource TEXT NOT NULL,
    decision TEXT NOT NULL,
    details TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_ts ON events (ts_us);
CREATE INDEX IF NOT EXISTS events_type ON events (type);
CREATE INDEX IF NOT EXISTS events_agent ON events (agent);
CREATE TABLE IF NOT EXISTS checkpoints (
    id INTEGER PRIMARY KEY,
    seq INTEGER NOT NULL,
    head_hash TEXT NOT NULL,
    count INTEGER NOT NULL,
    ts_us INTEGER NOT NULL,
    kind TEXT NOT NULL,
    interval INTEGER NOT NULL,
    key_id TEXT NOT NULL,
    signature TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed statement: "the chain had ``count`` events ending in ``head_hash``".

    ``kind`` is ``open`` (a writer session began), ``periodic`` (every
    ``interval`` events) or ``close`` (clean shutdown). ``interval`` is the
    checkpoint spacing the writer promised: the next checkpoint comes at most
    ``interval`` events later.
    """

    seq: int
    head_hash: str
    count: int
    ts_us: int
    kind: str
    interval: int
    key_id: str
    signature: str = ""
    id: int | None = None

    def payload(self) -> bytes:
        return checkpoint_payload(
            self.seq, self.head_hash, self.count, self.ts_us, self.kind, self.interval, self.key_id
        )


def checkpoint_payload(
    seq: int, head_hash: str, count: int, ts_us: int, kind: str, interval: int, key_id: str
) -> bytes:
    """The bytes an Ed25519 checkpoint signature covers (canonical JSON with a domain tag)."""
    return canonical_bytes(
        {
            "v": CHECKPOINT_DOMAIN,
            "seq": seq,
            "head_hash": head_hash,
            "count": count,
            "ts_us": ts_us,
            "kind": kind,
            "interval": interval,
            "key_id": key_id,
        }
    )


def resolve_db_path(target: str | Path) -> Path:
    """``target`` is a data dir (holding ``audit.db``) or the database file itself."""
    p = Path(target).expanduser()
    return p / DB_NAME if p.is_dir() else p


def connect_readonly(path: Path) -> sqlite3.Connection:
    """A read-only connection; ``AUDIT_003`` naming the file if it is missing or not an audit log."""
    if not path.is_file():
        raise SymbiError(
            ErrorCode.AUDIT_003,
            "no audit log here" if not path.exists() else "the audit log path is not a file",
            offending=str(path),
            hint="pass the engine's --data-dir (the directory that holds audit.db)",
        )
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        con.execute("PRAGMA busy_timeout = 5000")
        con.execute("SELECT 1 FROM events LIMIT 1").fetchall()
    except sqlite3.Error as exc:
        raise SymbiError(
            ErrorCode.AUDIT_003,
            f"cannot read the audit log: {exc}",
            offending=str(path),
            hint="is this an audit.db written by symbi? check its permissions",
        ) from exc
    return con


def read_meta(con: sqlite3.Connection) -> dict[str, str]:
    return {k: v for k, v in con.execute("SELECT key, value FROM meta")}


def read_checkpoints(con: sqlite3.Connection, after_seq: int = -1) -> list[Checkpoint]:
    rows = con.execute(
        "SELECT seq, head_hash, count, ts_us, kind, interval, key_id, signature, id FROM checkpoints "
        "WHERE seq > ? ORDER BY id",
        (after_seq,),
    ).fetchall()
    return [Checkpoint(*row) for row in rows]
