"""Persistence of the agent registry and state histories in SQLite.

Writes go through one writer task that commits everything pending in a
single transaction (group commit). ``create``/``delete`` wait for their
commit; state updates are write-behind and committed within one batch, so
an engine killed with SIGKILL loses at most the transitions of the last few
milliseconds, which reconciliation on the next open corrects anyway.

WAL journal with ``synchronous=NORMAL``: durable across a process crash
(kill -9), not across a power cut of the machine.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite

from engine.agents.model import AgentConfig, AgentId, AgentState, StateChange
from engine.dbthread import in_connection_thread
from engine.errors import ErrorCode, SymbiError

# one queued write: the statement ("" for a flush marker), its parameters, and who waits for it
_Write = tuple[str, tuple[Any, ...], asyncio.Future[None] | None]

SCHEMA = """
CREATE TABLE IF NOT EXISTS agents (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    config TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    pid INTEGER,
    pid_started REAL,
    restart_count INTEGER NOT NULL DEFAULT 0,
    exit_code INTEGER,
    last_error TEXT,
    sandbox_ref TEXT,
    tier_used TEXT,
    input TEXT,
    result TEXT
);
CREATE TABLE IF NOT EXISTS state_history (
    agent_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    state TEXT NOT NULL,
    at REAL NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (agent_id, seq)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

SCHEMA_VERSION = "1"
HISTORY_LIMIT = 500  # entries kept per agent


def _loads(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


@dataclass
class StoredAgent:
    id: AgentId
    config: AgentConfig
    state: AgentState
    created_at: float
    updated_at: float
    started_at: float | None
    finished_at: float | None
    pid: int | None
    pid_started: float | None
    restart_count: int
    exit_code: int | None
    last_error: str | None
    history: list[StateChange]
    sandbox_ref: str | None = None
    tier_used: str | None = None
    input: Any = None
    result: Any = None


class AgentStore:
    """The registry table and the history table, behind a group-commit writer."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: aiosqlite.Connection | None = None
        self._pending: list[_Write] = []
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._closing = False
        self.commits = 0
        self.failed: SymbiError | None = None

    async def open(self) -> None:
        try:
            self._db = await aiosqlite.connect(self.path)
            await self._db.execute("PRAGMA journal_mode=WAL")
            await self._db.execute("PRAGMA synchronous=NORMAL")
            await self._db.executescript(SCHEMA)
            async with self._db.execute("SELECT value FROM meta WHERE key='schema_version'") as cur:
                row = await cur.fetchone()
            if row is None:
                await self._db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
            elif row[0] != SCHEMA_VERSION:
                raise SymbiError(
                    ErrorCode.STORE_001,
                    f"agent registry has schema version {row[0]}, this engine reads {SCHEMA_VERSION}",
                    offending=str(self.path),
                    hint="use a matching symbi-console version or a new --data-dir",
                )
            await self._db.commit()
        except sqlite3.DatabaseError as exc:
            raise SymbiError(
                ErrorCode.STORE_001,
                f"cannot open the agent registry: {exc}",
                offending=str(self.path),
                hint="check the file's permissions, or move the damaged file aside",
            ) from exc
        self._writer = asyncio.create_task(self._write_loop(), name="agent-store-writer")

    async def load(self) -> list[StoredAgent]:
        db = self._require()
        agents: dict[str, StoredAgent] = {}
        async with db.execute(
            "SELECT id, config, state, created_at, updated_at, started_at, finished_at, pid, pid_started, "
            "restart_count, exit_code, last_error, sandbox_ref, tier_used, input, result FROM agents ORDER BY created_at"
        ) as cur:
            async for row in cur:
                try:
                    config = AgentConfig.from_dict(json.loads(row[1]))
                except (SymbiError, ValueError, TypeError) as exc:
                    raise SymbiError(
                        ErrorCode.STORE_001,
                        f"agent {row[0]} has an unreadable stored configuration: {exc}",
                        offending=row[0],
                        hint="restore the data dir from a backup or remove that agent's row",
                    ) from exc
                agents[row[0]] = StoredAgent(
                    id=row[0],
                    config=config,
                    state=AgentState(row[2]),
                    created_at=row[3],
                    updated_at=row[4],
                    started_at=row[5],
                    finished_at=row[6],
                    pid=row[7],
                    pid_started=row[8],
                    restart_count=row[9],
                    exit_code=row[10],
                    last_error=row[11],
                    history=[],
                    sandbox_ref=row[12],
                    tier_used=row[13],
                    input=_loads(row[14]),
                    result=_loads(row[15]),
                )
        async with db.execute("SELECT agent_id, state, at, reason FROM state_history ORDER BY agent_id, seq") as cur:
            async for agent_id, state, at, reason in cur:
                if agent_id in agents:
                    agents[agent_id].history.append(StateChange(AgentState(state), at, reason))
        return list(agents.values())

    # -- writes -------------------------------------------------------------

    async def insert(self, agent: StoredAgent) -> None:
        """Insert a new agent and wait until it is committed."""
        fut = asyncio.get_running_loop().create_future()
        self._enqueue(
            "INSERT INTO agents (id, name, config, state, created_at, updated_at, restart_count) "
            "VALUES (?, ?, ?, ?, ?, ?, 0)",
            (
                agent.id,
                agent.config.name,
                json.dumps(agent.config.to_dict()),
                agent.state.value,
                agent.created_at,
                agent.updated_at,
            ),
            None,
        )
        for seq, change in enumerate(agent.history):
            self._enqueue(
                "INSERT INTO state_history VALUES (?, ?, ?, ?, ?)",
                (agent.id, seq, change.state.value, change.at, change.reason),
                None,
            )
        self._pending.append(("", (), fut))
        await fut

    def update(self, agent_id: AgentId, **fields: Any) -> None:
        """Write-behind update of an agent's row."""
        cols = ", ".join(f"{k} = ?" for k in fields)
        values = tuple(v.value if isinstance(v, AgentState) else v for v in fields.values())
        self._enqueue(f"UPDATE agents SET {cols} WHERE id = ?", (*values, agent_id), None)

    def append_history(self, agent_id: AgentId, seq: int, change: StateChange) -> None:
        self._enqueue(
            "INSERT OR REPLACE INTO state_history VALUES (?, ?, ?, ?, ?)",
            (agent_id, seq, change.state.value, change.at, change.reason),
            None,
        )
        if seq >= HISTORY_LIMIT and seq % 100 == 0:
            self._enqueue(
                "DELETE FROM state_history WHERE agent_id = ? AND seq <= ?", (agent_id, seq - HISTORY_LIMIT), None
            )

    async def delete(self, agent_id: AgentId) -> None:
        fut = asyncio.get_running_loop().create_future()
        self._enqueue("DELETE FROM state_history WHERE agent_id = ?", (agent_id,), None)
        self._enqueue("DELETE FROM agents WHERE id = ?", (agent_id,), fut)
        await fut

    async def flush(self) -> None:
        fut = asyncio.get_running_loop().create_future()
        self._enqueue("", (), fut)
        await fut

    def _enqueue(self, sql: str, params: tuple[Any, ...], fut: asyncio.Future[None] | None) -> None:
        if self.failed is not None:
            if fut is not None:
                fut.set_exception(self.failed)
            raise self.failed
        self._pending.append((sql, params, fut))
        self._wake.set()

    async def _write_loop(self) -> None:
        db = self._require()
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._pending = self._pending, []
            if not batch:
                if self._closing:
                    return
                continue
            try:
                # one hop into aiosqlite's thread for the whole batch, not one per statement
                await in_connection_thread(db, self._apply_batch, db._conn, batch)
                self.commits += 1
                for _, _, fut in batch:
                    if fut is not None and not fut.done():
                        fut.set_result(None)
            except sqlite3.Error as exc:
                err = SymbiError(
                    ErrorCode.STORE_001,
                    f"agent registry write failed: {exc}",
                    offending=str(self.path),
                    hint="check free disk space and permissions of the data dir",
                )
                if isinstance(exc, sqlite3.IntegrityError):
                    # one bad statement (e.g. a duplicate name): replay the batch one
                    # statement at a time so only the waiter of the bad one fails
                    await self._replay(db, batch)
                    continue
                self.failed = err
                for _, _, fut in batch:
                    if fut is not None and not fut.done():
                        fut.set_exception(err)
            if self._closing and not self._pending:
                return

    @staticmethod
    def _apply_batch(conn: sqlite3.Connection, batch: list[_Write]) -> None:
        try:
            for sql, params, _ in batch:
                if sql:
                    conn.execute(sql, params)
            conn.commit()
        except BaseException:
            conn.rollback()
            raise

    async def _replay(self, db: aiosqlite.Connection, batch: list[_Write]) -> None:
        bad: sqlite3.Error | None = None
        for sql, params, fut in batch:
            if sql:
                try:
                    await db.execute(sql, params)
                    await db.commit()
                except sqlite3.IntegrityError as exc:
                    await db.rollback()
                    bad = exc
            if fut is not None and not fut.done():
                if bad is not None:
                    fut.set_exception(
                        SymbiError(
                            ErrorCode.STORE_001, f"agent registry write refused: {bad}", offending=str(self.path)
                        )
                    )
                else:
                    fut.set_result(None)
                bad = None

    async def close(self) -> None:
        if self._db is None:
            return
        if self._writer is not None:
            self._closing = True
            self._wake.set()
            try:
                await self._writer
            except Exception:  # noqa: BLE001 - closing must not raise on a dead writer
                pass
        await self._db.close()
        self._db = None

    def _require(self) -> aiosqlite.Connection:
        if self._db is None:
            raise SymbiError(ErrorCode.RUNTIME_001, "agent registry is not open")
        return self._db
