"""Tier1 (Docker) and Tier2 (gVisor: Docker with the ``runsc`` runtime).

Each agent is one container of the local agent image (see
:mod:`engine.sandbox.image`), made with: a read-only root, ``cap_drop ALL``,
``no-new-privileges``, ``pids_limit`` (``sandbox.max_pids``), ``mem_limit``
= ``memswap_limit`` = ``memory_mb``, ``nano_cpus`` from ``cpu_cores``, the
``nofile``/``cpu``/``core`` ulimits of the native tier, user 65534:65534,
``network_mode none``, a tmpfs workspace at ``/work`` (the cwd and HOME,
``sandbox.workspace_tmpfs_mb``) and a small tmpfs ``/tmp``, docker-init as
PID 1 (so SIGTERM reaches the agent and zombies are reaped), and bind
mounts: the program read-only at ``/opt/symbi/agent.py``, the SDK read-only
at ``/opt/symbi/sdk``, the RPC dir read-write at ``/run/symbi``. Labels:
``symbi.managed``, ``symbi.agent_id``, ``symbi.agent_name``, ``symbi.tier``
plus the spec's (``symbi.engine``), so a later engine can find leftovers.

The ``docker`` SDK blocks, so each container gets its own daemon threads:
one reads the attached output (split into lines, handed to the event loop
with back-pressure), one reads the stats stream (kept as the latest
:class:`TreeSample`), one waits for the exit. Control calls (signal, pause)
go through a one-worker pool so they stay ordered without blocking the loop.

Under gVisor the agent's processes are tasks of the sandbox kernel, not host
processes: the host pids limit only bounds gVisor's own threads (so it gets
:data:`GVISOR_PIDS_HEADROOM` more), and a fork bomb is stopped by the memory
limit (every task costs sandbox-kernel memory): it is OOM-killed.

The Network capability is refused (SANDBOX_003): the daemon this project
sets up runs with ``--bridge=none`` and gVisor with ``--network=none``, so
there is no network to give; a dockerd with a ``bridge`` network would get
``network_mode bridge`` (not under gVisor registered with --network=none).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import secrets
import signal
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import psutil

from engine.agents.executor import CHUNK, MAX_PENDING_LINE, LaunchSpec, OutputCallback
from engine.agents.sampler import TreeSample
from engine.config import SandboxConfig
from engine.errors import ErrorCode, SymbiError
from engine.sandbox.environment import (
    MB,
    RPC_SOCKET_NAME,
    SANDBOX_GID,
    SANDBOX_UID,
    contract_env,
    cpu_time_limit,
    make_readable_by_sandbox,
)

AGENT_PATH = "/opt/symbi/agent.py"
SDK_PATH = "/opt/symbi/sdk"
RPC_PATH = "/run/symbi"
WORKDIR = "/work"
TMP_MB = 16
MAX_INFLIGHT_BATCHES = 64
# Under gVisor the host pids limit counts the sandbox kernel's own threads (~40 when idle; when the
# limit starves it, the Go runtime dies and the container exits with status 2), not the agent's
# processes, which live inside the sandbox kernel and are bounded by the memory limit instead.
GVISOR_PIDS_HEADROOM = 256
DAEMON_FIX = (
    "start the Docker daemon (e.g. `.ci/setup-sandboxes.sh`, or "
    "`dockerd --iptables=false --bridge=none --config-file /etc/symbi/dockerd.json &`), "
    "or point DOCKER_HOST at a running one"
)


def docker_client(timeout: float = 10.0, max_pool_size: int = 64) -> Any:
    """A docker SDK client from the environment (DOCKER_HOST ...), or SANDBOX_001 saying why not."""
    try:
        import docker
        import docker.errors
    except ImportError as exc:  # pragma: no cover - a dependency of the project
        raise SymbiError(
            ErrorCode.SANDBOX_001, "the docker Python SDK is not installed", hint="pip install docker"
        ) from exc
    try:
        client = docker.from_env(timeout=timeout, max_pool_size=max_pool_size)
        client.ping()
    except Exception as exc:
        raise SymbiError(
            ErrorCode.SANDBOX_001,
            f"the Docker daemon is not reachable: {_short(exc)}",
            offending=_docker_host(),
            hint=DAEMON_FIX,
        ) from exc
    return client


def _docker_host() -> str:
    import os

    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


@dataclass(frozen=True)
class DockerState:
    """What ``docker info`` said (or why it could not be asked)."""

    reachable: bool
    version: str = ""
    runtimes: dict[str, Any] = field(default_factory=dict)
    has_bridge: bool = False
    error: str = ""


def probe_docker(timeout: float = 3.0) -> tuple[DockerState, Any]:
    """(state, client or None); never raises."""
    try:
        client = docker_client(timeout=timeout)
        info = client.info()
        bridge = bool(client.networks.list(names=["bridge"]))
    except SymbiError as exc:
        return DockerState(False, error=exc.message), None
    except Exception as exc:
        return DockerState(False, error=_short(exc)), None
    return DockerState(True, info.get("ServerVersion", "?"), info.get("Runtimes") or {}, bridge), client


def _cpu_percent(stats: dict[str, Any]) -> float:
    cpu, pre = stats.get("cpu_stats") or {}, stats.get("precpu_stats") or {}
    total = (cpu.get("cpu_usage") or {}).get("total_usage") or 0
    pre_total = (pre.get("cpu_usage") or {}).get("total_usage") or 0
    system, pre_system = cpu.get("system_cpu_usage") or 0, pre.get("system_cpu_usage") or 0
    online = cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or []) or 1
    cpu_delta, sys_delta = total - pre_total, system - pre_system
    if cpu_delta <= 0 or sys_delta <= 0 or not pre_total:
        return 0.0
    return cpu_delta / sys_delta * online * 100.0


def _memory(stats: dict[str, Any]) -> tuple[int, int]:
    """(working set, peak) in bytes: usage minus page cache, as `docker stats` shows it."""
    mem = stats.get("memory_stats") or {}
    usage = mem.get("usage") or 0
    detail = mem.get("stats") or {}
    cache = detail.get("total_inactive_file", detail.get("inactive_file", detail.get("cache", 0))) or 0
    return max(0, usage - cache), mem.get("max_usage") or usage


def _blkio(stats: dict[str, Any]) -> tuple[int, int]:
    read = write = 0
    for entry in (stats.get("blkio_stats") or {}).get("io_service_bytes_recursive") or []:
        op = str(entry.get("op", "")).lower()
        if op == "read":
            read += entry.get("value") or 0
        elif op == "write":
            write += entry.get("value") or 0
    return read, write


class _Lines:
    """Splits a byte stream into lines, like the native tier's pump (bounded pending line)."""

    def __init__(self, stream: str) -> None:
        self.stream = stream
        self.pending = b""

    def feed(self, chunk: bytes) -> list[tuple[str, str]]:
        self.pending += chunk
        *lines, self.pending = self.pending.split(b"\n")
        out = [(self.stream, raw.decode("utf-8", "replace").rstrip("\r")) for raw in lines]
        if len(self.pending) > MAX_PENDING_LINE:
            out.append((self.stream, self.pending.decode("utf-8", "replace")))
            self.pending = b""
        return out

    def close(self) -> list[tuple[str, str]]:
        rest, self.pending = self.pending, b""
        return [(self.stream, rest.decode("utf-8", "replace").rstrip("\r"))] if rest else []


