"""The tool call path and the operator's decisions: :class:`ToolService`.

``call(agent, tool_id, arguments)`` passes, in order: known tool → verified
(SchemaPin valid, or the server explicitly allowed unsigned) → approved (and
the served definition is the approved one) → policy (``policy_check``) →
per-call human approval when policy says ``RequireApproval`` (bound to the
SHA-256 of the canonical arguments, expiring) → the MCP call with a timeout
and a per-tool circuit breaker → the result bounded in size. Each step is
reported to the ``audit`` hook with arguments and results redacted; an
audit failure before the call stops the call (fail closed).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import itertools
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from engine.audit.redact import redact
from engine.clock import Clock, SystemClock
from engine.errors import ErrorCode, SymbiError
from engine.mcp_tools.client import McpClientPool, ServerConfig, ToolDefinition
from engine.mcp_tools.keystore import KeyStore
from engine.mcp_tools.registry import APPROVED, PENDING, REJECTED, ToolRecord, ToolRegistry
from engine.mcp_tools.schemapin import SchemaVerifier, canonicalize
from engine.recovery.circuit_breaker import CircuitBreaker

log = logging.getLogger("symbi.mcp.gate")

PolicyCheck = Callable[..., Any]  # (agent, "Tool", tool_id, "Call", tool_name=...) -> (Decision, request)
AuditHook = Callable[..., Awaitable[Any] | Any]  # AuditTrail.append(**fields) compatible
WaitHook = Callable[[Any, "PendingCall"], Awaitable[None] | None]


def arguments_hash(arguments: dict[str, Any]) -> str:
    return hashlib.sha256(canonicalize(arguments).encode("utf-8")).hexdigest()


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
    """A call waiting for a human: the exact arguments and their hash are what is approved."""

    id: str
    agent_id: str
    tool_id: str
    arguments: dict[str, Any]
    arguments_sha256: str
    created_at: float
    expires_at: float
    policy: str | None
    future: asyncio.Future[str] = field(repr=False)

    def view(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "future"}


def _agent_id(agent: Any) -> str:
    return str(getattr(agent, "id", None) or getattr(getattr(agent, "config", None), "name", None) or agent)


def _bound_result(tool_id: str, raw: Any, max_bytes: int) -> ToolResult:
    content: list[dict[str, Any]] = []
    for item in getattr(raw, "content", None) or []:
        dump = item.model_dump(mode="json", exclude_none=True, by_alias=True) if hasattr(item, "model_dump") else dict(item)
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


class ToolService:
    """Tools from MCP servers: discovery, review, SchemaPin, approvals and the guarded call path."""

    def __init__(
        self,
        *,
        registry: ToolRegistry,
        pool: McpClientPool,
        verifier: SchemaVerifier | None,
        keystore: KeyStore | None = None,
        policy_check: PolicyCheck | None = None,
        audit: AuditHook | None = None,
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
        on_change: Callable[[str, dict[str, Any]], Any] | None = None,
    ) -> None:
        self.registry = registry
        self.pool = pool
        self.verifier = verifier
        self.keystore = keystore if keystore is not None else getattr(verifier, "keystore", None)
        self.policy_check = policy_check
        self.audit = audit
        self.clock = clock or SystemClock()
        self.enforce_verification = enforce_verification
        self.require_review = require_review
        self.call_timeout = call_timeout
        self.approval_timeout = approval_timeout
        self.max_result_bytes = max_result_bytes
        self._breaker_args = {"failure_threshold": breaker_failures, "window": breaker_window, "reset_timeout": breaker_reset}
        self.breakers: dict[str, CircuitBreaker] = {}
        self.on_wait_start = on_wait_start
        self.on_wait_end = on_wait_end
        self.on_change = on_change  # (kind, details): "tool.review", "tool.changed", "call.pending", ...
        self._pending: dict[str, PendingCall] = {}
        self._ids = itertools.count(1)
        if pool.on_list_changed is None:
            pool.on_list_changed = self.discover

    # -- plumbing --------------------------------------------------------------------

    async def _audit(self, **fields: Any) -> None:
        if self.audit is None:
            return
        if "details" in fields:
            fields["details"] = redact(fields["details"])
        result = self.audit(**fields)
        if inspect.isawaitable(result):
            await result

    def _notify(self, kind: str, details: dict[str, Any]) -> None:
        if self.on_change is not None:
            try:
                self.on_change(kind, details)
            except Exception:  # noqa: BLE001 - observers never break the call path
                log.exception("on_change hook failed")

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
            b = self.breakers[tool_id] = CircuitBreaker(f"tool:{tool_id}", clock=self.clock, **self._breaker_args)
        return b

    # -- servers and discovery -------------------------------------------------------

    def add_server(self, config: ServerConfig) -> None:
        self.pool.add(config)

    async def _verify(self, cfg: ServerConfig, tool: ToolDefinition) -> dict[str, Any]:
        meta_sig = tool.meta.get("schemapin") if isinstance(tool.meta.get("schemapin"), dict) else {}
        signature = cfg.signatures.get(tool.name) or meta_sig.get("signature")
        domain = cfg.domain
        if meta_sig.get("domain") and domain and meta_sig["domain"] != domain:
            return {"valid": False, "error_code": ErrorCode.SCHEMA_002.value, "error": f"tool claims domain {meta_sig['domain']}, server is configured for {domain}"}
        if not domain:
            return {"valid": False, "error_code": ErrorCode.SCHEMA_002.value, "error": "server has no SchemaPin domain configured", "unsigned": True}
        if self.verifier is None:
            return {"valid": False, "error_code": ErrorCode.SCHEMA_001.value, "error": "no verifier configured"}
        return (await self.verifier.verify(tool.signed_object(), signature, domain)).to_dict()

    async def discover(self, server: str) -> list[tuple[ToolRecord, str]]:
        """List a server's tools, verify and pin each; changed ones go back to review."""
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
                    details={"def_hash": rec.def_hash, "verified": rec.verified, "findings": rec.findings, "diff": rec.diff},
                )
                self._notify("tool.changed" if event == "changed" else "tool.review", {"tool_id": rec.id, "event": event})
                if event == "new" and not self.require_review and rec.verified and not any(
                    f.get("severity") in ("High", "Critical") for f in rec.findings
                ):
                    rec = await self.registry.decide(rec.id, APPROVED, actor="engine", note="review not required by config")
            out.append((rec, event))
        return out

    async def discover_all(self) -> dict[str, list[tuple[ToolRecord, str]]]:
        return {name: await self.discover(name) for name in list(self.pool.configs)}

    # -- the call path -----------------------------------------------------------------

    async def _refuse(self, agent_id: str, tool_id: str, error: SymbiError, args: dict[str, Any]) -> SymbiError:
        with contextlib.suppress(SymbiError):  # the refusal stands even if it cannot be recorded
            await self._audit(
                type="tool.call", action="call", resource=tool_id, decision="deny", agent=agent_id,
                details={"arguments": args, "code": error.code.value, "reason": error.message},
            )
        return error

    async def call(self, agent: Any, tool_id: str, arguments: dict[str, Any] | None = None) -> ToolResult:
        arguments = dict(arguments or {})
        agent_id = _agent_id(agent)
        rec = await self.registry.get(tool_id)
        if rec is None:
            raise await self._refuse(agent_id, tool_id, SymbiError(ErrorCode.MCP_002, f"unknown tool {tool_id}", offending=tool_id), arguments)
        cfg = self.pool.config(rec.server)
        if not rec.verified and self.enforce_verification and not cfg.allow_unsigned:
            v = rec.verification
            code = v.get("error_code") or ErrorCode.SCHEMA_002.value
            raise await self._refuse(agent_id, tool_id, SymbiError(code, f"tool {tool_id} is not verified: {v.get('error')}", offending=tool_id,
                                                                    hint="sign the tool (SchemaPin) or allow this server unsigned in config"), arguments)
        if not rec.approved:
            why = {PENDING: "is waiting for review" + (" (its definition changed)" if rec.reason == "changed" else ""),
                   REJECTED: "was rejected"}.get(rec.state, "changed since it was approved")
            raise await self._refuse(agent_id, tool_id, SymbiError(ErrorCode.MCP_003, f"tool {tool_id} {why}", offending=tool_id,
                                                                    hint="an operator must approve the tool in the review queue"), arguments)
        decision = None
        if self.policy_check is not None:
            decision, _request = self.policy_check(agent, "Tool", tool_id, "Call", tool_name=rec.name)
            if decision.decision == "RequireApproval":
                await self._await_approval(agent, agent_id, rec, arguments, decision)
            elif not decision.allowed:
                raise await self._refuse(agent_id, tool_id, SymbiError(
                    ErrorCode.POLICY_001, f"tool call denied: {decision.reason}", offending=tool_id,
                    details={"policy": decision.policy, "decision": decision.decision}), arguments)
        # fail closed: the call happens only once it is on record
        await self._audit(
            type="tool.call", action="call", resource=tool_id, decision="allow", agent=agent_id,
            details={"arguments": arguments, "arguments_sha256": arguments_hash(arguments), "def_hash": rec.def_hash,
                     "policy": getattr(decision, "policy", None), "policy_decision": getattr(decision, "decision", None)},
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
                await self._audit(type="tool.call", action="result", resource=tool_id, decision="error", agent=agent_id,
                                  details={"code": exc.code.value, "reason": exc.message})
            raise
        result = _bound_result(tool_id, raw, self.max_result_bytes)
        with contextlib.suppress(SymbiError):  # the call already happened; a failed record is logged by the trail
            await self._audit(type="tool.call", action="result", resource=tool_id, decision="error" if result.is_error else "allow",
                              agent=agent_id, details={"result": result.to_dict(), "arguments": arguments})
        return result

    async def _await_approval(self, agent: Any, agent_id: str, rec: ToolRecord, arguments: dict[str, Any], decision: Any) -> None:
        loop = asyncio.get_running_loop()
        now = self.clock.time()
        pending = PendingCall(
            id=f"call-{next(self._ids)}", agent_id=agent_id, tool_id=rec.id, arguments=json.loads(canonicalize(arguments)),
            arguments_sha256=arguments_hash(arguments), created_at=now, expires_at=now + self.approval_timeout,
            policy=getattr(decision, "policy", None), future=loop.create_future(),
        )
        await self._audit(type="tool.call", action="approval-requested", resource=rec.id, decision="pending", agent=agent_id,
                          details={"call_id": pending.id, "arguments": arguments, "arguments_sha256": pending.arguments_sha256,
                                   "expires_at": pending.expires_at})
        self._pending[pending.id] = pending
        self._notify("call.pending", pending.view())
        outcome = "expired"
        await self._hook(self.on_wait_start, agent, pending)
        expiry = asyncio.ensure_future(self.clock.sleep(self.approval_timeout))
        try:
            done, _ = await asyncio.wait({pending.future, expiry}, return_when=asyncio.FIRST_COMPLETED)
            outcome = pending.future.result() if pending.future in done else "expired"
        finally:
            expiry.cancel()
            self._pending.pop(pending.id, None)
            if not pending.future.done():
                pending.future.cancel()
            await self._hook(self.on_wait_end, agent, pending)
        if outcome == "approved" and arguments_hash(arguments) != pending.arguments_sha256:
            outcome = "arguments-changed"  # the approval is for exactly what was shown
        with contextlib.suppress(SymbiError):
            await self._audit(type="tool.call", action="approval-" + outcome, resource=rec.id,
                              decision="allow" if outcome == "approved" else "deny", agent=agent_id, actor="operator" if outcome in ("approved", "denied") else "engine",
                              details={"call_id": pending.id, "arguments_sha256": pending.arguments_sha256})
        if outcome != "approved":
            raise SymbiError(ErrorCode.MCP_006, f"tool call {pending.id} to {rec.id} not approved: {outcome}", offending=rec.id,
                             details={"call_id": pending.id, "outcome": outcome})

    # -- operator API ------------------------------------------------------------------

    async def pending_reviews(self) -> list[ToolRecord]:
        return await self.registry.list(state=PENDING)

    async def tools(self) -> list[ToolRecord]:
        return await self.registry.list()

    async def _decide(self, tool_id: str, state: str, note: str, actor: str, expected_hash: str | None) -> ToolRecord:
        rec = await self.registry.get(tool_id)
        if rec is None:
            raise SymbiError(ErrorCode.MCP_002, f"unknown tool {tool_id}", offending=tool_id)
        await self._audit(type="tool.review", action=state.lower(), resource=tool_id, decision="allow" if state == APPROVED else "deny",
                          actor=actor, details={"note": note, "def_hash": rec.def_hash, "from": rec.state})
        out = await self.registry.decide(tool_id, state, actor=actor, note=note, expected_hash=expected_hash)
        self._notify("tool.review", {"tool_id": tool_id, "state": state})
        return out

    async def approve_tool(self, tool_id: str, note: str = "", *, actor: str = "operator", expected_hash: str | None = None) -> ToolRecord:
        return await self._decide(tool_id, APPROVED, note, actor, expected_hash)

    async def reject_tool(self, tool_id: str, note: str = "", *, actor: str = "operator") -> ToolRecord:
        return await self._decide(tool_id, REJECTED, note, actor, None)

    def pending_calls(self) -> list[dict[str, Any]]:
        return [p.view() for p in sorted(self._pending.values(), key=lambda p: p.created_at, reverse=True)]

    def _pending_call(self, call_id: str) -> PendingCall:
        p = self._pending.get(call_id)
        if p is None or p.future.done():
            raise SymbiError(ErrorCode.MCP_006, f"no pending call {call_id}", offending=call_id, hint="it may have expired")
        return p

    def approve_call(self, call_id: str, arguments_sha256: str | None = None) -> None:
        """Approve a waiting call; ``arguments_sha256`` (what the operator was shown) must match if given."""
        p = self._pending_call(call_id)
        if self.clock.time() >= p.expires_at:
            p.future.set_result("expired")
            raise SymbiError(ErrorCode.MCP_006, f"call {call_id} expired", offending=call_id)
        if arguments_sha256 is not None and arguments_sha256 != p.arguments_sha256:
            raise SymbiError(ErrorCode.MCP_006, "approval does not match the call's arguments", offending=call_id,
                             hint="review the call again: its arguments are not the ones approved")
        p.future.set_result("approved")

    def deny_call(self, call_id: str) -> None:
        self._pending_call(call_id).future.set_result("denied")

    def key_changes(self) -> list[dict[str, Any]]:
        return self.keystore.key_changes() if self.keystore is not None else []

    async def accept_key_change(self, domain: str, *, actor: str = "operator") -> dict[str, Any]:
        if self.keystore is None:
            raise SymbiError(ErrorCode.SCHEMA_004, "no key store configured", offending=domain)
        change = next((c for c in self.keystore.key_changes() if c["domain"] == domain), None)
        if change is None:
            raise SymbiError(ErrorCode.SCHEMA_004, f"no pending key change for {domain}", offending=domain)
        await self._audit(type="tool.review", action="accept-key-change", resource=domain, decision="allow", actor=actor,
                          details={"old_fingerprint": change["old_fingerprint"], "new_fingerprint": change["new_fingerprint"]})
        return self.keystore.accept_key_change(domain)

    async def close(self) -> None:
        for p in list(self._pending.values()):
            if not p.future.done():
                p.future.set_result("denied")
        await self.pool.close()
        await self.registry.close()


class _ToolFailed(Exception):
    """A tool answered with is_error: counted by the breaker, returned to the caller."""

    def __init__(self, raw: Any) -> None:
        super().__init__("tool error")
        self.raw = raw
