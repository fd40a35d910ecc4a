"""One gate for every agent request: each protocol method that touches a resource
is checked by policy and its decision is recorded (allow and deny) before it acts.

A real runtime runs real agents (the SDK over the agent socket) against a policy
that denies everything but their launch: every such method answers POLICY_001 and
leaves a deny record naming the agent, the resource and the deciding policy.
"""

from __future__ import annotations

import asyncio
import sys

import pytest

from engine.agents import protocol
from engine.agents.gate import BUS_DECISION, DELEGATED, UNCHECKED
from engine.agents.model import AgentState
from engine.audit import AuditReader
from engine.errors import ErrorCode, SymbiError
from engine.mcp_tools import McpClientPool, ServerConfig, ToolRegistry, ToolService
from engine.runtime import Runtime
from tests.helpers import ROOT, agent, fast_config

sys.path.insert(0, str(ROOT / "examples" / "mcp_servers"))
from demo_server import build_server  # noqa: E402

S = AgentState

DENY_ALL = """
version: "1.0"
policies:
  - name: launches
    priority: 100
    conditions:
      - resource_type: ResourceAllocation
    effect: Allow
    operations: [Allocate]
  - name: no-secrets
    priority: 100
    conditions:
      - resource_type: Secret
    effect: Deny
    operations: [Read]
  - name: no-memory
    priority: 100
    conditions:
      - resource_type: Memory
    effect: Deny
    operations: [Read, Write]
  - name: no-messages
    priority: 100
    conditions:
      - resource_type: Message
    effect: Deny
    operations: [Send, Publish, Receive]
  - name: no-tools
    priority: 100
    conditions:
      - resource_type: Tool
    effect: Deny
    operations: [Call]
"""

# case -> (protocol method, the agent's call, audit type, action, resource ("{self}": the agent's name), policy)
CASES: dict[str, tuple[str, str, str, str, str, str]] = {
    "secret": (
        "secret.get",
        "agent.secret('team/db_password')",
        "secret.read",
        "read",
        "team/db_password",
        "no-secrets",
    ),
    "put": ("memory.put", "agent.remember('a note', kind='long_term')", "memory.put", "put", "long_term", "no-memory"),
    "query": (
        "memory.query",
        "agent.recall('a note', kinds=['long_term'])",
        "memory.query",
        "query",
        "long_term",
        "no-memory",
    ),
    "send": ("bus.send", "agent.send('peer', 'hi')", BUS_DECISION, "send", "peer", "no-messages"),
    "publish": (
        "bus.send",
        "agent.send('', 'hi', topic='news')",
        BUS_DECISION,
        "publish",
        "topics/news",
        "no-messages",
    ),
    "subscribe": ("bus.subscribe", "agent.subscribe('news')", BUS_DECISION, "subscribe", "topics/news", "no-messages"),
    "receive": ("bus.receive", "agent.receive(timeout=1)", BUS_DECISION, "receive", "{self}", "no-messages"),
    "tool": ("tool.call", "agent.call_tool('demo/echo', {'text': 'hi'})", "tool.call", "call", "demo/echo", "no-tools"),
}

CALLER = """
from symbi_agent import AgentError, agent
try:
    CALL
    print("done without a refusal", flush=True)
except AgentError as exc:
    print("refused", exc.code, flush=True)
"""


def test_every_method_that_touches_a_resource_has_a_denial_case():
    touching = set(protocol.METHODS) - UNCHECKED
    assert {method for method, *_ in CASES.values()} == touching
    assert DELEGATED <= touching


async def test_every_denied_method_is_refused_and_recorded(tmp_path):
    ids: dict[str, str] = {}
    async with Runtime.open(fast_config(), tmp_path) as rt:
        await rt.policies.save(DENY_ALL)
        rt.tools.add_server(ServerConfig("demo", server=build_server(), allow_unsigned=True))
        await rt.tools.discover("demo")
        await rt.tools.approve_tool("demo/echo", "reviewed by the test")
        await rt.create_agent(agent("peer"))
        for case, (_method, call, *_rest) in CASES.items():
            ids[case] = (await rt.create_agent(agent(f"gate-{case}", source=CALLER.replace("CALL", call)))).id
        await asyncio.gather(*(rt.start_agent(f"gate-{case}") for case in CASES))
        for case in CASES:
            info = await rt.wait_for_state(f"gate-{case}", S.COMPLETED, S.FAILED, timeout=60)
            logs = "\n".join(await rt.agent_logs(f"gate-{case}"))
            assert info.state is S.COMPLETED, logs
            assert "refused POLICY_001" in logs, (case, logs)
        assert rt.messages.topics() == {}  # the refused subscription did not happen
    async with AuditReader(tmp_path) as reader:
        records = await reader.query(limit=10_000)
    for case, (_method, _call, type_, action, resource, policy) in CASES.items():
        resource = resource.replace("{self}", f"gate-{case}")
        mine = [r for r in records if r.agent == ids[case] and r.type == type_ and r.action == action]
        assert mine, f"{case}: no {type_} record"
        denial = mine[-1]
        assert (denial.decision, denial.resource, denial.details.get("policy")) == ("deny", resource, policy), (
            case,
            denial,
        )
        if type_ != "tool.call":  # the tool service's records name the agent in the agent field only
            assert denial.actor == f"agent:{ids[case]}"
            request = denial.details["policy_request"]
            assert (request["agent_id"], request["resource_path"]) == (ids[case], resource)


