"""The built-in confinement of the native tier: the plan the launcher applies, and a probe of this machine.

Nothing to install: where bubblewrap is missing, a native agent is still
confined by the kernel features every current Linux has, applied by the exec
wrapper (:mod:`engine.sandbox.launch`) just before it execs the agent:

* **uid change** (engine as root): the agent runs as ``sandbox.native_uid``
  (65534) with no supplementary groups, no capabilities and no_new_privs, in
  a private mount view (:mod:`engine.sandbox.mountview`) where the data dir,
  root's home and the host's ``/tmp`` are replaced by empty tmpfs and only
  its workspace, program, protocol socket and interpreter are bound back.
  An engine that is not root cannot change uid: it drops every capability.
* **Landlock** (:mod:`engine.sandbox.landlock`): read+execute on the system
  dirs and the interpreter's prefix; read on the SDK, the program and a short
  list of ``/etc`` files (not ``/etc/shadow``); read-write on the workspace
  and the private ``/tmp``; ``/dev/null`` and the random devices. Nothing of
  the data dir. TCP connect and bind denied without the Network capability;
  signals and abstract Unix sockets scoped to the agent (it cannot signal
  the engine or other agents).
* **seccomp** (:mod:`engine.sandbox.seccomp`): ptrace, mount, bpf, keyctl,
  kexec, module loading, namespaces, io_uring and the like refused; non-Unix
  sockets refused without the Network capability (this is what stops UDP).

:func:`probe` runs the launcher once with a real plan on a throwaway
workspace and reports what held, for ``symbiont sandbox doctor`` and for the
registry's choice of the native executor.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.agents.executor import LaunchSpec
from engine.agents.model import ResourceLimits
from engine.config import SandboxConfig
from engine.sandbox import landlock, seccomp
from engine.sandbox.environment import launcher_argv

# The /etc entries a program needs (dynamic loader, time zone, TLS roots, name resolution, users, Python's
# Debian config); everything else in /etc, /etc/shadow included, stays out of reach.
ETC_READABLE = (
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/etc/timezone",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/pki",
    "/etc/passwd",
    "/etc/group",
    "/etc/nsswitch.conf",
    "/etc/host.conf",
    "/etc/hosts",
    "/etc/resolv.conf",
    "/etc/gai.conf",
    "/etc/services",
    "/etc/protocols",
    "/etc/mime.types",
    "/etc/os-release",
    "/etc/alternatives",
    "/etc/python3",
    f"/etc/python{sys.version_info.major}.{sys.version_info.minor}",
)
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")  # read+execute; not /etc
DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")


@dataclass(frozen=True)
class ConfinementStatus:
    """What the built-in confinement does on this machine (one probe)."""

    available: bool
    landlock_abi: int
    uid_change: str  # e.g. "agents run as 65534:65534", or why not
    mount_view: bool
    seccomp: str
    detail: str
    fix: str | None = None

    def layers(self) -> list[tuple[str, bool, str]]:
        """(layer, in force, what) rows for the doctor."""
        return [
            ("uid change", self.mount_view, self.uid_change),
            ("Landlock", self.landlock_abi > 0, landlock.describe(self.landlock_abi)),
            ("seccomp", seccomp.supported(), self.seccomp),
        ]


def _is_root() -> bool:
    return os.geteuid() == 0


def interpreter_prefix(python: str) -> str:
    """The install prefix of ``python`` (``bin/pythonX.Y`` two levels down)."""
    return str(Path(os.path.realpath(python)).parent.parent)


def plan_for(
    spec: LaunchSpec, *, python: str, config: SandboxConfig, mount_view: bool, tmpdir: str | None = None
) -> dict[str, Any]:
    """The ``--confine`` plan for one agent (JSON-ready)."""
    root = _is_root()
    rx = [p for p in SYSTEM_DIRS if os.path.exists(p)]
    prefix = interpreter_prefix(python)
    if not any(prefix == d or prefix.startswith(d + "/") for d in rx):
        rx.append(prefix)
    ro = [p for p in ETC_READABLE if os.path.exists(p)]
    if spec.sdk_dir is not None:
        ro.append(str(spec.sdk_dir))
    ro.append(str(spec.program))
    rw = [str(spec.workspace)]
    if mount_view:
        rw.append("/tmp")
    elif tmpdir is not None:
        rw.append(tmpdir)
    return {
        "uid": config.native_uid if root and mount_view else None,
        "gid": config.native_gid if root and mount_view else None,
        "mount_view": bool(root and mount_view),
        "rx": rx,
        "ro": ro,
        "rw": rw,
        "dev": [d for d in DEVICES if os.path.exists(d)],
        "binds_rw": [str(spec.rpc_dir)] if spec.rpc_dir is not None else [],
        "cwd": str(spec.workspace),
        "network": spec.has_network,
        "landlock": "require",
        "seccomp": True,
        "tmp_size_mb": config.workspace_tmpfs_mb,
    }


_PROBE_SCRIPT = """
import os, socket
out = [str(os.getuid())]
try:
    open("/etc/shadow").read(1); out.append("shadow-read")
