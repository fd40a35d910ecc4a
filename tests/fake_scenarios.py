"""What the policy, vault, knowledge and review-queue console tests need beyond :class:`FakeEngine`.

:class:`ScenarioFake` is a :class:`tests.fake_engine.FakeEngine` whose
policies, secrets and tools groups answer a little more like the real engine
(each difference is listed on its class), plus a few scripting helpers for
the data these screens show. Everything here is meant to be folded into
``tests/fake_engine.py`` later; until then it lives with the tests that use it.

:func:`served_tools` builds :class:`ToolRecord` values the way discovery
does: the definitions an in-process example MCP server lists, their
definition hash, and the findings of the engine's own (pure, offline)
analyzer. So the review-queue tests show the same tools, risks and findings
as on the real engine, without a tool service, a registry or a server
connection.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Callable, Iterable
from typing import Any

from fake_engine import START, FakeEngine, FakePolicies, FakeSecrets, FakeTools

from engine.api import (
    KeyChangeView,
    PendingCallView,
    PolicyDecision,
    RotationReport,
    SaveResult,
    SecretInfo,
    ToolRecord,
)
from engine.errors import ErrorCode, SymbiError
from engine.events import KeyChangePending, PolicyReloaded, ToolCallDecided, ToolCallPending, ToolReviewChanged
from engine.mcp_tools.analyzer import AnalysisContext, analyze_definition
from engine.mcp_tools.review import definition_diff, definition_hash

Decide = Callable[[dict[str, Any], str | None], PolicyDecision]


def sha_of(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class ScenarioPolicies(FakePolicies):
    """* ``test`` answers with ``fake.decide(request, draft)`` when a test sets it (the draft and
    the policy in force can then decide differently), else with ``fake.decision``;
    * ``save`` publishes :class:`PolicyReloaded` for the saved text, as the engine's reload does."""

    async def test(self, request: dict[str, Any], draft: str | None = None) -> PolicyDecision:
        self._call("test", request, draft)
        decide: Decide | None = getattr(self._fake, "decide", None)
        return decide(request, draft) if decide is not None else self._fake.decision

    async def save(self, text: str) -> SaveResult:
        result = await super().save(text)
        fake: ScenarioFake = self._fake  # type: ignore[assignment]
        fake.policy_reloaded(text)
        return result


class ScenarioSecrets(FakeSecrets):
    """* ``set`` keeps the tags of the metadata and the vault's current key id;
    * ``rotate`` moves every secret to a new key id (``fake.key_id``), as a real rotation does."""

    async def set(self, path: str, value: str, metadata: dict[str, Any] | None = None) -> SecretInfo:
        info = await super().set(path, value, metadata)
        fake: ScenarioFake = self._fake  # type: ignore[assignment]
        tags = tuple(str(t) for t in (metadata or {}).get("tags", ()))
        info = dataclasses.replace(info, key_id=fake.key_id, tags=tags)
        fake.vault_info[path] = info
        return info

    async def rotate(self) -> RotationReport:
        self._call("rotate")
        fake: ScenarioFake = self._fake  # type: ignore[assignment]
        old = fake.key_id
        fake.key_id = hashlib.sha256(old.encode()).hexdigest()[:16]
        for path, info in fake.vault_info.items():
            fake.vault_info[path] = dataclasses.replace(info, key_id=fake.key_id)
        return RotationReport(old_key_id=old, new_key_id=fake.key_id, reencrypted=len(fake.vault))