def _thread(target: Callable[[], None], name: str) -> threading.Thread:
    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    return thread


class DockerHandle:
    """One running container."""

    def __init__(
        self,
        container: Any,
        output: Any,
        *,
        client: Any,
        loop: asyncio.AbstractEventLoop,
        on_output: OutputCallback,
        tier: str,
        memory_mb: int,
        cpu_limit_s: int | None,
        gvisor: bool = False,
    ) -> None:
        self._c = container
        self._client = client
        self._loop = loop
        self._on_output = on_output
        self.tier = tier
        self._memory_mb = memory_mb
        self._cpu_limit_s = cpu_limit_s
        self._gvisor = gvisor
        self._kill_requested = False
        state = container.attrs.get("State") or {}
        self.pid: int | None = state.get("Pid") or None
        try:
            self.started = psutil.Process(self.pid).create_time() if self.pid else 0.0
        except psutil.Error:
            self.started = 0.0
        self.ref = json.dumps({"kind": "docker", "container": container.id})
        self.container_id: str = container.id
        self._control = ThreadPoolExecutor(max_workers=1, thread_name_prefix="symbi-docker-ctl")
        self._finished = threading.Event()
        self._inflight = threading.BoundedSemaphore(MAX_INFLIGHT_BATCHES)
        self._sample = TreeSample(self.pid or 0, 0.0, 0, 0, 0, 1, alive=True)
        self._peak = 0
        self._returncode: int | None = None
        self._detail: str | None = None
        self._done: asyncio.Future[int] = loop.create_future()
        short = container.id[:12]
        self._reader = _thread(lambda: self._read_output(output), f"symbi-docker-out-{short}")
        _thread(self._read_stats, f"symbi-docker-stats-{short}")
        _thread(self._wait_exit, f"symbi-docker-wait-{short}")

    # -- threads -------------------------------------------------------------

    def _deliver(self, batch: list[tuple[str, str]]) -> None:
        try:
            for stream, line in batch:
                self._on_output(stream, line)
        finally:
            self._inflight.release()

    def _send(self, batch: list[tuple[str, str]]) -> None:
        if not batch:
            return
        self._inflight.acquire()  # back-pressure: a flood waits for the loop instead of queueing without bound
        try:
            self._loop.call_soon_threadsafe(self._deliver, batch)
        except RuntimeError:  # the loop is closed
            self._inflight.release()

    def _read_output(self, output: Any) -> None:
        splitters = {"stdout": _Lines("stdout"), "stderr": _Lines("stderr")}
        try:
            for out, err in output:
                batch: list[tuple[str, str]] = []
                for name, data in (("stdout", out), ("stderr", err)):
                    for i in range(0, len(data or b""), CHUNK):
                        batch += splitters[name].feed(data[i : i + CHUNK])
                self._send(batch)
        except Exception:  # the connection ends when the container is removed
            pass
        finally:
            self._send(splitters["stdout"].close() + splitters["stderr"].close())

    def _read_stats(self) -> None:
        try:
            for stats in self._client.api.stats(self._c.id, stream=True, decode=True):
                if self._finished.is_set():
                    break
                if not stats.get("read") or stats.get("read", "").startswith("0001"):
                    continue
                rss, peak = _memory(stats)
                self._peak = max(self._peak, peak)
                read, write = _blkio(stats)
                procs = (stats.get("pids_stats") or {}).get("current") or 1
                self._sample = TreeSample(self.pid or 0, _cpu_percent(stats), rss, read, write, procs, alive=True)
        except Exception:
            pass

    def _wait_exit(self) -> None:
        try:
            rc = int(self._c.wait(timeout=None).get("StatusCode", -1))
        except Exception:
            rc = -1
        self._finished.set()
        oom = False
        with contextlib.suppress(Exception):
            self._c.reload()
            oom = bool((self._c.attrs.get("State") or {}).get("OOMKilled"))
        self._reader.join(timeout=5)  # output written before the exit arrives first
        if 128 < rc <= 128 + 64:  # docker-init reports a signal death as 128 + signal
            rc = -(rc - 128)
        self._detail = self._explain(rc, oom)
        self._sample = TreeSample(self.pid or 0, 0.0, 0, self._sample.read_bytes, self._sample.write_bytes, 0, False)
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._resolve, rc)

    def _resolve(self, rc: int) -> None:
        self._returncode = rc
        if not self._done.done():
            self._done.set_result(rc)

    def _explain(self, rc: int, oom: bool) -> str | None:
        if oom:
            # the kernel OOM-kills at the limit; a stats sample may have come earlier (or not at all)
            peak = max(round(self._peak / MB), self._memory_mb)
            return (
                f"{ErrorCode.RESOURCE_002.value}: memory limit {self._memory_mb} MB exceeded: "
                f"OOM-killed in the container, peak {peak} MB"
            )
        if rc == -signal.SIGXCPU:
            return f"{ErrorCode.RESOURCE_002.value}: CPU time limit of {self._cpu_limit_s} s exceeded"
        near_limit = self._peak >= 0.9 * self._memory_mb * MB
        if rc == -signal.SIGKILL and not self._kill_requested and (self._gvisor or near_limit):
            # Docker learns of an OOM kill from a cgroup event; when the sandbox is gone first (gVisor's
            # OOM-killed sentry, about one run in six here) OOMKilled stays false.
            return (
                f"{ErrorCode.RESOURCE_002.value}: memory limit {self._memory_mb} MB exceeded (probably): "
                f"SIGKILLed without an OOM report, last seen using {round(self._peak / MB)} MB"
            )
        return None

    # -- ProcessHandle ---------------------------------------------------------

    async def wait(self) -> int:
        return await asyncio.shield(self._done)

    def _call(self, fn: Callable[[], Any]) -> None:
        def run() -> None:
            with contextlib.suppress(Exception):  # already gone: nothing to signal
                fn()

        with contextlib.suppress(RuntimeError):
            self._control.submit(run)

    def signal(self, sig: int) -> None:
        if self._finished.is_set():
            return
        self._kill_requested |= sig == signal.SIGKILL
        self._call(lambda: self._c.kill(signal=int(sig)))

    async def suspend(self) -> None:
        await self._loop.run_in_executor(self._control, self._c.pause)

    async def resume(self) -> None:
        await self._loop.run_in_executor(self._control, self._c.unpause)

    def kill(self) -> None:
        self._kill_requested = True
        if not self._finished.is_set():
            self._call(self._c.kill)

    def sample(self) -> TreeSample:
        return self._sample

    def exit_detail(self) -> str | None:
        return self._detail

    async def cleanup(self) -> None:
        self._finished.set()

        def remove() -> None:
            with contextlib.suppress(Exception):
                self._c.remove(force=True)

        await self._loop.run_in_executor(self._control, remove)
        self._control.shutdown(wait=False)

    @property
    def returncode(self) -> int | None:
        return self._returncode


