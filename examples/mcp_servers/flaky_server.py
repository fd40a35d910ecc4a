"""An MCP server that misbehaves on request, for timeouts, breakers, result bounds and transport failures (stdio, MCP SDK 2.x).

Tools:
  ``slow(seconds)``   sleeps, then answers (timeouts)
  ``fail(message)``   always answers with a tool error carrying ``message``
  ``flaky(n)``        fails the first ``n`` calls of this process, then succeeds (retries, circuit breaker)
  ``big(bytes)``      answers ``bytes`` characters of text (result bounding; at most 64 MiB)

Option: ``--crash-after N`` / env ``FLAKY_CRASH_AFTER``: the first N tool calls are
answered; call N+1 makes the process exit (code 3) without answering, so the
client sees its transport fail.

Run: ``python examples/mcp_servers/flaky_server.py [--crash-after N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

MAX_BIG = 64 * 1024 * 1024


def build_server(*, crash_after: int | None = None) -> MCPServer:
    """The misbehaving tools; ``crash_after`` counts calls across all tools (None = never crash)."""
    server = MCPServer("symbi-flaky-tools")
    state = {"calls": 0, "flaky": 0}

    def tick() -> None:
        state["calls"] += 1
        if crash_after is not None and state["calls"] > crash_after:
            sys.stderr.write(f"flaky_server: crashing on call {state['calls']} (--crash-after {crash_after})\n")
            sys.stderr.flush()
            os._exit(3)

    async def slow(seconds: float) -> str:
        tick()
        if not 0 <= seconds <= 3600:
            raise ToolError(f"seconds must be between 0 and 3600, got {seconds}")
        await asyncio.sleep(seconds)
        return f"slept {seconds:g} s"

    def fail(message: str) -> str:
        tick()
        raise ToolError(message)

    def flaky(n: int) -> str:
        tick()
        state["flaky"] += 1
        if state["flaky"] <= n:
            raise ToolError(f"flaky: failure {state['flaky']} of {n}")
        return f"ok on call {state['flaky']} after {n} failures"

    def big(bytes: int) -> str:  # noqa: A002 - the parameter name is the tool's API
        tick()
        if not 0 <= bytes <= MAX_BIG:
            raise ToolError(f"bytes must be between 0 and {MAX_BIG}, got {bytes}")
        line = "0123456789abcdef" * 4 + "\n"
        return (line * (bytes // len(line) + 1))[:bytes]

    for fn, desc in (
        (slow, "Sleep for the given number of seconds (at most 3600), then answer."),
        (fail, "Always fails with the given message."),
        (flaky, "Fails the first n calls of this server process, then succeeds."),
        (big, "Answer with the given number of bytes of text (at most 64 MiB)."),
    ):
        server.add_tool(fn, name=fn.__name__, description=desc)
    return server


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    env = os.environ.get("FLAKY_CRASH_AFTER")
    p.add_argument("--crash-after", type=int, default=int(env) if env else None, metavar="N",
                   help="answer N tool calls, then exit on the next one")
    args = p.parse_args()
    if args.crash_after is not None and args.crash_after < 0:
        p.error("--crash-after must be >= 0")
    build_server(crash_after=args.crash_after).run()


if __name__ == "__main__":
    main()
