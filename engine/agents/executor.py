"""Executors run an agent's program as a child process.

An executor turns a :class:`LaunchSpec` into a running :class:`ProcessHandle`
and streams the program's output lines to a callback. This module holds the
interface and the native executor (own session and process group, own
working directory, cleared environment). Sandbox tiers implement the same
interface.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import psutil

from engine.agents.model import AgentId, ResourceLimits
from engine.errors import ErrorCode, SymbiError

OutputCallback = Callable[[str, str], None]  # (stream, line)

CHUNK = 65536
MAX_PENDING_LINE = 8192


@dataclass(frozen=True)
class LaunchSpec:
    agent_id: AgentId
    name: str
    program: Path
    workspace: Path
    limits: ResourceLimits
    env: dict[str, str] = field(default_factory=dict)


class ProcessHandle(Protocol):
    pid: int
    started: float  # the process's create_time, to recognise it after a restart

    async def wait(self) -> int: ...

    def signal(self, sig: int) -> None: ...

    @property
    def returncode(self) -> int | None: ...


class Executor(Protocol):
    name: str

    async def launch(self, spec: LaunchSpec, on_output: OutputCallback) -> ProcessHandle: ...


class NativeProcessHandle:
    """A child in its own session; signals go to its whole process group."""

    def __init__(self, proc: asyncio.subprocess.Process, readers: list[asyncio.Task[None]]) -> None:
        self._proc = proc
        self._readers = readers
        self.pid = proc.pid
        try:
            self.started = psutil.Process(proc.pid).create_time()
        except psutil.Error:
            self.started = 0.0

    async def wait(self) -> int:
        rc = await self._proc.wait()
        # drain output the program wrote before it ended
        await asyncio.gather(*self._readers, return_exceptions=True)
        return rc

    def signal(self, sig: int) -> None:
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            pass
        except PermissionError:
            # the group may be gone and the pgid reused; fall back to the child itself
            if self._proc.returncode is None:
                self._proc.send_signal(sig)

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode


async def _pump(stream: asyncio.StreamReader, name: str, on_output: OutputCallback) -> None:
    """Read raw chunks and split lines ourselves, so a flood or a huge line
    without newline cannot overrun a buffer."""
    pending = b""
    while True:
        chunk = await stream.read(CHUNK)
        if not chunk:
            break
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for raw in lines:
            on_output(name, raw.decode("utf-8", "replace").rstrip("\r"))
        if len(pending) > MAX_PENDING_LINE:
            on_output(name, pending.decode("utf-8", "replace"))
            pending = b""
    if pending:
        on_output(name, pending.decode("utf-8", "replace").rstrip("\r"))


class NativeExecutor:
    """Runs the program with this machine's Python, unsandboxed but contained
    in its own session, process group, working directory and environment."""

    name = "native"

    def __init__(self, python: str | None = None) -> None:
        self.python = python or sys.executable

    def environment(self, spec: LaunchSpec) -> dict[str, str]:
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": str(spec.workspace),
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "SYMBI_AGENT_ID": spec.agent_id,
            "SYMBI_AGENT_NAME": spec.name,
        }
        env.update(spec.env)
        return env

    async def launch(self, spec: LaunchSpec, on_output: OutputCallback) -> NativeProcessHandle:
        try:
            proc = await asyncio.create_subprocess_exec(
                self.python,
                "-I",
                str(spec.program),
                cwd=spec.workspace,
                env=self.environment(spec),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as exc:
            raise SymbiError(
                ErrorCode.AGENT_005,
                f"could not launch the agent program: {exc.strerror or exc}",
                offending=spec.name,
                hint=f"check that {self.python} exists and the data dir is writable",
            ) from exc
        assert proc.stdout is not None and proc.stderr is not None
        readers = [
            asyncio.create_task(_pump(proc.stdout, "stdout", on_output)),
            asyncio.create_task(_pump(proc.stderr, "stderr", on_output)),
        ]
        return NativeProcessHandle(proc, readers)


def describe_exit(rc: int) -> str:
    """'exited with status 3' or 'killed by signal SIGKILL'."""
    if rc < 0:
        try:
            return f"killed by signal {signal.Signals(-rc).name}"
        except ValueError:
            return f"killed by signal {-rc}"
    return f"exited with status {rc}"


def kill_orphan_group(pid: int, started: float | None) -> bool:
    """Kill a process group left by a previous engine, if its leader is still
    the process we started (same create time). Returns True if one was killed."""
    try:
        proc = psutil.Process(pid)
        if started and abs(proc.create_time() - started) > 0.01:
            return False
    except psutil.Error:
        return False
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        try:
            proc.kill()
        except psutil.Error:
            return False
    return True
