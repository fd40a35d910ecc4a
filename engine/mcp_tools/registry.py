"""The tool registry: every discovered tool definition, pinned, with its review state.

Persisted in SQLite (``data_dir/mcp_tools.db``; plain ``sqlite3`` in WAL mode,
run in a worker thread, so the ``symbiont tools`` CLI can read and decide from
another process while an engine runs). A tool's id is ``server/name``.
Discovery pins the SHA-256 of the definition (name, description,
inputSchema); approval is bound to that hash. A later listing with a
different hash puts the tool back to ``PendingReview`` with a ``changed``
finding and a diff against the approved version (rug pull), and the gate
refuses it until a human decides again.

Review states and the legal moves between them are in :data:`TRANSITIONS`;
every move is checked against it (``MCP_007`` names both states when it is
illegal) and kept in the ``history`` table with who made it and their note.

The same database holds the per-call approvals that wait for a human
(``pending_calls``: a CLI in another process decides them, the waiting engine
polls the row) and an ``audit_outbox`` where a CLI leaves its decisions for the
running engine to copy into the audit trail (the trail has one writer).
An older database is migrated in place (missing columns added).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from engine.errors import ErrorCode, SymbiError
from engine.mcp_tools.client import ToolDefinition
from engine.mcp_tools.review import definition_diff, definition_hash

PENDING = "PendingReview"
UNDER_REVIEW = "UnderReview"
AWAITING_HUMAN = "AwaitingHumanReview"
APPROVED = "Approved"
REJECTED = "Rejected"
SIGNED = "Signed"
SIGNING_FAILED = "SigningFailed"
EXPIRED = "Expired"
STATES = (PENDING, UNDER_REVIEW, AWAITING_HUMAN, APPROVED, REJECTED, SIGNED, SIGNING_FAILED, EXPIRED)
WAITING_STATES = (PENDING, UNDER_REVIEW, AWAITING_HUMAN, EXPIRED)  # shown in the review queue
USABLE_STATES = (APPROVED, SIGNED)  # the gate lets calls through only here (and only on the approved hash)
SCOPES = ("always", "session", "once")

# from-state -> the states it may move to. PendingReview is reachable from every
# state because a changed definition (rug pull) always goes back to review.
TRANSITIONS: dict[str, frozenset[str]] = {
    PENDING: frozenset({PENDING, UNDER_REVIEW, AWAITING_HUMAN, APPROVED, REJECTED}),
    UNDER_REVIEW: frozenset({PENDING, AWAITING_HUMAN, APPROVED, REJECTED}),
    AWAITING_HUMAN: frozenset({PENDING, AWAITING_HUMAN, UNDER_REVIEW, APPROVED, REJECTED, EXPIRED}),
    EXPIRED: frozenset({PENDING, EXPIRED, UNDER_REVIEW, APPROVED, REJECTED}),
    APPROVED: frozenset({PENDING, UNDER_REVIEW, AWAITING_HUMAN, SIGNED, SIGNING_FAILED, REJECTED}),
    SIGNED: frozenset({PENDING, UNDER_REVIEW, AWAITING_HUMAN, REJECTED}),
    SIGNING_FAILED: frozenset({PENDING, UNDER_REVIEW, AWAITING_HUMAN, APPROVED, SIGNED, REJECTED}),
    REJECTED: frozenset({PENDING, UNDER_REVIEW, APPROVED}),
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tools (
    id TEXT PRIMARY KEY,
    server TEXT NOT NULL,
    name TEXT NOT NULL,
    definition TEXT NOT NULL,
    def_hash TEXT NOT NULL,
    meta TEXT NOT NULL DEFAULT '{}',
    state TEXT NOT NULL,
    approved_hash TEXT,
    approved_definition TEXT,
    verification TEXT NOT NULL DEFAULT '{}',
    findings TEXT NOT NULL DEFAULT '[]',
    diff TEXT NOT NULL DEFAULT '',
    reason TEXT NOT NULL DEFAULT '',
    note TEXT NOT NULL DEFAULT '',
    decided_by TEXT,
    first_seen REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    tool_id TEXT NOT NULL,
    ts REAL NOT NULL,
    from_state TEXT,
    to_state TEXT NOT NULL,
    actor TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    def_hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS pending_calls (
    id TEXT PRIMARY KEY,
    agent_id TEXT NOT NULL,
    tool_id TEXT NOT NULL,
    arguments TEXT NOT NULL,
    sha TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    policy TEXT,
    decision TEXT,
    decided_by TEXT,
    decided_at REAL,
    reason TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS audit_outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    event TEXT NOT NULL
);
"""

