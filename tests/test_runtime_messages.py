"""Agents talk through the signed, encrypted bus via the agent protocol;
policy decides who may send, and the audit sees metadata, never payloads."""

from __future__ import annotations

from engine.agents.model import AgentState
from engine.audit import AuditReader, verify
from engine.policy.defaults import DEFAULT_POLICY
from engine.runtime import Runtime
from tests.helpers import agent, fast_config, wait_for_log

S = AgentState

PING = """
from symbi_agent import agent
agent.send("pong", "ping-payload-41f3")
reply = agent.receive(timeout=20)
print("got", reply["sender"], reply["payload"].decode(), reply["verified"], flush=True)
"""
PONG = """
from symbi_agent import agent
msg = agent.receive(timeout=20)
print("got", msg["sender"], msg["payload"].decode(), flush=True)
agent.send(msg["sender"], "pong-payload-77aa")
"""


async def test_two_agents_exchange_messages(tmp_path):
    async with Runtime.open(fast_config(), tmp_path) as rt:
        await rt.create_agent(agent("ping", source=PING))
        await rt.create_agent(agent("pong", source=PONG))
        await rt.start_agent("pong")
        await rt.start_agent("ping")
        for name in ("ping", "pong"):
            info = await rt.wait_for_state(name, S.COMPLETED, S.FAILED, timeout=40)
            assert info.state is S.COMPLETED, "\n".join(await rt.agent_logs(name))
        await wait_for_log(rt, "pong", "got ping ping-payload-41f3")
        await wait_for_log(rt, "ping", "got pong pong-payload-77aa True")
    async with AuditReader(tmp_path) as reader:
        sends = await reader.query(types="bus.send", limit=10)
        delivers = await reader.query(types="bus.deliver", limit=10)
    assert len(sends) == 2 and len(delivers) == 2
    assert verify(tmp_path).ok
    raw = (tmp_path / "audit.db").read_bytes() + b"".join(p.read_bytes() for p in tmp_path.glob("audit.db-*"))
    assert b"ping-payload-41f3" not in raw and b"pong-payload-77aa" not in raw


async def test_policy_can_forbid_messages(tmp_path):
    async with Runtime.open(fast_config(), tmp_path) as rt:
        await rt.policies.save(DEFAULT_POLICY.replace("effect: Allow\n    operations: [Send, Publish, Receive]",
                                                      "effect: Deny\n    operations: [Send, Publish, Receive]"))
        source = (
            "from symbi_agent import AgentError, agent\n"
            "try:\n    agent.send('other', 'hi')\nexcept AgentError as exc:\n    print('refused', exc.code, flush=True)\n"
            "try:\n    agent.send('nobody-here', 'hi')\nexcept AgentError as exc:\n    print('unknown', exc.code, flush=True)\n"
        )
        await rt.create_agent(agent("talker", source=source))
        await rt.create_agent(agent("other"))
        await rt.start_agent("talker")
        await rt.wait_for_state("talker", S.COMPLETED, timeout=30)
        logs = "\n".join(await rt.agent_logs("talker"))
        assert "refused POLICY_001" in logs and "unknown COMM_007" in logs
