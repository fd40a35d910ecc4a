"""Shared test helpers: a fast runtime configuration and program loading."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace

from engine.agents.model import AgentConfig, ResourceLimits
from engine.config import RuntimeConfig

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "agents"


def fast_config(**sections: dict) -> RuntimeConfig:
    """Defaults with short timeouts, so real processes finish quickly.

    ``sections`` maps a section name to field overrides, e.g.
    ``fast_config(lifecycle={"max_agents": 2})``.
    """
    cfg = RuntimeConfig.default()
    base = {
        "lifecycle": {"termination_timeout": 2.0, "restart_backoff_base": 0.05, "restart_backoff_max": 0.2},
        "resource": {"monitoring_interval": 0.2},
    }
    for name, fields in sections.items():
        base.setdefault(name, {}).update(fields)
    for name, fields in base.items():
        cfg = dataclasses.replace(cfg, **{name: dataclasses.replace(getattr(cfg, name), **fields)})
    return cfg


def program(name: str) -> str:
    return (EXAMPLES / f"{name}.py").read_text()


def agent(name: str, example: str = "hello", source: str | None = None, **kw) -> AgentConfig:
    limits = kw.pop("limits", None) or ResourceLimits(**kw.pop("limit_fields", {}))
    return AgentConfig(name=name, dsl_source=source if source is not None else program(example), resource_limits=limits, **kw)


async def wait_for_log(rt, ref: str, needle: str, timeout: float = 20.0) -> None:
    """Wait until the agent's log contains ``needle`` (polls the runtime's tail)."""
    import asyncio

    async with asyncio.timeout(timeout):
        while not any(needle in line for line in await rt.agent_logs(ref)):
            await asyncio.sleep(0.05)


async def until(predicate, timeout: float = 10.0) -> None:
    """Poll ``predicate`` until it holds (for effects the OS applies asynchronously)."""
    import asyncio

    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


# An agent as the tool gate sees it (id and config), for ToolService tests without a runtime.
TOOL_AGENT = SimpleNamespace(id="agent-1", config=SimpleNamespace(name="worker", capabilities=[], metadata={}))


def tool_policy_check(policy_text: str):
    """A ``ToolService.policy_check`` that evaluates ``policy_text`` with the real policy engine."""
    from engine.policy.engine import PolicyEngine
    from engine.policy.model import request_for_agent

    engine = PolicyEngine.from_text(policy_text)

    def check(agent, resource_type, path, op, *, tool_name=None, metadata=None):
        req = request_for_agent(agent.config, resource_type, path, op, agent_id=agent.id, tool_name=tool_name)
        return engine.evaluate(req), req

    return check
