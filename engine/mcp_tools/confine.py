"""Stdio MCP servers confined with bubblewrap (``[[mcp.servers]] sandbox = true``).

A tool server is code the operator did not write, reached by agents' calls.
Confined, it runs in new PID, IPC, UTS and network namespaces (the network is
kept only with ``network = true``), dies with the engine, and sees a fresh
root with only the system directories, its interpreter (and the virtualenv it
runs from), the files named on its command line, its ``cwd`` and the
``paths`` given, all read-only, plus ``writable_paths`` read-write and a
fresh ``/tmp``. Not the data dir, not the key files, not the rest of the
home directory. Run by root, capabilities are dropped (``--cap-drop ALL``);
run by anyone else, bwrap adds a user namespace.

Without bubblewrap a confined server is refused (``SANDBOX_001``): never a
silent run without the sandbox.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from engine.errors import ErrorCode, SymbiError
from engine.sandbox.bwrap import MountBuilder


def _install_prefix(command: str) -> list[str]:
    """What a program needs from outside the system dirs: for an interpreter, its install prefix
    (``bin/..``) and the virtualenv it belongs to (the directory holding ``pyvenv.cfg``)."""
    found = shutil.which(command) or command
    out: list[str] = []
    link = Path(os.path.abspath(found))
    venv = link.parent.parent
    if (venv / "pyvenv.cfg").is_file():
        out.append(str(venv))
    real = Path(os.path.realpath(found))
    out.append(str(real.parent.parent))
    return out


def confined_argv(
    command: str,
    args: list[str],
    *,
    cwd: str | None = None,
    paths: list[str] | None = None,
    writable_paths: list[str] | None = None,
    network: bool = False,
    bwrap: str | None = None,
    as_root: bool | None = None,
) -> list[str]:
    """``bwrap ... -- command args`` for a confined stdio MCP server."""
    bwrap = bwrap or shutil.which("bwrap")
    if not bwrap:
        raise SymbiError(
            ErrorCode.SANDBOX_001,
            "this MCP server is configured with sandbox = true, but bubblewrap (bwrap) is not installed",
            offending=command,
            hint="install bubblewrap (see `symbiont sandbox doctor`) or set sandbox = false for this server",
        )
    as_root = os.geteuid() == 0 if as_root is None else as_root
    argv = [bwrap, "--die-with-parent", "--new-session"]
    if as_root:
        argv += ["--unshare-ipc", "--unshare-pid", "--unshare-uts", "--unshare-cgroup-try"]
        if not network:
            argv.append("--unshare-net")
        argv += ["--cap-drop", "ALL"]
    else:
        argv += ["--unshare-all", "--disable-userns", "--cap-drop", "ALL"]
        if network:
            argv.append("--share-net")
    b = MountBuilder()
    b.system_dirs()
    b.special("--proc", "/proc")
    b.special("--dev", "/dev")
    b.special("--tmpfs", "/tmp")
    writable = [os.path.abspath(p) for p in writable_paths or []]
    readable = _install_prefix(command)
    readable += [os.path.abspath(a) for a in args if not a.startswith("-") and os.path.exists(a)]
    readable += [os.path.abspath(p) for p in paths or []]
    if cwd:
        readable.append(os.path.abspath(cwd))
    for path in writable:
        if not os.path.isdir(path) and not os.path.isfile(path):
            raise SymbiError(ErrorCode.CONFIG_001, f"writable path {path} of a sandboxed MCP server does not exist",
                             offending=path, hint="create it or fix [[mcp.servers]] writable_paths")

    def under(path: str, roots: list[str]) -> bool:
        return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)

    # read-only first, shortest first (a parent covers its children); the writable binds go on top
    for path in sorted(set(readable), key=len):
        if under(path, writable) or b.inside_mount(path) or not os.path.exists(path):
            continue
        b.mount("--ro-bind", path, path)
    for path in sorted(set(writable), key=len):
        if not under(path, [w for w in writable if w != path]):
            b.mount("--bind", path, path)
    argv += b.args
    if cwd:
        argv += ["--chdir", os.path.abspath(cwd)]
    return [*argv, "--", command, *args]


def describe_confinement(config: Any) -> str:
    """One line for logs and the review queue: what the server may reach."""
    if not getattr(config, "sandbox", False):
        return "not sandboxed"
    net = "network" if getattr(config, "network", False) else "no network"
    rw = ", ".join(getattr(config, "writable_paths", []) or []) or "nothing"
    return f"bubblewrap, {net}, writable: {rw}"