# columns added after the first release: (name, SQL type and default)
_ADDED_COLUMNS = (
    ("score", "INTEGER NOT NULL DEFAULT 0"),
    ("analyzer", "TEXT NOT NULL DEFAULT ''"),
    ("scope", "TEXT"),
    ("approval_signature", "TEXT"),
    ("deferred", "INTEGER NOT NULL DEFAULT 0"),
    ("awaiting_since", "REAL"),
)


@dataclass
class ToolRecord:
    id: str
    server: str
    name: str
    definition: dict[str, Any]
    def_hash: str
    meta: dict[str, Any]
    state: str
    approved_hash: str | None
    approved_definition: dict[str, Any] | None
    verification: dict[str, Any]
    findings: list[dict[str, Any]] = field(default_factory=list)
    diff: str = ""
    reason: str = ""  # why it is waiting: "new" | "changed"
    note: str = ""
    decided_by: str | None = None
    first_seen: float = 0.0
    updated_at: float = 0.0
    score: int = 0
    analyzer: str = ""
    scope: str | None = None  # "always" | "session" | "once" while approved
    approval_signature: str | None = None  # the operator key's SchemaPin signature over approval_document()
    deferred: bool = False
    awaiting_since: float | None = None  # when it entered AwaitingHumanReview (expiry clock)

    @property
    def approved(self) -> bool:
        """Usable, and the definition served now is the one approved. An ``always`` approval is
        usable only once Signed: in the moment between Approved and Signed (or SigningFailed) the
        tool is not callable, so a failed signature never leaves a usable unsigned approval."""
        if self.state == APPROVED and self.scope == "always":
            return False
        return self.state in USABLE_STATES and self.approved_hash is not None and self.approved_hash == self.def_hash

    @property
    def verified(self) -> bool:
        return bool(self.verification.get("valid"))

    @property
    def max_severity(self) -> str | None:
        order = ("Info", "Low", "Medium", "High", "Critical")
        sev = [f.get("severity") for f in self.findings if f.get("severity") in order]
        return max(sev, key=order.index) if sev else None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


_T = TypeVar("_T")


def approval_document(tool_id: str, scope: str, definition: dict[str, Any]) -> dict[str, Any]:
    """What the operator key signs for an approval: the tool, the scope, the exact definition."""
    return {"approval": {"tool_id": tool_id, "scope": scope}, "definition": definition}


def _row(r: sqlite3.Row) -> ToolRecord:
    keys = r.keys()
    return ToolRecord(
        id=r["id"],
        server=r["server"],
        name=r["name"],
        definition=json.loads(r["definition"]),
        def_hash=r["def_hash"],
        meta=json.loads(r["meta"]),
        state=r["state"],
        approved_hash=r["approved_hash"],
        approved_definition=json.loads(r["approved_definition"]) if r["approved_definition"] else None,
        verification=json.loads(r["verification"]),
        findings=json.loads(r["findings"]),
        diff=r["diff"],
        reason=r["reason"],
        note=r["note"],
        decided_by=r["decided_by"],
        first_seen=r["first_seen"],
        updated_at=r["updated_at"],
        score=int(r["score"]) if "score" in keys else 0,
        analyzer=r["analyzer"] if "analyzer" in keys else "",
        scope=r["scope"] if "scope" in keys else None,
        approval_signature=r["approval_signature"] if "approval_signature" in keys else None,
        deferred=bool(r["deferred"]) if "deferred" in keys else False,
        awaiting_since=r["awaiting_since"] if "awaiting_since" in keys else None,
    )


