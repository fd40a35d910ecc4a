"""Bubblewrap command lines for the native tier, and a probe that bwrap works here.

The sandbox an agent gets (:func:`bwrap_argv`):

* a fresh root holding only what the interpreter needs, read-only: ``/usr``,
  ``/etc``, ``/bin``, ``/sbin``, ``/lib*`` (kept as the symlinks they are on
  merged-/usr systems) and the Python install (``sys.base_prefix``) when it
  lives elsewhere. Not the whole ``/``: the data dir, other agents'
  workspaces and key files do not exist inside;
* its workspace read-write (also its cwd and ``HOME``), the RPC dir
  read-write, the SDK dir and the program read-only, all at their host
  paths; a fresh ``/tmp`` (tmpfs), a new ``/proc`` and a minimal ``/dev``;
* new PID, IPC, UTS, cgroup and network namespaces (the network one is
  skipped only with the Network capability), a new session (no terminal
  injection), and ``--die-with-parent``: when the engine dies, bwrap dies,
  and with it the PID namespace and every process in it;
* uid/gid 65534 (nobody). Run by root, bwrap keeps only CAP_SETUID,
  CAP_SETGID and CAP_SETPCAP and execs ``setpriv``, which drops to the real
  host uid 65534 with no capabilities, no supplementary groups and
  no_new_privs, then execs Python. (A user namespace would instead map uid
  65534 inside to root outside, and root-owned files such as /etc/shadow
  would stay readable through the owner bits.) Run by anyone else, bwrap
  makes a user namespace (``--unshare-all --uid 65534``) and forbids nested
  ones.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from engine.agents.executor import LaunchSpec
from engine.sandbox.environment import SANDBOX_GID, SANDBOX_UID

SYSTEM_DIRS = ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
ROOT_CAPS = ("CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP")


@dataclass(frozen=True)
class BwrapStatus:
    available: bool
    version: str
    detail: str
    fix: str | None = None


def base_python() -> str:
    """The base interpreter (not the venv's), so agents never see the engine's packages."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (Path(sys.base_prefix) / "bin" / version, Path(sys.base_prefix) / "bin" / "python3"):
        if candidate.exists():
            return str(candidate)
    return os.path.realpath(sys.executable)


class _Builder:
    """Accumulates bwrap mount arguments, creating each destination's parents
    as world-searchable directories (bwrap would copy the host's modes, and
    /root is 0700)."""

    def __init__(self) -> None:
        self.args: list[str] = []
        self.made: set[str] = {"/"}
        self.mounted: list[str] = []  # host binds: never create directories inside them (they are the host's)

    def _inside_mount(self, path: str) -> bool:
        return any(path == m or path.startswith(m.rstrip("/") + "/") for m in self.mounted)

    def parents(self, dest: str) -> None:
        for parent in reversed(PurePosixPath(dest).parents):
            p = str(parent)
            if p in self.made or self._inside_mount(p):
                continue
            self.args += ["--perms", "0755", "--dir", p]
            self.made.add(p)

    def mount(self, kind: str, src: str, dest: str) -> None:
        self.parents(dest)
        self.args += [kind, src, dest]
        self.made.add(dest)
        self.mounted.append(dest)

    def special(self, kind: str, dest: str) -> None:
        """A tmpfs, proc or dev: directories may still be made inside it."""
        self.parents(dest)
        self.args += [kind, dest]
        self.made.add(dest)

    def symlink(self, target: str, dest: str) -> None:
        self.args += ["--symlink", target, dest]
        self.made.add(dest)

    def system_dirs(self) -> None:
        """The host's system directories, read-only (merged-/usr symlinks kept as symlinks)."""
        for path in SYSTEM_DIRS:
            if os.path.islink(path):
                self.symlink(os.readlink(path), path)
            elif os.path.isdir(path):
                self.mount("--ro-bind", path, path)


class MountBuilder(_Builder):
    """The mount-argument builder, for other confined processes (MCP tool servers)."""

    def inside_mount(self, path: str) -> bool:
        return self._inside_mount(path)


def bwrap_argv(
    spec: LaunchSpec,
    *,
    python: str,
    bwrap: str = "bwrap",
    setpriv: str | None = None,
    as_root: bool | None = None,
    seccomp_fd: int | None = None,
) -> list[str]:
    """The full argv (bwrap ... -- [setpriv ...] python -s -P program); ``seccomp_fd`` holds a BPF
    program bwrap installs just before it execs (inherited by the agent)."""
    as_root = os.geteuid() == 0 if as_root is None else as_root
    argv = [bwrap, "--die-with-parent", "--new-session"]
    if seccomp_fd is not None:
        argv += ["--seccomp", str(seccomp_fd)]
    if as_root:
        argv += ["--unshare-ipc", "--unshare-pid", "--unshare-uts", "--unshare-cgroup-try"]
        if not spec.has_network:
            argv.append("--unshare-net")
        argv += ["--cap-drop", "ALL"]
        for cap in ROOT_CAPS:
            argv += ["--cap-add", cap]
    else:
        argv += ["--unshare-all", "--unshare-user", "--disable-userns"]
        argv += ["--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_GID), "--cap-drop", "ALL"]
        if spec.has_network:
            argv.append("--share-net")
    b = _Builder()
    b.system_dirs()
    python_real = os.path.realpath(python)
    prefix = str(Path(python_real).parent.parent)  # sys.base_prefix for the default interpreter
    if not b._inside_mount(prefix):
        b.mount("--ro-bind", prefix, prefix)
    b.special("--proc", "/proc")
    b.special("--dev", "/dev")
    b.special("--tmpfs", "/tmp")
    workspace = str(spec.workspace)
    b.mount("--bind", workspace, workspace)
    if spec.rpc_dir is not None:
        b.mount("--bind", str(spec.rpc_dir), str(spec.rpc_dir))
    if spec.sdk_dir is not None:
        b.mount("--ro-bind", str(spec.sdk_dir), str(spec.sdk_dir))
    program = str(spec.program)
    b.mount("--ro-bind", program, program)  # also over a copy inside the workspace: the agent cannot rewrite it
    argv += b.args
    argv += ["--hostname", "symbi-agent", "--chdir", workspace, "--"]
    if as_root:
        argv += [
            setpriv or "setpriv",
            "--reuid",
            str(SANDBOX_UID),
            "--regid",
            str(SANDBOX_GID),
            "--clear-groups",
            "--no-new-privs",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--",
        ]
    argv += [python_real, "-s", "-P", program]
    return argv


def probe(bwrap: str = "bwrap") -> BwrapStatus:
    """Does bwrap exist and can it make namespaces here? (~10 ms)."""
    path = shutil.which(bwrap)
    if path is None:
        return BwrapStatus(False, "", f"{bwrap!r} not found on PATH", "install bubblewrap: apt-get install bubblewrap")
    try:
        version = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        return BwrapStatus(False, "", f"{path} does not run: {exc}", "reinstall bubblewrap")
    as_root = os.geteuid() == 0
    setpriv = shutil.which("setpriv")
    if as_root and setpriv is None:
        return BwrapStatus(
            False, version, "setpriv not found (needed to drop to uid 65534)", "install util-linux (setpriv)"
        )
    args = [path, "--die-with-parent", "--unshare-pid", "--unshare-net", "--unshare-ipc"]
    if not as_root:
        args += ["--unshare-user"]
    b = _Builder()
    for sysdir in ("/usr", "/bin", "/lib", "/lib64"):
        if os.path.islink(sysdir):
            b.symlink(os.readlink(sysdir), sysdir)
        elif os.path.isdir(sysdir):
            b.mount("--ro-bind", sysdir, sysdir)
    args += b.args + ["--proc", "/proc", "--dev", "/dev", "--"]
    args += (
        [setpriv, "--reuid", str(SANDBOX_UID), "--regid", str(SANDBOX_GID), "--clear-groups", "--"]
        if as_root and setpriv is not None  # (as root, a missing setpriv returned above)
        else []
    )
    args += ["true"]
    try:
        result = subprocess.run(args, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError) as exc:
        return BwrapStatus(False, version, f"{version} failed to start: {exc}", None)
    if result.returncode != 0:
        why = (result.stderr.strip().splitlines() or [f"exit {result.returncode}"])[-1]
        fix = (
            "allow unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1) or run the engine as root"
            if not as_root
            else "run the engine where namespaces may be created (not inside a restricted container)"
        )
        return BwrapStatus(False, version, f"{version} cannot create namespaces here: {why}", fix)
    mode = "as root, agent drops to uid 65534 via setpriv" if as_root else "user namespace, uid 65534 inside"
    return BwrapStatus(True, version, f"{version}: pid/net/ipc/uts namespaces, read-only system, {mode}")
