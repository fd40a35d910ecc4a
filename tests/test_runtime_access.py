"""Policy and secrets through the runtime: what agents may do is what the
policy file says, recorded in the audit trail without secret values."""

from __future__ import annotations

import hashlib

import pytest

from engine.agents.model import AgentState
from engine.audit import AuditReader, verify
from engine.errors import ErrorCode, SymbiError
from engine.events import PolicyReloaded
from engine.policy.defaults import DEFAULT_POLICY
from engine.runtime import Runtime
from tests.helpers import agent, fast_config

S = AgentState
PLANTED = "pw-7c1e9a-do-not-leak"

# the program compares a hash, so the value itself is not in its source (which the registry stores)
READER = """
import hashlib
from symbi_agent import AgentError, agent
for name in ("shared/db_password", "team/private"):
    try:
        value = agent.secret(name)
        ok = hashlib.sha256(value.encode()).hexdigest() == "DIGEST"
        print(name, "read", "ok" if ok else "WRONG VALUE", flush=True)
    except AgentError as exc:
        print(name, "refused", exc.code, flush=True)
""".replace("DIGEST", hashlib.sha256(PLANTED.encode()).hexdigest())


async def test_an_agent_reads_a_permitted_secret_and_is_refused_a_forbidden_one(tmp_path):
    async with Runtime.open(fast_config(), tmp_path) as rt:
        assert (tmp_path / "access_policies.yaml").read_text() == DEFAULT_POLICY
        await rt.secrets.set("shared/db_password", PLANTED)
        await rt.secrets.set("team/private", PLANTED + "-2")
        info = await rt.create_agent(agent("reader", source=READER))
        await rt.start_agent("reader")
        await rt.wait_for_state("reader", S.COMPLETED, S.FAILED, timeout=30)
        logs = "\n".join(await rt.agent_logs("reader"))
        assert "shared/db_password read ok" in logs
        assert "team/private refused POLICY_001" in logs
        names = [s.path for s in await rt.secrets.list_secrets()]
        assert names == ["shared/db_password", "team/private"]
    async with AuditReader(tmp_path) as reader:
        reads = [r for r in await reader.query(types="secret.read", limit=100) if r.agent == info.id]
    assert [(r.resource, r.decision) for r in reads] == [("shared/db_password", "allow"), ("team/private", "deny")]
    assert reads[0].details["policy"] == "shared-secrets"
    assert verify(tmp_path).ok
    # the value is nowhere in the engine's files but the vault's ciphertext
    for path in tmp_path.rglob("*"):
        if path.is_file() and "secrets" not in path.parts:
            assert PLANTED.encode() not in path.read_bytes(), path


async def test_saving_a_policy_puts_it_in_force_and_a_bad_one_is_refused(tmp_path):
    async with Runtime.open(fast_config(), tmp_path) as rt:
        sub = rt.subscribe([PolicyReloaded])
        with pytest.raises(SymbiError) as err:
            await rt.policies.save("version: '1.0'\npolicies:\n  - name: x\n    effect: Maybe\n")
        assert err.value.code is ErrorCode.POLICY_002 and ":4:" in err.value.message
        no_alloc = DEFAULT_POLICY.replace(
            "effect: Allow\n    operations: [Allocate]", "effect: Deny\n    operations: [Allocate]"
        )
        assert rt.policies.validate(no_alloc) == []
        await rt.policies.save(no_alloc)
        event = await sub.get()
        assert event.ok and event.sha256
        await rt.create_agent(agent("blocked"))
        await rt.start_agent("blocked")
        info = await rt.wait_for_state("blocked", S.FAILED, timeout=20)
        assert "POLICY_001: resource allocation denied" in info.last_error
        assert "allocations" in info.last_error
        assert (tmp_path / "access_policies.yaml.prev").read_text() == DEFAULT_POLICY
    async with AuditReader(tmp_path) as reader:
        reloads = await reader.query(types="policy.reload", limit=10)
    assert [r.details["reason"] for r in reloads][-1] == "saved"


