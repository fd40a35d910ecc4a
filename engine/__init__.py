"""The Symbi agent runtime, in Python.

Public face: ``Runtime`` (open it with ``Runtime.open(config, data_dir)``),
``RuntimeConfig``/``load_config``, ``SymbiError``/``ErrorCode``, the agent
model and the typed events. This package never imports textual or the
console.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "Runtime": "engine.runtime",
    "RuntimeMetrics": "engine.runtime",
    "RuntimeConfig": "engine.config",
    "load_config": "engine.config",
    "SymbiError": "engine.errors",
    "ErrorCode": "engine.errors",
    "AgentConfig": "engine.agents.model",
    "AgentInfo": "engine.agents.model",
    "AgentState": "engine.agents.model",
    "ResourceLimits": "engine.agents.model",
    "Priority": "engine.agents.model",
    "ExecutionMode": "engine.agents.model",
    "SecurityTier": "engine.agents.model",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
