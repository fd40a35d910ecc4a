"""Executors run an agent's program as a child process.

An executor turns a :class:`LaunchSpec` into a running :class:`ProcessHandle`
and streams the program's output lines to a callback. This module holds the
interface, the handle of a child in its own process group (which the native
tiers in :mod:`engine.sandbox` build on) and the output pump. The tiers
themselves live in :mod:`engine.sandbox`.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import psutil

from engine.agents.model import AgentId, ResourceLimits

OutputCallback = Callable[[str, str], None]  # (stream, line)

CHUNK = 65536
MAX_PENDING_LINE = 8192


@dataclass(frozen=True)
class LaunchSpec:
    """Everything an executor needs to start one agent.

    The environment contract inside every tier: ``SYMBI_AGENT_ID``,
    ``SYMBI_AGENT_NAME``, ``SYMBI_RPC_SOCKET`` (the protocol socket as seen
    inside), ``SYMBI_RPC_TOKEN``, ``PYTHONPATH`` holding the agent SDK,
    ``HOME`` = the workspace, ``PYTHONUNBUFFERED=1``. Executors add the
    in-sandbox paths; ``env`` carries the rest (the token).
    """

    agent_id: AgentId
    name: str
    program: Path  # host path of the program; read-only inside the sandbox
    workspace: Path  # host path of the writable workspace (native tiers)
    limits: ResourceLimits
    capabilities: tuple[str, ...] = ()
    rpc_dir: Path | None = None  # host dir holding rpc.sock (mounted at /run/symbi in containers)
    sdk_dir: Path | None = None  # host dir containing the symbi_agent package
    env: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)  # container labels, e.g. symbi.engine

    @property
    def has_network(self) -> bool:
        return any(c.lower() == "network" for c in self.capabilities)


class ProcessHandle(Protocol):
    """A running agent, whatever isolates it."""

    tier: str
    pid: int | None  # host pid of the root process when visible (psutil sampling, orphan checks)
    started: float  # create time of that process, to recognise it later
    ref: str  # JSON identity persisted so a later engine can find it (orphan reconciliation)

    async def wait(self) -> int: ...

    def signal(self, sig: int) -> None: ...

    async def suspend(self) -> None: ...

    async def resume(self) -> None: ...

    def kill(self) -> None: ...

    def sample(self) -> Any | None:
        """A TreeSample of the agent's usage, or None to let the runtime sample ``pid`` with psutil."""

    def exit_detail(self) -> str | None:
        """After exit: why the sandbox ended it, when known (e.g. an OOM kill by the memory limit)."""

    async def cleanup(self) -> None: ...

    @property
    def returncode(self) -> int | None: ...


class Executor(Protocol):
    name: str

    async def launch(self, spec: LaunchSpec, on_output: OutputCallback) -> ProcessHandle: ...


class NativeProcessHandle:
    """A child in its own session; signals go to its whole process group."""

    tier = "native"

    def __init__(self, proc: asyncio.subprocess.Process, readers: list[asyncio.Task[None]]) -> None:
        self._proc = proc
        self._readers = readers
        self.pid: int | None = proc.pid
        try:
            self.started = psutil.Process(proc.pid).create_time()
        except psutil.Error:
            self.started = 0.0
        self.ref = json.dumps({"kind": "process", "pid": proc.pid, "started": self.started})

    async def wait(self) -> int:
        rc = await self._proc.wait()
        # drain output the program wrote before it ended
        await asyncio.gather(*self._readers, return_exceptions=True)
        return rc

    def signal(self, sig: int) -> None:
        assert self.pid is not None
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            pass
        except PermissionError:
            # the group may be gone and the pgid reused; fall back to the child itself
            if self._proc.returncode is None:
                self._proc.send_signal(sig)

    async def suspend(self) -> None:
        self.signal(signal.SIGSTOP)

    async def resume(self) -> None:
        self.signal(signal.SIGCONT)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self.signal(signal.SIGCONT)

    def sample(self) -> Any | None:
        return None

    def exit_detail(self) -> str | None:
        return None

    async def cleanup(self) -> None:
        return None

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
    the process we started (same create time). Returns True if one was killed.

    psutil derives create times from the boot time each process computes for
    itself, which drifts between processes on some VMs (seen: ~0.1 s here), so
    the comparison allows 2 s: a pid is not reused that fast in practice."""
    try:
        proc = psutil.Process(pid)
        if started and abs(proc.create_time() - started) > 2.0:
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
