"""A scripted implementation of the engine interface, for fast console tests.

:class:`FakeEngine` implements :class:`engine.api.Engine` from data a test
gives it (agents, audit records, a policy, secrets, knowledge, a review
queue, servers, dead letters, metrics) and from events the test publishes
(:meth:`FakeEngine.emit`). It has no processes, databases or sandboxes: an
operator action changes the scripted data at once and publishes the event the
real engine would, so the console reacts as it does to a real engine. Every
call is recorded in :attr:`FakeEngine.calls` (``("agents.start", ("a1",))``),
and :meth:`FakeEngine.fail` makes the next call of a method raise a given
:class:`SymbiError`, so tests can drive the bad paths.

This is a test double of our own interface, not of an outside service; the
end-to-end console tests (``test_console_*_e2e``, snapshots) run the real
engine. A contract test (``tests/test_fake_engine.py``) runs the same checks
against this fake and the real local engine, so the two cannot drift apart.
"""

from __future__ import annotations

import asyncio
import bisect
import dataclasses
import fnmatch
import hashlib
import json
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

from engine.agents.lifecycle import check_action
from engine.api import (
    AgentConfig,
    AgentInfo,
    AgentState,
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
    KnowledgeUsage,
    PolicyCheck,
    PolicyDecision,
    PolicyDocument,
    PolicyReplay,
    RAGRequest,
    RAGResponse,
    RAGSource,
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
from engine.api.interface import Engine
from engine.api.local import export_target
from engine.errors import ErrorCode, SymbiError
from engine.events import (
    AgentCreated,
    AgentDeleted,
    AgentLog,
    AgentStateChanged,
    Event,
    EventBus,
    ToolReviewChanged,
)

START = 1_700_000_000.0
BUS_TYPES = ("bus.send", "bus.deliver", "bus.reject")  # what messages.recent reads, as the engine does

# the states each operator action leads to (the real engine passes through more on the way)
_AFTER = {
    "start": AgentState.RUNNING,
    "stop": AgentState.TERMINATED,
    "suspend": AgentState.SUSPENDED,
    "resume": AgentState.RUNNING,
    "terminate": AgentState.TERMINATED,
}


def agent_info(
    name: str,
    state: AgentState = AgentState.CREATED,
    *,
    agent_id: str | None = None,
    at: float = START,
    **fields: Any,
) -> AgentInfo:
    """An AgentInfo for scripted data (a hello-world program, normal limits)."""
    config = fields.pop("config", None) or AgentConfig(name=name, dsl_source="print('hello')\n")
    return AgentInfo(
        id=agent_id or f"agent-{name}",
        config=config,
        state=state,
        created_at=at,
        updated_at=at,
        **fields,
    )


def audit_record(seq: int, type: str, **fields: Any) -> AuditRecord:
    """An AuditRecord for scripted data (hashes are made up but chained)."""
    prev = hashlib.sha256(str(seq - 1).encode()).hexdigest()
    return AuditRecord(
        seq=seq,
        ts_us=int(fields.pop("ts", START - 1000 + seq) * 1_000_000),
        type=type,
        agent=fields.pop("agent", None),
        actor=fields.pop("actor", "engine"),
        action=fields.pop("action", type.rsplit(".", 1)[-1]),
        resource=fields.pop("resource", ""),
        decision=fields.pop("decision", "n/a"),
        details=fields.pop("details", {}),
        prev_hash=prev,
        hash=hashlib.sha256(str(seq).encode()).hexdigest(),
    )


def _matches(record: AuditRecord, flt: AuditFilter | None) -> bool:
    if flt is None:
        return True
    if flt.since is not None and record.ts < flt.since:
        return False
    if flt.until is not None and record.ts > flt.until:
        return False
    if flt.types and not any(fnmatch.fnmatchcase(record.type, t) for t in flt.types):
        return False
    if flt.agent is not None and record.agent != flt.agent:
        return False
    if flt.actor is not None and record.actor != flt.actor:
        return False
    if flt.decision is not None and record.decision != flt.decision:
        return False
    if flt.text:
        # the columns the engine's LIKE looks at (ASCII case-insensitive), details as stored JSON
        needle = flt.text.lower()
        columns = (record.type, record.agent or "", record.actor, record.action, record.resource)
        blob = "\n".join((*columns, json.dumps(record.details, ensure_ascii=False))).lower()
        if needle not in blob:
            return False
    return True


def _seq(record: AuditRecord) -> int:
    return record.seq


def _everything(flt: AuditFilter | None) -> bool:
    return flt is None or flt == AuditFilter()


class _Group:
    def __init__(self, fake: FakeEngine, name: str) -> None:
        self._fake = fake
        self._name = name

    def _call(self, method: str, *args: Any) -> None:
        self._fake._called(f"{self._name}.{method}", args)


class FakeAgents(_Group):
    async def list_all(self) -> list[AgentInfo]:
        self._call("list_all")
        return list(self._fake.roster.values())

    async def get(self, ref: str) -> AgentInfo:
        self._call("get", ref)
        return self._fake.agent(ref)

    async def create(self, config: AgentConfig) -> AgentInfo:
        self._call("create", config)
        config = config.validate()
        if any(a.name == config.name for a in self._fake.roster.values()):
            raise SymbiError(
                ErrorCode.AGENT_006,
                "an agent with this name already exists",
                offending=config.name,
                hint="choose another name or delete the existing agent",
            )
        info = agent_info(config.name, config=config, at=self._fake.now())
        self._fake.roster[info.id] = info
        self._fake.history[info.id] = [StateChange(AgentState.CREATED, info.created_at, "created")]
        self._fake.emit(AgentCreated(agent_id=info.id, name=info.name, at=self._fake.now()))
        return info

    async def update(self, ref: str, config: AgentConfig) -> AgentInfo:
        self._call("update", ref, config)
        info = self._fake.agent(ref)
        if info.state.is_active:
            raise SymbiError(ErrorCode.AGENT_002, "stop the agent before changing it", offending=info.name)
        new = dataclasses.replace(info, config=config.validate(), updated_at=self._fake.now())
        self._fake.roster[info.id] = new
        return new

    async def _move(self, method: str, ref: str) -> AgentInfo:
        self._call(method, ref)
        info = self._fake.agent(ref)
        check_action(method, info.state, agent=info.name)  # the engine's own table: AGENT_002 as it words it
        return self._fake.set_state(info.id, _AFTER[method], f"{method} requested by operator")

    async def start(self, ref: str, input: Any = None) -> AgentInfo:
        return await self._move("start", ref)

    async def stop(self, ref: str) -> AgentInfo:
        return await self._move("stop", ref)

    async def suspend(self, ref: str) -> AgentInfo:
        return await self._move("suspend", ref)

    async def resume(self, ref: str) -> AgentInfo:
        return await self._move("resume", ref)

    async def terminate(self, ref: str) -> AgentInfo:
        return await self._move("terminate", ref)

    async def delete(self, ref: str) -> None:
        self._call("delete", ref)
        info = self._fake.agent(ref)
        check_action("delete", info.state, agent=info.name)
        del self._fake.roster[info.id]
        self._fake.emit(AgentDeleted(agent_id=info.id, name=info.name, at=self._fake.now()))

    async def logs(self, ref: str, lines: int = 200) -> list[str]:
        self._call("logs", ref, lines)
        return self._fake.logs.get(self._fake.agent(ref).id, [])[-lines:]

    async def history(self, ref: str) -> list[StateChange]:
        self._call("history", ref)
        return list(self._fake.history.get(self._fake.agent(ref).id, []))


class FakeResources(_Group):
    async def metrics(self) -> EngineMetrics:
        self._call("metrics")
        return self._fake.metrics()

    async def tiers(self) -> list[TierStatus]:
        self._call("tiers")
        return list(self._fake.tiers)


class FakeAudit(_Group):
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
        self._call("query", flt)
        records = self._fake.records  # in seq order, as the trail keeps them
        lo = 0 if after_seq is None else bisect.bisect_right(records, after_seq, key=_seq)
        hi = len(records) if before_seq is None else bisect.bisect_left(records, before_seq, key=_seq)
        if _everything(flt):  # no scan: a browse over 100,000 scripted events stays cheap, like the index
            if newest_first:
                end = hi - offset
                return records[max(lo, end - limit) : max(lo, end)][::-1]
            return records[lo + offset : min(hi, lo + offset + limit)]
        rows = [r for r in records[lo:hi] if _matches(r, flt)]
        if newest_first:
            rows.reverse()
        return rows[offset : offset + limit]

    async def count(self, flt: AuditFilter | None = None) -> int:
        self._call("count", flt)
        if _everything(flt):
            return len(self._fake.records)
        return sum(1 for r in self._fake.records if _matches(r, flt))

    async def verify(self) -> VerifyReport:
        self._call("verify")
        return self._fake.verify_report or VerifyReport(
            ok=True,
            path=f"{self._fake.data_dir}/audit.db",
            events_checked=len(self._fake.records),
            last_seq=self._fake.records[-1].seq if self._fake.records else 0,
        )

    async def export(self, flt: AuditFilter | None = None, path: str | None = None) -> AuditExport:
        self._call("export", flt, path)
        rows = [r for r in self._fake.records if _matches(r, flt)]
        target = export_target(Path(self._fake.data_dir), path, "audit.jsonl")  # the engine's own rule
        (Path(self._fake.data_dir) / "exports").mkdir(parents=True, exist_ok=True)
        text = "".join(json.dumps(r.to_dict(), ensure_ascii=False, separators=(",", ":")) + "\n" for r in rows)
        try:
            target.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise SymbiError(
                ErrorCode.AUDIT_003, f"cannot write the export: {exc.strerror or exc}", offending=str(target)
            ) from exc
        return AuditExport(path=str(target), events=len(rows))

    async def follow(self, flt: AuditFilter | None = None, *, after_seq: int = 0) -> AsyncGenerator[AuditRecord, None]:
        self._call("follow", flt, after_seq)
        self._fake.following += 1
        seen = after_seq
        try:
            while True:
                for record in list(self._fake.records):
                    if record.seq > seen and _matches(record, flt):
                        seen = record.seq
                        yield record
                if not await self._fake._audit_or_event():
                    return
        finally:
            self._fake.following -= 1  # the client closed the stream (or the engine closed)


class FakePolicies(_Group):
    async def get(self) -> PolicyDocument:
        self._call("get")
        return PolicyDocument(path=f"{self._fake.data_dir}/access_policies.yaml", text=self._fake.policy_text)

    async def validate(self, text: str) -> PolicyCheck:
        self._call("validate", text)
        from engine.policy.diff import diff as policy_diff
        from engine.policy.parser import validate as policy_validate

        return PolicyCheck(tuple(policy_validate(text)), policy_diff(self._fake.policy_text, text))

    async def test(self, request: dict[str, Any], draft: str | None = None) -> PolicyDecision:
        self._call("test", request, draft)
        return self._fake.decision

    async def replay(self, text: str) -> PolicyReplay:
        self._call("replay", text)
        return self._fake.replay

    async def save(self, text: str) -> SaveResult:
        self._call("save", text)
        errors = [d for d in (await self.validate(text)).diagnostics if d.severity == "error"]
        if errors:
            raise SymbiError(ErrorCode.POLICY_002, errors[0].message, offending=errors[0].code)
        old = self._fake.policy_text
        self._fake.policy_text = text
        return SaveResult(
            path=f"{self._fake.data_dir}/access_policies.yaml",
            sha256=hashlib.sha256(text.encode()).hexdigest(),
            previous=f"{self._fake.data_dir}/access_policies.yaml.prev",
            previous_sha256=hashlib.sha256(old.encode()).hexdigest(),
            warnings=(),
        )


class FakeSecrets(_Group):
    async def names(self, prefix: str = "") -> list[str]:
        self._call("names", prefix)
        return sorted(p for p in self._fake.vault if p.startswith(prefix))

    async def list_secrets(self, prefix: str = "") -> list[SecretInfo]:
        self._call("list_secrets", prefix)
        return [self._fake.vault_info[p] for p in await self.names(prefix)]

    async def reveal(self, path: str) -> SecretValue:
        self._call("reveal", path)
        if path not in self._fake.vault:
            raise SymbiError(ErrorCode.SEC_004, "secret not found", offending=path)
        return SecretValue(self._fake.vault[path])

    async def set(self, path: str, value: str, metadata: dict[str, Any] | None = None) -> SecretInfo:
        self._call("set", path, "<value>", metadata)  # never the value, even in a test's record
        old = self._fake.vault_info.get(path)
        info = SecretInfo(
            path=path,
            created=old.created if old else self._fake.now(),
            updated=self._fake.now(),
            version=(old.version if old else 0) + 1,
            key_id="0123456789abcdef",
            description=str((metadata or {}).get("description", "")),
        )
        self._fake.vault[path] = value
        self._fake.vault_info[path] = info
        return info

    async def delete(self, path: str) -> None:
        self._call("delete", path)
        if self._fake.vault.pop(path, None) is None:
            raise SymbiError(ErrorCode.SEC_004, "secret not found", offending=path)
        self._fake.vault_info.pop(path, None)

    async def rotate(self) -> RotationReport:
        self._call("rotate")
        return RotationReport(
            old_key_id="0123456789abcdef", new_key_id="fedcba9876543210", reencrypted=len(self._fake.vault)
        )


class FakeKnowledge(_Group):
    def _visible(self, owner: str, include_shared: bool) -> list[ContextItem]:
        return [
            i
            for i in self._fake.items
            if i.agent_id == owner or (include_shared and ("*" in i.shared_with or owner in i.shared_with))
        ]

    async def list_items(
        self, owner: str, kinds: list[str] | None = None, *, include_shared: bool = True, limit: int = 100
    ) -> list[ContextItem]:
        self._call("list_items", owner, kinds)
        return [i for i in self._visible(owner, include_shared) if not kinds or i.kind in kinds][:limit]

    async def usage(self, owner: str) -> KnowledgeUsage:
        self._call("usage", owner)
        own = [i for i in self._fake.items if i.agent_id == owner]
        kinds: dict[str, int] = {}
        for item in own:
            kinds[item.kind] = kinds.get(item.kind, 0) + 1
        return KnowledgeUsage(
            owner=owner,
            items=kinds,
            bytes=sum(i.size for i in own),
            limit_bytes=100 * 1048576,
            max_memory_items=10_000,
            max_knowledge_items=5_000,
        )

    async def search(
        self, owner: str, text: str, *, limit: int = 10, kinds: list[str] | None = None
    ) -> list[ContextHit]:
        self._call("search", owner, text)
        words = set(text.lower().split())
        scored = [
            ContextHit(item, len(words & set(item.content.lower().split())) / max(1, len(words)))
            for item in await self.list_items(owner, kinds)
        ]
        return sorted((h for h in scored if h.score > 0), key=lambda h: -h.score)[:limit]

    async def ask(self, request: RAGRequest) -> RAGResponse:
        self._call("ask", request.query)
        hits = await self.search(request.agent_id, request.query, kinds=request.kinds)
        sources = [
            RAGSource(n + 1, h.item.id, h.item.agent_id, h.item.kind, h.score, h.score, h.score, h.item.content)
            for n, h in enumerate(hits)
        ]
        answer = " ".join(f"{s.content} [{s.n}]" for s in sources[:2]) or "No stored item answers this."
        return RAGResponse(request.query, request.agent_id, answer, sources, "extractive" if sources else "none")

    async def add(
        self,
        owner: str,
        content: str,
        kind: str = "knowledge",
        metadata: dict[str, Any] | None = None,
        *,
        share_with: list[str] | None = None,
    ) -> ContextItem:
        self._call("add", owner, kind)
        if not content.strip():
            raise SymbiError(ErrorCode.CTX_003, "the item is empty", offending=kind)
        item = ContextItem(
            id=f"item-{len(self._fake.items) + 1}",
            agent_id=owner,
            kind=kind,
            content=content,
            metadata=dict(metadata or {}),
            created_at=self._fake.now(),
            shared_with=list(share_with or []),
            size=len(content.encode()),
        )
        self._fake.items.append(item)
        return item

    async def delete(self, owner: str, item_id: str) -> None:
        self._call("delete", owner, item_id)
        before = len(self._fake.items)
        self._fake.items = [i for i in self._fake.items if not (i.id == item_id and i.agent_id == owner)]
        if len(self._fake.items) == before:
            raise SymbiError(ErrorCode.CTX_004, "no such item", offending=item_id)


class FakeTools(_Group):
    async def available(self) -> bool:
        self._call("available")
        return self._fake.tools_available

    async def queue(self) -> ReviewQueue:
        self._call("queue")
        return self._fake.review

    async def list_tools(self, *, waiting_only: bool = False) -> list[ToolRecord]:
        self._call("list_tools", waiting_only)
        return list(self._fake.review.tools if waiting_only else self._fake.tool_records.values())

    async def get(self, tool_id: str) -> ToolRecord:
        self._call("get", tool_id)
        if tool_id not in self._fake.tool_records:
            raise SymbiError(ErrorCode.MCP_002, "unknown tool", offending=tool_id)
        return self._fake.tool_records[tool_id]

    async def history(self, tool_id: str) -> list[dict[str, Any]]:
        self._call("history", tool_id)
        return list(self._fake.tool_history.get(tool_id, []))

    async def servers(self) -> list[ServerView]:
        self._call("servers")
        return list(self._fake.servers)

    async def _decide(self, method: str, tool_id: str, state: str, **changes: Any) -> ToolRecord:
        self._call(method, tool_id)
        record = await self.get(tool_id)
        new = dataclasses.replace(record, state=state, **changes)
        self._fake.tool_records[tool_id] = new
        self._fake.review = dataclasses.replace(
            self._fake.review, tools=tuple(t for t in self._fake.review.tools if t.id != tool_id)
        )
        self._fake.emit(ToolReviewChanged(tool_id=tool_id, state=state, event=method, at=self._fake.now()))
        return new

    async def approve(
        self, tool_id: str, note: str = "", *, expected_hash: str | None = None, scope: str = "always"
    ) -> ToolRecord:
        record = await self.get(tool_id)
        if expected_hash is not None and expected_hash != record.def_hash:
            raise SymbiError(ErrorCode.MCP_007, "the definition changed since you read it", offending=tool_id)
        state = "Signed" if scope == "always" else "Approved"
        return await self._decide("approve", tool_id, state, scope=scope, approved_hash=record.def_hash, note=note)

    async def reject(self, tool_id: str, reason: str) -> ToolRecord:
        if not reason.strip():
            raise SymbiError(ErrorCode.MCP_007, "a rejection needs a reason", offending=tool_id)
        return await self._decide("reject", tool_id, "Rejected", note=reason)

    async def defer(self, tool_id: str, note: str = "") -> ToolRecord:
        record = await self._decide("defer", tool_id, "AwaitingHumanReview", deferred=True, note=note)
        self._fake.review = dataclasses.replace(self._fake.review, tools=(*self._fake.review.tools, record))
        return record

    async def reanalyze(self, tool_id: str) -> ToolRecord:
        self._call("reanalyze", tool_id)
        return await self.get(tool_id)

    def _drop_call(self, call_id: str) -> None:
        if not any(c.id == call_id for c in self._fake.review.calls):
            raise SymbiError(ErrorCode.MCP_006, f"no pending call {call_id}", offending=call_id)
        self._fake.review = dataclasses.replace(
            self._fake.review, calls=tuple(c for c in self._fake.review.calls if c.id != call_id)
        )

    async def approve_call(self, call_id: str, arguments_sha256: str | None = None) -> None:
        self._call("approve_call", call_id, arguments_sha256)
        self._drop_call(call_id)

    async def deny_call(self, call_id: str, reason: str = "") -> None:
        self._call("deny_call", call_id, reason)
        self._drop_call(call_id)

    def _drop_key(self, domain: str) -> None:
        if not any(k.domain == domain for k in self._fake.review.keys):
            raise SymbiError(ErrorCode.SCHEMA_004, f"no pending key change for {domain}", offending=domain)
        self._fake.review = dataclasses.replace(
            self._fake.review, keys=tuple(k for k in self._fake.review.keys if k.domain != domain)
        )

    async def accept_key(self, domain: str) -> None:
        self._call("accept_key", domain)
        self._drop_key(domain)

    async def reject_key(self, domain: str) -> None:
        self._call("reject_key", domain)
        self._drop_key(domain)

    async def discover(self, server: str) -> int:
        self._call("discover", server)
        return sum(1 for t in self._fake.tool_records.values() if t.server == server)


class FakeMessages(_Group):
    async def recent(self, *, limit: int = 200) -> list[AuditRecord]:
        self._call("recent")
        rows = [r for r in self._fake.records if r.type in BUS_TYPES]
        return list(reversed(rows))[:limit]

    async def dead_letters(self, agent_id: str | None = None, *, limit: int = 200) -> list[DeadLetter]:
        self._call("dead_letters", agent_id)
        rows = [d for d in self._fake.dead if agent_id is None or d.involves(agent_id)]
        return rows[-limit:] if limit else rows  # oldest first, the newest ``limit`` (as the bus keeps them)


class FakeEvents(_Group):
    async def position(self) -> int:
        return self._fake.bus.published

    async def stream(
        self, after: int | None = None, *, types: tuple[str, ...] = (), max_batch: int = 500
    ) -> AsyncGenerator[EventBatch, None]:
        async for position, events, missed in self._fake.bus.batches(after, types, max_batch):
            yield EventBatch(run_id="fake-run", position=position, events=events, missed=missed)


class FakeEngine:
    """The engine interface over scripted data (see the module docstring)."""

    def __init__(
        self,
        *,
        agents: list[AgentInfo] | None = None,
        records: list[AuditRecord] | None = None,
        policy_text: str = 'version: "1.0"\npolicies: []\n',
        secrets: dict[str, str] | None = None,
        data_dir: str = "/fake/symbi-data",
        clock: float = START,
        console: ConsoleSettings | None = None,
        mode: str = "embedded",
    ) -> None:
        self.clock = clock
        self.data_dir = data_dir
        self.mode = mode
        self.console = console or ConsoleSettings(theme="symbi-dark", refresh_interval=3600.0)
        self.bus = EventBus()
        self.opened = False
        self.closed_with: str | None = None
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self._failures: dict[str, SymbiError] = {}
        self.roster: dict[str, AgentInfo] = {a.id: a for a in agents or []}
        self.history: dict[str, list[StateChange]] = {
            a.id: [StateChange(AgentState.CREATED, a.created_at, "created")] for a in agents or []
        }
        self.logs: dict[str, list[str]] = {}
        self.records: list[AuditRecord] = list(records or [])
        self._audit_tick = asyncio.Event()  # set (and replaced) when append_audit adds a record
        self.following = 0  # audit.follow streams open now
        self.verify_report: VerifyReport | None = None
        self.policy_text = policy_text
        self.decision = PolicyDecision("Deny", None, "no policy matched: default deny", default=True)
        self.replay = PolicyReplay()
        self.vault: dict[str, str] = {}
        self.vault_info: dict[str, SecretInfo] = {}
        for path, value in (secrets or {}).items():
            self.vault[path] = value
            self.vault_info[path] = SecretInfo(path=path, created=START, updated=START, version=1, key_id="0" * 16)
        self.items: list[ContextItem] = []
        self.tools_available = True
        self.tool_records: dict[str, ToolRecord] = {}
        self.tool_history: dict[str, list[dict[str, Any]]] = {}
        self.review = ReviewQueue()
        self.servers: list[ServerView] = []
        self.dead: list[DeadLetter] = []
        self.tiers: list[TierStatus] = []
        self.machine = (23.0, 6 * 1024**3, 16 * 1024**3)
        self.agents = FakeAgents(self, "agents")
        self.resources = FakeResources(self, "resources")
        self.audit = FakeAudit(self, "audit")
        self.policies = FakePolicies(self, "policies")
        self.secrets = FakeSecrets(self, "secrets")
        self.knowledge = FakeKnowledge(self, "knowledge")
        self.tools = FakeTools(self, "tools")
        self.messages = FakeMessages(self, "messages")
        self.events = FakeEvents(self, "events")

    # -- scripting ----------------------------------------------------------------------------

    def now(self) -> float:
        return self.clock

    def emit(self, *events: Event) -> None:
        """Publish ``events`` as the engine would."""
        for event in events:
            self.bus.publish(event)

    def add_agent(self, info: AgentInfo) -> AgentInfo:
        """An agent created by another client of the engine: in the roster with its history,
        announced with ``AgentCreated`` (and not recorded as a call of this client)."""
        self.roster[info.id] = info
        self.history.setdefault(info.id, [StateChange(AgentState.CREATED, info.created_at, "created")])
        self.emit(AgentCreated(agent_id=info.id, name=info.name, at=self.now()))
        return info

    def append_audit(self, type: str, **fields: Any) -> AuditRecord:
        """Record one more audit event (next seq, at the fake's clock unless ``ts`` is given), as the
        engine does when something happens; a live ``audit.follow`` sees it at once."""
        seq = (self.records[-1].seq if self.records else 0) + 1
        fields.setdefault("ts", self.now())
        record = audit_record(seq, type, **fields)
        self.records.append(record)
        tick, self._audit_tick = self._audit_tick, asyncio.Event()
        tick.set()
        return record

    def log(self, ref: str, *lines: str, stream: str = "stdout") -> None:
        """An agent printed ``lines``: kept for ``agents.logs`` and published as ``AgentLog`` events."""
        info = self.agent(ref)
        self.logs.setdefault(info.id, []).extend(lines)
        self.emit(
            *(AgentLog(agent_id=info.id, name=info.name, stream=stream, line=line, at=self.now()) for line in lines)
        )

    async def _audit_or_event(self) -> bool:
        """Wait for a new audit record or engine event; False once the engine is closed."""
        if self.bus.closed:
            return False
        audit = asyncio.ensure_future(self._audit_tick.wait())
        event = asyncio.ensure_future(self.bus.wait_beyond(self.bus.published))
        try:
            await asyncio.wait({audit, event}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            audit.cancel()
            event.cancel()
        return not self.bus.closed

    def fail(self, method: str, error: SymbiError) -> None:
        """The next call of ``method`` (``"agents.start"``) raises ``error``."""
        self._failures[method] = error

    def called(self, method: str) -> list[tuple[Any, ...]]:
        """The arguments of every call of ``method`` so far."""
        return [args for name, args in self.calls if name == method]

    def _called(self, method: str, args: tuple[Any, ...]) -> None:
        self.calls.append((method, args))
        error = self._failures.pop(method, None)
        if error is not None:
            raise error

    def agent(self, ref: str) -> AgentInfo:
        for info in self.roster.values():
            if ref in (info.id, info.name):
                return info
        raise SymbiError(ErrorCode.AGENT_001, "agent not found", offending=ref, hint="see the agents screen")

    def set_state(self, agent_id: str, state: AgentState, reason: str = "") -> AgentInfo:
        """Move an agent to ``state`` and publish the change (as the engine's lifecycle does)."""
        info = self.roster[agent_id]
        now = self.now()
        started = now if state is AgentState.RUNNING else info.started_at
        new = dataclasses.replace(info, state=state, updated_at=now, started_at=started)
        self.roster[agent_id] = new
        self.history.setdefault(agent_id, []).append(StateChange(state, now, reason))
        self.emit(
            AgentStateChanged(agent_id=agent_id, name=info.name, old=info.state, new=state, reason=reason, at=now)
        )
        return new

    def metrics(self) -> EngineMetrics:
        by_state: dict[str, int] = {}
        for info in self.roster.values():
            by_state[info.state.value] = by_state.get(info.state.value, 0) + 1
        cpu, used, total = self.machine
        return EngineMetrics(
            data_dir=self.data_dir,
            mode=self.mode,
            uptime=60.0,
            agents_total=len(self.roster),
            agents_by_state=by_state,
            cpu_percent=cpu,
            memory_used_bytes=used,
            memory_total_bytes=total,
            total_memory_mb=4096,
            total_cpu_cores=4.0,
            allocated_memory_mb=sum(
                a.config.resource_limits.memory_mb for a in self.roster.values() if a.state.is_active
            ),
            allocated_cpu_cores=sum(
                a.config.resource_limits.cpu_cores for a in self.roster.values() if a.state.is_active
            ),
            scheduler_queued=0,
            scheduler_running=sum(1 for a in self.roster.values() if a.state is AgentState.RUNNING),
            scheduler_dispatched=0,
            events_published=self.bus.published,
            events_dropped=0,
        )

    # -- the interface ------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self.opened and self.closed_with is None

    async def open(self) -> None:
        self._called("open", ())
        self.opened = True

    async def close(self, reason: str = "engine shutdown") -> None:
        self.closed_with = reason
        self.bus.close()

    async def info(self) -> EngineInfo:
        return EngineInfo(
            mode=self.mode,
            data_dir=self.data_dir,
            run_id="fake-run",
            started_at=self.clock - 60.0,
            termination_timeout=3.0,
            console=self.console,
        )


def _conforms(fake: FakeEngine) -> Engine:
    return fake  # mypy checks that the fake implements the whole interface
