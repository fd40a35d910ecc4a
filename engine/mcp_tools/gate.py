"""The tool call path and the operator's decisions: :class:`ToolService`.

``call(agent, tool_id, arguments)`` passes, in order: known tool → verified
(SchemaPin valid, or the server explicitly allowed unsigned) → approved (a
usable review state, and the served definition is the approved one) → policy
(``policy_check``) → per-call human approval when policy says
``RequireApproval`` (bound to the SHA-256 of the canonical arguments,
expiring, decided in-process or from another process through the registry's
``pending_calls`` table) → a single-use approval is used up → the MCP call
with a timeout and a per-tool circuit breaker → the result bounded in size.
Each step is reported to the ``audit`` hook with arguments and results
redacted; an audit failure before the call stops the call (fail closed).
``policy_check`` and ``audit`` are required: there is no way to build a
service that skips either (a process that calls no tools, like the review
CLI, passes :func:`refuse_every_call`).

Review (see the states in :mod:`engine.mcp_tools.registry`): discovery pins a
new or changed definition (``PendingReview``), the analyzer runs
(``UnderReview``) with the other servers' tools as context, then the tool is
auto-rejected (score >= ``auto_reject_at``), auto-approved (review not
required or score <= ``auto_approve_at``, no High/Critical finding, verified)
or left ``AwaitingHumanReview`` (``Expired`` after ``review_timeout``). An
operator approval for ``always`` is signed with the operator key (``Signed``,
or ``SigningFailed``); ``session`` ends when the engine restarts; ``once``
covers one call.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, cast

from engine.audit.redact import redact
from engine.clock import Clock, SystemClock
from engine.errors import ErrorCode, SymbiError
from engine.mcp_tools.client import McpClientPool, ServerConfig, ToolDefinition
from engine.mcp_tools.keystore import KeyStore
from engine.mcp_tools.operator_key import OperatorKey
from engine.mcp_tools.registry import (
    APPROVED,
    AWAITING_HUMAN,
    EXPIRED,
    PENDING,
    REJECTED,
    SCOPES,
    SIGNED,
    SIGNING_FAILED,
    UNDER_REVIEW,
    USABLE_STATES,
    WAITING_STATES,
    ToolRecord,
    ToolRegistry,
)
from engine.mcp_tools.review import definition_hash
from engine.mcp_tools.schemapin import SchemaVerifier, canonicalize
from engine.recovery.circuit_breaker import CircuitBreaker

log = logging.getLogger("symbi.mcp.gate")

PolicyCheck = Callable[..., Any]  # (agent, "Tool", tool_id, "Call", tool_name=...) -> (Decision, request)
AuditHook = Callable[..., Awaitable[Any] | Any]  # AuditTrail.append(**fields) compatible
WaitHook = Callable[[Any, "PendingCall"], Awaitable[None] | None]
ChangeHook = Callable[[str, dict[str, Any]], Any]  # (kind, details): see ToolService._notify
HIGH = ("High", "Critical")


def arguments_hash(arguments: dict[str, Any]) -> str:
    return hashlib.sha256(canonicalize(arguments).encode("utf-8")).hexdigest()


def new_call_id() -> str:
    """Unique across engine restarts (the pending_calls table outlives a process)."""
    return "call-" + uuid.uuid4().hex[:16]


@dataclass
class ToolResult:
    tool_id: str
    is_error: bool
    content: list[dict[str, Any]]
    structured: Any = None
    truncated: bool = False
    size: int = 0  # bytes of the result as received (before bounding)

    def text(self) -> str:
        return "".join(c.get("text", "") for c in self.content if c.get("type") == "text")

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class PendingCall:
    """A call waiting for a human: the exact arguments and their hash are what is approved.

    ``future`` resolves to (outcome, actor, reason) when decided in this process."""

    id: str
    agent_id: str
    tool_id: str
    arguments: dict[str, Any]
    arguments_sha256: str
    created_at: float
    expires_at: float
    policy: str | None
    future: asyncio.Future[tuple[str, str, str]] = field(repr=False)

    def view(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "future"}


def _agent_id(agent: Any) -> str:
    return str(getattr(agent, "id", None) or getattr(getattr(agent, "config", None), "name", None) or agent)


def _bound_result(tool_id: str, raw: Any, max_bytes: int) -> ToolResult:
    content: list[dict[str, Any]] = []
    for item in getattr(raw, "content", None) or []:
        dump = (
            item.model_dump(mode="json", exclude_none=True, by_alias=True)
            if hasattr(item, "model_dump")
            else dict(item)
        )
        content.append(dump)
    structured = getattr(raw, "structured_content", None)
    size = len(json.dumps({"content": content, "structured": structured}, default=str).encode())
    truncated = False
    if size > max_bytes:
        truncated = True
        budget = max_bytes
        bounded: list[dict[str, Any]] = []
        for c in content:
            if budget <= 0:
                break
            if c.get("type") == "text":
                text = c.get("text", "")
                enc = text.encode()
                if len(enc) > budget:
                    text = enc[:budget].decode("utf-8", errors="ignore")
                budget -= len(text.encode())
                bounded.append({"type": "text", "text": text})
            else:  # images/blobs/resources are dropped when over budget
                bounded.append({"type": c.get("type", "unknown"), "omitted": True})
        content, structured = bounded, None
    return ToolResult(tool_id, bool(getattr(raw, "is_error", False)), content, structured, truncated, size)


def refuse_every_call(
    agent: Any, resource_type: str, path: str, operation: str, **_: Any
) -> tuple[Any, dict[str, Any]]:
    """A ``policy_check`` for a process that makes no tool calls (the review CLI): every call is denied."""
    from engine.policy.model import Decision

    request = {"resource_type": resource_type, "resource": path, "operation": operation}
    return Decision("Deny", "refuse-every-call", "this process does not make tool calls", ()), request


class ToolService:
    """Tools from MCP servers: discovery, analysis, review, SchemaPin, approvals and the guarded call path."""

    def __init__(
        self,
        *,
        registry: ToolRegistry,
        pool: McpClientPool,
        verifier: SchemaVerifier | None,
        policy_check: PolicyCheck,
        audit: AuditHook,
        keystore: KeyStore | None = None,
        clock: Clock | None = None,
        enforce_verification: bool = True,
        require_review: bool = True,
        call_timeout: float = 60.0,
        approval_timeout: float = 300.0,
        max_result_bytes: int = 1_000_000,
        breaker_failures: int = 5,
        breaker_window: float = 60.0,
        breaker_reset: float = 30.0,
        on_wait_start: WaitHook | None = None,
        on_wait_end: WaitHook | None = None,
        on_change: ChangeHook | None = None,
        analyzer: Any = None,
        operator_key: OperatorKey | None = None,
        auto_approve_at: int = -1,
        auto_reject_at: int = 101,
        review_timeout: float = 0.0,
        call_poll_interval: float = 0.25,
        poll_sleep: Callable[[float], Awaitable[Any]] | None = None,
        tick_interval: float = 1.0,
    ) -> None:
        self.registry = registry
        self.pool = pool
        self.verifier = verifier
        self.keystore = keystore if keystore is not None else getattr(verifier, "keystore", None)
        self.policy_check = policy_check
        self.audit = audit
        self.clock: Clock = clock or SystemClock()
        self.enforce_verification = enforce_verification
        self.require_review = require_review
        self.call_timeout = call_timeout
        self.approval_timeout = approval_timeout
        self.max_result_bytes = max_result_bytes
        self._breaker_failures = breaker_failures
        self._breaker_window = breaker_window
        self._breaker_reset = breaker_reset
        self.breakers: dict[str, CircuitBreaker] = {}
        self.on_wait_start = on_wait_start
        self.on_wait_end = on_wait_end
        self.on_change = on_change
        self._analyzer = analyzer
        self.operator_key = operator_key
        self.auto_approve_at = auto_approve_at
        self.auto_reject_at = auto_reject_at
        self.review_timeout = review_timeout
        self.call_poll_interval = call_poll_interval
        self._poll_sleep = poll_sleep or asyncio.sleep
        self.tick_interval = tick_interval
        self._pending: dict[str, PendingCall] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.discovery_errors: dict[str, str] = {}
        if pool.on_list_changed is None:
            pool.on_list_changed = self.discover

    # -- plumbing --------------------------------------------------------------------

    @property
    def analyzer(self) -> Any:
        if self._analyzer is None:
            from engine.mcp_tools.analyzer import OfflineAnalyzer

            self._analyzer = OfflineAnalyzer()
        return self._analyzer

    async def _audit(self, **fields: Any) -> None:
        if "details" in fields:
            fields["details"] = redact(fields["details"])
        result = self.audit(**fields)
        if inspect.isawaitable(result):
            await result

    def _notify(self, kind: str, details: dict[str, Any]) -> None:
        """Tell the observer: ``tool.review`` {tool_id, state, event}, ``call.pending`` {call_id, tool_id,
        agent_id, ...}, ``call.decided`` {call_id, tool_id, outcome}, ``key.change`` {domain, old_fingerprint,
        new_fingerprint}."""
        if self.on_change is not None:
            try:
                self.on_change(kind, details)
            except Exception:  # noqa: BLE001 - observers never break the call path
                log.exception("on_change hook failed")

    def _review_changed(self, rec: ToolRecord, event: str) -> None:
        self._notify("tool.review", {"tool_id": rec.id, "state": rec.state, "event": event})

    @staticmethod
    async def _hook(hook: WaitHook | None, agent: Any, pending: PendingCall) -> None:
        if hook is None:
            return
        result = hook(agent, pending)
        if inspect.isawaitable(result):
            await result

    def breaker(self, tool_id: str) -> CircuitBreaker:
        b = self.breakers.get(tool_id)
        if b is None:
            b = self.breakers[tool_id] = CircuitBreaker(
                f"tool:{tool_id}",
                clock=self.clock,
                failure_threshold=self._breaker_failures,
                window=self._breaker_window,
                reset_timeout=self._breaker_reset,
            )
        return b

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- engine start and the periodic check ---------------------------------------------

    async def start(self, *, background: bool = True) -> None:
        """Recovery when an engine opens (never from a CLI): calls left waiting by a dead engine expire,
        session approvals end, approvals whose operator signature does not verify go back to review.
        With ``background``, configured servers are discovered and the periodic check runs in tasks."""
        recovered = await self.registry.engine_started()
        for call_id in recovered["calls"]:
            with contextlib.suppress(SymbiError):
                await self._audit(
                    type="tool.call",
                    action="approval-expired",
                    resource=call_id,
                    decision="deny",
                    actor="engine",
                    details={"call_id": call_id, "reason": "the engine that waited for it stopped"},
                )
        for tool_id in recovered["sessions"]:
            await self._audit(
                type="tool.review",
                action="session-ended",
                resource=tool_id,
                decision="pending",
                actor="engine",
                details={"reason": "session approvals end when the engine restarts"},
            )
            rec = await self.registry.get(tool_id)
            if rec is not None:
                self._review_changed(rec, "session-ended")
        await self.check_approval_signatures()
        if background:
            if self.pool.configs:
                self._spawn(self.discover_configured(), "mcp-discovery")
            self._spawn(self.run_periodic(), "mcp-review-check")

    async def check_approval_signatures(self) -> list[str]:
        """Approvals (other than session ones) must carry a valid operator signature over what was
        approved; any that does not (edited database, another key) goes back to human review."""
        demoted: list[str] = []
        for rec in await self.registry.list_tools(state=USABLE_STATES):
            if rec.scope == "session":
                continue
            problem = None
            if rec.approved_definition is None or rec.approved_hash != definition_hash(rec.approved_definition):
                problem = "approved definition does not match its hash"
            elif self.operator_key is None:
                problem = "no operator key to check it with"
            else:
                try:
                    if not self.operator_key.verify_approval(
                        rec.id, rec.scope or "always", rec.approved_definition, rec.approval_signature
                    ):
                        problem = (
                            "signature does not verify against the operator key " + self.operator_key.fingerprint()
                        )
                except SymbiError as exc:
                    problem = f"operator key unusable: {exc.message}"
            if problem is None:
                if rec.state == APPROVED and (rec.scope or "always") == "always":
                    # an engine stopped between Approved and Signed: the signature is good, finish the move
                    new, _ = await self.registry.transition(
                        rec.id,
                        SIGNED,
                        actor="engine",
                        expected_state=APPROVED,
                        note="signature verified on start: signed",
                    )
                    self._review_changed(new, "signed")
                continue
            finding = {
                "kind": "approval-signature",
                "severity": "High",
                "reason": "approval signature invalid",
                "evidence": problem,
                "field": "approval",
                "span": None,
            }
            findings = [f for f in rec.findings if f.get("kind") != "approval-signature"] + [finding]
            with contextlib.suppress(SymbiError):
                await self._audit(
                    type="tool.review",
                    action="approval-invalid",
                    resource=rec.id,
                    decision="deny",
                    actor="engine",
                    details={"reason": problem, "def_hash": rec.def_hash, "from": rec.state},
                )
            new, _ = await self.registry.transition(
                rec.id,
                AWAITING_HUMAN,
                actor="engine",
                note=f"approval signature invalid: {problem}",
                updates={"findings": findings},
            )
            log.warning("approval of %s is not valid (%s): back to review", rec.id, problem)
            self._review_changed(new, "approval-invalid")
            demoted.append(rec.id)
        return demoted

    async def tick(self) -> None:
        """The periodic check: expire overdue reviews, copy CLI decisions into the audit trail."""
        await self.expire_reviews()
        await self.drain_outbox()

    async def run_periodic(self) -> None:
        while True:
            await self.clock.sleep(self.tick_interval)
            try:
                await self.tick()
            except SymbiError as exc:
                log.warning("tool review check failed: %s", exc.render())

    async def expire_reviews(self) -> list[ToolRecord]:
        expired = await self.registry.expire_due(self.review_timeout)
        for rec in expired:
            with contextlib.suppress(SymbiError):
                await self._audit(
                    type="tool.review",
                    action="expired",
                    resource=rec.id,
                    decision="deny",
                    actor="engine",
                    details={"review_timeout": self.review_timeout, "def_hash": rec.def_hash},
                )
            self._review_changed(rec, "expired")
        return expired

    async def drain_outbox(self) -> int:
        """Decisions a CLI made while this engine held the audit trail: audit them here, in order."""
        taken = await self.registry.outbox_take()
        done: list[int] = []
        try:
            for seq, event in taken:
                notify = event.pop("notify", None)
                if event:  # a row may carry only a notification
                    await self._audit(**event)
                done.append(seq)
                if notify:
                    self._notify(notify["kind"], notify["details"])
        finally:
            await self.registry.outbox_done(done)
        return len(done)

    # -- servers and discovery -------------------------------------------------------

    def add_server(self, config: ServerConfig) -> None:
        self.pool.add(config)

    async def _verify(self, cfg: ServerConfig, tool: ToolDefinition) -> dict[str, Any]:
        schemapin_meta = tool.meta.get("schemapin")
        meta_sig: dict[str, Any] = schemapin_meta if isinstance(schemapin_meta, dict) else {}
        signature = cfg.signatures.get(tool.name) or meta_sig.get("signature")
        domain = cfg.domain
        if meta_sig.get("domain") and domain and meta_sig["domain"] != domain:
            return {
                "valid": False,
                "error_code": ErrorCode.SCHEMA_002.value,
                "error": f"tool claims domain {meta_sig['domain']}, server is configured for {domain}",
            }
        if not domain:
            return {
                "valid": False,
                "error_code": ErrorCode.SCHEMA_002.value,
                "error": "server has no SchemaPin domain configured",
                "unsigned": True,
            }
        if self.verifier is None:
            return {"valid": False, "error_code": ErrorCode.SCHEMA_001.value, "error": "no verifier configured"}
        result = (await self.verifier.verify(tool.signed_object(), signature, domain)).to_dict()
        if result.get("pin_status") == "changed" and self.keystore is not None:
            change = next((c for c in self.keystore.key_changes() if c["domain"] == domain), None)
            if change is not None:
                self._notify(
                    "key.change",
                    {
                        "domain": domain,
                        "old_fingerprint": change.get("old_fingerprint") or "",
                        "new_fingerprint": change["new_fingerprint"],
                    },
                )
        return result

    async def discover(self, server: str) -> list[tuple[ToolRecord, str]]:
        """List a server's tools, verify and pin each; new and changed ones are analysed and decided."""
        cfg = self.pool.config(server)
        out: list[tuple[ToolRecord, str]] = []
        for tool in await self.pool.list_tools(server):
            verification = await self._verify(cfg, tool)
            rec, event = await self.registry.record_discovery(tool, verification)
            if event != "unchanged":
                await self._audit(
                    type="tool.review",
                    action="discovered" if event == "new" else "changed",
                    resource=rec.id,
                    decision="pending",
                    details={
                        "def_hash": rec.def_hash,
                        "verified": rec.verified,
                        "findings": rec.findings,
                        "diff": rec.diff,
                    },
                )
                self._review_changed(rec, event)
            if rec.state in (PENDING, UNDER_REVIEW):  # new, changed, or left half-analysed by a dead engine
                rec = await self._analyze(rec, actor="engine")
            out.append((rec, event))
        self.discovery_errors.pop(server, None)
        return out

    async def discover_all(self) -> dict[str, list[tuple[ToolRecord, str]]]:
        return {name: await self.discover(name) for name in list(self.pool.configs)}

    async def discover_configured(self) -> dict[str, str]:
        """Discover every server; one that fails is logged and audited (``MCP_005``) and the rest go on."""
        for name in list(self.pool.configs):
            try:
                await self.discover(name)
            except SymbiError as exc:
                self.discovery_errors[name] = exc.message
                log.error("MCP server %s: discovery failed: %s", name, exc.message)
                with contextlib.suppress(SymbiError):
                    await self._audit(
                        type="tool.review",
                        action="server-failed",
                        resource=name,
                        decision="error",
                        actor="engine",
                        details={"code": ErrorCode.MCP_005.value, "cause": exc.code.value, "reason": exc.message},
                    )
        return dict(self.discovery_errors)

    # -- analysis and automatic decisions -----------------------------------------------

    async def _analyze(self, rec: ToolRecord, *, actor: str) -> ToolRecord:
        if rec.state != UNDER_REVIEW:
            rec, _ = await self.registry.transition(rec.id, UNDER_REVIEW, actor=actor, note="analysis started")
            self._review_changed(rec, "under-review")
        kept = [f for f in rec.findings if f.get("kind") == "changed"]
        try:
            from engine.mcp_tools.analyzer import AnalysisContext, score_findings

            context = AnalysisContext(server=rec.server, other_tools=await self.registry.others(rec.server))
            analysis = await self.analyzer.analyze(rec.definition, context)
            findings = kept + list(analysis.findings)
            score = max(int(analysis.score), int(score_findings(findings)))
            name = analysis.analyzer
        except Exception as exc:  # noqa: BLE001 - a broken analyzer means a human looks, never an approval
            log.exception("analysis of %s failed", rec.id)
            findings = kept + [
                {
                    "kind": "analysis-error",
                    "severity": "High",
                    "reason": f"the analyzer failed: {type(exc).__name__}: {exc}",
                    "evidence": "",
                    "field": "definition",
                    "span": None,
                }
            ]
            score, name = 100, getattr(self._analyzer, "name", "") or "unavailable"
        rec = await self.registry.update(rec.id, findings=findings, score=score, analyzer=name)
        high = [f for f in findings if f.get("severity") in HIGH]
        await self._audit(
            type="tool.review",
            action="analyzed",
            resource=rec.id,
            decision="pending",
            actor="engine",
            details={
                "analyzer": name,
                "score": score,
                "findings": len(findings),
                "high": len(high),
                "def_hash": rec.def_hash,
            },
        )
        self._review_changed(rec, "analyzed")
        if score >= self.auto_reject_at:
            note = f"auto-rejected: risk score {score} >= auto_reject_at {self.auto_reject_at}"
            await self._audit(
                type="tool.review",
                action="rejected",
                resource=rec.id,
                decision="deny",
                actor="engine",
                details={"reason": note, "score": score, "def_hash": rec.def_hash},
            )
            rec, _ = await self.registry.transition(
                rec.id, REJECTED, actor="engine", note=note, expected_state=UNDER_REVIEW
            )
            self._review_changed(rec, "rejected")
            return rec
        may_auto = not self.require_review or score <= self.auto_approve_at
        if may_auto and not high and rec.verified:
            why = (
                "review not required by config"
                if not self.require_review
                else f"risk score {score} <= auto_approve_at {self.auto_approve_at}"
            )
            return await self._approve(rec, f"auto-approved: {why}", "engine", rec.def_hash, "always")
        rec, _ = await self.registry.transition(
            rec.id,
            AWAITING_HUMAN,
            actor="engine",
            expected_state=UNDER_REVIEW,
            note="waiting for a human" + (f" ({len(high)} High/Critical findings)" if high else ""),
        )
        self._review_changed(rec, "awaiting-human")
        return rec

    # -- the call path -----------------------------------------------------------------

    async def _refuse(
        self, agent_id: str, tool_id: str, error: SymbiError, args: dict[str, Any], **policy: Any
    ) -> SymbiError:
        with contextlib.suppress(SymbiError):  # the refusal stands even if it cannot be recorded
            await self._audit(
                type="tool.call",
                action="call",
                resource=tool_id,
                decision="deny",
                agent=agent_id,
                details={"arguments": args, "code": error.code.value, "reason": error.message, **policy},
            )
        return error

    @staticmethod
    def _why_not(rec: ToolRecord) -> str:
        changed = " (its definition changed)" if rec.reason == "changed" else ""
        return {
            PENDING: "is waiting for review" + changed,
            UNDER_REVIEW: "is being analysed" + changed,
            AWAITING_HUMAN: "is waiting for a human review" + changed,
            EXPIRED: "was not reviewed in time (Expired)",
            REJECTED: "was rejected",
            SIGNING_FAILED: "was approved but the approval could not be signed (SigningFailed)",
        }.get(rec.state, "changed since it was approved")

    async def call(self, agent: Any, tool_id: str, arguments: dict[str, Any] | None = None) -> ToolResult:
        arguments = dict(arguments or {})
        agent_id = _agent_id(agent)
        rec = await self.registry.get(tool_id)
        if rec is None:
            raise await self._refuse(
                agent_id,
                tool_id,
                SymbiError(ErrorCode.MCP_002, f"unknown tool {tool_id}", offending=tool_id),
                arguments,
            )
        if (
            rec.state == AWAITING_HUMAN
            and self.review_timeout > 0
            and (rec.awaiting_since or 0) + self.review_timeout <= self.clock.time()
        ):
            await self.expire_reviews()
            rec = await self.registry.get(tool_id) or rec
        cfg = self.pool.config(rec.server)
        if not rec.verified and self.enforce_verification and not cfg.allow_unsigned:
            v = rec.verification
            code = v.get("error_code") or ErrorCode.SCHEMA_002.value
            raise await self._refuse(
                agent_id,
                tool_id,
                SymbiError(
                    code,
                    f"tool {tool_id} is not verified: {v.get('error')}",
                    offending=tool_id,
                    hint="sign the tool (SchemaPin) or allow this server unsigned in config",
                ),
                arguments,
            )
        if not rec.approved:
            raise await self._refuse(
                agent_id,
                tool_id,
                SymbiError(
                    ErrorCode.MCP_003,
                    f"tool {tool_id} {self._why_not(rec)}",
                    offending=tool_id,
                    hint="an operator must approve the tool in the review queue",
                ),
                arguments,
            )
        decision, _request = self.policy_check(agent, "Tool", tool_id, "Call", tool_name=rec.name)
        if decision.decision == "RequireApproval":
            await self._await_approval(agent, agent_id, rec, arguments, decision)
        elif not decision.allowed:
            raise await self._refuse(
                agent_id,
                tool_id,
                SymbiError(
                    ErrorCode.POLICY_001,
                    f"tool call denied: {decision.reason}",
                    offending=tool_id,
                    details={"policy": decision.policy, "decision": decision.decision},
                ),
                arguments,
                policy=decision.policy,
                policy_decision=decision.decision,
            )
        if rec.scope == "once" and not await self.registry.consume_once(tool_id, rec.def_hash):
            raise await self._refuse(
                agent_id,
                tool_id,
                SymbiError(
                    ErrorCode.MCP_003,
                    f"tool {tool_id}: its single-use approval was already used",
                    offending=tool_id,
                    hint="approve it again",
                ),
                arguments,
            )
        if rec.scope == "once":
            used = await self.registry.get(tool_id)
            if used is not None:
                self._review_changed(used, "once-used")
        # fail closed: the call happens only once it is on record
        await self._audit(
            type="tool.call",
            action="call",
            resource=tool_id,
            decision="allow",
            agent=agent_id,
            details={
                "arguments": arguments,
                "arguments_sha256": arguments_hash(arguments),
                "def_hash": rec.def_hash,
                "scope": rec.scope,
                "policy": getattr(decision, "policy", None),
                "policy_decision": getattr(decision, "decision", None),
            },
        )
        breaker = self.breaker(tool_id)

        async def invoke() -> Any:
            raw = await self.pool.call_tool(rec.server, rec.name, arguments, self.call_timeout)
            if getattr(raw, "is_error", False):
                raise _ToolFailed(raw)
            return raw

        try:
            raw = await breaker.call(invoke)
        except _ToolFailed as failed:
            raw = failed.raw
        except SymbiError as exc:
            with contextlib.suppress(SymbiError):
                await self._audit(
                    type="tool.call",
                    action="result",
                    resource=tool_id,
                    decision="error",
                    agent=agent_id,
                    details={"code": exc.code.value, "reason": exc.message},
                )
            raise
        result = _bound_result(tool_id, raw, self.max_result_bytes)
        with contextlib.suppress(SymbiError):  # the call already happened; a failed record is logged by the trail
            await self._audit(
                type="tool.call",
                action="result",
                resource=tool_id,
                decision="error" if result.is_error else "allow",
                agent=agent_id,
                details={"result": result.to_dict(), "arguments": arguments},
            )
        return result

    async def _poll_call(self, call_id: str) -> tuple[str, str, str]:
        """Wait for a decision written to the registry by another process (``symbiont tools allow-call``)."""
        while True:
            await self._poll_sleep(self.call_poll_interval)
            try:
                row = await self.registry.get_call(call_id)
            except SymbiError as exc:
                log.warning("polling call %s: %s", call_id, exc.render())
                continue
            if row is not None and row["decision"] is not None:
                return row["decision"], row["decided_by"] or "operator", row["reason"] or ""

    async def _await_approval(
        self, agent: Any, agent_id: str, rec: ToolRecord, arguments: dict[str, Any], decision: Any
    ) -> None:
        loop = asyncio.get_running_loop()
        now = self.clock.time()
        pending = PendingCall(
            id=new_call_id(),
            agent_id=agent_id,
            tool_id=rec.id,
            arguments=json.loads(canonicalize(arguments)),
            arguments_sha256=arguments_hash(arguments),
            created_at=now,
            expires_at=now + self.approval_timeout,
            policy=getattr(decision, "policy", None),
            future=loop.create_future(),
        )
        await self._audit(
            type="tool.call",
            action="approval-requested",
            resource=rec.id,
            decision="pending",
            agent=agent_id,
            details={
                "call_id": pending.id,
                "arguments": arguments,
                "arguments_sha256": pending.arguments_sha256,
                "expires_at": pending.expires_at,
            },
        )
        await self.registry.add_call(pending.view())
        self._pending[pending.id] = pending
        self._notify("call.pending", {"call_id": pending.id, **pending.view()})
        outcome, actor, reason = "expired", "engine", ""
        await self._hook(self.on_wait_start, agent, pending)
        expiry = asyncio.ensure_future(self.clock.sleep(self.approval_timeout))
        poller = asyncio.ensure_future(self._poll_call(pending.id))
        try:
            waiting: set[asyncio.Future[Any]] = {pending.future, expiry, poller}
            done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if pending.future in done:
                outcome, actor, reason = pending.future.result()
            elif poller in done:
                outcome, actor, reason = poller.result()
        finally:
            expiry.cancel()
            poller.cancel()
            self._pending.pop(pending.id, None)
            if not pending.future.done():
                pending.future.cancel()
            await self._hook(self.on_wait_end, agent, pending)
        if outcome == "approved" and arguments_hash(arguments) != pending.arguments_sha256:
            outcome = "arguments-changed"  # the approval is for exactly what was shown
        with contextlib.suppress(SymbiError):  # first decision on record wins (another process may have decided too)
            await self.registry.settle_call(pending.id, outcome, actor, reason)
            row = await self.registry.get_call(pending.id)
            if row is not None and row["decision"] not in (None, outcome) and outcome != "arguments-changed":
                outcome, actor, reason = row["decision"], row["decided_by"] or actor, row["reason"] or reason
        with contextlib.suppress(SymbiError):
            await self._audit(
                type="tool.call",
                action="approval-" + outcome,
                resource=rec.id,
                decision="allow" if outcome == "approved" else "deny",
                agent=agent_id,
                actor=actor,
                details={"call_id": pending.id, "arguments_sha256": pending.arguments_sha256, "reason": reason},
            )
        self._notify("call.decided", {"call_id": pending.id, "tool_id": rec.id, "outcome": outcome})
        if outcome != "approved":
            raise SymbiError(
                ErrorCode.MCP_006,
                f"tool call {pending.id} to {rec.id} not approved: {outcome}",
                offending=rec.id,
                details={"call_id": pending.id, "outcome": outcome},
            )

    # -- operator API: reviews -------------------------------------------------------

    async def tools(self) -> list[ToolRecord]:
        await self.expire_reviews()
        return await self.registry.list_tools()

    async def pending_reviews(self) -> list[ToolRecord]:
        """The review queue (every waiting state), newest first."""
        await self.expire_reviews()
        return await self.registry.list_tools(state=WAITING_STATES)

    async def get_tool(self, tool_id: str) -> ToolRecord:
        await self.expire_reviews()
        rec = await self.registry.get(tool_id)
        if rec is None:
            raise SymbiError(
                ErrorCode.MCP_002, f"unknown tool {tool_id}", offending=tool_id, hint="see `symbiont tools list`"
            )
        return rec

    async def tool_history(self, tool_id: str) -> list[dict[str, Any]]:
        await self.get_tool(tool_id)
        return [
            {k: h[k] for k in ("ts", "from_state", "to_state", "actor", "note", "def_hash")}
            for h in await self.registry.history(tool_id)
        ]

    async def _approve(
        self, rec: ToolRecord, note: str, actor: str, expected_hash: str | None, scope: str
    ) -> ToolRecord:
        if scope not in SCOPES:
            raise SymbiError(
                ErrorCode.MCP_007,
                f"unknown approval scope {scope!r}",
                offending=scope,
                hint=f"one of {', '.join(SCOPES)}",
            )
        signature, sign_error = None, None
        if scope != "session":
            try:
                if self.operator_key is None:
                    raise SymbiError(
                        ErrorCode.SCHEMA_006, "no operator key configured", hint="open the service with an operator key"
                    )
                signature = self.operator_key.sign_approval(rec.id, scope, rec.definition)
            except SymbiError as exc:
                sign_error = exc.message
        await self._audit(
            type="tool.review",
            action="approved",
            resource=rec.id,
            decision="allow",
            actor=actor,
            details={
                "note": note,
                "scope": scope,
                "def_hash": rec.def_hash,
                "from": rec.state,
                "operator_key": self._fingerprint_or_none(),
                "signed": signature is not None,
            },
        )
        new, _ = await self.registry.transition(
            rec.id,
            APPROVED,
            actor=actor,
            note=note,
            expected_hash=expected_hash or rec.def_hash,
            updates={"scope": scope, "approval_signature": signature},
        )
        self._review_changed(new, "approved")
        if scope == "always":
            if signature is not None:
                new, _ = await self.registry.transition(
                    rec.id,
                    SIGNED,
                    actor=actor,
                    note=f"signed with the operator key {self._fingerprint_or_none()}",
                    expected_state=APPROVED,
                )
                self._review_changed(new, "signed")
            else:
                await self._audit(
                    type="tool.review",
                    action="signing-failed",
                    resource=rec.id,
                    decision="deny",
                    actor="engine",
                    details={"reason": sign_error, "def_hash": rec.def_hash},
                )
                new, _ = await self.registry.transition(
                    rec.id,
                    SIGNING_FAILED,
                    actor="engine",
                    note=f"signing failed: {sign_error}",
                    expected_state=APPROVED,
                    updates={"scope": None, "approval_signature": None},
                )
                self._review_changed(new, "signing-failed")
        return new

    def _fingerprint_or_none(self) -> str | None:
        try:
            return self.operator_key.fingerprint() if self.operator_key is not None else None
        except SymbiError:
            return None

    async def approve_tool(
        self,
        tool_id: str,
        note: str = "",
        *,
        actor: str = "operator",
        expected_hash: str | None = None,
        scope: str = "always",
    ) -> ToolRecord:
        """Approve the definition served now (``expected_hash``: the one the operator read) for ``scope``:
        ``always`` (signed with the operator key → Signed), ``session`` (until the engine restarts) or
        ``once`` (one call, then back to AwaitingHumanReview)."""
        return await self._approve(await self.get_tool(tool_id), note, actor, expected_hash, scope)

    async def reject_tool(self, tool_id: str, reason: str, *, actor: str = "operator") -> ToolRecord:
        if not isinstance(reason, str) or not reason.strip():
            raise SymbiError(
                ErrorCode.MCP_007,
                f"rejecting {tool_id} needs a reason",
                offending=tool_id,
                hint="say why (it is kept in the tool's history and the audit trail)",
            )
        rec = await self.get_tool(tool_id)
        await self._audit(
            type="tool.review",
            action="rejected",
            resource=tool_id,
            decision="deny",
            actor=actor,
            details={"reason": reason, "def_hash": rec.def_hash, "from": rec.state},
        )
        new, _ = await self.registry.transition(tool_id, REJECTED, actor=actor, note=reason)
        self._review_changed(new, "rejected")
        return new

    async def defer_tool(self, tool_id: str, note: str = "", *, actor: str = "operator") -> ToolRecord:
        """Decide later: the tool stays waiting (not a rejection); its expiry clock starts again."""
        rec = await self.get_tool(tool_id)
        if rec.state not in (PENDING, AWAITING_HUMAN, EXPIRED):
            raise SymbiError(
                ErrorCode.MCP_007,
                f"tool {tool_id} cannot be deferred from {rec.state}",
                offending=tool_id,
                hint="only a tool waiting for review can be deferred",
                details={"from": rec.state, "to": rec.state},
            )
        await self._audit(
            type="tool.review",
            action="deferred",
            resource=tool_id,
            decision="pending",
            actor=actor,
            details={"note": note, "def_hash": rec.def_hash, "from": rec.state},
        )
        updates: dict[str, Any] = {"deferred": True, "note": note, "decided_by": actor}
        if rec.state == AWAITING_HUMAN:
            updates["awaiting_since"] = self.clock.time()
        new, _ = await self.registry.transition(
            tool_id, rec.state, actor=actor, note=note or "deferred", expected_state=rec.state, updates=updates
        )
        self._review_changed(new, "deferred")
        return new

    async def reanalyze_tool(self, tool_id: str, *, actor: str = "operator") -> ToolRecord:
        rec = await self.get_tool(tool_id)
        await self._audit(
            type="tool.review",
            action="reanalyze",
            resource=tool_id,
            decision="pending",
            actor=actor,
            details={"def_hash": rec.def_hash, "from": rec.state},
        )
        rec, _ = await self.registry.transition(tool_id, UNDER_REVIEW, actor=actor, note="analysis requested")
        self._review_changed(rec, "under-review")
        return await self._analyze(rec, actor=actor)

    # -- operator API: per-call approvals --------------------------------------------------

    def pending_calls(self) -> list[dict[str, Any]]:
        """Calls of this engine waiting for a human, newest first (``registry.calls()`` sees every process's)."""
        return [p.view() for p in sorted(self._pending.values(), key=lambda p: p.created_at, reverse=True)]

    def _pending_call(self, call_id: str) -> PendingCall:
        p = self._pending.get(call_id)
        if p is None or p.future.done():
            raise SymbiError(
                ErrorCode.MCP_006, f"no pending call {call_id}", offending=call_id, hint="it may have expired"
            )
        return p

    def approve_call(self, call_id: str, arguments_sha256: str | None = None, *, actor: str = "operator") -> None:
        """Approve a waiting call; ``arguments_sha256`` (what the operator was shown) must match if given."""
        p = self._pending_call(call_id)
        if self.clock.time() >= p.expires_at:
            p.future.set_result(("expired", "engine", ""))
            raise SymbiError(ErrorCode.MCP_006, f"call {call_id} expired", offending=call_id)
        if arguments_sha256 is not None and arguments_sha256 != p.arguments_sha256:
            raise SymbiError(
                ErrorCode.MCP_006,
                "approval does not match the call's arguments",
                offending=call_id,
                hint="review the call again: its arguments are not the ones approved",
            )
        p.future.set_result(("approved", actor, ""))

    def deny_call(self, call_id: str, reason: str = "", *, actor: str = "operator") -> None:
        self._pending_call(call_id).future.set_result(("denied", actor, reason))

    # -- operator API: keys ------------------------------------------------------------

    def key_changes(self) -> list[dict[str, Any]]:
        return self.keystore.key_changes() if self.keystore is not None else []

    def _key_change(self, domain: str) -> dict[str, Any]:
        if self.keystore is None:
            raise SymbiError(ErrorCode.SCHEMA_004, "no key store configured", offending=domain)
        change = next((c for c in self.keystore.key_changes() if c["domain"] == domain), None)
        if change is None:
            raise SymbiError(
                ErrorCode.SCHEMA_004,
                f"no pending key change for {domain}",
                offending=domain,
                hint="see `symbiont tools keys`",
            )
        return change

    async def accept_key_change(self, domain: str, *, actor: str = "operator") -> dict[str, Any]:
        keystore = await self._record_key_decision(domain, actor, "accept-key-change", "allow")
        return keystore.accept_key_change(domain)

    async def reject_key_change(self, domain: str, *, actor: str = "operator") -> dict[str, Any]:
        """Keep the pinned key: the new one is forgotten (the domain's tools stay blocked while it serves it)."""
        keystore = await self._record_key_decision(domain, actor, "reject-key-change", "deny")
        return keystore.reject_key_change(domain)

    async def _record_key_decision(self, domain: str, actor: str, action: str, decision: str) -> KeyStore:
        """Audit the operator's decision on a pending key change; the key store to apply it to."""
        change = self._key_change(domain)  # SCHEMA_004 when there is none, so the key store exists
        await self._audit(
            type="tool.review",
            action=action,
            resource=domain,
            decision=decision,
            actor=actor,
            details={"old_fingerprint": change["old_fingerprint"], "new_fingerprint": change["new_fingerprint"]},
        )
        return cast(KeyStore, self.keystore)

    def operator_fingerprint(self) -> str:
        """The fingerprint of the key that signs this operator's approvals."""
        if self.operator_key is None:
            raise SymbiError(ErrorCode.SCHEMA_006, "no operator key configured")
        return self.operator_key.fingerprint()

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        for p in list(self._pending.values()):
            if not p.future.done():
                p.future.set_result(("denied", "engine", "engine shutdown"))
        await self.pool.close()
        await self.registry.close()


class _ToolFailed(Exception):
    """A tool answered with is_error: counted by the breaker, returned to the caller."""

    def __init__(self, raw: Any) -> None:
        super().__init__("tool error")
        self.raw = raw