class DockerExecutor:
    """Runs agents as containers of ``image``, under ``runtime`` (None = runc; "runsc" = gVisor)."""

    def __init__(
        self,
        config: SandboxConfig,
        *,
        image: str | None = None,
        runtime: str | None = None,
        name: str | None = None,
        client: Any = None,
        allow_network: bool = False,
    ) -> None:
        self.config = config
        self.image = image or config.docker_image
        self.runtime = runtime
        self.name = name or ("gvisor" if runtime else "docker")
        self.tier = self.name
        self.allow_network = allow_network
        self._client = client
        self._lock = threading.Lock()

    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = docker_client(timeout=30.0)
            return self._client

    def _network(self, spec: LaunchSpec) -> str:
        if not spec.has_network:
            return "none"
        if self.allow_network:
            return "bridge"
        raise SymbiError(
            ErrorCode.SANDBOX_003,
            f"the Network capability cannot be granted under {self.name}: this Docker daemon has no bridge network"
            + (" and gVisor is registered with --network=none" if self.runtime else ""),
            offending=spec.name,
            hint="run this agent on the native tier with bubblewrap (which shares the host network for it), "
            "or use a dockerd with a bridge network",
        )

    def container_args(self, spec: LaunchSpec) -> dict[str, Any]:
        """The keyword arguments of ``containers.create`` for ``spec``."""
        from docker.types import LogConfig, Ulimit

        limits = spec.limits
        env = contract_env(
            spec,
            home=WORKDIR,
            rpc_socket=f"{RPC_PATH}/{RPC_SOCKET_NAME}" if spec.rpc_dir is not None else None,
            sdk_path=SDK_PATH if spec.sdk_dir is not None else None,
        )
        volumes = {str(spec.program): {"bind": AGENT_PATH, "mode": "ro"}}
        if spec.sdk_dir is not None:
            volumes[str(spec.sdk_dir)] = {"bind": SDK_PATH, "mode": "ro"}
        if spec.rpc_dir is not None:
            volumes[str(spec.rpc_dir)] = {"bind": RPC_PATH, "mode": "rw"}
        ulimits = [
            Ulimit(name="nofile", soft=self.config.max_open_files, hard=self.config.max_open_files),
            Ulimit(name="core", soft=0, hard=0),
        ]
        cpu_s = cpu_time_limit(limits)
        if cpu_s is not None:
            ulimits.append(Ulimit(name="cpu", soft=cpu_s, hard=cpu_s + 5))
        labels = {
            "symbi.managed": "1",
            "symbi.agent_id": spec.agent_id,
            "symbi.agent_name": spec.name,
            "symbi.tier": self.name,
            **spec.labels,
        }
        args: dict[str, Any] = {
            "image": self.image,
            "command": ["python3", "-s", "-P", AGENT_PATH],
            "name": f"symbi-{spec.name}-{secrets.token_hex(3)}",
            "user": f"{SANDBOX_UID}:{SANDBOX_GID}",
            "environment": env,
            "working_dir": WORKDIR,
            "read_only": True,
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges"],
            "pids_limit": self.config.max_pids + (GVISOR_PIDS_HEADROOM if self.runtime else 0),
            "mem_limit": limits.memory_mb * MB,
            "memswap_limit": limits.memory_mb * MB,
            "nano_cpus": max(1, math.ceil(limits.cpu_cores * 1e9)),
            "network_mode": self._network(spec),
            "tmpfs": {
                WORKDIR: f"rw,nosuid,nodev,size={self.config.workspace_tmpfs_mb}m,mode=1777",
                "/tmp": f"rw,nosuid,nodev,noexec,size={TMP_MB}m,mode=1777",
            },
            "volumes": volumes,
            "ulimits": ulimits,
            "labels": labels,
            "init": True,
            "stdin_open": False,
            "tty": False,
            "log_config": LogConfig(type="json-file", config={"max-size": "1m", "max-file": "1"}),
        }
        if self.runtime:
            args["runtime"] = self.runtime
        return args

    async def launch(self, spec: LaunchSpec, on_output: OutputCallback) -> DockerHandle:
        args = self.container_args(spec)
        make_readable_by_sandbox(spec.program)
        loop = asyncio.get_running_loop()
        client = await asyncio.to_thread(self.client)
        container, output = await asyncio.to_thread(self._start, client, args, spec)
        return DockerHandle(
            container,
            output,
            client=client,
            loop=loop,
            on_output=on_output,
            tier=self.name,
            memory_mb=spec.limits.memory_mb,
            gvisor=bool(self.runtime),
            cpu_limit_s=cpu_time_limit(spec.limits),
        )

    def _start(self, client: Any, args: dict[str, Any], spec: LaunchSpec) -> tuple[Any, Any]:
        import docker.errors

        try:
            container = client.containers.create(**args)
        except docker.errors.ImageNotFound as exc:
            raise SymbiError(
                ErrorCode.SANDBOX_002,
                f"the agent image {self.image} is missing",
                offending=self.image,
                hint="run `symbiont sandbox prepare-image`",
            ) from exc
        except docker.errors.APIError as exc:
            raise SymbiError(
                ErrorCode.SANDBOX_003,
                f"Docker refused to create the container: {_short(exc.explanation or exc)}",
                offending=spec.name,
                hint="run `symbiont sandbox doctor`",
            ) from exc
        try:
            # attach before start (with past logs), so not one line is lost
            output = container.attach(stdout=True, stderr=True, stream=True, logs=True, demux=True)
            container.start()
            container.reload()
        except Exception as exc:
            with contextlib.suppress(Exception):
                container.remove(force=True)
            raise SymbiError(
                ErrorCode.SANDBOX_003,
                f"Docker could not start the container ({self.name}): {_short(getattr(exc, 'explanation', None) or exc)}",
                offending=spec.name,
                hint="run `symbiont sandbox doctor`",
            ) from exc
        return container, output
