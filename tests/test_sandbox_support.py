"""Helpers shared by the sandbox tests (``tests/test_sandbox_*.py``); no tests live here.

* :func:`make_spec` writes an agent program into a fresh data dir layout
  (``data/agents/<id>/agent.py`` and ``.../workspace``) and returns its
  :class:`LaunchSpec`; :func:`run_agent` runs it to completion collecting
  its output (killing it on timeout), :class:`Output` lets a test wait for a
  line while it runs.
* :class:`Plants` puts files an agent must not see around the data dir: a
  sibling dir of the data dir, a key file inside the data dir, another
  agent's workspace.
* :class:`RpcListener` listens on ``rpc.sock`` in a short per-test dir (as
  the engine does: dir 0711, socket 0666); :class:`TcpListener` is a TCP
  server on 127.0.0.1 that counts who got through.
* ``require_*`` skip a test only when the tier truly cannot exist on this
  machine, saying why.
* :data:`ESCAPE_PROBE` is an agent that tries every way out and prints one
  ``PROBE {json}`` line with what worked.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from engine.agents.executor import LaunchSpec
from engine.agents.model import ResourceLimits

ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- #
# Agents
# --------------------------------------------------------------------------- #


def make_spec(
    tmp_path: Path,
    code: str,
    *,
    name: str = "probe",
    memory_mb: int = 64,
    cpu_cores: float = 1.0,
    execution_timeout: float | None = 60.0,
    capabilities: tuple[str, ...] = (),
    rpc_dir: Path | None = None,
    sdk_dir: Path | None = None,
    env: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
) -> LaunchSpec:
    agent_id = str(uuid.uuid4())
    agent_dir = tmp_path / "data" / "agents" / agent_id
    (agent_dir / "workspace").mkdir(parents=True)
    (agent_dir / "agent.py").write_text(code)
    return LaunchSpec(
        agent_id=agent_id,
        name=name,
        program=agent_dir / "agent.py",
        workspace=agent_dir / "workspace",
        limits=ResourceLimits(memory_mb=memory_mb, cpu_cores=cpu_cores, execution_timeout=execution_timeout),
        capabilities=capabilities,
        rpc_dir=rpc_dir,
        sdk_dir=sdk_dir,
        env=env or {},
        labels=labels if labels is not None else {"symbi.engine": "sbxtest"},
    )


class Output:
    """Collects (stream, line) from an agent; ``wait_for`` waits until a line matches."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []
        self._changed = asyncio.Event()

    def __call__(self, stream: str, line: str) -> None:
        self.lines.append((stream, line))
        self._changed.set()

    @property
    def stdout(self) -> list[str]:
        return [line for stream, line in self.lines if stream == "stdout"]

    @property
    def stderr(self) -> list[str]:
        return [line for stream, line in self.lines if stream == "stderr"]

    async def wait_for(self, predicate: Callable[[str], bool] | str, timeout: float = 20.0) -> str:
        test = (lambda line: predicate in line) if isinstance(predicate, str) else predicate
        async with asyncio.timeout(timeout):
            while True:
                for _stream, line in self.lines:
                    if test(line):
                        return line
                self._changed.clear()
                await self._changed.wait()


@dataclass
class Run:
    rc: int
    output: Output
    detail: str | None
    handle: Any

    @property
    def stdout(self) -> list[str]:
        return self.output.stdout

    @property
    def stderr(self) -> list[str]:
        return self.output.stderr

    def probe(self) -> dict[str, Any]:
        """The JSON of the ``PROBE`` line the escape probe prints."""
        for line in self.stdout:
            if line.startswith("PROBE "):
                return json.loads(line[6:])
        raise AssertionError(f"no PROBE line; stdout={self.stdout} stderr={self.stderr[-5:]}")


async def run_agent(executor: Any, spec: LaunchSpec, timeout: float = 30.0) -> Run:
    """Launch, wait for the end (kill on timeout), collect, clean up."""
    output = Output()
    handle = await executor.launch(spec, output)
    try:
        rc = await asyncio.wait_for(handle.wait(), timeout)
    except TimeoutError:
        handle.kill()
        rc = await asyncio.wait_for(handle.wait(), 10)
        raise AssertionError(f"agent still running after {timeout}s; stdout={output.stdout[-5:]}") from None
    finally:
        detail = handle.exit_detail()
        await handle.cleanup()
    return Run(rc, output, detail, handle)


