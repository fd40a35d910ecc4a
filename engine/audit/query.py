"""Reading the audit trail: filters, paging, tail, follow and JSONL export.

Owns :class:`AuditFilter` (time range, types, agent, actor, decision, free
text), :class:`AuditReader` (an async, read-only view of ``audit.db`` that is
safe to use while an engine appends: WAL readers never block the writer) and
:func:`parse_time` (ISO 8601, epoch seconds, ``now`` or a relative ``"10m"``
meaning ten minutes ago). Bad input is ``AUDIT_003`` naming it.

Paging: ``offset`` for simple pages, or keyset paging with ``after_seq`` /
``before_seq`` (constant cost at any depth; what a virtual list should use).
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import aiosqlite

from engine.audit.model import AuditRecord
from engine.audit.store import EVENT_COLUMNS, connect_readonly, resolve_db_path
from engine.config import parse_duration
from engine.errors import ErrorCode, SymbiError

__all__ = ["MAX_LIMIT", "AuditFilter", "AuditReader", "Notifier", "parse_time", "record_from_row"]

MAX_LIMIT = 100_000
_TIME_HINT = (
    'use ISO 8601 ("2026-11-27T10:00:00", "2026-11-27 10:00Z"), epoch seconds, "now", or a relative "10m", "2h", "1d"'
)


def parse_time(value: str | float | datetime | None, *, name: str = "time", now: float | None = None) -> float | None:
    """Epoch seconds from ISO 8601, epoch seconds, ``now`` or ``"<duration>"`` / ``"<duration> ago"`` (before now)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.timestamp()  # a naive datetime is local time
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str) or not value.strip():
        raise SymbiError(ErrorCode.AUDIT_003, f"cannot read the {name} time", offending=value, hint=_TIME_HINT)
    text = value.strip()
    current = time.time() if now is None else now
    if text.lower() == "now":
        return current
    if re.fullmatch(r"-?\d+(\.\d+)?", text) and len(text) >= 9:  # epoch seconds; short numbers are durations
        return float(text)
    rel = text[:-4].strip() if text.lower().endswith(" ago") else text
    if re.fullmatch(r"[\d.]+\s*[a-zA-Z]+(\s*[\d.]+\s*[a-zA-Z]+)*", rel):
        try:
            return current - parse_duration(rel)
        except ValueError:
            pass
    try:
        parsed = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise SymbiError(
            ErrorCode.AUDIT_003, f"cannot read the {name} time", offending=value, hint=_TIME_HINT
        ) from None
    return parsed.timestamp()


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Which events: every set field must match. ``types`` entries ending in ``*`` match a prefix."""

    since: float | None = None
    until: float | None = None
    types: tuple[str, ...] = ()
    agent: str | None = None
    actor: str | None = None
    decision: str | None = None
    text: str | None = None

    @classmethod
    def build(
        cls,
        *,
        since: str | float | datetime | None = None,
        until: str | float | datetime | None = None,
        types: str | Iterable[str] | None = None,
        agent: str | None = None,
        actor: str | None = None,
        decision: str | None = None,
        text: str | None = None,
        now: float | None = None,
    ) -> AuditFilter:
        """A filter from user input (times as text, types comma-separated); ``AUDIT_003`` on bad input."""
        start = parse_time(since, name="since", now=now)
        end = parse_time(until, name="until", now=now)
        if start is not None and end is not None and start > end:
            raise SymbiError(
                ErrorCode.AUDIT_003, "the time range is empty: since is after until", offending=f"{since} .. {until}"
            )
        if isinstance(types, str):
            types = [types]
        names = tuple(t.strip() for group in (types or ()) for t in str(group).split(",") if t.strip())
        for t in names:
            if not re.fullmatch(r"[A-Za-z0-9_.:/-]+\*?|\*", t):
                raise SymbiError(
                    ErrorCode.AUDIT_003, "invalid event type filter", offending=t, hint="e.g. agent.state or agent.*"
                )
        return cls(start, end, names, agent or None, actor or None, decision or None, text or None)

    def where(self) -> tuple[str, list[Any]]:
        """An SQL condition (``1`` when empty) and its parameters."""
        parts: list[str] = []
        params: list[Any] = []
        if self.since is not None:
            parts.append("ts_us >= ?")
            params.append(round(self.since * 1_000_000))
        if self.until is not None:
            parts.append("ts_us <= ?")
            params.append(round(self.until * 1_000_000))
        if self.types and "*" not in self.types:
            exact = [t for t in self.types if not t.endswith("*")]
            prefixes = [t[:-1] for t in self.types if t.endswith("*")]
            alts = []
            if exact:
                alts.append(f"type IN ({', '.join('?' * len(exact))})")
                params += exact
            for p in prefixes:
                alts.append("type LIKE ? ESCAPE '\\'")
                params.append(_like_escape(p) + "%")
            parts.append("(" + " OR ".join(alts) + ")")
        for column, value in (("agent", self.agent), ("actor", self.actor), ("decision", self.decision)):
            if value is not None:
                parts.append(f"{column} = ?")
                params.append(value)
        if self.text:
            pattern = "%" + _like_escape(self.text) + "%"
            cols = ("type", "agent", "actor", "action", "resource", "details")
            parts.append("(" + " OR ".join(f"{c} LIKE ? ESCAPE '\\'" for c in cols) + ")")
            params += [pattern] * len(cols)
        return (" AND ".join(parts) or "1"), params


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def record_from_row(row: tuple[Any, ...]) -> AuditRecord:
    seq, ts_us, etype, agent, actor, action, resource, decision, details, prev, h = row
    try:
        parsed = json.loads(details)
    except (TypeError, ValueError, RecursionError):  # RecursionError: a tampered row nested 100k deep
        parsed = {"_unreadable_details": str(details)}
    return AuditRecord(seq, ts_us, etype, agent, actor, action, resource, decision, parsed, prev, h)


class Notifier:
    """Wakes followers when the in-process writer commits."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, timeout: float) -> None:
        event = self._event
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            pass