async def test_a_broken_file_on_disk_keeps_the_last_good_policy(tmp_path):
    async with Runtime.open(fast_config(), tmp_path) as rt:
        sub = rt.subscribe([PolicyReloaded])
        (tmp_path / "access_policies.yaml").write_text("policies: [oops\n")
        event = await sub.get()
        assert not event.ok and "POLICY_003" in event.error
        decision = rt.policies.evaluate(
            {"agent_id": "a", "resource_type": "ResourceAllocation", "resource_path": "native", "operation": "Allocate"}
        )
        assert decision.decision == "Allow"  # the last good policy is still in force


async def test_network_needs_the_capability_and_policy(tmp_path):
    async with Runtime.open(fast_config(), tmp_path) as rt:
        deny_net = DEFAULT_POLICY.replace(
            "      - capability: Network\n    effect: Allow", "      - capability: Network\n    effect: Deny"
        )
        await rt.policies.save(deny_net)
        await rt.create_agent(agent("net", capabilities=("Network",)))
        await rt.start_agent("net")
        info = await rt.wait_for_state("net", S.FAILED, timeout=20)
        assert "POLICY_001: network access denied" in info.last_error


MEMORY_USER = """
from symbi_agent import AgentError, agent
def attempt(label, fn):
    try:
        fn()
        print(label, "ok", flush=True)
    except AgentError as exc:
        print(label, "refused", exc.code, flush=True)
attempt("private put", lambda: agent.remember("the deploy key rotates on Mondays", kind="long_term"))
attempt("shared put", lambda: agent.remember("the staging host is blue", kind="knowledge", share_with=["*"]))
attempt("recall long_term", lambda: agent.recall("when does the key rotate", kinds=["long_term"]))
attempt("recall working", lambda: agent.recall("anything", kinds=["working"]))
"""


async def test_memory_is_checked_by_policy_and_audited_without_content(tmp_path):
    """Memory puts and queries go through the policy (resource type Memory, "<kind>" or
    "shared/<kind>"): a refused share stores nothing, and the audit holds sizes, never content."""
    strict = DEFAULT_POLICY + (
        "\n  - name: no-sharing\n    priority: 200\n    conditions:\n      - resource_type: Memory\n"
        '    effect: Deny\n    resources: ["shared/**"]\n    operations: [Write]\n'
        "\n  - name: no-working-memory\n    priority: 200\n    conditions:\n      - resource_type: Memory\n"
        '    effect: Deny\n    resources: ["working"]\n    operations: [Read]\n'
    )
    async with Runtime.open(fast_config(), tmp_path) as rt:
        await rt.policies.save(strict)
        info = await rt.create_agent(agent("rememberer", source=MEMORY_USER))
        await rt.start_agent("rememberer")
        await rt.wait_for_state("rememberer", S.COMPLETED, S.FAILED, timeout=60)
        logs = "\n".join(await rt.agent_logs("rememberer"))
        assert "private put ok" in logs and "recall long_term ok" in logs, logs
        assert "shared put refused POLICY_001" in logs and "recall working refused POLICY_001" in logs, logs
        store = await rt.knowledge.store()
        assert [i.content for i in await store.list_items(info.id)] == ["the deploy key rotates on Mondays"]
    async with AuditReader(tmp_path) as reader:
        puts = [r for r in await reader.query(types="memory.put", limit=50) if r.agent == info.id]
        queries = [r for r in await reader.query(types="memory.query", limit=50) if r.agent == info.id]
    assert [(r.resource, r.decision) for r in puts] == [("long_term", "allow"), ("shared/knowledge", "deny")]
    assert puts[0].details["policy"] == "agent-memory" and puts[1].details["policy"] == "no-sharing"
    assert {(r.action, r.decision) for r in queries} == {("query", "allow"), ("query", "deny")}
    for r in puts + queries:
        assert "Mondays" not in str(r.details) and "staging" not in str(r.details) and "rotate" not in str(r.details)
