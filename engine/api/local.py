"""The engine interface over a runtime in this process.

:class:`LocalEngine` adapts an ``engine.runtime.Runtime`` to
:class:`engine.api.interface.Engine`: each group forwards to the runtime's
public methods and services and converts what comes back into the
interface's data classes. Operator actions are taken as ``actor`` (the
console's ``operator``; the HTTP API passes the caller's token id), so every
audited decision names who asked.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.api.types import (
    AgentConfig,
    AgentInfo,
    AuditExport,
    AuditFilter,
    AuditRecord,
    ConsoleSettings,
    ContextHit,
    ContextItem,
    DeadLetter,
    EngineInfo,
    EngineMetrics,
    EventBatch,
    KeyChangeView,
    KnowledgeUsage,
    PendingCallView,
    PolicyCheck,
    PolicyDecision,
    PolicyDocument,
    PolicyReplay,
    PolicyReplayChange,
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
from engine.errors import ErrorCode, SymbiError

if TYPE_CHECKING:
    from engine.policy.model import Decision
    from engine.runtime import Runtime

BUS_TYPES = ("bus.send", "bus.deliver", "bus.reject")
VERSION = "0.1.0"


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("symbi-console")
    except Exception:  # not installed as a distribution (a source checkout)
        return VERSION


def export_target(data_dir: Path, path: str | None, default_name: str) -> Path:
    """Where an audit export goes: always inside ``<data dir>/exports/`` (a name, a path under it, or
    an absolute path into it). Anywhere else is ``AUDIT_003``: a caller of the API must not be able
    to make the engine write a file of its choosing elsewhere on its machine."""
    folder = (data_dir / "exports").resolve()
    if path is None or not str(path).strip():
        return folder / default_name
    given = Path(str(path)).expanduser()
    target = (given if given.is_absolute() else folder / given).resolve()
    if folder not in target.parents:
        raise SymbiError(
            ErrorCode.AUDIT_003,
            "exports are written only in the engine's exports folder",
            offending=str(path),
            hint=f"give a file name; it is written in {folder}/",
        )
    return target


def decision_view(decision: Decision) -> PolicyDecision:
    return PolicyDecision(
        decision=decision.decision,
        policy=decision.policy,
        reason=decision.reason,
        matched_conditions=tuple(decision.matched_conditions),
        priority=decision.priority,
        default=decision.default,
    )


class _Part:
    def __init__(self, owner: LocalEngine) -> None:
        self._owner = owner

    @property
    def _rt(self) -> Runtime:
        return self._owner.runtime

    @property
    def _actor(self) -> str:
        return self._owner.actor


class LocalAgents(_Part):
    async def list_all(self) -> list[AgentInfo]:
        return await self._rt.list_agents()

    async def get(self, ref: str) -> AgentInfo:
        return await self._rt.get_agent(ref)

    async def create(self, config: AgentConfig) -> AgentInfo:
        return await self._rt.create_agent(config, actor=self._actor)

    async def update(self, ref: str, config: AgentConfig) -> AgentInfo:
        return await self._rt.update_agent(ref, config, actor=self._actor)

    async def start(self, ref: str, input: Any = None) -> AgentInfo:
        return await self._rt.start_agent(ref, input=input, actor=self._actor)

    async def stop(self, ref: str) -> AgentInfo:
        return await self._rt.stop_agent(ref, actor=self._actor)

    async def suspend(self, ref: str) -> AgentInfo:
        return await self._rt.suspend_agent(ref, actor=self._actor)

    async def resume(self, ref: str) -> AgentInfo:
        return await self._rt.resume_agent(ref, actor=self._actor)

    async def terminate(self, ref: str) -> AgentInfo:
        return await self._rt.terminate_agent(ref, actor=self._actor)

    async def delete(self, ref: str) -> None:
        await self._rt.delete_agent(ref, actor=self._actor)

    async def logs(self, ref: str, lines: int = 200) -> list[str]:
        return await self._rt.agent_logs(ref, lines=lines)

    async def history(self, ref: str) -> list[StateChange]:
        return await self._rt.agent_history(ref)


class LocalResources(_Part):
    async def metrics(self) -> EngineMetrics:
        return await self._rt.metrics()

    async def tiers(self) -> list[TierStatus]:
        return list(await self._rt.tiers())


class LocalAudit(_Part):
    def _trail(self) -> Any:
        trail = self._rt.audit
        if trail is None:
            raise SymbiError(ErrorCode.RUNTIME_001, "the engine is not open", hint="open the engine first")
        return trail

    @staticmethod
    def _checked(flt: AuditFilter | None) -> AuditFilter | None:
        """``flt`` as :meth:`AuditFilter.build` accepts it (``AUDIT_003`` on a bad type pattern or time
        range): a filter that arrived as data is checked like one typed by hand."""
        if flt is None:
            return None
        return AuditFilter.build(
            since=flt.since,
            until=flt.until,
            types=flt.types or None,
            agent=flt.agent,
            actor=flt.actor,
            decision=flt.decision,
            text=flt.text,
        )

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
        return list(
            await self._trail().query(
                self._checked(flt),
                limit=limit,
                offset=offset,
                after_seq=after_seq,
                before_seq=before_seq,
                newest_first=newest_first,
            )
        )

    async def count(self, flt: AuditFilter | None = None) -> int:
        return int(await self._trail().count(self._checked(flt)))

    async def verify(self) -> VerifyReport:
        report: VerifyReport = await self._trail().verify()
        return report

    async def export(self, flt: AuditFilter | None = None, path: str | None = None) -> AuditExport:
        trail = self._trail()
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(self._rt.clock.time()))
        target = export_target(Path(self._rt.data_dir), path, f"audit-{stamp}.jsonl")
        await asyncio.to_thread((Path(self._rt.data_dir) / "exports").mkdir, exist_ok=True)
        count = await trail.export_jsonl(target, self._checked(flt))
        return AuditExport(path=str(target), events=int(count))

    async def follow(self, flt: AuditFilter | None = None, *, after_seq: int = 0) -> AsyncGenerator[AuditRecord, None]:
        async for record in self._trail().follow(self._checked(flt), after_seq=after_seq):
            yield record


class LocalPolicies(_Part):
    async def get(self) -> PolicyDocument:
        service = self._rt.policies
        return PolicyDocument(path=str(service.path), text=await asyncio.to_thread(service.text))

    async def validate(self, text: str) -> PolicyCheck:
        service = self._rt.policies
        diagnostics = await asyncio.to_thread(service.validate, text)
        diff = await asyncio.to_thread(service.diff, text)
        return PolicyCheck(diagnostics=tuple(diagnostics), diff=diff)

    async def test(self, request: dict[str, Any], draft: str | None = None) -> PolicyDecision:
        decision = await asyncio.to_thread(self._rt.policies.evaluate, request, draft)
        return decision_view(decision)

    async def replay(self, text: str) -> PolicyReplay:
        report = await self._rt.policies.replay(text)
        changed = tuple(
            PolicyReplayChange(
                seq=c.record.seq,
                at=c.record.at,
                agent=c.record.agent,
                request=dict(c.record.request),
                recorded=c.record.decision,
                recorded_policy=c.record.policy,
                now=decision_view(c.now),
                summary=c.describe(),
            )
            for c in report.changed
        )
        errors = tuple(f"#{r.seq}: {e.code.value}: {e.message}" for r, e in report.errors)
        return PolicyReplay(total=report.total, unchanged=report.unchanged, changed=changed, errors=errors)

    async def save(self, text: str) -> SaveResult:
        return await self._rt.policies.save(text, actor=self._actor)


class LocalSecrets(_Part):
    async def names(self, prefix: str = "") -> list[str]:
        return list(await self._rt.secrets.names(prefix))

    async def list_secrets(self, prefix: str = "") -> list[SecretInfo]:
        return list(await self._rt.secrets.list_secrets(prefix))

    async def reveal(self, path: str) -> SecretValue:
        return await self._rt.secrets.reveal(path, actor=self._actor)

    async def set(self, path: str, value: str, metadata: dict[str, Any] | None = None) -> SecretInfo:
        return await self._rt.secrets.set(path, value, metadata, actor=self._actor)

    async def delete(self, path: str) -> None:
        await self._rt.secrets.delete(path, actor=self._actor)

    async def rotate(self) -> RotationReport:
        return await self._rt.secrets.rotate(actor=self._actor)


class LocalKnowledge(_Part):
    async def list_items(
        self, owner: str, kinds: list[str] | None = None, *, include_shared: bool = True, limit: int = 100
    ) -> list[ContextItem]:
        store = await self._rt.knowledge.store()
        return list(await store.list_items(owner, kinds, include_shared=include_shared, limit=limit))

    async def usage(self, owner: str) -> KnowledgeUsage:
        store = await self._rt.knowledge.store()
        raw = await store.usage(owner)
        return KnowledgeUsage(
            owner=owner,
            items={str(k): int(v) for k, v in raw.get("items", {}).items()},
            bytes=int(raw.get("bytes", 0)),
            limit_bytes=int(raw.get("limit_bytes", 0)),
            max_memory_items=int(store.settings.max_memory_items_per_agent),
            max_knowledge_items=int(store.settings.max_knowledge_items_per_agent),
        )

    async def search(
        self, owner: str, text: str, *, limit: int = 10, kinds: list[str] | None = None
    ) -> list[ContextHit]:
        store = await self._rt.knowledge.store()
        return list(await store.query(owner, text, limit=limit, kinds=kinds))

    async def ask(self, request: RAGRequest) -> RAGResponse:
        rag = await self._rt.knowledge.rag()
        return await rag.query(request)

    async def add(
        self,
        owner: str,
        content: str,
        kind: str = "knowledge",
        metadata: dict[str, Any] | None = None,
        *,
        share_with: list[str] | None = None,
    ) -> ContextItem:
        return await self._rt.knowledge.add_item(
            owner, content, kind, metadata, share_with=share_with, actor=self._actor
        )

    async def delete(self, owner: str, item_id: str) -> None:
        await self._rt.knowledge.delete_item(owner, item_id, actor=self._actor)


class LocalTools(_Part):
    def _service(self) -> Any:
        service = self._rt.tools
        if service is None:
            raise SymbiError(
                ErrorCode.MCP_001,
                "this engine has no tool service",
                hint="configure [[mcp.servers]] in runtime_config.toml and restart the engine",
            )
        return service

    async def available(self) -> bool:
        return self._rt.tools is not None

    async def queue(self) -> ReviewQueue:
        service = self._rt.tools
        if service is None:
            return ReviewQueue()
        waiting = await service.pending_reviews()
        return ReviewQueue(
            tools=tuple(waiting),
            calls=tuple(_call_view(c) for c in service.pending_calls()),
            keys=tuple(_key_view(k) for k in service.key_changes()),
        )

    async def list_tools(self, *, waiting_only: bool = False) -> list[ToolRecord]:
        service = self._service()
        return list(await (service.pending_reviews() if waiting_only else service.tools()))

    async def get(self, tool_id: str) -> ToolRecord:
        record: ToolRecord = await self._service().get_tool(tool_id)
        return record

    async def history(self, tool_id: str) -> list[dict[str, Any]]:
        return list(await self._service().tool_history(tool_id))

    async def servers(self) -> list[ServerView]:
        service = self._rt.tools
        if service is None:
            return []
        configs = service.pool.configs
        errors = service.discovery_errors
        return [
            ServerView(
                name=name,
                description=configs[name].describe(),
                allow_unsigned=bool(configs[name].allow_unsigned),
                error=errors.get(name),
            )
            for name in sorted(configs)
        ]

    async def approve(
        self, tool_id: str, note: str = "", *, expected_hash: str | None = None, scope: str = "always"
    ) -> ToolRecord:
        record: ToolRecord = await self._service().approve_tool(
            tool_id, note, actor=self._actor, expected_hash=expected_hash, scope=scope
        )
        return record

    async def reject(self, tool_id: str, reason: str) -> ToolRecord:
        record: ToolRecord = await self._service().reject_tool(tool_id, reason, actor=self._actor)
        return record

    async def defer(self, tool_id: str, note: str = "") -> ToolRecord:
        record: ToolRecord = await self._service().defer_tool(tool_id, note, actor=self._actor)
        return record

    async def reanalyze(self, tool_id: str) -> ToolRecord:
        record: ToolRecord = await self._service().reanalyze_tool(tool_id, actor=self._actor)
        return record

    async def approve_call(self, call_id: str, arguments_sha256: str | None = None) -> None:
        self._service().approve_call(call_id, arguments_sha256, actor=self._actor)

    async def deny_call(self, call_id: str, reason: str = "") -> None:
        self._service().deny_call(call_id, reason, actor=self._actor)

    async def accept_key(self, domain: str) -> None:
        await self._service().accept_key_change(domain, actor=self._actor)

    async def reject_key(self, domain: str) -> None:
        await self._service().reject_key_change(domain, actor=self._actor)

    async def discover(self, server: str) -> int:
        return len(await self._service().discover(server))


def _call_view(row: dict[str, Any]) -> PendingCallView:
    return PendingCallView(
        id=str(row["id"]),
        agent_id=str(row["agent_id"]),
        tool_id=str(row["tool_id"]),
        arguments=dict(row.get("arguments") or {}),
        arguments_sha256=str(row["arguments_sha256"]),
        created_at=float(row["created_at"]),
        expires_at=float(row["expires_at"]),
        policy=row.get("policy"),
    )


def _key_view(row: dict[str, Any]) -> KeyChangeView:
    seen = row.get("seen_at")
    return KeyChangeView(
        domain=str(row["domain"]),
        old_fingerprint=str(row.get("old_fingerprint") or ""),
        new_fingerprint=str(row.get("new_fingerprint") or ""),
        seen_at=float(seen) if isinstance(seen, (int, float)) else None,
        source=str(row.get("source") or ""),
    )


class LocalMessages(_Part):
    async def recent(self, *, limit: int = 200) -> list[AuditRecord]:
        trail = self._rt.audit
        if trail is None:
            return []
        return list(await trail.query(AuditFilter(types=BUS_TYPES), limit=limit, newest_first=True))

    async def dead_letters(self, agent_id: str | None = None, *, limit: int = 200) -> list[DeadLetter]:
        bus = self._rt.messages
        return [] if bus is None else list(bus.dead_letters(agent_id, limit=limit))


class LocalEvents(_Part):
    async def position(self) -> int:
        return int(self._rt.bus.published)

    async def stream(
        self, after: int | None = None, *, types: tuple[str, ...] = (), max_batch: int = 500
    ) -> AsyncGenerator[EventBatch, None]:
        run_id = self._owner.run_id
        async for position, events, missed in self._rt.bus.batches(after, types, max_batch):
            yield EventBatch(run_id=run_id, position=position, events=events, missed=missed)


class LocalEngine:
    """The interface over ``runtime`` (opened or not). ``actor`` names who acts in the audit trail."""

    def __init__(self, runtime: Runtime, *, actor: str = "operator", mode: str | None = None) -> None:
        self.runtime = runtime
        self.actor = actor
        self.mode = mode or str(getattr(runtime, "mode", "embedded") or "embedded")
        self.run_id = uuid.uuid4().hex[:12]
        self.agents = LocalAgents(self)
        self.resources = LocalResources(self)
        self.audit = LocalAudit(self)
        self.policies = LocalPolicies(self)
        self.secrets = LocalSecrets(self)
        self.knowledge = LocalKnowledge(self)
        self.tools = LocalTools(self)
        self.messages = LocalMessages(self)
        self.events = LocalEvents(self)

    @property
    def is_open(self) -> bool:
        return bool(self.runtime.is_open)

    async def open(self) -> None:
        if not self.runtime.is_open:
            await self.runtime.start()

    async def close(self, reason: str = "engine shutdown") -> None:
        if self.runtime.is_open:
            await self.runtime.close(reason)

    async def info(self) -> EngineInfo:
        rt = self.runtime
        console = rt.config.console
        uptime = (await rt.metrics()).uptime if rt.is_open else 0.0
        return EngineInfo(
            mode=self.mode,
            data_dir=str(rt.data_dir),
            run_id=self.run_id,
            started_at=rt.clock.time() - uptime,
            readonly=False,
            version=_version(),
            termination_timeout=float(rt.config.lifecycle.termination_timeout),
            console=ConsoleSettings(
                theme=console.theme,
                keymap=dict(console.keymap),
                refresh_interval=float(console.refresh_interval),
                contexts={c.name: c.url for c in console.contexts},
            ),
            pid=os.getpid(),
            host=socket.gethostname(),
        )

    def as_actor(self, actor: str) -> LocalEngine:
        """The same engine acting as ``actor`` (the HTTP API's callers)."""
        twin = LocalEngine.__new__(LocalEngine)
        twin.__dict__.update(self.__dict__)
        twin.actor = actor
        for name, part in (
            ("agents", LocalAgents),
            ("resources", LocalResources),
            ("audit", LocalAudit),
            ("policies", LocalPolicies),
            ("secrets", LocalSecrets),
            ("knowledge", LocalKnowledge),
            ("tools", LocalTools),
            ("messages", LocalMessages),
            ("events", LocalEvents),
        ):
            setattr(twin, name, part(twin))
        return twin