def _check_paging(limit: int, offset: int) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise SymbiError(ErrorCode.AUDIT_003, f"limit must be between 1 and {MAX_LIMIT}", offending=limit)
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise SymbiError(ErrorCode.AUDIT_003, "offset must be a whole number >= 0", offending=offset)


class AuditReader:
    """A read-only, async view of one audit log (data dir or ``audit.db`` path)."""

    def __init__(self, target: str | Path, *, notifier: Notifier | None = None) -> None:
        self.path = resolve_db_path(target)
        self._notifier = notifier
        self._db: aiosqlite.Connection | None = None

    async def open(self) -> AuditReader:
        if self._db is None:
            connect_readonly(self.path).close()  # AUDIT_003 naming the file if it is not an audit log
            self._db = await aiosqlite.connect(f"file:{self.path}?mode=ro", uri=True)
            await self._db.execute("PRAGMA busy_timeout = 5000")
        return self

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    async def __aenter__(self) -> AuditReader:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _rows(self, sql: str, params: list[Any]) -> list[Any]:
        if self._db is None:
            await self.open()
        assert self._db is not None
        try:
            return list(await self._db.execute_fetchall(sql, params))
        except sqlite3.Error as exc:
            raise SymbiError(
                ErrorCode.AUDIT_003, f"cannot read the audit log: {exc}", offending=str(self.path)
            ) from exc

    async def query(
        self,
        flt: AuditFilter | None = None,
        *,
        limit: int = 100,
        offset: int = 0,
        after_seq: int | None = None,
        before_seq: int | None = None,
        newest_first: bool = False,
        **fields: Any,
    ) -> list[AuditRecord]:
        """Matching events in ``seq`` order (``newest_first`` reverses). ``fields`` build a filter:
        ``since``, ``until``, ``types``, ``agent``, ``actor``, ``decision``, ``text``."""
        _check_paging(limit, offset)
        flt = _merge(flt, fields)
        cond, params = flt.where()
        if after_seq is not None:
            cond += " AND seq > ?"
            params.append(int(after_seq))
        if before_seq is not None:
            cond += " AND seq < ?"
            params.append(int(before_seq))
        order = "DESC" if newest_first else "ASC"
        sql = f"SELECT {EVENT_COLUMNS} FROM events WHERE {cond} ORDER BY seq {order} LIMIT ? OFFSET ?"
        return [record_from_row(r) for r in await self._rows(sql, [*params, limit, offset])]

    async def count(self, flt: AuditFilter | None = None, **fields: Any) -> int:
        cond, params = _merge(flt, fields).where()
        rows = await self._rows(f"SELECT COUNT(*) FROM events WHERE {cond}", params)
        return int(rows[0][0])

    async def get(self, seq: int) -> AuditRecord | None:
        rows = await self._rows(f"SELECT {EVENT_COLUMNS} FROM events WHERE seq = ?", [seq])
        return record_from_row(rows[0]) if rows else None

    async def head(self) -> tuple[int, str | None]:
        rows = await self._rows("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1", [])
        return (rows[0][0], rows[0][1]) if rows else (0, None)

    async def tail(self, n: int = 20, flt: AuditFilter | None = None, **fields: Any) -> list[AuditRecord]:
        """The last ``n`` matching events, oldest first."""
        records = await self.query(flt, limit=n, newest_first=True, **fields)
        return records[::-1]

    async def follow(
        self,
        flt: AuditFilter | None = None,
        *,
        after_seq: int | None = None,
        poll_interval: float = 0.25,
        **fields: Any,
    ) -> AsyncIterator[AuditRecord]:
        """New matching events as they are committed, forever (from ``after_seq``; default: the current head).

        In the engine's process the writer wakes followers at once; another
        process (``symbiont audit tail -f``) polls every ``poll_interval`` s.
        """
        flt = _merge(flt, fields)
        last = (await self.head())[0] if after_seq is None else after_seq
        while True:
            head = (await self.head())[0]
            while last < head:  # everything up to head is committed: read it in pages, then move on
                batch = await self.query(flt, after_seq=last, before_seq=head + 1, limit=1000)
                for record in batch:
                    yield record
                last = batch[-1].seq if len(batch) == 1000 else head
            if self._notifier is not None:
                await self._notifier.wait(poll_interval)
            else:
                await asyncio.sleep(poll_interval)

    async def export_jsonl(self, dest: str | Path | IO[str], flt: AuditFilter | None = None, **fields: Any) -> int:
        """Write matching events as JSON lines (``AuditRecord.to_dict()``); returns how many."""
        flt = _merge(flt, fields)
        if isinstance(dest, str | Path):
            try:
                with open(dest, "w", encoding="utf-8") as fh:
                    return await self._export(fh, flt)
            except OSError as exc:
                raise SymbiError(
                    ErrorCode.AUDIT_003, f"cannot write the export: {exc.strerror or exc}", offending=str(dest)
                ) from exc
        return await self._export(dest, flt)

    async def _export(self, fh: IO[str], flt: AuditFilter, page: int = 1000) -> int:
        # pages of 1000 keep each stretch of encoding work in the event loop short
        count, last = 0, 0
        while True:
            batch = await self.query(flt, after_seq=last, limit=page)
            fh.write("".join(json.dumps(r.to_dict(), ensure_ascii=False, separators=(",", ":")) + "\n" for r in batch))
            count += len(batch)
            if len(batch) < page:
                return count
            last = batch[-1].seq


def _merge(flt: AuditFilter | None, fields: dict[str, Any]) -> AuditFilter:
    if not fields:
        return flt or AuditFilter()
    built = AuditFilter.build(**fields)
    if flt is None:
        return built
    return replace(flt, **{k: getattr(built, k) for k in fields if k != "now"})
