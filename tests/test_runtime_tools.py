"""An agent calls an MCP tool through the runtime: the tool is reviewed by the
operator, the default policy requires a human approval per call, the agent
waits in Waiting, and the approved call reaches a real MCP server (in-process
here; the stdio transport is tested in tests/test_mcp_gate.py)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from engine.agents.model import AgentState
from engine.audit import AuditReader
from engine.events import ToolCallDecided, ToolCallPending, ToolReviewChanged
from engine.mcp_tools import ServerConfig
from engine.runtime import Runtime
from tests.helpers import ROOT, agent, fast_config

sys.path.insert(0, str(ROOT / "examples" / "mcp_servers"))
from demo_server import build_server  # noqa: E402

S = AgentState

CALLER = """
from symbi_agent import AgentError, agent
try:
    print("result", agent.call_tool("demo/echo", {"text": "hello tools"})["content"][0]["text"], flush=True)
except AgentError as exc:
    print("refused", exc.code, flush=True)
try:
    agent.call_tool("demo/add", {"a": 1, "b": 2})
except AgentError as exc:
    print("unreviewed", exc.code, flush=True)
"""


async def test_a_tool_call_waits_for_a_human_and_then_runs(tmp_path: Path):
    async with Runtime.open(fast_config(), tmp_path) as rt:
        sub = rt.bus.subscribe([ToolReviewChanged, ToolCallPending, ToolCallDecided])
        rt.tools.add_server(ServerConfig("demo", server=build_server(), allow_unsigned=True))
        await rt.tools.discover("demo")
        await rt.tools.approve_tool("demo/echo", "reviewed by the test")
        await rt.create_agent(agent("caller", source=CALLER))
        await rt.start_agent("caller")
        await rt.wait_for_state("caller", S.WAITING, timeout=30)
        async with asyncio.timeout(10):
            while not rt.tools.pending_calls():
                await asyncio.sleep(0.05)
        pending = rt.tools.pending_calls()[0]
        assert pending["tool_id"] == "demo/echo" and pending["arguments"] == {"text": "hello tools"}
        rt.tools.approve_call(pending["id"], pending["arguments_sha256"])
        info = await rt.wait_for_state("caller", S.COMPLETED, S.FAILED, timeout=30)
        logs = "\n".join(await rt.agent_logs("caller"))
        assert info.state is S.COMPLETED, logs
        assert "result hello tools" in logs
        assert "unreviewed MCP_003" in logs
        states = [c.state for c in await rt.agent_history("caller")]
        assert S.WAITING in states
        events = []
        while (ev := sub.get_nowait()) is not None:
            events.append(ev)
        reviews = [(e.tool_id, e.state, e.event) for e in events if isinstance(e, ToolReviewChanged)]
        assert ("demo/echo", "PendingReview", "new") in reviews and ("demo/echo", "Signed", "signed") in reviews
        assert ("demo/echo", "AwaitingHumanReview", "awaiting-human") in reviews
        (pend,) = [e for e in events if isinstance(e, ToolCallPending)]
        assert (pend.call_id, pend.tool_id) == (pending["id"], "demo/echo") and pend.agent_id
        (decided,) = [e for e in events if isinstance(e, ToolCallDecided)]
        assert (decided.call_id, decided.outcome) == (pending["id"], "approved")
    async with AuditReader(tmp_path) as reader:
        calls = await reader.query(types="tool.call", limit=50)
    assert {c.decision for c in calls} >= {"pending", "allow"}
