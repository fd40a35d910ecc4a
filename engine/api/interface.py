"""The engine's interface: everything a client (the console, the HTTP API, a remote console) may do.

One async :class:`Engine`, grouped by capability: ``engine.agents``,
``engine.resources``, ``engine.audit``, ``engine.policies``,
``engine.secrets``, ``engine.knowledge``, ``engine.tools``,
``engine.messages`` and ``engine.events``. Every method takes and returns the
plain data classes of :mod:`engine.api.types` (JSON round-trip, see
:mod:`engine.api.codec`), never a live store, connection or clock; every
failure is a :class:`~engine.errors.SymbiError` with its code.

Methods that change engine state are marked :func:`mutating`, the one that
shows a secret value :func:`reveals`; :class:`engine.api.readonly.ReadOnlyEngine`
refuses both kinds with ``CONSOLE_001`` from these marks alone, and a test
checks that every method is classified on purpose.

Implementations: :class:`engine.api.local.LocalEngine` (wraps a runtime in
this process) and, in tests, a scripted fake.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from typing import Any, Protocol, TypeVar

from engine.api.types import (
    AgentConfig,
    AgentInfo,
    AuditExport,
    AuditFilter,
    AuditRecord,
    ContextHit,
    ContextItem,
    DeadLetter,
    EngineInfo,
    EngineMetrics,
    EventBatch,
    KnowledgeUsage,
    PolicyCheck,
    PolicyDecision,
    PolicyDocument,
    PolicyReplay,
    RAGRequest,
    RAGResponse,
    ReviewQueue,
    RotationReport,
    SaveResult,
    SecretInfo,
    SecretValue,
    ServerView,
    StateChange,
    TierStatus,
    ToolRecord,
    VerifyReport,
)

F = TypeVar("F", bound=Callable[..., Any])
KIND_ATTR = "__engine_kind__"
MUTATING = "mutating"
REVEALS = "reveals"


def mutating(fn: F) -> F:
    """Marks a method that changes engine state (refused in read-only mode)."""
    setattr(fn, KIND_ATTR, MUTATING)
    return fn


def reveals(fn: F) -> F:
    """Marks a method that shows a secret value (refused in read-only mode, audited when it runs)."""
    setattr(fn, KIND_ATTR, REVEALS)
    return fn


class AgentsAPI(Protocol):
    """Agent lifecycle. ``ref`` is an agent id or a unique name."""

    async def list_all(self) -> list[AgentInfo]: ...

    async def get(self, ref: str) -> AgentInfo: ...

    @mutating
    async def create(self, config: AgentConfig) -> AgentInfo: ...

    @mutating
    async def update(self, ref: str, config: AgentConfig) -> AgentInfo:
        """Replace the configuration of an agent that is not running (same name or a free one)."""
        ...

    @mutating
    async def start(self, ref: str, input: Any = None) -> AgentInfo: ...

    @mutating
    async def stop(self, ref: str) -> AgentInfo: ...

    @mutating
    async def suspend(self, ref: str) -> AgentInfo: ...

    @mutating
    async def resume(self, ref: str) -> AgentInfo: ...

    @mutating
    async def terminate(self, ref: str) -> AgentInfo: ...

    @mutating
    async def delete(self, ref: str) -> None: ...

    async def logs(self, ref: str, lines: int = 200) -> list[str]: ...

    async def history(self, ref: str) -> list[StateChange]: ...


class ResourcesAPI(Protocol):
    """The machine, the engine's totals and the sandbox tiers."""

    async def metrics(self) -> EngineMetrics: ...

    async def tiers(self) -> list[TierStatus]: ...


class AuditAPI(Protocol):
    """The tamper-evident trail: read, verify, export (the engine alone appends)."""

    async def query(
        self,
        flt: AuditFilter | None = None,
        *,
        limit: int = 100,
        offset: int = 0,
        after_seq: int | None = None,
        before_seq: int | None = None,
        newest_first: bool = False,
    ) -> list[AuditRecord]:
        """Matching events in ``seq`` order (``newest_first`` reverses it); ``after_seq`` and
        ``before_seq`` bound the seqs (exclusive) for keyset paging, which costs the same at any depth."""
        ...

    async def count(self, flt: AuditFilter | None = None) -> int: ...

    async def verify(self) -> VerifyReport: ...

    async def export(self, flt: AuditFilter | None = None, path: str | None = None) -> AuditExport:
        """Write the matching events as JSONL (``path``, default ``<data dir>/exports/audit-<time>.jsonl``)."""
        ...

    def follow(self, flt: AuditFilter | None = None, *, after_seq: int = 0) -> AsyncGenerator[AuditRecord, None]:
        """The matching events after ``after_seq`` as they are recorded (ends when the engine closes)."""
        ...


class PoliciesAPI(Protocol):
    """The policy file: read, check a draft, test a request, replay history, save."""

    async def get(self) -> PolicyDocument: ...

    async def validate(self, text: str) -> PolicyCheck: ...

    async def test(self, request: dict[str, Any], draft: str | None = None) -> PolicyDecision:
        """Decide ``request`` with the policy in force, or with ``draft`` when given."""
        ...

    async def replay(self, text: str) -> PolicyReplay: ...

    @mutating
    async def save(self, text: str) -> SaveResult: ...


