"""The demo engine: a configuration with short timeouts, and the example MCP servers in-process.

Used by ``python -m console.demo`` (the screenshots) through
:mod:`engine.api.boot`; everything else the demo does (agents, secrets,
knowledge) goes through the engine interface like any operator's action.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

from engine.config import RuntimeConfig
from engine.errors import ErrorCode, SymbiError

if TYPE_CHECKING:
    from engine.runtime import Runtime

EXAMPLE_SERVERS = Path(__file__).resolve().parent.parent / "examples" / "mcp_servers"


def demo_config() -> RuntimeConfig:
    cfg = RuntimeConfig.default()
    cfg.lifecycle = dataclasses.replace(
        cfg.lifecycle, termination_timeout=2.0, restart_backoff_base=0.2, restart_backoff_max=1.0, max_restart_attempts=2
    )
    cfg.resource = dataclasses.replace(cfg.resource, monitoring_interval=0.5)
    return cfg


async def add_example_servers(rt: Runtime, servers: dict[str, str]) -> int:
    """Serve ``examples/mcp_servers/<module>.py`` in-process as MCP server ``name`` (unsigned, so
    ``allow_unsigned``) for each ``name -> module``, and discover their tools; how many tools."""
    from engine.mcp_tools import ServerConfig

    if rt.tools is None:
        raise SymbiError(ErrorCode.MCP_001, "the engine has no tool service", hint="open the engine first")
    found = 0
    for name, module in servers.items():
        path = EXAMPLE_SERVERS / f"{module}.py"
        spec = importlib.util.spec_from_file_location(f"symbi_demo_{module}", path)
        if spec is None or spec.loader is None:
            raise SymbiError(ErrorCode.MCP_002, "no such example MCP server", offending=str(path))
        loaded = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(loaded)
        rt.tools.add_server(ServerConfig(name, server=loaded.build_server(), allow_unsigned=True))
        found += len(await rt.tools.discover(name))
    return found