def _call_row(r: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": r["id"],
        "agent_id": r["agent_id"],
        "tool_id": r["tool_id"],
        "arguments": json.loads(r["arguments"]),
        "arguments_sha256": r["sha"],
        "created_at": r["created_at"],
        "expires_at": r["expires_at"],
        "policy": r["policy"],
        "decision": r["decision"],
        "decided_by": r["decided_by"],
        "decided_at": r["decided_at"],
        "reason": r["reason"],
    }


def _illegal(tool_id: str, old: str, new: str) -> SymbiError:
    return SymbiError(
        ErrorCode.MCP_007,
        f"tool {tool_id} cannot go from {old} to {new}",
        offending=tool_id,
        hint=f"from {old} it may go to: {', '.join(sorted(TRANSITIONS.get(old, ()))) or 'nothing'}",
        details={"from": old, "to": new},
    )


class ToolRegistry:
    def __init__(self, path: str | Path, *, clock: Any | None = None) -> None:
        self.path = Path(path)
        self._clock = clock
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def _now(self) -> float:
        return self._clock.time() if self._clock is not None else time.time()

    async def open(self) -> ToolRegistry:
        def _open() -> None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10.0)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA busy_timeout=10000")
            db.executescript(_SCHEMA)
            have = {r["name"] for r in db.execute("PRAGMA table_info(tools)")}
            for name, decl in _ADDED_COLUMNS:
                if name not in have:
                    try:
                        db.execute(f"ALTER TABLE tools ADD COLUMN {name} {decl}")
                    except sqlite3.OperationalError as exc:  # another process migrated it first
                        if "duplicate column" not in str(exc):
                            raise
            self._db = db

        try:
            await asyncio.to_thread(_open)
        except sqlite3.Error as exc:
            raise SymbiError(
                ErrorCode.STORE_001,
                f"cannot open the tool registry: {exc}",
                offending=str(self.path),
                hint="check the file's permissions, or move a damaged file away",
            ) from exc
        return self

    async def close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            await asyncio.to_thread(db.close)

    async def _run(self, fn: Callable[..., _T], *args: Any) -> _T:
        if self._db is None:
            raise SymbiError(ErrorCode.STORE_001, "tool registry is not open", offending=str(self.path))

        def locked() -> _T:
            with self._lock:
                return fn(self._db, *args)

        try:
            return await asyncio.to_thread(locked)
        except sqlite3.Error as exc:
            raise SymbiError(ErrorCode.STORE_001, f"tool registry: {exc}", offending=str(self.path)) from exc

    async def _tx(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``fn`` in one IMMEDIATE transaction (writers from other processes wait)."""

        def tx(db: sqlite3.Connection) -> _T:
            db.execute("BEGIN IMMEDIATE")
            try:
                out = fn(db)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            return out

        return await self._run(tx)

    @staticmethod
    def _log(
        db: sqlite3.Connection, tool_id: str, now: float, old: str | None, new: str, actor: str, note: str, h: str
    ) -> None:
        db.execute(
            "INSERT INTO history (tool_id, ts, from_state, to_state, actor, note, def_hash) VALUES (?,?,?,?,?,?,?)",
            (tool_id, now, old, new, actor, note, h),
        )

    @staticmethod
    def _get(db: sqlite3.Connection, tool_id: str) -> ToolRecord:
        r = db.execute("SELECT * FROM tools WHERE id=?", (tool_id,)).fetchone()
        if r is None:
            raise SymbiError(
                ErrorCode.MCP_002, f"unknown tool {tool_id}", offending=tool_id, hint="see `symbiont tools list`"
            )
        return _row(r)

    # -- reads ---------------------------------------------------------------------

    async def get(self, tool_id: str) -> ToolRecord | None:
        def q(db: sqlite3.Connection) -> ToolRecord | None:
            r = db.execute("SELECT * FROM tools WHERE id=?", (tool_id,)).fetchone()
            return _row(r) if r else None

        return await self._run(q)

    async def list_tools(
        self, *, state: str | tuple[str, ...] | None = None, server: str | None = None
    ) -> list[ToolRecord]:
        def q(db: sqlite3.Connection) -> list[ToolRecord]:
            sql = "SELECT * FROM tools WHERE 1=1"
            args: list[str] = []
            if state:
                states = (state,) if isinstance(state, str) else tuple(state)
                sql += f" AND state IN ({','.join('?' * len(states))})"
                args.extend(states)
            if server:
                sql += " AND server=?"
                args.append(server)
            return [_row(r) for r in db.execute(sql + " ORDER BY updated_at DESC, id", args)]

        return await self._run(q)

    async def history(self, tool_id: str) -> list[dict[str, Any]]:
        def q(db: sqlite3.Connection) -> list[dict[str, Any]]:
            return [dict(r) for r in db.execute("SELECT * FROM history WHERE tool_id=? ORDER BY seq", (tool_id,))]

        return await self._run(q)

    async def others(self, server: str) -> list[tuple[str, str, str]]:
        """(server, name, description) of every tool of the other servers: shadowing context."""

        def q(db: sqlite3.Connection) -> list[tuple[str, str, str]]:
            return [
                (o["server"], o["name"], json.loads(o["definition"]).get("description", ""))
                for o in db.execute("SELECT server, name, definition FROM tools WHERE server<>? ORDER BY id", (server,))
            ]

        return await self._run(q)

    # -- discovery -----------------------------------------------------------------

    async def record_discovery(self, tool: ToolDefinition, verification: dict[str, Any]) -> tuple[ToolRecord, str]:
        """Pin a listed tool. Returns the record and ``"new"``, ``"unchanged"`` or ``"changed"``.

        New and changed definitions are left in ``PendingReview``; the service analyses them next."""
        definition = tool.signed_object()
        h = definition_hash(definition)
        now = self._now()

        def tx(db: sqlite3.Connection) -> tuple[ToolRecord, str]:
            r = db.execute("SELECT * FROM tools WHERE id=?", (tool.id,)).fetchone()
            if r is None:
                db.execute(
                    "INSERT INTO tools (id, server, name, definition, def_hash, meta, state, verification, findings,"
                    " reason, first_seen, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        tool.id,
                        tool.server,
                        tool.name,
                        json.dumps(definition),
                        h,
                        json.dumps(tool.meta),
                        PENDING,
                        json.dumps(verification),
                        "[]",
                        "new",
                        now,
                        now,
                    ),
                )
                self._log(db, tool.id, now, None, PENDING, "engine", "discovered", h)
                event = "new"
            elif r["def_hash"] == h:
                db.execute(
                    "UPDATE tools SET verification=?, meta=? WHERE id=?",
                    (json.dumps(verification), json.dumps(tool.meta), tool.id),
                )
                event = "unchanged"
            else:
                base = json.loads(r["approved_definition"]) if r["approved_definition"] else json.loads(r["definition"])
                diff = definition_diff(
                    base, definition, old_label="approved" if r["approved_definition"] else "previous"
                )
                findings = [
                    {
                        "kind": "changed",
                        "severity": "High",
                        "reason": "tool definition changed since it was pinned (possible rug pull)",
                        "evidence": diff[:2000],
                        "field": "definition",
                        "span": None,
                    }
                ]
                db.execute(
                    "UPDATE tools SET definition=?, def_hash=?, meta=?, state=?, verification=?, findings=?, diff=?,"
                    " reason='changed', scope=NULL, approval_signature=NULL, deferred=0, awaiting_since=NULL, updated_at=? WHERE id=?",
                    (
                        json.dumps(definition),
                        h,
                        json.dumps(tool.meta),
                        PENDING,
                        json.dumps(verification),
                        json.dumps(findings),
                        diff,
                        now,
                        tool.id,
                    ),
                )
                self._log(db, tool.id, now, r["state"], PENDING, "engine", "definition changed: back to review", h)
                event = "changed"
            return _row(db.execute("SELECT * FROM tools WHERE id=?", (tool.id,)).fetchone()), event

        return await self._tx(tx)

    # -- state changes ---------------------------------------------------------------

    async def transition(
        self,
        tool_id: str,
        state: str,
        *,
        actor: str,
        note: str = "",
        expected_hash: str | None = None,
        expected_state: str | tuple[str, ...] | None = None,
        updates: dict[str, Any] | None = None,
    ) -> tuple[ToolRecord, str]:
        """Move ``tool_id`` to ``state`` if :data:`TRANSITIONS` allows it; returns (record, old state).

        ``expected_hash`` (what the operator saw) must still be the served definition's hash, so an
        approval never lands on a definition nobody read; ``expected_state`` guards against a race with
        another writer (``MCP_007`` when the tool moved meanwhile). ``updates`` sets other columns in
        the same transaction. Entering ``AwaitingHumanReview`` starts its expiry clock."""
        if state not in STATES:
            raise SymbiError(
                ErrorCode.MCP_007, f"unknown review state {state}", offending=state, hint=f"one of {', '.join(STATES)}"
            )
        now = self._now()
        cols = dict(updates or {})

        def tx(db: sqlite3.Connection) -> tuple[ToolRecord, str]:
            rec = self._get(db, tool_id)
            if expected_state is not None:
                allowed = (expected_state,) if isinstance(expected_state, str) else expected_state
                if rec.state not in allowed:
                    raise _illegal(tool_id, rec.state, state)
            if state not in TRANSITIONS.get(rec.state, frozenset()):
                raise _illegal(tool_id, rec.state, state)
            if expected_hash is not None and expected_hash != rec.def_hash:
                raise SymbiError(
                    ErrorCode.MCP_003,
                    f"tool {tool_id} changed while it was being reviewed",
                    offending=tool_id,
                    hint="review the current definition again",
                    details={"expected": expected_hash, "current": rec.def_hash},
                )
            if state == APPROVED:
                cols.setdefault("approved_hash", rec.def_hash)
                cols.setdefault("approved_definition", rec.definition)
                cols.setdefault("diff", "")
                cols.setdefault("deferred", False)
            if state in (REJECTED, AWAITING_HUMAN, EXPIRED, PENDING, UNDER_REVIEW):
                cols.setdefault("scope", None)
                cols.setdefault("approval_signature", None)
            if state == AWAITING_HUMAN and rec.state != AWAITING_HUMAN:
                cols.setdefault("awaiting_since", now)
            if state in USABLE_STATES or state == REJECTED:
                cols.setdefault("awaiting_since", None)
            if actor != "engine" or state in (APPROVED, REJECTED):
                cols.setdefault("note", note)
                cols.setdefault("decided_by", actor)
            cols["state"] = state
            cols["updated_at"] = now
            sets, args = [], []
            for k, v in cols.items():
                sets.append(f"{k}=?")
                args.append(json.dumps(v) if isinstance(v, dict | list) else (int(v) if isinstance(v, bool) else v))
            db.execute(f"UPDATE tools SET {', '.join(sets)} WHERE id=?", (*args, tool_id))
            self._log(db, tool_id, now, rec.state, state, actor, note, rec.def_hash)
            return self._get(db, tool_id), rec.state

        return await self._tx(tx)

    async def decide(
        self, tool_id: str, state: str, *, actor: str, note: str = "", expected_hash: str | None = None, **updates: Any
    ) -> ToolRecord:
        """:meth:`transition` returning only the record (the older name, kept for callers)."""
        rec, _old = await self.transition(
            tool_id, state, actor=actor, note=note, expected_hash=expected_hash, updates=updates
        )
        return rec

    async def update(self, tool_id: str, **cols: Any) -> ToolRecord:
        """Set non-state columns (findings, score, analyzer, verification...) without a transition."""

        def tx(db: sqlite3.Connection) -> ToolRecord:
            self._get(db, tool_id)
            sets = ", ".join(f"{k}=?" for k in cols)
            args = [
                json.dumps(v) if isinstance(v, dict | list) else (int(v) if isinstance(v, bool) else v)
                for v in cols.values()
            ]
            db.execute(f"UPDATE tools SET {sets} WHERE id=?", (*args, tool_id))
            return self._get(db, tool_id)

        return await self._tx(tx)

    async def consume_once(self, tool_id: str, def_hash: str, *, actor: str = "engine") -> bool:
        """Use up a single-use approval (atomically: two calls can never share one)."""
        now = self._now()

        def tx(db: sqlite3.Connection) -> bool:
            cur = db.execute(
                "UPDATE tools SET state=?, scope=NULL, approval_signature=NULL, awaiting_since=?, updated_at=?"
                " WHERE id=? AND state=? AND scope='once' AND approved_hash=? AND def_hash=?",
                (AWAITING_HUMAN, now, now, tool_id, APPROVED, def_hash, def_hash),
            )
            if cur.rowcount != 1:
                return False
            self._log(
                db, tool_id, now, APPROVED, AWAITING_HUMAN, actor, "single-use approval used by one call", def_hash
            )
            return True

        return await self._tx(tx)

    async def expire_due(self, timeout: float) -> list[ToolRecord]:
        """``AwaitingHumanReview`` older than ``timeout`` seconds → ``Expired`` (0 = never)."""
        if timeout <= 0:
            return []
        now = self._now()

        def tx(db: sqlite3.Connection) -> list[ToolRecord]:
            due = [
                _row(r)
                for r in db.execute(
                    "SELECT * FROM tools WHERE state=? AND awaiting_since IS NOT NULL AND awaiting_since + ? <= ?",
                    (AWAITING_HUMAN, timeout, now),
                )
            ]
            for rec in due:
                db.execute("UPDATE tools SET state=?, updated_at=? WHERE id=?", (EXPIRED, now, rec.id))
                self._log(
                    db,
                    rec.id,
                    now,
                    AWAITING_HUMAN,
                    EXPIRED,
                    "engine",
                    f"no decision within review_timeout ({timeout:g} s)",
                    rec.def_hash,
                )
            return [self._get(db, rec.id) for rec in due]

        return await self._tx(tx)

    # -- per-call approvals ------------------------------------------------------------

    async def add_call(self, call: dict[str, Any]) -> None:
        def tx(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT INTO pending_calls (id, agent_id, tool_id, arguments, sha, created_at, expires_at, policy)"
                " VALUES (?,?,?,?,?,?,?,?)",
                (
                    call["id"],
                    call["agent_id"],
                    call["tool_id"],
                    json.dumps(call["arguments"]),
                    call["arguments_sha256"],
                    call["created_at"],
                    call["expires_at"],
                    call.get("policy"),
                ),
            )

        await self._tx(tx)

    async def get_call(self, call_id: str) -> dict[str, Any] | None:
        def q(db: sqlite3.Connection) -> dict[str, Any] | None:
            r = db.execute("SELECT * FROM pending_calls WHERE id=?", (call_id,)).fetchone()
            return _call_row(r) if r else None

        return await self._run(q)

    async def calls(self, *, undecided: bool = True, limit: int = 200) -> list[dict[str, Any]]:
        """Per-call approvals, newest first; by default only those still waiting."""

        def q(db: sqlite3.Connection) -> list[dict[str, Any]]:
            where = "WHERE decision IS NULL" if undecided else ""
            return [
                _call_row(r)
                for r in db.execute(
                    f"SELECT * FROM pending_calls {where} ORDER BY created_at DESC, id LIMIT ?", (limit,)
                )
            ]

        return await self._run(q)

    async def decide_call(
        self, call_id: str, decision: str, *, actor: str, sha: str | None = None, reason: str = ""
    ) -> dict[str, Any]:
        """Record a decision on a waiting call (first decision wins). ``sha`` must match when given;
        an expired call cannot be approved."""
        now = self._now()

        def tx(db: sqlite3.Connection) -> dict[str, Any]:
            r = db.execute("SELECT * FROM pending_calls WHERE id=?", (call_id,)).fetchone()
            if r is None:
                raise SymbiError(
                    ErrorCode.MCP_006,
                    f"no pending call {call_id}",
                    offending=call_id,
                    hint="see `symbiont tools calls`",
                )
            if r["decision"] is not None:
                raise SymbiError(
                    ErrorCode.MCP_006, f"call {call_id} was already decided: {r['decision']}", offending=call_id
                )
            if decision == "approved":
                if now >= r["expires_at"]:
                    db.execute(
                        "UPDATE pending_calls SET decision='expired', decided_by='engine', decided_at=? WHERE id=?",
                        (now, call_id),
                    )
                    raise SymbiError(ErrorCode.MCP_006, f"call {call_id} expired", offending=call_id)
                if sha is not None and sha != r["sha"]:
                    raise SymbiError(
                        ErrorCode.MCP_006,
                        "approval does not match the call's arguments",
                        offending=call_id,
                        hint="review the call again: its arguments are not the ones approved",
                    )
            db.execute(
                "UPDATE pending_calls SET decision=?, decided_by=?, decided_at=?, reason=? WHERE id=?",
                (decision, actor, now, reason, call_id),
            )
            return _call_row(db.execute("SELECT * FROM pending_calls WHERE id=?", (call_id,)).fetchone())

        return await self._tx(tx)

    async def settle_call(self, call_id: str, outcome: str, actor: str = "engine", reason: str = "") -> None:
        """The waiting engine's record of how a call ended, unless a decision is already on record."""
        now = self._now()

        def tx(db: sqlite3.Connection) -> None:
            db.execute(
                "UPDATE pending_calls SET decision=?, decided_by=?, decided_at=?, reason=? WHERE id=? AND decision IS NULL",
                (outcome, actor, now, reason, call_id),
            )

        await self._tx(tx)

    # -- engine start ------------------------------------------------------------------

    async def engine_started(self) -> dict[str, list[str]]:
        """Recovery when an engine opens the registry (never when a CLI does): calls left waiting
        by a dead engine expire; session approvals end with the session that made them."""
        now = self._now()

        def tx(db: sqlite3.Connection) -> dict[str, list[str]]:
            calls = [r["id"] for r in db.execute("SELECT id FROM pending_calls WHERE decision IS NULL")]
            db.execute(
                "UPDATE pending_calls SET decision='expired', decided_by='engine', decided_at=?, reason='engine restarted'"
                " WHERE decision IS NULL",
                (now,),
            )
            sessions = [
                _row(r)
                for r in db.execute("SELECT * FROM tools WHERE scope='session' AND state IN (?,?)", USABLE_STATES)
            ]
            for rec in sessions:
                db.execute(
                    "UPDATE tools SET state=?, scope=NULL, approval_signature=NULL, awaiting_since=?, updated_at=? WHERE id=?",
                    (AWAITING_HUMAN, now, now, rec.id),
                )
                self._log(
                    db,
                    rec.id,
                    now,
                    rec.state,
                    AWAITING_HUMAN,
                    "engine",
                    "session approval ended with the engine restart",
                    rec.def_hash,
                )
            return {"calls": calls, "sessions": [r.id for r in sessions]}

        return await self._tx(tx)

    # -- audit outbox (decisions made by a CLI while an engine holds the audit trail) ----

    async def outbox_add(self, event: dict[str, Any]) -> None:
        now = self._now()
        await self._tx(
            lambda db: db.execute("INSERT INTO audit_outbox (ts, event) VALUES (?,?)", (now, json.dumps(event)))
        )

    async def outbox_take(self, limit: int = 500) -> list[tuple[int, dict[str, Any]]]:
        def q(db: sqlite3.Connection) -> list[tuple[int, dict[str, Any]]]:
            return [
                (r["seq"], json.loads(r["event"]))
                for r in db.execute("SELECT * FROM audit_outbox ORDER BY seq LIMIT ?", (limit,))
            ]

        return await self._run(q)

    async def outbox_done(self, seqs: list[int]) -> None:
        if seqs:
            await self._tx(
                lambda db: db.execute(f"DELETE FROM audit_outbox WHERE seq IN ({','.join('?' * len(seqs))})", seqs)
            )