class SecretsAPI(Protocol):
    """The vault: names and metadata; a value only through :meth:`reveal`, which is audited."""

    async def names(self, prefix: str = "") -> list[str]: ...

    async def list_secrets(self, prefix: str = "") -> list[SecretInfo]: ...

    @reveals
    async def reveal(self, path: str) -> SecretValue: ...

    @mutating
    async def set(self, path: str, value: str, metadata: dict[str, Any] | None = None) -> SecretInfo: ...

    @mutating
    async def delete(self, path: str) -> None: ...

    @mutating
    async def rotate(self) -> RotationReport: ...


class KnowledgeAPI(Protocol):
    """Agents' context and knowledge; ``owner`` is an agent id or the shared owner ``operator``."""

    async def list_items(
        self, owner: str, kinds: list[str] | None = None, *, include_shared: bool = True, limit: int = 100
    ) -> list[ContextItem]: ...

    async def usage(self, owner: str) -> KnowledgeUsage: ...

    async def search(
        self, owner: str, text: str, *, limit: int = 10, kinds: list[str] | None = None
    ) -> list[ContextHit]: ...

    async def ask(self, request: RAGRequest) -> RAGResponse: ...

    @mutating
    async def add(
        self,
        owner: str,
        content: str,
        kind: str = "knowledge",
        metadata: dict[str, Any] | None = None,
        *,
        share_with: list[str] | None = None,
    ) -> ContextItem: ...

    @mutating
    async def delete(self, owner: str, item_id: str) -> None: ...


class ToolsAPI(Protocol):
    """MCP tools and the human review of them."""

    async def available(self) -> bool:
        """False when this engine has no tool service (no MCP section, or it could not open)."""
        ...

    async def queue(self) -> ReviewQueue: ...

    async def list_tools(self, *, waiting_only: bool = False) -> list[ToolRecord]: ...

    async def get(self, tool_id: str) -> ToolRecord: ...

    async def history(self, tool_id: str) -> list[dict[str, Any]]: ...

    async def servers(self) -> list[ServerView]: ...

    @mutating
    async def approve(
        self, tool_id: str, note: str = "", *, expected_hash: str | None = None, scope: str = "always"
    ) -> ToolRecord: ...

    @mutating
    async def reject(self, tool_id: str, reason: str) -> ToolRecord: ...

    @mutating
    async def defer(self, tool_id: str, note: str = "") -> ToolRecord: ...

    @mutating
    async def reanalyze(self, tool_id: str) -> ToolRecord: ...

    @mutating
    async def approve_call(self, call_id: str, arguments_sha256: str | None = None) -> None: ...

    @mutating
    async def deny_call(self, call_id: str, reason: str = "") -> None: ...

    @mutating
    async def accept_key(self, domain: str) -> None: ...

    @mutating
    async def reject_key(self, domain: str) -> None: ...

    @mutating
    async def discover(self, server: str) -> int:
        """Ask ``server`` for its tools again; how many it serves."""
        ...


class MessagesAPI(Protocol):
    """The inter-agent bus as the operator sees it: recorded traffic and dead letters."""

    async def recent(self, *, limit: int = 200) -> list[AuditRecord]: ...

    async def dead_letters(self, agent_id: str | None = None, *, limit: int = 200) -> list[DeadLetter]: ...


class EventsAPI(Protocol):
    """Engine events, in order, resumable."""

    async def position(self) -> int:
        """The position of the newest event: load a snapshot after reading it, then stream from it,
        and nothing between the two is lost."""
        ...

    def stream(
        self, after: int | None = None, *, types: tuple[str, ...] = (), max_batch: int = 500
    ) -> AsyncGenerator[EventBatch, None]:
        """Batches of the events published after position ``after`` (None: from now on), waiting for
        more when there are none; ends when the engine closes. ``types`` keeps only those event
        classes (by name). ``API_002`` if ``after`` is not a position of this engine run."""
        ...


class Engine(Protocol):
    """The whole interface."""

    @property
    def agents(self) -> AgentsAPI: ...

    @property
    def resources(self) -> ResourcesAPI: ...

    @property
    def audit(self) -> AuditAPI: ...

    @property
    def policies(self) -> PoliciesAPI: ...

    @property
    def secrets(self) -> SecretsAPI: ...

    @property
    def knowledge(self) -> KnowledgeAPI: ...

    @property
    def tools(self) -> ToolsAPI: ...

    @property
    def messages(self) -> MessagesAPI: ...

    @property
    def events(self) -> EventsAPI: ...

    @property
    def is_open(self) -> bool: ...

    async def open(self) -> None:
        """Open the engine if it is not (no-op otherwise); a SymbiError if it cannot."""
        ...

    async def close(self, reason: str = "engine shutdown") -> None: ...

    async def info(self) -> EngineInfo: ...


GROUPS: dict[str, type[Any]] = {
    "agents": AgentsAPI,
    "resources": ResourcesAPI,
    "audit": AuditAPI,
    "policies": PoliciesAPI,
    "secrets": SecretsAPI,
    "knowledge": KnowledgeAPI,
    "tools": ToolsAPI,
    "messages": MessagesAPI,
    "events": EventsAPI,
}


def methods(group: type[Any]) -> dict[str, Any]:
    """The public methods a group protocol declares, by name."""
    return {name: fn for name, fn in vars(group).items() if callable(fn) and not name.startswith("_")}


def kind_of(group: type[Any], name: str) -> str:
    """``"mutating"``, ``"reveals"`` or ``"reads"`` for method ``name`` of ``group``."""
    return str(getattr(methods(group)[name], KIND_ATTR, "reads"))
