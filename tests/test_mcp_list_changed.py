"""A server's ``notifications/tools/list_changed`` makes the engine rediscover that server by itself:
the tool the server added shows up in the registry and the review queue with no manual re-listing.

Real MCP servers (mcp 2.3), in-process and as a stdio subprocess, through the project's own
ToolService / McpClientPool. At protocol 2026-07-28 the server sends the notification only on a
``subscriptions/listen`` stream the client opened; the SDK tees it to McpConnection._message_handler,
which used to call ``message.root`` on it and die with AttributeError (logged by the SDK, swallowed)."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import sys
from pathlib import Path

import pytest

from engine.clock import FakeClock
from engine.mcp_tools import (
    KeyResolver,
    KeyStore,
    McpClientPool,
    OperatorKey,
    SchemaVerifier,
    ServerConfig,
    ToolRegistry,
    ToolService,
)
from tests.helpers import tool_policy_check

# One source for both transports: imported in-process, or run as a stdio subprocess.
GROWER = '''
"""An MCP server whose ``grow`` tool adds a tool ``fresh`` and announces the change."""
from mcp.server.mcpserver import Context, MCPServer


def build_server() -> MCPServer:
    server = MCPServer("grower")

    def echo(text: str) -> str:
        return text

    async def grow(ctx: Context) -> str:
        def fresh(text: str) -> str:
            return text

        server.add_tool(fresh, name="fresh", description="Return the text unchanged (added at run time).")
        # the mcp 2.3 server API: publishes tools/list_changed to the client's subscriptions/listen stream
        await ctx.notify_tools_changed()
        return "grown"

    server.add_tool(echo, name="echo", description="Echo the given text back.")
    server.add_tool(grow, name="grow", description="Add the tool 'fresh' to this server.")
    return server


if __name__ == "__main__":
    build_server().run()
'''

POLICY = """
version: "1.0"
policies:
  - name: nothing-needed
    priority: 100
    conditions:
      - resource_type: Tool
    effect: Deny
    resources: ["*"]
    operations: [Call]
"""


def server_config(tmp_path: Path, transport: str) -> ServerConfig:
    script = tmp_path / "grower_server.py"
    script.write_text(GROWER)
    if transport == "stdio":
        return ServerConfig("grower", command=sys.executable, args=[str(script)], allow_unsigned=True)
    spec = importlib.util.spec_from_file_location("grower_server", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return ServerConfig("grower", server=module.build_server(), allow_unsigned=True)


async def wait_for(predicate, timeout: float = 15.0, step: float = 0.02):
    """Poll an async predicate until it returns something truthy; None when the timeout ran out."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await predicate()
        if value or loop.time() >= deadline:
            return value
        await asyncio.sleep(step)


@pytest.mark.parametrize("transport", ["in-process", "stdio"])
async def test_list_changed_rediscovers_without_relisting(
    tmp_path: Path, transport: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logging.getLogger("symbi"), "propagate", True)
    caplog.set_level(logging.INFO)
    audit: list[dict] = []
    store = KeyStore(tmp_path / "keys.json")
    svc = ToolService(
        registry=await ToolRegistry(tmp_path / "tools.db").open(),
        pool=McpClientPool(connection_timeout=10),
        verifier=SchemaVerifier(KeyResolver(allow_network=False), store),
        keystore=store,
        policy_check=tool_policy_check(POLICY),
        audit=lambda **f: audit.append(f),
        clock=FakeClock(),
        operator_key=OperatorKey(tmp_path / "operator_key.pem"),
    )
    try:
        await svc.start(background=False)
        svc.add_server(server_config(tmp_path, transport))
        assert svc.pool.on_list_changed == svc.discover  # the service wires the notification to discovery

        found = {rec.id for rec, _ in await svc.discover("grower")}  # the one listing the operator started
        assert found == {"grower/echo", "grower/grow"}
        assert await svc.registry.get("grower/fresh") is None

        # the server grows a tool and sends notifications/tools/list_changed (called on the raw pool:
        # the call is only the trigger, not under test)
        result = await svc.pool.call_tool("grower", "grow", {}, timeout=10)
        assert not result.is_error

        async def fresh_in_queue():
            queued = {rec.id: rec for rec in await svc.pending_reviews()}
            rec = queued.get("grower/fresh")
            return rec if rec is not None and rec.state == "AwaitingHumanReview" else None

        rec = await wait_for(fresh_in_queue)
        assert rec is not None, "the tool added by the server never reached the review queue"
        assert rec.definition["description"] == "Return the text unchanged (added at run time)."
        assert not rec.approved
        assert any(
            a["type"] == "tool.review" and a["action"] == "discovered" and a["resource"] == "grower/fresh"
            for a in audit
        )
    finally:
        await svc.close()

    # the old bug's symptom: every server notification raised AttributeError in the message handler
    # (the SDK logs it as "notification callback for ... raised" and drops the notification)
    failures = [
        r
        for r in caplog.records
        if (r.exc_info and isinstance(r.exc_info[1], AttributeError))
        or "AttributeError" in r.getMessage()
        or "notification callback" in r.getMessage()
    ]
    assert failures == []
