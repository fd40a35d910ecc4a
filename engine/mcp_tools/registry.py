"""The tool registry: every discovered tool definition, pinned, with its review state.

Persisted in SQLite (``data_dir/mcp_tools.db``; plain ``sqlite3`` run in a
worker thread). A tool's id is ``server/name``. Discovery pins the SHA-256 of
the definition (name, description, inputSchema); approval is bound to that
hash. A later listing with a different hash puts the tool back to
``PendingReview`` with a diff against the approved version (rug pull), and the
gate refuses it until a human decides again. Every state change is kept in a
``history`` table with who made it and their note.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import ErrorCode, SymbiError
from engine.mcp_tools.client import ToolDefinition
from engine.mcp_tools.review import definition_diff, definition_hash, shadowing_findings

PENDING, APPROVED, REJECTED = "PendingReview", "Approved", "Rejected"

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
"""


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
    reason: str = ""  # why it is pending: "new" | "changed"
    note: str = ""
    decided_by: str | None = None
    first_seen: float = 0.0
    updated_at: float = 0.0

    @property
    def approved(self) -> bool:
        """Approved, and the definition served now is the one approved."""
        return self.state == APPROVED and self.approved_hash == self.def_hash

    @property
    def verified(self) -> bool:
        return bool(self.verification.get("valid"))

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _row(r: sqlite3.Row) -> ToolRecord:
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
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
            self._db = db

        await asyncio.to_thread(_open)
        return self

    async def close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            await asyncio.to_thread(db.close)

    async def _run(self, fn: Any, *args: Any) -> Any:
        if self._db is None:
            raise SymbiError(ErrorCode.STORE_001, "tool registry is not open", offending=str(self.path))

        def locked() -> Any:
            with self._lock:
                return fn(self._db, *args)

        try:
            return await asyncio.to_thread(locked)
        except sqlite3.Error as exc:
            raise SymbiError(ErrorCode.STORE_001, f"tool registry: {exc}", offending=str(self.path)) from exc

    # -- reads ---------------------------------------------------------------------

    async def get(self, tool_id: str) -> ToolRecord | None:
        def q(db: sqlite3.Connection) -> ToolRecord | None:
            r = db.execute("SELECT * FROM tools WHERE id=?", (tool_id,)).fetchone()
            return _row(r) if r else None

        return await self._run(q)

    async def list(self, *, state: str | None = None, server: str | None = None) -> list[ToolRecord]:
        def q(db: sqlite3.Connection) -> list[ToolRecord]:
            sql, args = "SELECT * FROM tools WHERE 1=1", []
            if state:
                sql += " AND state=?"
                args.append(state)
            if server:
                sql += " AND server=?"
                args.append(server)
            return [_row(r) for r in db.execute(sql + " ORDER BY updated_at DESC, id", args)]

        return await self._run(q)

    async def history(self, tool_id: str) -> list[dict[str, Any]]:
        def q(db: sqlite3.Connection) -> list[dict[str, Any]]:
            return [dict(r) for r in db.execute("SELECT * FROM history WHERE tool_id=? ORDER BY seq", (tool_id,))]

        return await self._run(q)

    # -- discovery -----------------------------------------------------------------

    async def record_discovery(self, tool: ToolDefinition, verification: dict[str, Any]) -> tuple[ToolRecord, str]:
        """Pin a listed tool. Returns the record and ``"new"``, ``"unchanged"`` or ``"changed"``."""
        definition = tool.signed_object()
        h = definition_hash(definition)
        now = self._now()

        def tx(db: sqlite3.Connection) -> tuple[ToolRecord, str]:
            db.execute("BEGIN IMMEDIATE")
            try:
                r = db.execute("SELECT * FROM tools WHERE id=?", (tool.id,)).fetchone()
                if r is None:
                    others = [
                        (o["server"], o["name"], json.loads(o["definition"]).get("description", ""))
                        for o in db.execute("SELECT server, name, definition FROM tools WHERE server<>?", (tool.server,))
                    ]
                    findings = shadowing_findings(tool.server, tool.name, tool.description, others)
                    db.execute(
                        "INSERT INTO tools (id, server, name, definition, def_hash, meta, state, verification, findings,"
                        " reason, first_seen, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                        (tool.id, tool.server, tool.name, json.dumps(definition), h, json.dumps(tool.meta), PENDING,
                         json.dumps(verification), json.dumps(findings), "new", now, now),
                    )
                    db.execute(
                        "INSERT INTO history (tool_id, ts, from_state, to_state, actor, note, def_hash) VALUES (?,?,?,?,?,?,?)",
                        (tool.id, now, None, PENDING, "engine", "discovered", h),
                    )
                    event = "new"
                elif r["def_hash"] == h:
                    db.execute("UPDATE tools SET verification=?, meta=? WHERE id=?", (json.dumps(verification), json.dumps(tool.meta), tool.id))
                    event = "unchanged"
                else:
                    base = json.loads(r["approved_definition"]) if r["approved_definition"] else json.loads(r["definition"])
                    diff = definition_diff(base, definition, old_label="approved" if r["approved_definition"] else "previous")
                    findings = [f for f in json.loads(r["findings"]) if f.get("kind") != "changed"]
                    findings.append({"kind": "changed", "severity": "High", "reason": "tool definition changed since it was pinned (possible rug pull)", "evidence": diff[:2000]})
                    db.execute(
                        "UPDATE tools SET definition=?, def_hash=?, meta=?, state=?, verification=?, findings=?, diff=?,"
                        " reason='changed', updated_at=? WHERE id=?",
                        (json.dumps(definition), h, json.dumps(tool.meta), PENDING, json.dumps(verification),
                         json.dumps(findings), diff, now, tool.id),
                    )
                    db.execute(
                        "INSERT INTO history (tool_id, ts, from_state, to_state, actor, note, def_hash) VALUES (?,?,?,?,?,?,?)",
                        (tool.id, now, r["state"], PENDING, "engine", "definition changed: back to review", h),
                    )
                    event = "changed"
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            return _row(db.execute("SELECT * FROM tools WHERE id=?", (tool.id,)).fetchone()), event

        return await self._run(tx)

    # -- decisions -----------------------------------------------------------------

    async def decide(self, tool_id: str, state: str, *, actor: str, note: str = "", expected_hash: str | None = None) -> ToolRecord:
        """Move a tool to ``Approved`` or ``Rejected``. ``expected_hash`` (what the operator saw) must
        still be the served definition's hash, so an approval never lands on a definition nobody read."""
        if state not in (APPROVED, REJECTED, PENDING):
            raise SymbiError(ErrorCode.CONFIG_001, f"unknown review state {state}", offending=state)
        now = self._now()

        def tx(db: sqlite3.Connection) -> ToolRecord:
            db.execute("BEGIN IMMEDIATE")
            try:
                r = db.execute("SELECT * FROM tools WHERE id=?", (tool_id,)).fetchone()
                if r is None:
                    raise SymbiError(ErrorCode.MCP_002, f"unknown tool {tool_id}", offending=tool_id)
                if expected_hash is not None and expected_hash != r["def_hash"]:
                    raise SymbiError(
                        ErrorCode.MCP_003,
                        f"tool {tool_id} changed while it was being reviewed",
                        offending=tool_id,
                        hint="review the current definition again",
                    )
                if state == APPROVED:
                    db.execute(
                        "UPDATE tools SET state=?, approved_hash=def_hash, approved_definition=definition, diff='',"
                        " reason='', note=?, decided_by=?, updated_at=? WHERE id=?",
                        (APPROVED, note, actor, now, tool_id),
                    )
                else:
                    db.execute(
                        "UPDATE tools SET state=?, note=?, decided_by=?, updated_at=? WHERE id=?", (state, note, actor, now, tool_id)
                    )
                db.execute(
                    "INSERT INTO history (tool_id, ts, from_state, to_state, actor, note, def_hash) VALUES (?,?,?,?,?,?,?)",
                    (tool_id, now, r["state"], state, actor, note, r["def_hash"]),
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            return _row(db.execute("SELECT * FROM tools WHERE id=?", (tool_id,)).fetchone())

        return await self._run(tx)