# --------------------------------------------------------------------------- #
# Things an agent must not reach
# --------------------------------------------------------------------------- #


@dataclass
class Plants:
    """World-readable files outside the workspace: only the sandbox can hide them."""

    sibling: Path  # a sibling dir of the data dir
    key: Path  # a key file inside the data dir
    other: Path  # another agent's workspace file

    @classmethod
    def make(cls, tmp_path: Path) -> Plants:
        sibling = tmp_path / "elsewhere" / "secret.txt"
        key = tmp_path / "data" / "keys" / "master.key"
        other = tmp_path / "data" / "agents" / "other-agent" / "workspace" / "notes.txt"
        for path, text in ((sibling, "TOPSECRET"), (key, "KEYMATERIAL"), (other, "OTHERAGENT")):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            path.chmod(0o644)
        return cls(sibling, key, other)

    @property
    def paths(self) -> list[str]:
        return [str(self.sibling), str(self.key), str(self.other)]


class RpcListener:
    """The engine's side of the protocol socket, reduced to recording lines."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="sbx-", dir="/tmp"))
        os.chmod(self.dir, 0o711)
        self.path = self.dir / "rpc.sock"
        self.received: list[bytes] = []
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> RpcListener:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                self.received.append(await reader.readline())
            writer.close()

        self._server = await asyncio.start_unix_server(serve, path=str(self.path))
        os.chmod(self.path, 0o666)
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class TcpListener:
    """A TCP server on 127.0.0.1 that counts connections (an agent without Network must not get one)."""

    def __init__(self) -> None:
        self.port = 0
        self.accepted = 0
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> TcpListener:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.accepted += 1
            writer.close()

        self._server = await asyncio.start_server(serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()


def dummy_sdk(tmp_path: Path) -> Path:
    """An SDK dir holding a package ``dummy_sdk`` (VALUE = 42), readable by anyone."""
    sdk = tmp_path / "sdk"
    (sdk / "dummy_sdk").mkdir(parents=True)
    (sdk / "dummy_sdk" / "__init__.py").write_text("VALUE = 42\n")
    for path in (sdk, sdk / "dummy_sdk"):
        path.chmod(0o755)
    (sdk / "dummy_sdk" / "__init__.py").chmod(0o644)
    return sdk


ESCAPE_PROBE = r"""
import json, os, socket, sys
SECRETS = {secrets!r}
PORT = {port}
r = {{}}
def attempt(name, fn):
    try:
        r[name] = "ok:" + str(fn())[:60]
    except Exception as exc:
        r[name] = "denied:" + type(exc).__name__
for i, path in enumerate(SECRETS):
    attempt(f"secret{{i}}", lambda: open(path).read())
attempt("shadow", lambda: open("/etc/shadow").read())
def tcp():
    s = socket.create_connection(("127.0.0.1", PORT), timeout=3)
    s.close()
    return "connected"
attempt("tcp", tcp)
def rpc():
    s = socket.socket(socket.AF_UNIX)
    s.connect(os.environ["SYMBI_RPC_SOCKET"])
    s.sendall(b"hello from " + os.environ["SYMBI_AGENT_NAME"].encode() + b"\n")
    s.close()
    return "sent"
