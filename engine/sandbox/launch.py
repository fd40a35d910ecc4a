"""The exec wrapper every native-tier agent starts through (standard library only).

    python -S -I launch.py [--join FD]... [--rlimit RES:SOFT:HARD]... [--confine JSON] -- PROGRAM ARG...

It joins the agent's cgroups (writes ``0`` to each inherited ``cgroup.procs``
descriptor, then closes it), lowers its resource limits, confines itself when
``--confine`` carries a plan (see :func:`confine`), and execs the program,
which inherits all of it. Why a separate process rather than ``preexec_fn``: Python
code between fork and exec in a threaded engine is unsafe (the subprocess docs
say so), and libraries register fork hooks that run there (LanceDB resets its
async runtime in the child and warns of a deadlock risk). Without a
``preexec_fn`` the engine's launch is a plain fork/exec (vfork on Linux) that
runs no Python in the child; the wrapper costs one interpreter start (~10 ms)
in a fresh, single-threaded process.

Run by path with ``-S -I``: it imports nothing from the engine or site-packages.
Exit code 127 with a message on stderr when it cannot do its job; the program
never starts without its limits.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the ctypes modules beside this file

import landlock  # noqa: E402
import mountview  # noqa: E402
import seccomp  # noqa: E402

USAGE = "usage: launch.py [--join FD]... [--rlimit RES:SOFT:HARD]... [--confine JSON] -- PROGRAM [ARG]..."
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS, PR_CAPBSET_DROP, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 1, 38, 24, 47, 4


def _fail(message: str) -> None:
    sys.stderr.write(f"symbi launch: {message}\n")
    sys.stderr.flush()
    os._exit(127)


def parse(args: list[str]) -> tuple[list[int], list[tuple[int, int, int]], list[str], dict[str, Any] | None]:
    joins: list[int] = []
    limits: list[tuple[int, int, int]] = []
    plan: dict[str, Any] | None = None
    i = 0
    while i < len(args) and args[i] != "--":
        flag = args[i]
        if i + 1 >= len(args):
            raise ValueError(f"{flag} needs a value")
        value = args[i + 1]
        if flag == "--join":
            joins.append(int(value))
        elif flag == "--rlimit":
            res, soft, hard = (int(x) for x in value.split(":"))
            limits.append((res, soft, hard))
        elif flag == "--confine":
            plan = json.loads(value)
        else:
            raise ValueError(f"unknown option {flag!r}")
        i += 2
    program = args[i + 1 :]
    if i >= len(args) or not program:
        raise ValueError("no program after --")
    return joins, limits, program, plan


def _drop_bounding_set(libc: ctypes.CDLL) -> None:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            last = int(f.read())
    except (OSError, ValueError):
        last = 40
    for cap in range(last + 1):
        libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)  # EPERM without CAP_SETPCAP: nothing to drop then
    libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)


def _drop_capabilities() -> None:
    """Staying the same uid: empty the bounding, ambient, permitted, effective and inheritable sets."""
    libc = ctypes.CDLL(None, use_errno=True)
    _drop_bounding_set(libc)
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    data = (ctypes.c_uint32 * 6)()
    if libc.capset(header, data) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"capset: {os.strerror(err)}")


def _become(uid: int, gid: int) -> None:
    """Drop to ``uid``/``gid`` with no supplementary groups and no capabilities left anywhere."""
    _drop_bounding_set(ctypes.CDLL(None, use_errno=True))
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)  # from root: clears the permitted, effective and ambient sets
    if os.getuid() != uid or os.geteuid() != uid or os.getgid() != gid:
        raise OSError(1, f"still uid {os.getuid()} after setresuid({uid})")


def confine(plan: dict[str, Any]) -> None:
    """Apply a confinement plan to this process before exec, in the only safe order.

    1. as root, a private mount view (:mod:`mountview`) when the plan drops to another uid;
    2. the Landlock ruleset built while every path is still reachable: ``rx`` read+execute,
       ``ro`` read, ``rw`` read-write (no execute), ``dev`` device files; TCP denied
       without ``network``; signals and abstract sockets scoped;
    3. the uid/gid change (or, staying the same uid, every capability dropped);
    4. the parent-death signal (the agent dies with the engine), no_new_privs, then Landlock
       enforced, then the seccomp filter.
    A step the plan requires that fails ends the launch (exit 127): the agent never runs looser.
    """
    uid, gid = plan.get("uid"), plan.get("gid")
    parent = os.getppid()
    if plan.get("mount_view"):
        binds = [(p, False) for p in plan.get("rx", []) + plan.get("ro", [])] + [(p, True) for p in plan.get("rw", [])]
        binds += [(p, True) for p in plan.get("binds_rw", [])]
        mountview.build(
            binds,
            uid=int(uid if uid is not None else 65534),
            gid=int(gid if gid is not None else 65534),
            private_tmp=True,
            tmp_size_mb=int(plan.get("tmp_size_mb", 64)),
        )
    if plan.get("cwd"):
        os.chdir(plan["cwd"])
    ruleset = None
    mode = plan.get("landlock", "require")
    abi = landlock.abi_version() if mode != "off" else 0
    if abi > 0:
        ruleset = landlock.Ruleset(abi=abi, deny_tcp=not plan.get("network", False))
        for path in plan.get("rx", []):
            ruleset.allow(path, landlock.READ_ONLY)
        for path in plan.get("ro", []):
            ruleset.allow(path, landlock.READ_NO_EXEC)
        for path in plan.get("rw", []):
            ruleset.allow(path, landlock.READ_WRITE)
        for path in plan.get("dev", []):
            ruleset.allow(path, landlock.DEVICE_RW)
    elif mode == "require":
        raise OSError(95, "Landlock is required by the plan but this kernel does not support it")
    if uid is not None and os.geteuid() == 0 and int(uid) != 0:
        _become(int(uid), int(gid if gid is not None else uid))
    else:
        _drop_capabilities()
    libc = ctypes.CDLL(None, use_errno=True)
    # Die with the engine, as bwrap's --die-with-parent does (set after the uid change, which clears it).
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        raise OSError(3, "the engine exited before the agent started")
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
    if ruleset is not None:
        ruleset.restrict_self()
    if plan.get("seccomp", True) and seccomp.supported():
        seccomp.install(allow_network=bool(plan.get("network", False)))


def main(argv: list[str]) -> None:
    try:
        joins, limits, program, plan = parse(argv)
    except ValueError as exc:
        _fail(f"{exc}; {USAGE}")
        return
    try:
        for fd in joins:
            os.write(fd, b"0")
            os.close(fd)
        for res, soft, hard in limits:
            resource.setrlimit(res, (soft, hard))
    except OSError as exc:
        _fail(f"could not apply the sandbox limits: {exc}")
    if plan is not None:
        try:
            confine(plan)
        except OSError as exc:
            _fail(f"could not confine the agent: {exc.strerror or exc}")
    try:
        os.execv(program[0], program)
    except OSError as exc:
        _fail(f"could not start {program[0]}: {exc.strerror}")


if __name__ == "__main__":
    main(sys.argv[1:])
