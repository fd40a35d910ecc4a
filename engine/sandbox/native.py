"""The native tier: the agent as a host process, contained as far as this machine allows.

Always: its own session and process group, a cleared environment (the
contract of :mod:`engine.sandbox.environment`), its workspace as cwd, and
rlimits set in the child before exec (address space from ``memory_mb`` plus
headroom, CPU seconds from ``execution_timeout`` x ``cpu_cores``, open
files from ``sandbox.max_open_files``, no core dumps).

Where cgroups are writable: a group per run with memory, pids and CPU
limits that the child joins before exec; an OOM kill is reported by
:meth:`NativeSandboxHandle.exit_detail`; leftovers (even processes that left
the process group) are killed and the group removed on cleanup.

Where bubblewrap exists and ``sandbox.native_isolation`` is auto or bwrap:
namespaces, read-only system, uid 65534 (see :mod:`engine.sandbox.bwrap`),
and our seccomp filter (:mod:`engine.sandbox.seccomp`) loaded by bwrap.
The handle's ``pid`` is then bwrap's, whose tree holds the agent.

Without bubblewrap (``confine=True``): the built-in confinement of
:mod:`engine.sandbox.confinement` (uid change in a private mount view when
the engine is root, Landlock, seccomp), applied by the exec wrapper. Only
with ``sandbox.native_isolation = "none"`` does an agent run unconfined, as
the engine's user: then it contains (rlimits, cgroups), it does not isolate.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import psutil

from engine.agents.executor import LaunchSpec, NativeProcessHandle, OutputCallback, _pump, describe_exit
from engine.agents.model import ResourceLimits
from engine.config import SandboxConfig
from engine.errors import ErrorCode, SymbiError
from engine.sandbox import seccomp
from engine.sandbox.bwrap import base_python, bwrap_argv
from engine.sandbox.cgroups import AgentCgroup, CgroupLimits, CgroupManager
from engine.sandbox.confinement import ensure_tmpdir, plan_for
from engine.sandbox.environment import (
    MB,
    RPC_SOCKET_NAME,
    SANDBOX_GID,
    SANDBOX_UID,
    SHARED_NPROC_LIMIT,
    address_space_limit,
    contract_env,
    cpu_time_limit,
    launcher_argv,
    make_readable_by_sandbox,
    rlimits_for,
)

_counter = itertools.count(1)


def _mb(value: int | None) -> str:
    return "?" if value is None else f"{round(value / MB)} MB"


class NativeSandboxHandle(NativeProcessHandle):
    """A native agent: plain (signals go to its process group) or in bwrap."""

    def __init__(
        self,
        proc: asyncio.subprocess.Process,
        readers: list[asyncio.Task[None]],
        *,
        tier: str,
        bwrap: bool,
        cgroup: AgentCgroup | None,
        limits: ResourceLimits,
        last_stderr: list[str],
    ) -> None:
        super().__init__(proc, readers)
        self.tier = tier
        self._bwrap = bwrap
        self._cgroup = cgroup
        self._limits = limits
        self._last_stderr = last_stderr
        self._detail: str | None = None
        self._rc: int | None = None
        self.ref = json.dumps(
            {
                "kind": "native",
                "pid": proc.pid,
                "started": self.started,
                "bwrap": bwrap,
                "cgroups": [str(p) for p in cgroup.paths] if cgroup else [],
            }
        )

    @property
    def cgroup(self) -> AgentCgroup | None:
        return self._cgroup

    async def wait(self) -> int:
        rc = await super().wait()
        if self._rc is None:
            if self._bwrap and 128 < rc <= 128 + 64:  # bwrap reports a signal death as 128 + signal
                rc = -(rc - 128)
            self._rc = rc
            self._detail = self._explain(rc)
        return self._rc

    def _explain(self, rc: int) -> str | None:
        cg = self._cgroup
        last = self._last_stderr[0] if self._last_stderr else ""
        if rc > 0 and last.startswith(("bwrap:", "setpriv:", "symbi launch:")):
            return f"{ErrorCode.SANDBOX_003.value}: the sandbox could not be set up: {last}"
        if cg is not None and cg.oom_kills() > 0:
            limit = self._limits.memory_mb
            return (
                f"{ErrorCode.RESOURCE_002.value}: memory limit {limit} MB exceeded: "
                f"killed by the cgroup OOM killer, peak {_mb(cg.peak_bytes())}"
            )
        if rc == -signal.SIGXCPU:
            return (
                f"{ErrorCode.RESOURCE_002.value}: CPU time limit of {cpu_time_limit(self._limits)} s exceeded "
                f"(execution_timeout x cpu_cores): {describe_exit(rc)}"
            )
        if rc != 0 and self._last_stderr and self._last_stderr[0].startswith("MemoryError"):
            limit = address_space_limit(self._limits.memory_mb, cg is not None and "memory" in cg.dirs)
            return (
                f"{ErrorCode.RESOURCE_002.value}: memory limit {self._limits.memory_mb} MB exceeded: "
                f"address-space limit {_mb(limit)} reached (MemoryError)"
            )
        return None

    def _agent_pids(self) -> list[int]:
        """Under bwrap: every process below its PID-namespace init (the agent and what it forked)."""
        try:
            outer = psutil.Process(self.pid)
            inner = outer.children()
            return [p.pid for init in inner for p in init.children(recursive=True)]
        except psutil.Error:
            return []

    def signal(self, sig: int) -> None:
        if not self._bwrap:
            super().signal(sig)
            if sig == signal.SIGKILL and self._cgroup is not None:
                self._cgroup.kill_all(rounds=1)
            return
        # bwrap would die of most signals itself (SIGKILL-ing the namespace): deliver them to the agent
        for pid in self._agent_pids():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        if sig == signal.SIGKILL:
            super().signal(sig)
            if self._cgroup is not None:
                self._cgroup.kill_all(rounds=1)

    def exit_detail(self) -> str | None:
        return self._detail

    async def cleanup(self) -> None:
        if self._cgroup is not None:
            cg, self._cgroup = self._cgroup, None
            await asyncio.to_thread(cg.remove)


def _seccomp_memfd(allow_network: bool) -> int | None:
    """Our seccomp filter in a memfd, for bwrap's ``--seccomp FD`` (it loads it just before exec)."""
    if not seccomp.supported():
        return None
    fd = os.memfd_create("symbi-seccomp", os.MFD_CLOEXEC)
    os.write(fd, seccomp.program(allow_network=allow_network))
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _grant_workspace(workspace: Path, uid: int = SANDBOX_UID, gid: int = SANDBOX_GID) -> None:
    """Make the workspace writable by the sandbox user (never following links the agent planted)."""
    os.chown(workspace, uid, gid, follow_symlinks=False)
    for root, dirs, files in os.walk(workspace):
        for name in dirs + files:
            with contextlib.suppress(OSError):
                os.chown(os.path.join(root, name), uid, gid, follow_symlinks=False)


