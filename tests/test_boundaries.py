"""The engine never imports textual or the console."""

import ast
import subprocess
import sys
from pathlib import Path

ENGINE = Path(__file__).resolve().parent.parent / "engine"


def test_no_engine_module_imports_textual_or_console():
    offenders = []
    for path in ENGINE.rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                if name.split(".")[0] in {"textual", "console", "rich"}:
                    offenders.append(f"{path.relative_to(ENGINE.parent)}:{node.lineno} imports {name}")
    assert offenders == []


def test_importing_the_whole_engine_loads_no_ui_module():
    code = (
        "import sys, pkgutil, importlib, engine\n"
        "for m in pkgutil.walk_packages(engine.__path__, 'engine.'):\n"
        "    importlib.import_module(m.name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'console'))\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ENGINE.parent)
    assert proc.returncode == 0, proc.stdout + proc.stderr


CONSOLE = ENGINE.parent / "console"
# What the console may import from the engine: the interface (with its data types and boot), the
# events and the errors. Nothing else: no runtime, no stores, no services, no config schema.
CONSOLE_MAY_IMPORT = ("engine.api", "engine.events", "engine.errors")


def _engine_imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every ``engine...`` import in ``path``, at any depth (lazy ones too)."""
    found: list[tuple[int, str]] = []
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "engine"]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "engine":
            if node.module == "engine":  # ``from engine import x``: x is a module of the engine
                found += [(node.lineno, f"engine.{a.name}") for a in node.names]
            else:
                found.append((node.lineno, node.module))
    return found


def test_the_console_imports_only_the_engine_interface_its_types_the_events_and_the_errors():
    offenders = [
        f"{path.relative_to(CONSOLE.parent)}:{line} imports {module}"
        for path in sorted(CONSOLE.rglob("*.py"))
        for line, module in _engine_imports(path)
        if not any(module == allowed or module.startswith(allowed + ".") for allowed in CONSOLE_MAY_IMPORT)
    ]
    assert offenders == []


def test_the_console_never_reaches_for_live_engine_objects():
    """No attribute path into a runtime, its stores or its clock, even through ``Any``."""
    banned = ("runtime", "_runtime", "clock")
    offenders = []
    for path in sorted(CONSOLE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Attribute) and node.attr in banned:
                offenders.append(f"{path.relative_to(CONSOLE.parent)}:{node.lineno} .{node.attr}")
    assert offenders == []


def test_importing_the_interface_loads_no_runtime():
    """A client of engine.api (the console, a remote client) does not load the runtime, its
    services or LanceDB just by importing the interface."""
    code = (
        "import sys, engine.api, engine.api.local, engine.api.readonly, engine.api.codec, engine.api.boot\n"
        "bad = sorted(m for m in sys.modules if m in ('engine.runtime', 'engine.knowledge.service', "
        "'engine.secrets.service', 'lancedb'))\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ENGINE.parent)
    assert proc.returncode == 0, proc.stdout + proc.stderr
