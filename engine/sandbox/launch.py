"""The exec wrapper every native-tier agent starts through (standard library only).

    python -S -I launch.py [--join FD]... [--rlimit RES:SOFT:HARD]... -- PROGRAM ARG...

It joins the agent's cgroups (writes ``0`` to each inherited ``cgroup.procs``
descriptor, then closes it), lowers its resource limits, and execs the program,
which inherits both. Why a separate process rather than ``preexec_fn``: Python
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

import os
import resource
import sys

USAGE = "usage: launch.py [--join FD]... [--rlimit RES:SOFT:HARD]... -- PROGRAM [ARG]..."


def _fail(message: str) -> None:
    sys.stderr.write(f"symbi launch: {message}\n")
    sys.stderr.flush()
    os._exit(127)


def parse(args: list[str]) -> tuple[list[int], list[tuple[int, int, int]], list[str]]:
    joins: list[int] = []
    limits: list[tuple[int, int, int]] = []
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
        else:
            raise ValueError(f"unknown option {flag!r}")
        i += 2
    program = args[i + 1 :]
    if i >= len(args) or not program:
        raise ValueError("no program after --")
    return joins, limits, program


def main(argv: list[str]) -> None:
    try:
        joins, limits, program = parse(argv)
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
    try:
        os.execv(program[0], program)
    except OSError as exc:
        _fail(f"could not start {program[0]}: {exc.strerror}")


if __name__ == "__main__":
    main(sys.argv[1:])
