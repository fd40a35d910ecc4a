"""The policy vocabulary and the plain data the rest of the package passes around.

Owns: the canonical resource types, operations and effects (with the seed's
alternative spellings), :class:`Diagnostic`, :class:`Decision`,
:class:`AccessRequest`, :class:`ReloadEvent` and the ranking of effects at
equal priority. Nothing here parses YAML or evaluates anything.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from engine.errors import ErrorCode, SymbiError

# --- resource types --------------------------------------------------------

#: Canonical resource types. File .. ResourceAllocation are the issue's list (Memory: agent
#: context and knowledge, resources "<kind>" and "shared/<kind>");
#: Command and Environment are the seed's ``ResourceType`` members we keep.
RESOURCE_TYPES: tuple[str, ...] = (
    "File",
    "Network",
    "Database",
    "API",
    "Tool",
    "Secret",
    "Message",
    "Memory",
    "ResourceAllocation",
    "Command",
    "Environment",
)

#: Types whose resources are endpoints (``[scheme://]host[:port][/path]``);
#: every other type is a ``/``-separated path matched with globs.
ENDPOINT_TYPES: frozenset[str] = frozenset({"Network", "API"})
PATH_TYPES: frozenset[str] = frozenset(RESOURCE_TYPES) - ENDPOINT_TYPES

_TYPE_ALIASES = {
    "agent": "Message",  # the seed's ResourceType::Agent is inter-agent communication
    "messages": "Message",
    "bus": "Message",
    "allocation": "ResourceAllocation",
    "resource": "ResourceAllocation",
    "resources": "ResourceAllocation",
    "files": "File",
    "filesystem": "File",
    "net": "Network",
    "db": "Database",
    "http": "API",
    "secrets": "Secret",
    "tools": "Tool",
    "context": "Memory",
    "knowledge": "Memory",
    "env": "Environment",
}

# --- operations -------------------------------------------------------------

#: The seed's ``AccessType`` members, then the verbs our runtime needs.
OPERATIONS: tuple[str, ...] = (
    "Read",
    "Write",
    "Execute",
    "Delete",
    "Create",
    "Modify",
    "List",
    "Connect",
    "Send",
    "Receive",
    "Publish",
    "Subscribe",
    "Call",
    "Allocate",
)

_OP_ALIASES = {"invoke": "Call", "exec": "Execute", "run": "Execute", "update": "Modify", "get": "Read"}

# --- effects ----------------------------------------------------------------

EFFECTS: tuple[str, ...] = ("Deny", "RequireApproval", "Audit", "Allow")
#: At equal priority the lower rank wins: Deny > RequireApproval > Audit > Allow.
EFFECT_RANK: dict[str, int] = {name: i for i, name in enumerate(EFFECTS)}
_EFFECT_ALIASES = {"escalate": "RequireApproval", "approval": "RequireApproval", "approve": "RequireApproval"}

#: Effects that let the action go ahead (Audit = allow, and flag it).
PERMITTING: frozenset[str] = frozenset({"Allow", "Audit"})

SECURITY_TIERS: dict[str, int] = {"native": 0, "none": 0, "tier0": 0, "tier1": 1, "tier2": 2, "tier3": 3}
TIER_NAMES: tuple[str, ...] = ("Native", "Tier1", "Tier2", "Tier3")


def _fold(text: str) -> str:
    return text.replace("_", "").replace("-", "").replace(" ", "").lower()


def _table(canon: tuple[str, ...], aliases: dict[str, str]) -> dict[str, str]:
    table = {_fold(name): name for name in canon}
    table.update(aliases)
    return table


_TYPE_TABLE = _table(RESOURCE_TYPES, _TYPE_ALIASES)
_OP_TABLE = _table(OPERATIONS, _OP_ALIASES)
_EFFECT_TABLE = _table(EFFECTS, _EFFECT_ALIASES)
_EXACT_TYPES = {name: name for name in RESOURCE_TYPES}
_EXACT_OPS = {name: name for name in OPERATIONS}


def canonical_resource_type(text: str) -> str | None:
    """``"file"``, ``"File"``, ``"resource_allocation"`` -> canonical name, or None."""
    return _EXACT_TYPES.get(text) or _TYPE_TABLE.get(_fold(text))


def canonical_operation(text: str) -> str | None:
    return _EXACT_OPS.get(text) or _OP_TABLE.get(_fold(text))


def canonical_effect(text: str) -> str | None:
    return _EFFECT_TABLE.get(_fold(text))


def suggest(word: str, choices: list[str] | tuple[str, ...]) -> str:
    """`` (did you mean 'x'?)`` or an empty string."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in choices}
        close = [lowered[m] for m in difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)]
    return f" (did you mean '{close[0]}'?)" if close else ""