except OSError:
    out.append("shadow-denied")
try:
    socket.socket(socket.AF_INET, socket.SOCK_DGRAM); out.append("udp-open")
except OSError:
    out.append("udp-denied")
print(" ".join(out))
"""


def _run_probe(python: str, config: SandboxConfig, *, mount_view: bool) -> tuple[bool, str]:
    """Launch a tiny program under a real plan; (it ran confined, what it printed or why it failed)."""
    base = Path(tempfile.mkdtemp(prefix="symbi-probe-"))
    try:
        workspace = base / "workspace"
        workspace.mkdir()
        program = base / "probe.py"
        program.write_text(_PROBE_SCRIPT)
        program.chmod(0o644)
        if _is_root() and mount_view:
            os.chown(workspace, config.native_uid, config.native_gid)
        spec = LaunchSpec(agent_id="probe", name="probe", program=program, workspace=workspace, limits=ResourceLimits())
        plan = plan_for(spec, python=python, config=config, mount_view=mount_view, tmpdir=None)
        argv = launcher_argv([os.path.realpath(python), "-S", "-I", str(program)], [], [], plan)
        try:
            result = subprocess.run(
                argv, capture_output=True, text=True, timeout=20, cwd="/", env={"PATH": "/usr/bin:/bin"}
            )
        except (OSError, subprocess.SubprocessError) as exc:
            return False, str(exc)
        if result.returncode != 0:
            lines = [ln for ln in result.stderr.strip().splitlines() if ln.strip()]
            return False, (lines[-1] if lines else f"exit {result.returncode}").removeprefix("symbi launch: ")
        words = result.stdout.split()
        if "shadow-read" in words or "udp-open" in words:
            return False, f"the probe escaped: {result.stdout.strip()}"
        return True, result.stdout.strip()
    finally:
        shutil.rmtree(base, ignore_errors=True)


def probe(python: str, config: SandboxConfig) -> ConfinementStatus:
    """Can native agents be confined here without bubblewrap, and how? (~50-100 ms: it launches a probe)."""
    abi = landlock.abi_version()
    sec = seccomp.describe()
    if abi <= 0:
        return ConfinementStatus(
            False,
            0,
            "not attempted",
            False,
            sec,
            landlock.describe(0),
            "use a kernel with Landlock (5.13+, in the lsm= list) or install bubblewrap",
        )
    root = _is_root()
    uid = f"{config.native_uid}:{config.native_gid}"
    ok, out = _run_probe(python, config, mount_view=root)
    if ok:
        who = (
            f"agents run as {uid}, no capabilities, private mount view"
            if root
            else (f"engine is not root: agents run as uid {os.geteuid()} with no capabilities")
        )
        return ConfinementStatus(True, abi, who, root, sec, f"{who}; {landlock.describe(abi)}; {sec}")
    if root:
        why = out
        ok2, out2 = _run_probe(python, config, mount_view=False)
        if ok2:
            who = f"no uid change (the private mount view failed: {why}): agents stay uid 0 with no capabilities"
            return ConfinementStatus(
                True,
                abi,
                who,
                False,
                sec,
                f"{who}; {landlock.describe(abi)}; {sec}",
                "run the engine where mount namespaces may be created, or install bubblewrap",
            )
        out = out2
    return ConfinementStatus(
        False,
        abi,
        "not in force",
        False,
        sec,
        f"the built-in confinement failed here: {out}",
        "install bubblewrap, or see the launcher's message above",
    )


def ensure_tmpdir(workspace: Path) -> str:
    """A temp dir inside the workspace, for agents without a private /tmp (an engine that is not root)."""
    tmp = workspace / ".tmp"
    with contextlib.suppress(FileExistsError):
        tmp.mkdir(mode=0o700)
    return str(tmp)
