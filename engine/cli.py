"""``symbiont``: the command-line interface to the engine.

Subcommands here: ``version``, ``config check|show``, ``agents list|show`` (the
operating ones, ``agents create|start|stop|...``, are in :mod:`engine.agents.cli`).
Later capabilities (audit, policy, secrets, tools, sandbox) add theirs.
Errors print ``CODE: message (input: ...). Hint: ...`` and exit 2; a failed
check exits 1.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from engine.config import dump_toml, find_config_file, load_config, resolve_data_dir
from engine.errors import ErrorCode, SymbiError


def _version() -> str:
    try:
        return version("symbi-console")
    except PackageNotFoundError:
        return "unknown"


def cmd_version(args: argparse.Namespace) -> int:
    print(f"symbiont {_version()}")
    return 0


def cmd_config_check(args: argparse.Namespace) -> int:
    data_dir = resolve_data_dir(args.data_dir)
    path = Path(args.file) if args.file else find_config_file(None, data_dir)
    loaded = load_config(path)
    for warning in loaded.warnings:
        print(f"warning: {warning}")
    print(f"ok: {path if path else 'no config file; defaults'}")
    return 0


def cmd_config_show(args: argparse.Namespace) -> int:
    data_dir = resolve_data_dir(args.data_dir)
    loaded = load_config(find_config_file(args.config, data_dir))
    print(f"# effective configuration (source: {loaded.source or 'defaults'}; env overrides applied)")
    print(dump_toml(loaded.config), end="")
    return 0


def _read_agents(data_dir: Path) -> list[dict[str, Any]]:
    db = data_dir / "agents.db"
    if not db.exists():
        return []
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        con.row_factory = sqlite3.Row
        rows = [dict(r) for r in con.execute("SELECT * FROM agents ORDER BY created_at")]
        con.close()
    except sqlite3.Error as exc:
        raise SymbiError(
            ErrorCode.STORE_001, f"cannot read the agent registry: {exc}", offending=str(db), hint="check permissions"
        ) from exc
    return rows


def cmd_agents_list(args: argparse.Namespace) -> int:
    rows = _read_agents(resolve_data_dir(args.data_dir))
    if args.json:
        for row in rows:
            row["config"] = json.loads(row["config"])
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no agents")
        return 0
    print(f"{'NAME':<24} {'STATE':<13} {'PRIORITY':<9} {'RESTARTS':>8}  ID")
    for row in rows:
        cfg = json.loads(row["config"])
        print(
            f"{row['name']:<24} {row['state']:<13} {cfg.get('priority', ''):<9} {row['restart_count']:>8}  {row['id']}"
        )
    return 0


def cmd_agents_show(args: argparse.Namespace) -> int:
    data_dir = resolve_data_dir(args.data_dir)
    rows = [r for r in _read_agents(data_dir) if args.agent in (r["name"], r["id"])]
    if not rows:
        raise SymbiError(
            ErrorCode.AGENT_001, "agent not found", offending=args.agent, hint="see `symbiont agents list`"
        )
    row = rows[0]
    con = sqlite3.connect(f"file:{data_dir / 'agents.db'}?mode=ro", uri=True)
    history = con.execute(
        "SELECT state, at, reason FROM state_history WHERE agent_id = ? ORDER BY seq", (row["id"],)
    ).fetchall()
    con.close()
    print(f"{row['name']}  ({row['id']})")
    print(f"state: {row['state']}  restarts: {row['restart_count']}  exit code: {row['exit_code']}")
    if row["last_error"]:
        print(f"last error: {row['last_error']}")
    print("history:")
    for state, at, reason in history:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))
        print(f"  {stamp}  {state:<13} {reason}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="symbiont", description="Symbi agent runtime command line.")
    p.add_argument("--data-dir", help="engine data dir (default: SYMBI_DATA_DIR or the per-user dir)")
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("version", help="print the version").set_defaults(func=cmd_version)

    cfg = sub.add_parser("config", help="check or show the runtime configuration")
    cfg_sub = cfg.add_subparsers(dest="config_command", required=True)
    check = cfg_sub.add_parser("check", help="validate a runtime_config.toml")
    check.add_argument("file", nargs="?")
    check.set_defaults(func=cmd_config_check)
    show = cfg_sub.add_parser("show", help="print the effective configuration")
    show.add_argument("--config")
    show.set_defaults(func=cmd_config_show)

    agents = sub.add_parser(
        "agents", help="list, inspect and operate agents (through the running engine, or the data dir when none runs)"
    )
    agents_sub = agents.add_subparsers(dest="agents_command", required=True)
    lst = agents_sub.add_parser("list", help="list agents")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(func=cmd_agents_list)
    shw = agents_sub.add_parser("show", help="show one agent and its state history")
    shw.add_argument("agent", help="name or id")
    shw.set_defaults(func=cmd_agents_show)
    from engine.agents.cli import register as register_agent_commands

    register_agent_commands(agents_sub)
    for register in _plugin_registrars():
        register(sub)
    return p


# Each capability adds its subcommands from its own package: a module with
# ``register(subparsers)``. Listed here so the import graph stays explicit.
_PLUGINS: tuple[str, ...] = (
    "engine.audit.cli",
    "engine.mcp_tools.cli",
    "engine.policy.cli",
    "engine.sandbox.cli",
    "engine.secrets.cli",
)


def _plugin_registrars() -> list[Callable[[Any], None]]:
    import importlib

    return [importlib.import_module(name).register for name in _PLUGINS]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except SymbiError as exc:
        print(f"symbiont: {exc.render()}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