SUBSCRIBER = """
from symbi_agent import agent
print("subscribed", agent.subscribe("news")["topic"], flush=True)
print("received", agent.receive(timeout=0.2), flush=True)
"""


async def test_allowed_subscribe_and_receive_are_recorded(tmp_path):
    """With the default policy an agent still subscribes and receives, and both decisions are on record."""
    async with Runtime.open(fast_config(), tmp_path) as rt:
        info = await rt.create_agent(agent("listener", source=SUBSCRIBER))
        await rt.start_agent("listener")
        state = await rt.wait_for_state("listener", S.COMPLETED, S.FAILED, timeout=30)
        logs = "\n".join(await rt.agent_logs("listener"))
        assert state.state is S.COMPLETED and "subscribed news" in logs and "received None" in logs, logs
        assert rt.messages.topics() == {"news": [info.id]}
    async with AuditReader(tmp_path) as reader:
        records = [r for r in await reader.query(types=BUS_DECISION, limit=100) if r.agent == info.id]
    assert [(r.action, r.resource, r.decision) for r in records] == [
        ("subscribe", "topics/news", "allow"),
        ("receive", "listener", "allow"),
    ]
    assert {r.details["policy"] for r in records} == {"messages-between-agents"}
    assert all(r.actor == f"agent:{info.id}" for r in records)


async def test_an_action_whose_record_fails_does_not_happen(tmp_path):
    """Fail closed: the door records through the runtime's durable path; if that fails, no action."""
    async with Runtime.open(fast_config(), tmp_path) as rt:
        append = rt.audit.append

        async def failing(**fields):
            if fields.get("type") == BUS_DECISION:
                raise SymbiError(ErrorCode.AUDIT_001, "the audit trail is unavailable (test)")
            return await append(**fields)

        rt.audit.append = failing
        await rt.create_agent(agent("listener", source=CALLER.replace("CALL", "agent.subscribe('news')")))
        await rt.start_agent("listener")
        await rt.wait_for_state("listener", S.COMPLETED, S.FAILED, timeout=30)
        logs = "\n".join(await rt.agent_logs("listener"))
        assert "refused AUDIT_001" in logs and "done without a refusal" not in logs, logs
        assert rt.messages.topics() == {}
        rt.audit.append = append


async def test_operator_knowledge_changes_are_recorded_by_the_engine(tmp_path):
    async with Runtime.open(fast_config(), tmp_path) as rt:
        info = await rt.create_agent(agent("owner"))
        item = await rt.knowledge.add_item(info.id, "the runbook lives in ops/", "knowledge", {"src": "x"})
        await rt.knowledge.delete_item(info.id, item.id)
        append = rt.audit.append

        async def failing(**fields):
            raise SymbiError(ErrorCode.AUDIT_001, "the audit trail is unavailable (test)")

        rt.audit.append = failing
        with pytest.raises(SymbiError, match="AUDIT_001"):
            await rt.knowledge.add_item(info.id, "never stored", "knowledge")
        rt.audit.append = append
        assert await (await rt.knowledge.store()).list_items(info.id) == []
        records = await rt.audit.query(types="memory.*", limit=10)
    put = next(r for r in records if r.type == "memory.put")
    deleted = next(r for r in records if r.type == "memory.delete")
    assert (put.actor, put.agent, put.resource, put.details["bytes"]) == ("operator", info.id, "knowledge", item.size)
    assert (deleted.actor, deleted.agent, deleted.resource, deleted.details["item"]) == (
        "operator",
        info.id,
        "knowledge",
        item.id,
    )
    assert "runbook" not in str([r.to_dict() for r in records])


async def test_the_tool_service_requires_its_policy_check_and_audit(tmp_path):
    registry = await ToolRegistry(tmp_path / "tools.db").open()
    try:
        with pytest.raises(TypeError, match="policy_check|audit"):
            ToolService(registry=registry, pool=McpClientPool(), verifier=None)  # type: ignore[call-arg]
    finally:
        await registry.close()
