"""Replaying recorded decisions from the audit trail against a policy file.

Expected shape of the audit trail (``<data_dir>/audit.db``, SQLite): a table
(``events``, ``audit_events`` or any table with a ``details`` column) whose
rows carry ``details`` as JSON. A row counts as a recorded policy decision
when ``details.policy_request`` is the flat request object that was
evaluated. The recorded decision is the row's ``decision`` column, else
``details.policy_decision.decision``, else ``details.decision``; the deciding
policy, if recorded, is ``details.policy_decision.policy`` or
``details.policy``. The event time (column ``ts``/``timestamp``/``at``/
``time``/``created_at``: epoch seconds or ISO 8601) is used as the
evaluation time, so time windows replay as they were.

The database is opened read-only (``mode=ro``), so replay is safe while an
engine runs.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import ErrorCode, SymbiError
from engine.policy.engine import PolicyEngine
from engine.policy.model import Decision, canonical_effect
from engine.safeparse import MAX_DEPTH, loads_json

AUDIT_DB = "audit.db"
_TIME_COLUMNS = ("ts", "timestamp", "at", "time", "created_at", "recorded_at")
_AGENT_COLUMNS = ("agent", "agent_id", "agent_name")
_SEQ_COLUMNS = ("seq", "id", "event_id")


@dataclass(frozen=True, slots=True)
class RecordedDecision:
    seq: Any
    at: float | None
    agent: str | None
    request: dict[str, Any]
    decision: str | None
    policy: str | None


@dataclass(frozen=True, slots=True)
class ReplayChange:
    record: RecordedDecision
    now: Decision

    def describe(self) -> str:
        req = self.record.request
        when = (
            ""
            if self.record.at is None
            else dt.datetime.fromtimestamp(self.record.at, dt.UTC).strftime("%Y-%m-%d %H:%M:%S ")
        )
        was = f"{self.record.decision}" + (f" ({self.record.policy})" if self.record.policy else "")
        now = f"{self.now.decision}" + (f" ({self.now.policy})" if self.now.policy else " (default)")
        return (
            f"#{self.record.seq} {when}{self.record.agent or req.get('agent_id') or '-'}: "
            f"{req.get('operation')} {req.get('resource_type')} {req.get('resource_path')!s}: {was} -> {now}"
        )


@dataclass
class ReplayReport:
    total: int = 0
    unchanged: int = 0
    changed: list[ReplayChange] = field(default_factory=list)
    errors: list[tuple[RecordedDecision, SymbiError]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "unchanged": self.unchanged,
            "changed": [
                {
                    "seq": c.record.seq,
                    "at": c.record.at,
                    "agent": c.record.agent,
                    "request": c.record.request,
                    "recorded": {"decision": c.record.decision, "policy": c.record.policy},
                    "now": c.now.to_dict(),
                }
                for c in self.changed
            ],
            "errors": [{"seq": r.seq, "error": e.to_dict()} for r, e in self.errors],
        }


def parse_time(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) / 1000.0 if value > 1e11 else float(value)  # milliseconds, if that large
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.UTC)
        return parsed.timestamp()
    return None


def _pick(row: dict[str, Any], names: tuple[str, ...]) -> Any:
    for name in names:
        if name in row and row[name] is not None:
            return row[name]
    return None


def _tables(con: sqlite3.Connection) -> list[str]:
    names = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    with_details = []
    for name in names:
        cols = {r[1] for r in con.execute(f'PRAGMA table_info("{name}")')}
        if "details" in cols:
            with_details.append(name)
    preferred = [n for n in ("events", "audit_events", "audit") if n in with_details]
    return preferred + [n for n in with_details if n not in preferred]


def iter_recorded_decisions(data_dir: str | Path) -> Iterator[RecordedDecision]:
    """Recorded policy decisions in ``<data_dir>/audit.db``, oldest first.

    Raises ``AUDIT_003`` if there is no audit database, ``STORE_001`` if it
    cannot be read. Rows whose details are not JSON or carry no request are skipped.
    """
    db = Path(data_dir).expanduser() / AUDIT_DB
    if not db.is_file():
        raise SymbiError(
            ErrorCode.AUDIT_003,
            "no audit trail to replay",
            offending=str(db),
            hint="run the engine with auditing on first, or pass --data-dir to the right data dir",
        )
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise SymbiError(ErrorCode.STORE_001, f"cannot open the audit trail: {exc}", offending=str(db)) from exc
    con.row_factory = sqlite3.Row
    try:
        for table in _tables(con):
            query = f'SELECT rowid AS _rowid, * FROM "{table}" WHERE details LIKE ? ORDER BY rowid'
            for row in con.execute(query, ("%policy_request%",)):
                record = _record(dict(row))
                if record is not None:
                    yield record
    except sqlite3.Error as exc:
        raise SymbiError(ErrorCode.STORE_001, f"cannot read the audit trail: {exc}", offending=str(db)) from exc
    finally:
        con.close()


def _record(row: dict[str, Any]) -> RecordedDecision | None:
    raw = row.get("details")
    try:
        # audit details are redacted to MAX_DEPTH levels when written; far deeper is a tampered row: skipped
        details = loads_json(raw, max_depth=4 * MAX_DEPTH) if isinstance(raw, (str, bytes)) else raw
    except (ValueError, TypeError):
        return None
    if not isinstance(details, dict) or not isinstance(details.get("policy_request"), dict):
        return None
    policy_decision = details.get("policy_decision")
    recorded: dict[str, Any] = policy_decision if isinstance(policy_decision, dict) else {}
    decision = row.get("decision") or recorded.get("decision") or details.get("decision")
    if isinstance(decision, str):
        decision = canonical_effect(decision) or decision
    else:
        decision = None
    policy = recorded.get("policy", details.get("policy"))
    return RecordedDecision(
        seq=_pick(row, _SEQ_COLUMNS) or row.get("_rowid"),
        at=parse_time(_pick(row, _TIME_COLUMNS)),
        agent=_pick(row, _AGENT_COLUMNS),
        request=details["policy_request"],
        decision=decision,
        policy=policy if isinstance(policy, str) else None,
    )


def replay(engine: PolicyEngine, records: Iterable[RecordedDecision]) -> ReplayReport:
    """Evaluate each recorded request (at its recorded time) and list decisions that change."""
    report = ReplayReport()
    for record in records:
        report.total += 1
        try:
            now = engine.evaluate(record.request, at=record.at)
        except SymbiError as exc:
            report.errors.append((record, exc))
            continue
        if now.decision == record.decision:
            report.unchanged += 1
        else:
            report.changed.append(ReplayChange(record, now))
    return report
