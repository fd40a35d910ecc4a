"""The exec wrapper every native-tier agent starts through (standard library only).

    python -S -I launch.py [--join FD]... [--rlimit RES:SOFT:HARD]... [--confine KEY=VALUE]... -- PROGRAM ARG...

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

Run by path with ``-S -I``: it imports nothing from the engine or site-packages, and
nothing beyond ``os``/``resource``/``sys`` unless it confines (then the ctypes modules beside
it, loaded on demand: an unconfined launch stays one bare interpreter start).
Exit code 127 with a message on stderr when it cannot do its job; the program
never starts without its limits.
"""

from __future__ import annotations

import os
import resource
import sys

USAGE = "usage: launch.py [--join FD]... [--rlimit RES:SOFT:HARD]... [--confine KEY=VALUE]... -- PROGRAM [ARG]..."
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS, PR_CAPBSET_DROP, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 1, 38, 24, 47, 4
SIGKILL = 9


def _fail(message: str) -> None:
    sys.stderr.write(f"symbi launch: {message}\n")
    sys.stderr.flush()
    os._exit(127)


class Plan:
    """A confinement plan, from repeated ``--confine key=value`` (lists repeat the key; bools are 0/1).

    Keys: ``uid``, ``gid``, ``mount_view``, ``rx``/``ro``/``rw``/``dev`` (Landlock paths: read+exec, read,
    read-write, devices), ``binds_rw`` (paths the mount view binds back without a Landlock right),
    ``cwd``, ``network``, ``landlock`` (require|best|off), ``seccomp``, ``tmp_size_mb``.
    """

    LISTS = ("rx", "ro", "rw", "dev", "binds_rw")
    INTS = ("uid", "gid", "tmp_size_mb")
    BOOLS = ("mount_view", "network", "seccomp")

    def __init__(self) -> None:
        self.uid: int | None = None
        self.gid: int | None = None
        self.tmp_size_mb = 64
        self.mount_view = False
        self.network = False
        self.seccomp = True
        self.landlock = "require"
        self.cwd: str | None = None
        self.rx: list[str] = []
        self.ro: list[str] = []
        self.rw: list[str] = []
        self.dev: list[str] = []
        self.binds_rw: list[str] = []

    def set(self, item: str) -> None:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--confine takes KEY=VALUE, not {item!r}")
        if key in self.LISTS:
            getattr(self, key).append(value)
        elif key in self.INTS:
            setattr(self, key, int(value))
        elif key in self.BOOLS:
            setattr(self, key, value == "1")
        elif key == "landlock" and value in ("require", "best", "off"):
            self.landlock = value
        elif key == "cwd":
            self.cwd = value
        else:
            raise ValueError(f"unknown --confine key {item!r}")


def parse(args: list[str]) -> tuple[list[int], list[tuple[int, int, int]], list[str], Plan | None]:
    joins: list[int] = []
    limits: list[tuple[int, int, int]] = []
    plan: Plan | None = None
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
            plan = plan or Plan()
            plan.set(value)
        else:
            raise ValueError(f"unknown option {flag!r}")
        i += 2
    program = args[i + 1 :]
    if i >= len(args) or not program:
        raise ValueError("no program after --")
    return joins, limits, program, plan


def confine(plan: Plan) -> None:
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
    import ctypes

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the ctypes modules beside this file
    import landlock
    import mountview
    import seccomp

    libc = ctypes.CDLL(None, use_errno=True)
    parent = os.getppid()
    uid = plan.uid if plan.uid is not None else 65534
    gid = plan.gid if plan.gid is not None else uid
    if plan.mount_view:
        binds = [(p, False) for p in plan.rx + plan.ro] + [(p, True) for p in plan.rw + plan.binds_rw]
        mountview.build(binds, uid=uid, gid=gid, private_tmp=True, tmp_size_mb=plan.tmp_size_mb)
    if plan.cwd:
        os.chdir(plan.cwd)
    ruleset = None
    abi = landlock.abi_version() if plan.landlock != "off" else 0
    if abi > 0:
        ruleset = landlock.Ruleset(abi=abi, deny_tcp=not plan.network)
        for paths, rights in (
            (plan.rx, landlock.READ_ONLY),
            (plan.ro, landlock.READ_NO_EXEC),
            (plan.rw, landlock.READ_WRITE),
            (plan.dev, landlock.DEVICE_RW),
        ):
            for path in paths:
                ruleset.allow(path, rights)
    elif plan.landlock == "require":
        raise OSError(95, "Landlock is required by the plan but this kernel does not support it")
    if plan.uid is not None and os.geteuid() == 0 and uid != 0:
        _become(libc, uid, gid)
    else:
        _drop_capabilities(libc)
    # Die with the engine, as bwrap's --die-with-parent does (set after the uid change, which clears it).
    libc.prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        raise OSError(3, "the engine exited before the agent started")
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
    if ruleset is not None:
        ruleset.restrict_self()
    if plan.seccomp and seccomp.supported():
        seccomp.install(allow_network=plan.network)


def _drop_bounding_set(libc: object) -> None:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            last = int(f.read())
    except (OSError, ValueError):
        last = 40
    prctl = libc.prctl  # type: ignore[attr-defined]
    for cap in range(last + 1):
        prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)  # EPERM without CAP_SETPCAP: nothing to drop then
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)


def _drop_capabilities(libc: object) -> None:
    """Staying the same uid: empty the bounding, ambient, permitted, effective and inheritable sets."""
    import ctypes

    _drop_bounding_set(libc)
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    data = (ctypes.c_uint32 * 6)()
    if libc.capset(header, data) != 0:  # type: ignore[attr-defined]
        err = ctypes.get_errno()
        raise OSError(err, f"capset: {os.strerror(err)}")


def _become(libc: object, uid: int, gid: int) -> None:
    """Drop to ``uid``/``gid`` with no supplementary groups and no capabilities left anywhere."""
    _drop_bounding_set(libc)
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)  # from root: clears the permitted, effective and ambient sets
    if os.getuid() != uid or os.geteuid() != uid or os.getgid() != gid:
        raise OSError(1, f"still uid {os.getuid()} after setresuid({uid})")


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
