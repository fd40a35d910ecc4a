"""The fake engine the console tests use answers like the real one.

Each check runs against :class:`tests.fake_engine.FakeEngine` and against the
real :class:`engine.api.local.LocalEngine` on a temporary data dir: if the
fake drifts from the engine's behaviour (codes, ordering, events), this fails
before a console test can pass for the wrong reason.
"""

from __future__ import annotations

import asyncio

import pytest

from engine.api import AgentConfig, AgentState, AuditFilter, Engine
from engine.api.local import LocalEngine
from engine.errors import ErrorCode, SymbiError
from engine.events import AgentCreated, AgentDeleted
from engine.runtime import Runtime
from tests.fake_engine import FakeEngine
from tests.helpers import fast_config

HELLO = AgentConfig(name="contract-hello", dsl_source="print('hello')\n")


@pytest.fixture(params=["fake", "local"])
async def engine(request, tmp_path):
    if request.param == "fake":
        made: Engine = FakeEngine(data_dir=str(tmp_path / "data"))
    else:
        made = LocalEngine(Runtime(fast_config(), tmp_path / "data"))
    await made.open()
    try:
        yield made
    finally:
        await made.close("contract over")


async def _code(coro) -> ErrorCode:
    with pytest.raises(SymbiError) as err:
        await coro
    return err.value.code


async def test_agents_are_created_listed_found_and_deleted_with_their_events(engine):
    stream = engine.events.stream(after=await engine.events.position())
    info = await engine.agents.create(HELLO)
    assert info.state is AgentState.CREATED and info.name == "contract-hello"
    assert [a.name for a in await engine.agents.list_all()] == ["contract-hello"]
    assert (await engine.agents.get("contract-hello")).id == info.id
    assert await _code(engine.agents.create(HELLO)) is ErrorCode.AGENT_006
    assert await _code(engine.agents.get("nobody")) is ErrorCode.AGENT_001
    assert await _code(engine.agents.create(AgentConfig(name="bad name!", dsl_source="x"))) is ErrorCode.AGENT_004
    await engine.agents.delete(info.id)
    assert await engine.agents.list_all() == []
    seen = []
    async with asyncio.timeout(5):
        while not any(isinstance(e, AgentDeleted) for e in seen):
            seen.extend((await anext(stream)).events)
    kinds = [type(e) for e in seen if isinstance(e, (AgentCreated, AgentDeleted))]
    assert kinds == [AgentCreated, AgentDeleted]
    await stream.aclose()


async def _error(coro) -> SymbiError:
    with pytest.raises(SymbiError) as err:
        await coro
    return err.value


async def test_refusals_carry_the_engines_own_words(engine):
    """The console shows code, message and hint: the fake must word them as the engine does."""
    info = await engine.agents.create(HELLO)
    duplicate = await _error(engine.agents.create(HELLO))
    assert (duplicate.code, duplicate.message) == (ErrorCode.AGENT_006, "an agent with this name already exists")
    assert duplicate.hint == "choose another name or delete the existing agent"
    for action, call in (("resume", engine.agents.resume), ("stop", engine.agents.stop)):
        refused = await _error(call(info.id))
        assert refused.code is ErrorCode.AGENT_002
        assert refused.message == f"cannot {action} an agent that is Created"
        assert refused.hint and refused.hint.startswith(f"{action} applies to agents that are ")
    assert (await engine.agents.get(info.id)).state is AgentState.CREATED


async def test_exports_go_only_into_the_engines_exports_folder(engine, tmp_path):
    exports = tmp_path / "data" / "exports"
    for outside in (tmp_path / "all.jsonl", "../../escape.jsonl", "/etc/cron.d/x"):
        refused = await _error(engine.audit.export(None, str(outside)))
        assert refused.code is ErrorCode.AUDIT_003, outside
        assert refused.message == "exports are written only in the engine's exports folder"
    assert not (tmp_path / "all.jsonl").exists() and not (tmp_path / "escape.jsonl").exists()
    missing = await _error(engine.audit.export(None, "missing/x.jsonl"))
    assert missing.code is ErrorCode.AUDIT_003 and missing.message.startswith("cannot write the export: ")
    done = await engine.audit.export(None, "all.jsonl")
    assert done.path == str((exports / "all.jsonl").resolve()) and done.events == await engine.audit.count()
    assert len((exports / "all.jsonl").read_text(encoding="utf-8").splitlines()) == done.events
    again = await engine.audit.export(None, str(exports / "abs.jsonl"))
    assert again.events == done.events