class ScenarioTools(FakeTools):
    """* ``approve``, ``reject`` and ``defer`` record every argument (the fake records the tool id
    only), so a test sees the scope, the expected hash and the reason the console passed;
    * an approval whose ``expected_hash`` is not the definition served now is refused with
      ``MCP_003`` "… changed while it was being reviewed", as the engine's registry does (the
      fake says ``MCP_007``);
    * deciding a call publishes :class:`ToolCallDecided`, as the engine does."""

    def _record_decision(self, tool_id: str, state: str, event: str, **changes: Any) -> ToolRecord:
        fake = self._fake
        if tool_id not in fake.tool_records:
            raise SymbiError(ErrorCode.MCP_002, "unknown tool", offending=tool_id)
        new = dataclasses.replace(fake.tool_records[tool_id], state=state, updated_at=fake.now(), **changes)
        fake.tool_records[tool_id] = new
        fake.review = dataclasses.replace(fake.review, tools=tuple(t for t in fake.review.tools if t.id != tool_id))
        fake.emit(ToolReviewChanged(tool_id=tool_id, state=state, event=event, at=fake.now()))
        return new

    async def approve(
        self, tool_id: str, note: str = "", *, expected_hash: str | None = None, scope: str = "always"
    ) -> ToolRecord:
        self._call("approve", tool_id, note, expected_hash, scope)
        record = self._fake.tool_records.get(tool_id)
        if record is not None and expected_hash is not None and expected_hash != record.def_hash:
            raise SymbiError(
                ErrorCode.MCP_003,
                f"tool {tool_id} changed while it was being reviewed",
                offending=tool_id,
                hint="review the current definition again",
            )
        state = "Signed" if scope == "always" else "Approved"
        return self._record_decision(
            tool_id,
            state,
            "approved",
            scope=scope,
            approved_hash=record.def_hash if record else None,
            approved_definition=record.definition if record else None,
            note=note,
            deferred=False,
        )

    async def reject(self, tool_id: str, reason: str) -> ToolRecord:
        self._call("reject", tool_id, reason)
        if not reason.strip():
            raise SymbiError(ErrorCode.MCP_007, "a rejection needs a reason", offending=tool_id)
        return self._record_decision(tool_id, "Rejected", "rejected", note=reason)

    async def defer(self, tool_id: str, note: str = "") -> ToolRecord:
        self._call("defer", tool_id, note)
        record = self._record_decision(tool_id, "AwaitingHumanReview", "deferred", deferred=True, note=note)
        self._fake.review = dataclasses.replace(self._fake.review, tools=(*self._fake.review.tools, record))
        return record

    async def approve_call(self, call_id: str, arguments_sha256: str | None = None) -> None:
        call = next((c for c in self._fake.review.calls if c.id == call_id), None)
        await super().approve_call(call_id, arguments_sha256)
        if call is not None:
            self._fake.emit(
                ToolCallDecided(call_id=call_id, tool_id=call.tool_id, outcome="approved", at=self._fake.now())
            )

    async def deny_call(self, call_id: str, reason: str = "") -> None:
        call = next((c for c in self._fake.review.calls if c.id == call_id), None)
        await super().deny_call(call_id, reason)
        if call is not None:
            self._fake.emit(
                ToolCallDecided(call_id=call_id, tool_id=call.tool_id, outcome="denied", at=self._fake.now())
            )


