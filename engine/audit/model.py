"""The audit trail's data: what callers submit and what the chain stores.

Owns :class:`AuditEvent` (a request to record something), :class:`AuditRecord`
(a stored, hashed event), the well-known event types and decisions, input
validation (bad input is ``AUDIT_003`` naming the field, never a failed
trail) and :func:`prepare`, which validates, redacts and serializes an event
so that the writer only has to number, hash and insert it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from engine.audit.canonical import canonical_json, record_canonical
from engine.audit.redact import Redactor
from engine.errors import ErrorCode, SymbiError

__all__ = [
    "DECISIONS",
    "EVENT_TYPES",
    "AuditEvent",
    "AuditRecord",
    "Prepared",
    "iso_time",
    "prepare",
    "prepare_fields",
]

# Types the engine emits (others are allowed: any dotted lowercase name).
EVENT_TYPES = (
    "engine.start",
    "engine.stop",
    "engine.recovered",
    "agent.create",
    "agent.state",
    "agent.delete",
    "resource.allocate",
    "resource.release",
    "resource.violation",
    "tool.call",
    "tool.review",
    "policy.reload",
    "policy.decision",
    "secret.read",
    "secret.write",
    "bus.send",
    "bus.deliver",
    "bus.reject",
)
DECISIONS = ("allow", "deny", "n/a", "error", "pending")

_TYPE_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:/-]{0,127}")
_ACTOR_RE = re.compile(r"engine|operator|system|[a-z][a-z0-9_-]{0,31}:[^\s\x00-\x1f]{1,200}")
_DECISION_RE = re.compile(r"[a-z][a-z0-9_/-]{0,31}")
_AGENT_RE = re.compile(r"[^\x00-\x1f]{1,256}")
_HINT = "see engine.audit.AuditEvent for the accepted fields"


@dataclass(slots=True)
class AuditEvent:
    """Something to record. ``ts`` (epoch seconds) defaults to the trail's clock."""

    type: str
    action: str = ""
    resource: str = ""
    decision: str = "n/a"
    agent: str | None = None
    actor: str = "engine"
    details: Mapping[str, Any] | None = field(default=None)
    ts: float | None = None


def iso_time(ts_us: int) -> str:
    """ISO 8601 UTC with microseconds, e.g. ``2026-11-27T10:15:00.123456Z``."""
    return datetime.fromtimestamp(ts_us / 1_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(slots=True)
class AuditRecord:
    """One event as stored in the chain (treat as read-only; not frozen because
    freezing costs a microsecond per record on the append path)."""

    seq: int
    ts_us: int
    type: str
    agent: str | None
    actor: str
    action: str
    resource: str
    decision: str
    details: dict[str, Any]
    prev_hash: str
    hash: str

    @property
    def ts(self) -> float:
        """Epoch seconds."""
        return self.ts_us / 1_000_000

    @property
    def time(self) -> str:
        return iso_time(self.ts_us)

    def to_dict(self) -> dict[str, Any]:
        """Every stored field plus ``time`` (ISO 8601); what ``audit export`` writes per line."""
        return {
            "seq": self.seq,
            "ts_us": self.ts_us,
            "time": self.time,
            "type": self.type,
            "agent": self.agent,
            "actor": self.actor,
            "action": self.action,
            "resource": self.resource,
            "decision": self.decision,
            "details": self.details,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }

    def canonical(self) -> str:
        """The canonical text whose SHA-256 is :attr:`hash`."""
        return record_canonical(
            self.seq,
            self.ts_us,
            self.type,
            self.agent,
            self.actor,
            self.action,
            self.resource,
            self.decision,
            canonical_json(self.details),
            self.prev_hash,
        )


class Prepared(NamedTuple):
    """A validated, redacted event waiting for its sequence number."""

    ts_us: int
    type: str
    agent: str | None
    actor: str
    action: str
    resource: str
    decision: str
    details_json: str
    details: dict[str, Any]


def _bad(field_name: str, value: Any, why: str) -> SymbiError:
    shown = value if not isinstance(value, str) or len(value) <= 80 else value[:77] + "..."
    return SymbiError(
        ErrorCode.AUDIT_003, f"invalid audit event field {field_name!r}: {why}", offending=shown, hint=_HINT
    )


def _text(name: str, value: Any, redactor: Redactor) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _bad(name, value, "must be a string")
    return redactor.text(value)


_valid_heads: set[tuple[Any, ...]] = set()  # (type, actor, decision, agent) combinations already validated


def _validate(etype: Any, actor: Any, decision: Any, agent: Any) -> None:
    key = (etype, actor, decision, agent)
    try:
        if key in _valid_heads:
            return
    except TypeError:  # an unhashable field value: certainly invalid, reported below
        pass
    if not isinstance(etype, str) or not _TYPE_RE.fullmatch(etype):
        raise _bad("type", etype, "expected a dotted name like 'agent.state' (letters, digits, . _ : / -)")
    if not isinstance(actor, str) or not _ACTOR_RE.fullmatch(actor):
        raise _bad("actor", actor, "expected 'engine', 'operator', 'system' or '<kind>:<id>' such as 'agent:<id>'")
    if not isinstance(decision, str) or not _DECISION_RE.fullmatch(decision):
        raise _bad("decision", decision, "expected a short lowercase word such as allow, deny, n/a")
    if agent is not None and (not isinstance(agent, str) or not _AGENT_RE.fullmatch(agent)):
        raise _bad("agent", agent, "expected an agent id (1-256 printable characters) or None")
    if len(_valid_heads) > 10_000:
        _valid_heads.clear()
    _valid_heads.add(key)


def prepare(event: AuditEvent, redactor: Redactor, now: float) -> Prepared:
    """Validate, redact and serialize ``event``; raises ``AUDIT_003`` naming a bad field."""
    return prepare_fields(
        redactor,
        now,
        type=event.type,
        action=event.action,
        resource=event.resource,
        decision=event.decision,
        agent=event.agent,
        actor=event.actor,
        details=event.details,
        ts=event.ts,
    )


def prepare_fields(
    redactor: Redactor,
    now: float,
    *,
    type: str,  # noqa: A002 - the field's name
    action: str = "",
    resource: str = "",
    decision: str = "n/a",
    agent: str | None = None,
    actor: str = "engine",
    details: Mapping[str, Any] | None = None,
    ts: float | None = None,
) -> Prepared:
    """:func:`prepare` from keyword fields (the ``AuditEvent`` fields), without building an event."""
    _validate(type, actor, decision, agent)
    if ts is None:
        ts = now
    elif isinstance(ts, bool) or not isinstance(ts, int | float) or not math.isfinite(ts) or ts < 0:
        raise _bad("ts", ts, "expected epoch seconds (a finite, non-negative number)")
    if details is None:
        clean: dict[str, Any] = {}
        details_json = "{}"
    elif isinstance(details, Mapping):
        clean = redactor.redact(details, fix=False)
        details_json = canonical_json(clean)
        try:
            details_json.encode("utf-8")
        except UnicodeEncodeError:  # rare: lone surrogates somewhere; redo, replacing them
            clean = redactor.redact(details)
            details_json = canonical_json(clean)
    else:
        raise _bad("details", details.__class__.__name__, "must be a JSON object (a mapping)")
    return Prepared(
        round(ts * 1_000_000),
        type,
        None if agent is None else redactor.text(agent),
        redactor.text(actor),
        _text("action", action, redactor),
        _text("resource", resource, redactor),
        decision,
        details_json,
        clean,
    )