async def test_audit_pages_alike_from_either_end(engine):
    """The audit window pages with offsets from both ends and with seq bounds (keyset)."""
    for n in range(3):
        await engine.agents.create(AgentConfig(name=f"contract-{n}", dsl_source="print('hello')\n"))
    if isinstance(engine, FakeEngine):  # the fake records only what a test scripts
        for n in range(3):
            engine.append_audit("agent.create", agent=f"agent-contract-{n}", resource=f"contract-{n}")
    everything = await engine.audit.query(limit=10_000)
    seqs = [r.seq for r in everything]
    assert len(everything) == await engine.audit.count() >= 3 and seqs == sorted(seqs)
    assert await engine.audit.query(limit=2, newest_first=True) == everything[-2:][::-1]
    assert await engine.audit.query(limit=1, offset=1, newest_first=True) == [everything[-2]]
    assert await engine.audit.query(limit=2, offset=1) == everything[1:3]
    assert await engine.audit.query(after_seq=seqs[0], before_seq=seqs[-1], limit=10_000) == everything[1:-1]
    assert await engine.audit.query(before_seq=seqs[-1], limit=1, newest_first=True) == [everything[-2]]
    assert await engine.audit.query(after_seq=seqs[-1]) == []
    found = await engine.audit.query(AuditFilter(text="CONTRACT-1"), limit=10_000)
    assert found and all("contract-1" in (r.resource + str(r.details) + (r.agent or "")) for r in found)


async def test_audit_follow_yields_what_is_recorded_after_the_given_seq(engine):
    head = (await engine.audit.query(limit=1, newest_first=True) or [None])[0]
    after = head.seq if head is not None else 0
    follow = engine.audit.follow(None, after_seq=after)
    info = await engine.agents.create(HELLO)
    if isinstance(engine, FakeEngine):  # the fake records only what a test scripts
        engine.append_audit("agent.create", agent=info.id, resource=info.name)
    async with asyncio.timeout(5):
        record = await anext(follow)
    assert record.seq > after and record.type == "agent.create"
    await follow.aclose()


async def test_secrets_show_names_until_revealed_and_missing_ones_are_sec_004(engine):
    await engine.secrets.set("shared/token", "contract-value", {"description": "for the contract"})
    assert await engine.secrets.names() == ["shared/token"]
    listed = await engine.secrets.list_secrets()
    assert [s.path for s in listed] == ["shared/token"] and listed[0].version == 1
    assert (await engine.secrets.reveal("shared/token")).reveal() == "contract-value"
    assert await _code(engine.secrets.reveal("shared/none")) is ErrorCode.SEC_004
    await engine.secrets.delete("shared/token")
    assert await engine.secrets.names() == []


async def test_knowledge_is_added_listed_searched_and_deleted(engine):
    owner = (await engine.agents.create(HELLO)).id
    item = await engine.knowledge.add(owner, "refunds take fourteen days", "knowledge")
    assert [i.id for i in await engine.knowledge.list_items(owner)] == [item.id]
    assert (await engine.knowledge.usage(owner)).items == {"knowledge": 1}
    hits = await engine.knowledge.search(owner, "how long do refunds take")
    assert hits and hits[0].item.id == item.id
    assert await _code(engine.knowledge.add(owner, "   ", "knowledge")) is ErrorCode.CTX_003
    await engine.knowledge.delete(owner, item.id)
    assert await engine.knowledge.list_items(owner) == []


async def test_policy_drafts_are_checked_and_a_broken_one_is_not_saved(engine):
    before = (await engine.policies.get()).text
    check = await engine.policies.validate("version: '1.0'\npolicies:\n  - name: [\n")
    assert check.errors and check.errors[0].code == "POLICY_002"
    assert await _code(engine.policies.save("version: '1.0'\npolicies:\n  - name: [\n")) is ErrorCode.POLICY_002
    assert (await engine.policies.get()).text == before


async def test_the_review_queue_starts_empty_and_unknown_tools_are_mcp_002(engine):
    assert (await engine.tools.queue()).total == 0
    assert await _code(engine.tools.approve("nope/tool")) is ErrorCode.MCP_002
    assert await _code(engine.tools.approve_call("call-missing")) is ErrorCode.MCP_006
    assert await _code(engine.tools.accept_key("example.com")) is ErrorCode.SCHEMA_004


async def test_a_stream_position_from_the_future_is_api_002(engine):
    position = await engine.events.position()
    assert await _code(anext(engine.events.stream(after=position + 1000))) is ErrorCode.API_002