class ScenarioFake(FakeEngine):
    """A :class:`FakeEngine` with the groups above and helpers to script the screens' data."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.key_id = "0123456789abcdef"  # the vault's master key id
        self.decide: Decide | None = None
        self.policies = ScenarioPolicies(self, "policies")
        self.secrets = ScenarioSecrets(self, "secrets")
        self.tools = ScenarioTools(self, "tools")

    # -- policy ------------------------------------------------------------------------------

    @property
    def policy_path(self) -> str:
        return f"{self.data_dir}/access_policies.yaml"

    def policy_reloaded(self, text: str) -> None:
        """The engine (re)loaded ``text`` as the policy in force (after a save, or a change on disk)."""
        self.policy_text = text
        count = len(re.findall(r"^\s*-\s+name:", text, re.MULTILINE))
        self.emit(PolicyReloaded(ok=True, path=self.policy_path, sha256=sha_of(text), policies=count, at=self.now()))

    def policy_rejected(self, error: str) -> None:
        """The file on disk did not parse: the engine keeps the last good policy and says so."""
        self.emit(PolicyReloaded(ok=False, path=self.policy_path, sha256=None, policies=0, error=error, at=self.now()))

    # -- vault -------------------------------------------------------------------------------

    def put_secret(self, path: str, value: str, metadata: dict[str, Any] | None = None, *, at: float = START) -> None:
        """Store a secret as the vault would have it (a new version if it exists), without a call."""
        old = self.vault_info.get(path)
        metadata = metadata or {}
        self.vault[path] = value
        self.vault_info[path] = SecretInfo(
            path=path,
            created=old.created if old else at,
            updated=at,
            version=(old.version if old else 0) + 1,
            key_id=self.key_id,
            description=str(metadata.get("description", "")),
            tags=tuple(str(t) for t in metadata.get("tags", ())),
        )

    # -- review queue ------------------------------------------------------------------------

    def add_tools(self, records: Iterable[ToolRecord], *, event: str = "new") -> None:
        """Tools discovered and waiting for review (newest first in the queue), announced by event."""
        records = list(records)
        for record in records:
            self.tool_records[record.id] = record
        waiting = tuple(r for r in records if r.state in ("PendingReview", "AwaitingHumanReview"))
        kept = tuple(t for t in self.review.tools if t.id not in {r.id for r in records})
        self.review = dataclasses.replace(self.review, tools=waiting + kept)
        for record in records:
            self.emit(ToolReviewChanged(tool_id=record.id, state=record.state, event=event, at=self.now()))

    def add_call(self, call: PendingCallView) -> None:
        """A tool call starts waiting for the operator."""
        self.review = dataclasses.replace(self.review, calls=(*self.review.calls, call))
        self.emit(ToolCallPending(call_id=call.id, tool_id=call.tool_id, agent_id=call.agent_id, at=self.now()))

    def add_key_change(self, change: KeyChangeView) -> None:
        """A SchemaPin domain starts serving another key."""
        self.review = dataclasses.replace(self.review, keys=(*self.review.keys, change))
        self.emit(
            KeyChangePending(
                domain=change.domain,
                old_fingerprint=change.old_fingerprint,
                new_fingerprint=change.new_fingerprint,
                at=self.now(),
            )
        )


# -- tools as discovery records them ------------------------------------------------------------

UNSIGNED = {
    "valid": False,
    "error_code": "SCHEMA_002",
    "error": "server has no SchemaPin domain configured",
    "unsigned": True,
}


def tool_record(
    server: str,
    definition: dict[str, Any],
    *,
    verification: dict[str, Any] | None = None,
    at: float = START,
    state: str = "AwaitingHumanReview",
) -> ToolRecord:
    """A tool waiting for review, with the findings and score of the engine's offline analyzer."""
    analysis = analyze_definition(definition, AnalysisContext(server=server))
    return ToolRecord(
        id=f"{server}/{definition['name']}",
        server=server,
        name=definition["name"],
        definition=definition,
        def_hash=definition_hash(definition),
        meta={},
        state=state,
        approved_hash=None,
        approved_definition=None,
        verification=dict(verification if verification is not None else UNSIGNED),
        findings=analysis.findings,
        score=analysis.score,
        analyzer=analysis.analyzer,
        reason="new",
        first_seen=at,
        updated_at=at,
        awaiting_since=at,
    )


def changed_record(record: ToolRecord, definition: dict[str, Any], *, at: float) -> ToolRecord:
    """``record`` after its server started serving ``definition`` (a rug pull): back in review,
    with the "changed" finding and the diff, as the engine's registry writes them."""
    base = record.approved_definition or record.definition
    diff = definition_diff(base, definition, old_label="approved" if record.approved_definition else "previous")
    changed = {
        "kind": "changed",
        "severity": "High",
        "reason": "tool definition changed since it was pinned (possible rug pull)",
        "evidence": diff[:2000],
        "field": "definition",
        "span": None,
    }
    fresh = tool_record(record.server, definition, verification=record.verification, at=at)
    return dataclasses.replace(
        fresh, findings=[changed, *fresh.findings], diff=diff, reason="changed", first_seen=record.first_seen
    )


async def served_definitions(server: Any) -> list[dict[str, Any]]:
    """The definitions an in-process MCP server lists (what discovery pins)."""
    out = []
    for tool in await server.list_tools():
        wire = tool.model_dump(mode="json", exclude_none=True, by_alias=True)
        out.append(
            {"name": wire["name"], "description": wire.get("description") or "", "inputSchema": wire["inputSchema"]}
        )
    return out


async def served_tools(
    server: Any, name: str, *, verification: dict[str, Any] | None = None, at: float = START
) -> list[ToolRecord]:
    """Tool records for everything ``server`` lists, as discovery of server ``name`` records them
    (one second apart, in listing order, so the queue shows the last one first)."""
    return [
        tool_record(name, definition, verification=verification, at=at + i)
        for i, definition in enumerate(await served_definitions(server))
    ]
