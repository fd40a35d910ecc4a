"""The runtime wires services; services never reach back into it.

Services depend on narrow protocols (engine/agents/ports.py), not on
``engine.runtime`` or its private state; nobody reads the runtime's private
attributes (the old ``rt._agents``, ``rt._machine = ...``, ``self.rt._record``).
"""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

from engine.agents.record import AgentRecord
from engine.runtime import Runtime, RuntimeMetrics
from tests.helpers import fast_config

ROOT = Path(__file__).resolve().parent.parent
ENGINE = ROOT / "engine"
SERVICE_PACKAGES = ["agents", "knowledge", "policy", "secrets", "mcp_tools", "comms", "audit", "sandbox"]
RUNTIME_NAMES = {"rt", "runtime", "_rt", "_runtime"}  # what code called the Runtime when it held one
# the Runtime's private attributes before the services were cut loose from it
OLD_PRIVATES = {
    "_agents", "_names", "_machine", "_store", "_bus_members", "_record", "_note", "_transition",
    "_store_update", "_engine_log", "_on_output", "_spawn", "_stop", "_get", "_sampler", "_checker",
    "_resources", "_scheduler", "_sandboxes", "_gate", "_monitor", "_authorize", "_fail", "_arm",
}  # fmt: skip


def _trees(*dirs: Path):
    for d in dirs:
        for path in sorted(d.rglob("*.py")):
            yield path, ast.parse(path.read_text(), str(path))


def _receiver_name(node: ast.expr) -> str | None:
    """``rt`` for ``rt.x``, ``rt`` for ``self.rt.x``, ``_rt`` for ``self._rt.x``."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def test_no_service_imports_the_runtime():
    offenders = []
    for package in SERVICE_PACKAGES:
        for path, tree in _trees(ENGINE / package):
            for node in ast.walk(tree):
                names: list[str] = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                if any(n == "engine.runtime" or n.startswith("engine.runtime.") for n in names):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
                if isinstance(node, ast.Name) and node.id in ("Runtime", "_Agent"):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} names {node.id}")
    assert offenders == []


def test_nobody_reads_the_runtimes_private_state():
    offenders = []
    for path, tree in _trees(ENGINE, ROOT / "console", ROOT / "tests", ROOT / "benchmarks"):
        rel = path.relative_to(ROOT)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute) or not node.attr.startswith("_") or node.attr.startswith("__"):
                continue
            receiver = _receiver_name(node.value)
            if receiver in RUNTIME_NAMES:
                offenders.append(f"{rel}:{node.lineno} {ast.unparse(node)}")
            elif node.attr in OLD_PRIVATES and receiver not in ("self", "cls") and rel.parts[0] == "engine":
                offenders.append(f"{rel}:{node.lineno} {ast.unparse(node)}")
    assert offenders == []


def test_the_services_hold_no_runtime(tmp_path):
    rt = Runtime(fast_config(), tmp_path)
    components = [v for v in vars(rt).values() if type(v).__module__.startswith("engine.")]
    components.append(rt.supervisor.launcher)
    assert {type(c).__name__ for c in components} >= {
        "PolicyService", "SecretService", "KnowledgeService", "Journal", "Supervisor", "AgentGate", "ResourceMonitor",
    }  # fmt: skip
    for component in components:
        held = [name for name, value in vars(component).items() if isinstance(value, Runtime)]
        assert held == [], f"{type(component).__name__} holds the runtime in {held}"


def test_agent_record_is_a_public_documented_record():
    fields = {f.name for f in dataclasses.fields(AgentRecord)}
    assert {"id", "config", "state", "history", "log", "handle", "rpc", "watcher", "next_run"} <= fields
    assert AgentRecord.__doc__ and AgentRecord.__module__ == "engine.agents.record"
    assert dataclasses.is_dataclass(RuntimeMetrics)


def test_runtime_module_stays_small():
    lines = (ENGINE / "runtime.py").read_text().count("\n")
    assert lines < 520, f"engine/runtime.py has {lines} lines: move machinery out, keep the wiring"
