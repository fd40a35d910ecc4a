"""``symbiont agents create|start|stop|suspend|resume|terminate|delete|logs``: operate agents.

Each command goes through the engine interface. When an engine runs on the
data dir, through its socket (the engine does the work and records it with the
operator as actor); when none runs, ``create``, ``delete`` and ``logs`` open
the data dir themselves for the time of the command. Starting, stopping,
suspending and resuming need an engine that stays up to run the agent: without
one they are refused with ``RUNTIME_001`` and the command to start one.
(``list`` and ``show`` read the registry directly: see :mod:`engine.cli`.)
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from engine.api.interface import Engine
from engine.api.types import AgentConfig, AgentInfo
from engine.errors import ErrorCode, SymbiError

LIVE_ONLY = {"start", "stop", "suspend", "resume", "terminate"}


def _engine(args: argparse.Namespace, command: str) -> tuple[Engine, bool]:
    """(engine, attached): the running engine's socket, or the data dir opened here."""
    from engine.api import boot

    setup = boot.load_setup(getattr(args, "config", None), args.data_dir)
    attached = boot.attach(setup)
    if attached is not None:
        return attached, True
    if command in LIVE_ONLY:
        raise SymbiError(
            ErrorCode.RUNTIME_001,
            f"no engine runs on {setup.data_dir} to {command} the agent",
            offending=str(setup.data_dir),
            hint=f"start one with `symbi-console --headless --data-dir {setup.data_dir}`, then run this again",
        )
    return boot.local_engine(setup, mode="cli", serve=False), False


async def _with_engine(args: argparse.Namespace, command: str, act: Callable[[Engine], Awaitable[int]]) -> int:
    engine, _attached = _engine(args, command)
    await engine.open()
    try:
        return await act(engine)
    finally:
        await engine.close("symbiont agents " + command)


def _print_info(info: AgentInfo, what: str) -> None:
    print(f"{info.name}: {what} (state {info.state.value}, id {info.id})")


def _config(args: argparse.Namespace) -> AgentConfig:
    try:
        source = Path(args.program).read_text(encoding="utf-8")
    except OSError as exc:
        raise SymbiError(
            ErrorCode.AGENT_004,
            f"cannot read the agent's program: {exc.strerror or exc}",
            offending=args.program,
            hint="give the path of a Python file, e.g. examples/agents/hello.py",
        ) from None
    data: dict[str, Any] = {"name": args.name, "dsl_source": source}
    if args.mode:
        data["execution_mode"] = args.mode
    if args.tier:
        data["security_tier"] = args.tier
    limits = {k: v for k, v in (("memory_mb", args.memory_mb), ("cpu_cores", args.cpu)) if v is not None}
    if limits:
        data["resource_limits"] = limits
    if args.capability:
        data["capabilities"] = list(args.capability)
    if args.priority:
        data["priority"] = args.priority
    if args.schedule:
        data["schedule"] = args.schedule
    if args.restart:
        data["restart_policy"] = args.restart
    return AgentConfig.from_dict(data)


def cmd_create(args: argparse.Namespace) -> int:
    config = _config(args)

    async def act(engine: Engine) -> int:
        _print_info(await engine.agents.create(config), "created")
        return 0

    return asyncio.run(_with_engine(args, "create", act))


def _lifecycle(command: str, done: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        async def act(engine: Engine) -> int:
            agents = engine.agents
            if command == "start":
                payload = json.loads(args.input) if args.input is not None else None
                info = await agents.start(args.agent, input=payload)
            elif command == "delete":
                info = await agents.get(args.agent)
                await agents.delete(info.id)
                print(f"{info.name}: deleted (id {info.id})")
                return 0
            else:
                call: dict[str, Callable[[str], Awaitable[AgentInfo]]] = {
                    "stop": agents.stop,
                    "suspend": agents.suspend,
                    "resume": agents.resume,
                    "terminate": agents.terminate,
                }
                info = await call[command](args.agent)
            _print_info(info, done)
            return 0

        if command == "start" and args.input is not None:
            try:
                json.loads(args.input)
            except ValueError as exc:
                raise SymbiError(
                    ErrorCode.AGENT_004,
                    f"--input is not JSON: {exc}",
                    offending=args.input,
                    hint="e.g. --input '{\"n\": 3}'",
                ) from None
        return asyncio.run(_with_engine(args, command, act))

    return run


def cmd_logs(args: argparse.Namespace) -> int:
    async def act(engine: Engine) -> int:
        for line in await engine.agents.logs(args.agent, lines=args.lines):
            print(line)
        return 0

    return asyncio.run(_with_engine(args, "logs", act))


def register(agents_sub: Any) -> None:
    """Add the operating commands to the subcommands of ``symbiont agents`` (made by :mod:`engine.cli`)."""
    create = agents_sub.add_parser("create", help="create an agent from a Python program")
    create.add_argument("name")
    create.add_argument("--program", required=True, help="the agent's Python file")
    create.add_argument("--mode", help="Ephemeral (default), Persistent, Scheduled or EventDriven")
    create.add_argument("--tier", help="Native (default), Docker, GVisor or Firecracker")
    create.add_argument("--memory-mb", type=int)
    create.add_argument("--cpu", type=float, help="CPU cores")
    create.add_argument("--capability", action="append", help="repeat for each (e.g. Network)")
    create.add_argument("--priority", help="Low, Normal, High or Critical")
    create.add_argument("--schedule", help="cron expression (Scheduled agents)")
    create.add_argument(
        "--restart", help="never, on-failure (default) or always (also brought back when the engine starts)"
    )
    create.set_defaults(func=cmd_create)
    for command, done, text in (
        ("start", "start requested", "start an agent (needs a running engine)"),
        ("stop", "stopped", "stop an agent: SIGTERM, then SIGKILL after the grace time"),
        ("suspend", "suspended", "suspend an agent (SIGSTOP)"),
        ("resume", "resumed", "resume a suspended agent"),
        ("terminate", "killed", "kill an agent now (SIGKILL)"),
        ("delete", "deleted", "delete an agent with its history, workspace and logs"),
    ):
        parser = agents_sub.add_parser(command, help=text)
        parser.add_argument("agent", help="name or id")
        if command == "start":
            parser.add_argument("--input", help="JSON given to the agent")
        parser.set_defaults(func=_lifecycle(command, done))
    logs = agents_sub.add_parser("logs", help="print the tail of an agent's log")
    logs.add_argument("agent", help="name or id")
    logs.add_argument("-n", "--lines", type=int, default=200)
    logs.set_defaults(func=cmd_logs)