attempt("rpc", rpc)
attempt("sdk", lambda: __import__("dummy_sdk").VALUE)
attempt("write_workspace", lambda: open("probe.txt", "w").write("x"))
attempt("write_usr", lambda: open("/usr/probe.txt", "w").write("x"))
attempt("write_program", lambda: open(sys.argv[0], "a").write("#"))
r["uid"] = os.getuid()
r["cwd"] = os.getcwd()
r["home"] = os.environ.get("HOME")
r["env"] = sorted(os.environ)
print("PROBE " + json.dumps(r), flush=True)
"""


def escape_probe(plants: Plants, port: int) -> str:
    return ESCAPE_PROBE.format(secrets=plants.paths, port=port)


def escape_spec(tmp_path: Path, rpc: RpcListener, tcp: TcpListener, **kw: Any):
    """The escape probe's launch spec: planted secrets outside the workspace, the RPC socket,
    a dummy SDK, and ``tcp`` as the host it tries to reach."""
    return make_spec(tmp_path, escape_probe(Plants.make(tmp_path), tcp.port), rpc_dir=rpc.dir,
                     sdk_dir=dummy_sdk(tmp_path), env={"SYMBI_RPC_TOKEN": "t"}, **kw)


MEMORY_HOG = """
chunks = []
while True:
    chunks.append(bytearray(8 << 20))
    print("allocated", len(chunks) * 8, "MB", flush=True)
"""

# Every process keeps trying to fork (sleeping between failures, so the CPU stays free); only
# the first process reports, once, when the kernel first refuses.
FORK_BOMB = """
import os, time
root = os.getpid()
reported = False
while True:
    try:
        pid = os.fork()
    except OSError as exc:
        if os.getpid() == root and not reported:
            print("fork refused:", exc.strerror, flush=True)
            reported = True
        time.sleep(0.05)
        continue
    if pid:
        time.sleep(0.01)
"""

SLEEPER = """
import os, sys, time
print("ready", os.getpid(), flush=True)
time.sleep(600)
"""

ENV_CONTRACT = {
    "HOME",
    "LANG",
    "PATH",
    "PYTHONDONTWRITEBYTECODE",
    "PYTHONPATH",
    "PYTHONUNBUFFERED",
    "SYMBI_AGENT_ID",
    "SYMBI_AGENT_NAME",
    "SYMBI_RPC_SOCKET",
    "SYMBI_RPC_TOKEN",
    "TMPDIR",
}
# what the sandbox itself adds: bwrap's --chdir sets PWD; Docker sets HOSTNAME
ENV_TOLERATED = {"PWD", "HOSTNAME"}


# --------------------------------------------------------------------------- #
# Is the tier possible here?
# --------------------------------------------------------------------------- #


def require_landlock() -> Any:
    """The built-in confinement's probe; skipped where the kernel has no Landlock, except in CI (CI=true)."""
    from engine.config import SandboxConfig
    from engine.sandbox.bwrap import base_python
    from engine.sandbox.confinement import probe

    status = probe(base_python(), SandboxConfig())
    if not status.available:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the built-in confinement for real: {status.detail}")
        pytest.skip(status.detail)
    return status


def require_bwrap() -> None:
    from engine.sandbox.bwrap import probe

    status = probe()
    if not status.available:
        pytest.skip(f"bubblewrap cannot run on this machine: {status.detail}")


def require_cgroups() -> Any:
    from engine.sandbox.cgroups import CgroupManager

    manager = CgroupManager()
    support = manager.detect()
    if not {"memory", "pids"} <= set(support.roots):
        pytest.skip(f"no writable memory+pids cgroups here: {support.detail}")
    return manager


def require_docker(runtime: str | None = None) -> Any:
    """A docker client with the agent image present (built if missing); skips when no daemon can exist."""
    from engine.sandbox.docker_tier import probe_docker
    from engine.sandbox.image import image_status, prepare_image

    state, client = probe_docker(timeout=5)
    if not state.reachable:
        if shutil.which("dockerd") is None:
            pytest.skip(f"no Docker daemon on this machine (dockerd not installed): {state.error}")
        pytest.fail(f"dockerd is installed but not reachable: {state.error}; run .ci/setup-sandboxes.sh")
    if runtime is not None and runtime not in state.runtimes:
        if shutil.which("runsc") is None:
            pytest.skip(f"gVisor (runsc) is not installed; dockerd runtimes: {sorted(state.runtimes)}")
        pytest.fail(f"runsc is installed but not registered with dockerd ({sorted(state.runtimes)})")
    image, detail = image_status(client, IMAGE, None)
    if image == "missing":
        prepare_image(IMAGE, client=client, say=lambda _line: None)
    return client


IMAGE = "symbi-agent:latest"
