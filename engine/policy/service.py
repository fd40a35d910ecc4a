"""The runtime's policy: the file in force, access decisions for the engine's
hooks, and the operations the policy editor needs.

On a data dir's first start the default policy file is written (see
:mod:`engine.policy.defaults`); from then on the engine evaluates exactly
what the file says. Every (re)load is recorded in the audit trail with the
file's SHA-256; a reload whose record cannot be written is abandoned.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from pathlib import Path
from typing import Any

from engine.agents.ports import EventSink, Recorder
from engine.clock import Clock
from engine.config import RuntimeConfig
from engine.errors import ErrorCode, SymbiError
from engine.events import PolicyReloaded
from engine.policy.defaults import DEFAULT_POLICY
from engine.policy.diff import diff as policy_diff
from engine.policy.engine import PolicyEngine
from engine.policy.files import SaveResult, save_atomic
from engine.policy.model import Decision, ReloadEvent, request_for_agent
from engine.policy.parser import validate as policy_validate
from engine.policy.replay import ReplayReport, iter_recorded_decisions, replay

log = logging.getLogger("symbi.policy")

WATCH_INTERVAL = 1.0


class PolicyService:
    """The policy in force (implements :class:`~engine.agents.ports.PolicyChecker`)."""

    def __init__(
        self, config: RuntimeConfig, data_dir: Path, *, clock: Clock, recorder: Recorder, events: EventSink
    ) -> None:
        self.config = config
        self.data_dir = data_dir
        self.clock = clock
        self.recorder = recorder
        self.events = events
        file = Path(config.policy.file).expanduser()
        self.path = file if file.is_absolute() else data_dir / file
        self.engine: PolicyEngine | None = None
        self._watch: asyncio.Task[None] | None = None
        self.last_reload: ReloadEvent | None = None
        self.decisions: Counter[str] = Counter()  # decisions by effect since the engine opened (for /metrics)

    async def open(self) -> None:
        if not self.path.exists():
            await self.recorder.record(
                "policy.write",
                None,
                "create-default",
                actor="engine",
                resource=str(self.path),
                details={"reason": "first start: no policy file"},
            )
            save_atomic(self.path, DEFAULT_POLICY, keep_previous=False)
        self.engine = PolicyEngine.from_config(self.config, self.data_dir, clock=self.clock, on_reload=self._on_reload)
        self._watch = asyncio.create_task(self._watch_loop(), name="policy-watch")

    async def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
            self._watch = None

    async def _watch_loop(self) -> None:
        # polls with the real event loop (not the runtime's clock, which tests may freeze)
        while True:
            await asyncio.sleep(WATCH_INTERVAL)
            try:
                await asyncio.to_thread(self._poll)
            except Exception:  # noqa: BLE001 - reported through on_reload; retried next poll
                log.exception("policy reload check failed")

    def _poll(self) -> None:
        assert self.engine is not None
        self.engine.poll()

    def _on_reload(self, event: ReloadEvent) -> None:
        """Called before a new policy takes effect: record it or refuse it."""
        details = event.to_dict()
        details.pop("at", None)
        self.recorder.record_now(  # AUDIT_001 here abandons the reload: fail closed
            "policy.reload",
            "reload" if event.ok else "reject",
            actor="engine",
            resource=event.path,
            decision="allow" if event.ok else "error",
            details=details,
        )
        self.last_reload = event
        error = event.error.render() if event.error else None
        if error:
            log.error("policy file rejected; the last good policy stays in force: %s", error)
        self.events.publish(
            PolicyReloaded(ok=event.ok, path=event.path, sha256=event.sha256, policies=event.policies, error=error)
        )

    # -- decisions for the engine's hooks ------------------------------------------

    def check(
        self,
        agent: Any,
        resource_type: str,
        resource_path: str,
        operation: str,
        *,
        metadata: dict[str, Any] | None = None,
        tool_name: str | None = None,
    ) -> tuple[Decision, dict[str, Any]]:
        """The decision for one access, and the request it was made on (to record with the action)."""
        assert self.engine is not None
        request = request_for_agent(
            agent.config,
            resource_type,
            resource_path,
            operation,
            agent_id=agent.id,
            metadata=metadata,
            tool_name=tool_name,
        )
        decision = self.engine.evaluate(request)
        self.decisions[decision.decision] += 1
        return decision, request

    @staticmethod
    def denied(decision: Decision, what: str, offending: str) -> SymbiError:
        hint = (
            "a human approval is required; approvals are not offered for this kind of access"
            if decision.decision == "RequireApproval"
            else "change access_policies.yaml (the console's policy screen) if this should be allowed"
        )
        return SymbiError(
            ErrorCode.POLICY_001,
            f"{what} denied: {decision.reason}",
            offending=offending,
            hint=hint,
            details={"policy": decision.policy, "decision": decision.decision},
        )

    # -- the editor's operations ------------------------------------------------------

    def text(self) -> str:
        try:
            return self.path.read_text(encoding="utf-8")
        except OSError:
            return ""

    def validate(self, text: str) -> list[Any]:
        return policy_validate(text)

    def diff(self, text: str) -> Any:
        return policy_diff(self.text(), text)

    def evaluate(self, request: dict[str, Any], text: str | None = None) -> Decision:
        """Evaluate ``request`` against the policy in force, or against ``text`` when given."""
        if text is None:
            assert self.engine is not None
            return self.engine.evaluate(request)
        draft = PolicyEngine.from_text(text, default_effect=self.config.policy.default_effect)
        return draft.evaluate(request)

    async def replay(self, text: str) -> ReplayReport:
        """Recorded decisions that ``text`` would decide differently."""
        draft = PolicyEngine.from_text(text, default_effect=self.config.policy.default_effect)
        await self.recorder.flush()
        records = await asyncio.to_thread(lambda: list(iter_recorded_decisions(self.data_dir)))
        return replay(draft, records)

    async def save(self, text: str, *, actor: str = "operator") -> SaveResult:
        """Validate, record (as ``actor``), write atomically (keeping .prev) and put in force."""
        errors = [d for d in policy_validate(text) if d.severity == "error"]
        if errors:
            first = errors[0]
            raise SymbiError(
                ErrorCode.POLICY_002,
                f"{self.path}:{first.line}:{first.column}: {first.message}",
                offending=first.code,
                hint="fix the errors shown in the editor before saving",
            )
        await self.recorder.record(
            "policy.write", None, "save", actor=actor, resource=str(self.path), details={"bytes": len(text.encode())}
        )
        result = await asyncio.to_thread(save_atomic, self.path, text)
        assert self.engine is not None
        event = await asyncio.to_thread(self.engine.reload, reason="saved")
        if not event.ok and event.error is not None:
            raise event.error
        return result
