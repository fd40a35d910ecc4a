"""The environment contract every tier gives an agent, and the rlimits of native agents.

Inside every sandbox an agent sees exactly: ``PATH``, ``HOME`` (its
workspace), ``TMPDIR``, ``LANG``, ``PYTHONUNBUFFERED=1``,
``PYTHONDONTWRITEBYTECODE=1``, ``SYMBI_AGENT_ID``, ``SYMBI_AGENT_NAME``,
``SYMBI_RPC_SOCKET`` (the protocol socket as seen inside, when there is
one), ``PYTHONPATH`` (the agent SDK as seen inside, when there is one), plus
whatever :attr:`LaunchSpec.env` carries (the RPC token). Nothing of the
engine's own environment leaks in.
"""

from __future__ import annotations

import math
import resource
import shutil
import sys
from pathlib import Path
from typing import Any

from engine.agents.executor import LaunchSpec
from engine.agents.model import ResourceLimits

MB = 1024 * 1024
SANDBOX_UID = 65534  # nobody
SANDBOX_GID = 65534  # nogroup
RPC_SOCKET_NAME = "rpc.sock"
# CPython itself needs ~16 MB of address space, ~160 MB once a thread starts
# (an 8 MB stack and a 64 MB malloc arena per thread are reserved up front).
AS_HEADROOM_MB = 256
# With a cgroup the memory limit is enforced (and reported) by the cgroup; the
# address-space limit is only a backstop against huge reservations.
AS_HEADROOM_WITH_CGROUP_MB = 1024
CPU_HARD_GRACE_S = 5  # SIGXCPU at the soft limit, SIGKILL this much later
SHARED_NPROC_LIMIT = 1024  # RLIMIT_NPROC for uid 65534 when no pids cgroup exists (shared by all sandboxed agents)


def contract_env(
    spec: LaunchSpec, *, home: str, rpc_socket: str | None, sdk_path: str | None, tmpdir: str | None = None
) -> dict[str, str]:
    """The agent's whole environment, with in-sandbox paths."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": home,
        "TMPDIR": tmpdir or "/tmp",
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "SYMBI_AGENT_ID": spec.agent_id,
        "SYMBI_AGENT_NAME": spec.name,
    }
    if rpc_socket is not None:
        env["SYMBI_RPC_SOCKET"] = rpc_socket
    if sdk_path is not None:
        env["PYTHONPATH"] = sdk_path
    env.update(spec.env)
    return env


def make_readable_by_sandbox(program: Path) -> None:
    """The agent runs as uid 65534 in bwrap and containers: it must be able to read its own program."""
    mode = program.stat().st_mode
    if mode & 0o004 == 0:
        program.chmod(mode | 0o044)


def address_space_limit(memory_mb: int, with_cgroup: bool) -> int:
    """RLIMIT_AS in bytes for an agent with ``memory_mb`` of memory."""
    headroom = AS_HEADROOM_WITH_CGROUP_MB if with_cgroup else AS_HEADROOM_MB
    return (memory_mb + headroom) * MB


def cpu_time_limit(limits: ResourceLimits) -> int | None:
    """RLIMIT_CPU seconds: the CPU an agent may burn in its whole execution_timeout."""
    if limits.execution_timeout is None:
        return None
    return max(1, math.ceil(limits.execution_timeout * limits.cpu_cores))


def rlimits_for(
    limits: ResourceLimits, *, max_open_files: int, cgroup_memory: bool, nproc: int | None = None
) -> list[tuple[int, int, int]]:
    """(resource, soft, hard) for the child to set before exec."""
    out = [
        (resource.RLIMIT_AS, *(address_space_limit(limits.memory_mb, cgroup_memory),) * 2),
        (resource.RLIMIT_NOFILE, max_open_files, max_open_files),
        (resource.RLIMIT_CORE, 0, 0),
    ]
    cpu = cpu_time_limit(limits)
    if cpu is not None:
        out.append((resource.RLIMIT_CPU, cpu, cpu + CPU_HARD_GRACE_S))
    if nproc is not None:
        out.append((resource.RLIMIT_NPROC, nproc, nproc))
    return out


LAUNCHER = Path(__file__).with_name("launch.py")


def launcher_argv(
    argv: list[str],
    join_fds: list[int],
    rlimits: list[tuple[int, int, int]],
    confine: dict[str, Any] | None = None,
) -> list[str]:
    """``argv`` started through :mod:`engine.sandbox.launch`: join the cgroups (the inherited
    ``cgroup.procs`` descriptors), lower the limits, confine (a plan of
    :mod:`engine.sandbox.confinement`), then exec. No Python runs in the engine's forked child (no
    ``preexec_fn``), so library fork hooks never run there."""
    program = shutil.which(argv[0]) or argv[0]
    out = [sys.executable, "-S", "-I", str(LAUNCHER)]
    for fd in join_fds:
        out += ["--join", str(fd)]
    for res, soft, hard in rlimits:
        out += ["--rlimit", f"{res}:{soft}:{hard}"]
    for key, value in (confine or {}).items():
        for item in value if isinstance(value, list) else [value]:
            if item is not None:
                out += ["--confine", f"{key}={int(item) if isinstance(item, bool) else item}"]
    return [*out, "--", program, *argv[1:]]