# --- results ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One finding of validation, at a 1-based line and column.

    ``severity`` is ``"error"`` or ``"warning"``; ``code`` is ``POLICY_002``
    for errors and ``POLICY_W001`` .. for warnings (see the package docstring).
    """

    line: int
    column: int
    severity: str
    code: str
    message: str
    end_line: int | None = None
    end_column: int | None = None

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def format(self, source: str) -> str:
        """``FILE:LINE:COL: CODE message`` (warnings say so in the message)."""
        prefix = "" if self.is_error else "warning: "
        return f"{source}:{self.line}:{self.column}: {self.code} {prefix}{self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "column": self.column,
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True, init=False, eq=False, repr=False)
class Decision:
    """The outcome of one evaluation and why (immutable).

    ``decision`` is ``Allow``, ``Deny``, ``RequireApproval`` or ``Audit``;
    ``policy`` the deciding policy's name (None when the default applied);
    ``matched_conditions`` says, one line each, what matched (worked out on
    first access, so the hot path does not pay for explanations nobody reads).

    A frozen slots dataclass with a hand-written ``__init__``, ``__eq__`` and
    ``__repr__``: ``matched_conditions`` is a lazily computed property, not a
    stored field, so the generated ones would not fit. Unhashable (as before).
    """

    decision: str
    policy: str | None
    reason: str
    cached: bool
    priority: int | None
    default: bool
    _matched: tuple[str, ...] | None
    _explain: Callable[[], tuple[str, ...]] | None

    def __init__(
        self,
        decision: str,
        policy: str | None,
        reason: str,
        matched_conditions: tuple[str, ...] | list[str] | None = (),
        cached: bool = False,
        priority: int | None = None,
        default: bool = False,
        *,
        explain: Callable[[], tuple[str, ...]] | None = None,
    ) -> None:
        # frozen: the constructor (like a dataclass's own) writes through object.__setattr__
        set_ = object.__setattr__
        set_(self, "decision", decision)
        set_(self, "policy", policy)
        set_(self, "reason", reason)
        set_(self, "cached", cached)
        set_(self, "priority", priority)
        set_(self, "default", default)
        set_(self, "_matched", None if explain is not None else tuple(matched_conditions or ()))
        set_(self, "_explain", explain)

    @property
    def matched_conditions(self) -> tuple[str, ...]:
        matched = self._matched
        if matched is None:
            explain = self._explain
            if explain is None:  # another thread memoised it between the two reads (_matched is set first)
                return cast(tuple[str, ...], self._matched)
            matched = tuple(explain())
            # memoise the lazy explanation on the frozen instance (idempotent, so a race is harmless)
            object.__setattr__(self, "_matched", matched)
            object.__setattr__(self, "_explain", None)
        return matched

    def as_cached(self) -> Decision:
        """The same decision, marked as served from the cache."""
        twin = Decision(self.decision, self.policy, self.reason, (), True, self.priority, self.default)
        object.__setattr__(twin, "_matched", self._matched)
        object.__setattr__(twin, "_explain", self._explain)
        return twin

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Decision):
            return NotImplemented
        return (
            self.decision,
            self.policy,
            self.reason,
            self.matched_conditions,
            self.cached,
            self.priority,
            self.default,
        ) == (
            other.decision,
            other.policy,
            other.reason,
            other.matched_conditions,
            other.cached,
            other.priority,
            other.default,
        )

    # unhashable on purpose, as before; the ignore: mypy types object.__hash__ as a method, not Optional
    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"Decision(decision={self.decision!r}, policy={self.policy!r}, reason={self.reason!r}, "
            f"matched_conditions={list(self.matched_conditions)!r}, cached={self.cached})"
        )

    @property
    def allowed(self) -> bool:
        """True for Allow and Audit (Audit = allowed and flagged for review)."""
        return self.decision in PERMITTING

    @property
    def flagged(self) -> bool:
        return self.decision == "Audit"

    @property
    def needs_approval(self) -> bool:
        return self.decision == "RequireApproval"

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "policy": self.policy,
            "reason": self.reason,
            "matched_conditions": list(self.matched_conditions),
            "priority": self.priority,
            "default": self.default,
            "cached": self.cached,
        }


@dataclass(frozen=True, slots=True)
class AccessRequest:
    """A typed request; evaluates exactly like its :meth:`to_dict` form.

    Build one per access and reuse it: its cache key is computed once.
    ``attributes`` holds any further top-level keys conditions may name.
    """

    resource_type: str
    resource_path: str
    operation: str
    agent_id: str | None = None
    agent_name: str | None = None
    agent_security_level: str | None = None
    capabilities: tuple[str, ...] = ()
    tier: str | int | None = None
    tool_name: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.attributes)
        out.update(
            resource_type=self.resource_type,
            resource_path=self.resource_path,
            operation=self.operation,
        )
        for key in ("agent_id", "agent_name", "agent_security_level", "tier", "tool_name"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.capabilities:
            out["capabilities"] = list(self.capabilities)
        if self.metadata:
            out["metadata"] = dict(self.metadata)
        return out


def request_for_agent(
    agent: Any,
    resource_type: str,
    resource_path: str,
    operation: str,
    *,
    agent_id: str | None = None,
    tool_name: str | None = None,
    metadata: dict[str, Any] | None = None,
    security_level: str | None = None,
) -> dict[str, Any]:
    """The flat request the engine builds from an agent and the access it asks for.

    ``agent`` is duck-typed: anything with ``name`` and optionally
    ``security_tier``, ``capabilities`` and ``metadata`` (an ``AgentConfig``
    or an ``AgentInstance``'s config). The security level comes from
    ``security_level`` or the agent's ``metadata["security_level"]``.
    """
    config = getattr(agent, "config", agent)
    agent_meta = dict(getattr(config, "metadata", {}) or {})
    tier = getattr(config, "security_tier", None)
    request: dict[str, Any] = {
        "agent_id": agent_id if agent_id is not None else str(getattr(agent, "id", getattr(config, "name", ""))),
        "agent_name": getattr(config, "name", None),
        "resource_type": resource_type,
        "resource_path": resource_path,
        "operation": operation,
        "capabilities": list(getattr(config, "capabilities", ()) or ()),
        "metadata": dict(metadata or {}),
    }
    if tier is not None:
        request["tier"] = getattr(tier, "value", tier)
    level = security_level if security_level is not None else agent_meta.get("security_level")
    if level is not None:
        request["agent_security_level"] = level
    if tool_name is not None:
        request["tool_name"] = tool_name
    return {k: v for k, v in request.items() if v is not None}


@dataclass(frozen=True, slots=True)
class ReloadEvent:
    """What one (re)load of the policy file did; hand it to the audit trail.

    ``ok`` False means the file was rejected and the previous policy stays in
    force (``error`` is a ``POLICY_003`` naming file:line:column). ``sha256``
    is the hash of the bytes read (None if the file could not be read).
    """

    ok: bool
    path: str
    sha256: str | None
    previous_sha256: str | None
    policies: int
    generation: int
    reason: str
    at: float
    error: SymbiError | None = None
    diagnostics: tuple[Diagnostic, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "path": self.path,
            "sha256": self.sha256,
            "previous_sha256": self.previous_sha256,
            "policies": self.policies,
            "generation": self.generation,
            "reason": self.reason,
            "at": self.at,
            "error": None if self.error is None else self.error.to_dict(),
            "diagnostics": [d.to_dict() for d in self.diagnostics],
        }


def bad_request(field_name: str, message: str, value: Any = None, hint: str | None = None) -> SymbiError:
    """POLICY_004 naming the offending request field."""
    return SymbiError(
        ErrorCode.POLICY_004,
        f"invalid policy request: {field_name} {message}",
        offending=field_name if value is None else f"{field_name}={value!r}"[:200],
        hint=hint,
        details={"field": field_name},
    )