class NativeSandboxExecutor:
    """Launches native agents, in bubblewrap when ``use_bwrap`` and in a cgroup when ``cgroups``."""

    def __init__(
        self,
        config: SandboxConfig,
        *,
        use_bwrap: bool,
        cgroups: CgroupManager | None = None,
        python: str | None = None,
        fallback_from: str | None = None,
        bwrap: str = "bwrap",
        confine: bool = False,
        mount_view: bool = False,
    ) -> None:
        self.config = config
        self.use_bwrap = use_bwrap
        self.confine = confine and not use_bwrap
        self.mount_view = mount_view and self.confine
        self.cgroups = cgroups
        self.python = python or base_python()
        self.bwrap = shutil.which(bwrap) or bwrap
        self.setpriv = shutil.which("setpriv") or "setpriv"
        base = "native+bwrap" if use_bwrap else "native+landlock" if self.confine else "native (unconfined)"
        self.name = f"{base} (fallback from {fallback_from})" if fallback_from else base
        self.tier = self.name

    @property
    def _uid(self) -> int:
        return SANDBOX_UID if self.use_bwrap else self.config.native_uid

    @property
    def _gid(self) -> int:
        return SANDBOX_GID if self.use_bwrap else self.config.native_gid

    @property
    def drops_uid(self) -> bool:
        return os.geteuid() == 0 and (self.use_bwrap or self.mount_view)

    def _argv(self, spec: LaunchSpec, seccomp_fd: int | None = None) -> list[str]:
        if self.use_bwrap:
            return bwrap_argv(spec, python=self.python, bwrap=self.bwrap, setpriv=self.setpriv, seccomp_fd=seccomp_fd)
        return [self.python, "-s", "-P", str(spec.program)]

    def _cgroup(self, spec: LaunchSpec) -> AgentCgroup | None:
        if self.cgroups is None or not self.cgroups.detect().usable:
            return None
        limits = CgroupLimits(
            memory_bytes=spec.limits.memory_mb * MB, pids=self.config.max_pids, cpu_cores=spec.limits.cpu_cores
        )
        group = spec.labels.get("symbi.engine", "default")
        leaf = f"{spec.agent_id}-{os.getpid()}-{next(_counter)}"
        try:
            return self.cgroups.create(group, leaf, limits)
        except OSError as exc:
            raise SymbiError(
                ErrorCode.SANDBOX_003,
                f"could not create the agent's cgroup: {exc.strerror or exc}",
                offending=spec.name,
                hint=f"check that {self.config.cgroup_root} is writable, or run `symbiont sandbox doctor`",
            ) from exc

    async def launch(self, spec: LaunchSpec, on_output: OutputCallback) -> NativeSandboxHandle:
        spec.workspace.mkdir(parents=True, exist_ok=True)
        if self.drops_uid:
            await asyncio.to_thread(_grant_workspace, spec.workspace, self._uid, self._gid)
            make_readable_by_sandbox(spec.program)
        rpc = str(spec.rpc_dir / RPC_SOCKET_NAME) if spec.rpc_dir is not None else None
        tmpdir = None
        if self.confine and not self.mount_view:
            tmpdir = ensure_tmpdir(spec.workspace)  # no private /tmp: the host's is out of reach
        env = contract_env(
            spec,
            home=str(spec.workspace),
            rpc_socket=rpc,
            sdk_path=str(spec.sdk_dir) if spec.sdk_dir else None,
            tmpdir=tmpdir,
        )
        cgroup = self._cgroup(spec)
        rlimits = rlimits_for(
            spec.limits,
            max_open_files=self.config.max_open_files,
            cgroup_memory=cgroup is not None and "memory" in cgroup.dirs,
            # Without a pids cgroup only RLIMIT_NPROC is left, and it counts every process of the uid, which all
            # sandboxed agents share: a machine-wide ceiling for them, not a per-agent limit.
            nproc=SHARED_NPROC_LIMIT
            if (cgroup is None or "pids" not in cgroup.dirs) and (self.use_bwrap or self.drops_uid)
            else None,
        )
        fds: list[int] = []
        try:
            fds = cgroup.open_join_fds() if cgroup is not None else []
            seccomp_fd = _seccomp_memfd(spec.has_network) if self.use_bwrap else None
            if seccomp_fd is not None:
                fds.append(seccomp_fd)
            plan = (
                plan_for(spec, python=self.python, config=self.config, mount_view=self.mount_view, tmpdir=tmpdir)
                if self.confine
                else None
            )
            proc = await asyncio.create_subprocess_exec(
                *launcher_argv(self._argv(spec, seccomp_fd), [fd for fd in fds if fd != seccomp_fd], rlimits, plan),
                cwd=spec.workspace,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
                pass_fds=fds,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            if cgroup is not None:
                await asyncio.to_thread(cgroup.remove)
            raise SymbiError(
                ErrorCode.SANDBOX_003 if self.use_bwrap or self.confine or cgroup else ErrorCode.AGENT_005,
                f"could not launch the agent program ({self.name}): {getattr(exc, 'strerror', None) or exc}",
                offending=spec.name,
                hint="run `symbiont sandbox doctor` to see what this machine supports",
            ) from exc
        finally:
            for fd in fds:
                os.close(fd)
        assert proc.stdout is not None and proc.stderr is not None
        last_stderr: list[str] = []

        def on_err(stream: str, line: str) -> None:
            if line.strip():
                last_stderr[:] = [line]
            on_output(stream, line)

        readers = [
            asyncio.create_task(_pump(proc.stdout, "stdout", on_output)),
            asyncio.create_task(_pump(proc.stderr, "stderr", on_err)),
        ]
        return NativeSandboxHandle(
            proc,
            readers,
            tier=self.name,
            bwrap=self.use_bwrap,
            cgroup=cgroup,
            limits=spec.limits,
            last_stderr=last_stderr,
        )
