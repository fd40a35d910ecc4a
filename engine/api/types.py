"""The data the engine interface takes and returns: plain data classes that travel as JSON.

Most are the engine's own records (an agent's :class:`AgentInfo`, an
:class:`AuditRecord`, a :class:`ToolRecord` ...), re-exported here so a client
imports them from one place; the rest are views made for the interface
(a waiting call, a key change, a policy decision, a batch of events). None
holds a live store, connection, lock or clock: every one round-trips through
:mod:`engine.api.codec` (a test walks them all).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.agents.model import (
    AgentConfig,
    AgentId,
    AgentInfo,
    AgentState,
    ExecutionMode,
    Priority,
    ResourceLimits,
    SecurityTier,
    StateChange,
    Usage,
)
from engine.audit.model import DECISIONS, EVENT_TYPES, AuditRecord
from engine.audit.query import AuditFilter
from engine.audit.verify import VerifyReport
from engine.comms.deadletter import DeadLetter
from engine.events import Event
from engine.knowledge.context import EVERYONE, KINDS, ContextHit, ContextItem
from engine.knowledge.rag import RAGRequest, RAGResponse, RAGSource
from engine.mcp_tools.analyzer import SEVERITIES
from engine.mcp_tools.registry import ToolRecord
from engine.metrics import RuntimeMetrics as EngineMetrics  # the engine's own snapshot, one class
from engine.policy.diff import PolicyDiff
from engine.policy.files import SaveResult
from engine.policy.model import Diagnostic
from engine.sandbox.registry import TierStatus
from engine.secrets.names import validate_secret_path
from engine.secrets.values import RotationReport, SecretInfo, SecretValue

__all__ = [
    "DECISIONS",
    "EVENT_TYPES",
    "EVERYONE",
    "KINDS",
    "SEVERITIES",
    "AgentConfig",
    "AgentId",
    "AgentInfo",
    "AgentState",
    "AuditExport",
    "AuditFilter",
    "AuditRecord",
    "ConsoleSettings",
    "ContextHit",
    "ContextItem",
    "DeadLetter",
    "Diagnostic",
    "EngineInfo",
    "EngineMetrics",
    "EventBatch",
    "ExecutionMode",
    "KeyChangeView",
    "KnowledgeUsage",
    "PendingCallView",
    "PolicyCheck",
    "PolicyDecision",
    "PolicyDiff",
    "PolicyDocument",
    "PolicyReplay",
    "PolicyReplayChange",
    "Priority",
    "RAGRequest",
    "RAGResponse",
    "RAGSource",
    "ResourceLimits",
    "ReviewQueue",
    "RotationReport",
    "SaveResult",
    "SecretInfo",
    "SecretValue",
    "SecurityTier",
    "ServerView",
    "StateChange",
    "TierStatus",
    "ToolRecord",
    "Usage",
    "VerifyReport",
    "validate_secret_path",
]


@dataclass(frozen=True, slots=True)
class ConsoleSettings:
    """The ``[console]`` section as a client needs it."""

    theme: str | None = None
    keymap: dict[str, str] = field(default_factory=dict)
    refresh_interval: float = 1.0
    contexts: dict[str, str] = field(default_factory=dict)  # [[console.contexts]]: name -> URL (no tokens)


@dataclass(frozen=True, slots=True)
class EngineInfo:
    """Who the engine is: what a client shows in its header and needs to resume a stream."""

    mode: str  # "embedded" | "headless" | "remote"
    data_dir: str
    run_id: str  # new each time the engine opens; event positions belong to one run
    started_at: float
    readonly: bool = False
    version: str = ""
    termination_timeout: float = 10.0  # what "stop" gives an agent before SIGKILL
    console: ConsoleSettings = field(default_factory=ConsoleSettings)
    pid: int = 0  # the engine's process
    host: str = ""  # the machine it runs on


@dataclass(frozen=True, slots=True)
class EventBatch:
    """Events in order. ``position`` is that of the last one: pass it back as ``after`` to go on
    where this batch ended. ``missed`` counts events that were dropped before the client read them
    (it fell further behind than the engine keeps): the client should reload what it shows.
    With a ``types`` filter, ``events`` holds only the wanted ones of the positions covered."""

    run_id: str
    position: int
    events: list[Event]
    missed: int = 0


@dataclass(frozen=True, slots=True)
class PendingCallView:
    """A tool call waiting for a human: the exact arguments and their hash are what is approved."""

    id: str
    agent_id: str
    tool_id: str
    arguments: dict[str, Any]
    arguments_sha256: str
    created_at: float
    expires_at: float
    policy: str | None = None


@dataclass(frozen=True, slots=True)
class KeyChangeView:
    """A SchemaPin domain that now serves a key other than the one pinned."""

    domain: str
    old_fingerprint: str
    new_fingerprint: str
    seen_at: float | None = None
    source: str = ""


@dataclass(frozen=True, slots=True)
class ReviewQueue:
    """One look at what waits for the operator: tools (newest first), calls and key changes."""

    tools: tuple[ToolRecord, ...] = ()
    calls: tuple[PendingCallView, ...] = ()
    keys: tuple[KeyChangeView, ...] = ()

    @property
    def total(self) -> int:
        return len(self.tools) + len(self.calls) + len(self.keys)


@dataclass(frozen=True, slots=True)
class ServerView:
    """One configured MCP server and how its last discovery went."""

    name: str
    description: str  # the command line or URL (never an environment value)
    allow_unsigned: bool = False
    error: str | None = None  # the last discovery's failure, if it failed


@dataclass(frozen=True, slots=True)
class PolicyDocument:
    """The policy file in force."""

    path: str
    text: str


@dataclass(frozen=True, slots=True)
class PolicyCheck:
    """A draft checked: its diagnostics and what it changes against the file in force."""

    diagnostics: tuple[Diagnostic, ...]
    diff: PolicyDiff

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity == "error")


@dataclass(frozen=True, slots=True)
class PolicyDecision:
    """One request decided, and why."""

    decision: str  # "Allow" | "Deny" | "RequireApproval" | "Audit"
    policy: str | None
    reason: str
    matched_conditions: tuple[str, ...] = ()
    priority: int | None = None
    default: bool = False


@dataclass(frozen=True, slots=True)
class PolicyReplayChange:
    """A recorded decision a draft would decide differently."""

    seq: int | str
    at: float | None
    agent: str | None
    request: dict[str, Any]
    recorded: str | None
    recorded_policy: str | None
    now: PolicyDecision
    summary: str  # one line for humans


@dataclass(frozen=True, slots=True)
class PolicyReplay:
    """Recorded decisions replayed against a draft."""

    total: int = 0
    unchanged: int = 0
    changed: tuple[PolicyReplayChange, ...] = ()
    errors: tuple[str, ...] = ()  # "#seq: CODE: message" for records that could not be replayed


@dataclass(frozen=True, slots=True)
class KnowledgeUsage:
    """What one owner holds: items per kind, bytes in all, and the store's limits per owner."""

    owner: str
    items: dict[str, int] = field(default_factory=dict)
    bytes: int = 0
    limit_bytes: int = 0
    max_memory_items: int = 0  # [context] max_memory_items_per_agent
    max_knowledge_items: int = 0  # [context] max_knowledge_items_per_agent


@dataclass(frozen=True, slots=True)
class AuditExport:
    """Where an export was written and what it holds."""

    path: str
    events: int
