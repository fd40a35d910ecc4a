"""Landlock through ctypes: what the kernel supports, and a ruleset to restrict a process with.

Standard library only: the launcher (:mod:`engine.sandbox.launch`) imports
this module by path, with ``-S -I``, in the fresh process that execs an
agent. Landlock restricts the calling thread and every process it execs or
forks afterwards; it needs ``no_new_privs`` (or CAP_SYS_ADMIN) to apply.

What each ABI adds (kernel version): 1 (5.13) file access rights; 2 (5.19)
REFER (link/rename across dirs); 3 (6.2) TRUNCATE; 4 (6.7) TCP bind and
connect by port; 5 (6.10) IOCTL_DEV; 6 (6.12) scoping of abstract Unix
sockets and signals to the sandbox's own domain; 7 (6.15) audit logging.

Not covered by any ABI, so handled elsewhere: UDP and raw sockets (the
seccomp filter refuses non-Unix sockets), connecting to a Unix socket by path
(the agent protocol authenticates every connection with a per-launch token),
and path traversal itself (directory search is not a Landlock right).
"""

from __future__ import annotations

import ctypes
import os
import stat
import struct

SYS_CREATE_RULESET, SYS_ADD_RULE, SYS_RESTRICT_SELF = 444, 445, 446  # the same on every architecture
CREATE_RULESET_VERSION = 1 << 0
RULE_PATH_BENEATH, RULE_NET_PORT = 1, 2

# Filesystem rights
EXECUTE = 1 << 0
WRITE_FILE = 1 << 1
READ_FILE = 1 << 2
READ_DIR = 1 << 3
REMOVE_DIR = 1 << 4
REMOVE_FILE = 1 << 5
MAKE_CHAR = 1 << 6
MAKE_DIR = 1 << 7
MAKE_REG = 1 << 8
MAKE_SOCK = 1 << 9
MAKE_FIFO = 1 << 10
MAKE_BLOCK = 1 << 11
MAKE_SYM = 1 << 12
REFER = 1 << 13  # ABI 2
TRUNCATE = 1 << 14  # ABI 3
IOCTL_DEV = 1 << 15  # ABI 5

# Network rights (ABI 4) and scopes (ABI 6)
BIND_TCP = 1 << 0
CONNECT_TCP = 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0
SCOPE_SIGNAL = 1 << 1

FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV  # the only rights a rule on a file may carry
READ_ONLY = EXECUTE | READ_FILE | READ_DIR
READ_NO_EXEC = READ_FILE | READ_DIR
READ_WRITE = (
    READ_FILE
    | READ_DIR
    | WRITE_FILE
    | REMOVE_DIR
    | REMOVE_FILE
    | MAKE_DIR
    | MAKE_REG
    | MAKE_SOCK
    | MAKE_FIFO
    | MAKE_SYM
    | REFER
    | TRUNCATE
)
DEVICE_RW = READ_FILE | WRITE_FILE | TRUNCATE | IOCTL_DEV  # /dev/null and friends


def fs_rights_for(abi: int) -> int:
    """Every filesystem right the kernel's ABI knows: all of them are handled (denied unless granted)."""
    rights = (1 << 13) - 1
    if abi >= 2:
        rights |= REFER
    if abi >= 3:
        rights |= TRUNCATE
    if abi >= 5:
        rights |= IOCTL_DEV
    return rights


class LandlockError(OSError):
    """A Landlock call failed; ``str()`` says which and why."""


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


def _fail(what: str) -> LandlockError:
    err = ctypes.get_errno()
    return LandlockError(err, f"{what}: {os.strerror(err)}")


def abi_version() -> int:
    """The Landlock ABI of the running kernel; 0 when it is absent or disabled (EOPNOTSUPP / ENOSYS)."""
    try:
        libc = _libc()
    except OSError:
        return 0
    abi = libc.syscall(SYS_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(CREATE_RULESET_VERSION))
    return int(abi) if abi > 0 else 0


def describe(abi: int) -> str:
    """One line on what the native tier gets from this ABI."""
    if abi <= 0:
        return "Landlock unavailable (kernel older than 5.13, or the LSM is not enabled: add landlock to lsm=)"
    parts = ["files"]
    parts.append("TCP bind/connect" if abi >= 4 else "no TCP rules (ABI < 4)")
    parts.append("signals and abstract sockets scoped" if abi >= 6 else "no signal scoping (ABI < 6)")
    return f"Landlock ABI {abi}: " + ", ".join(parts)


class Ruleset:
    """A Landlock ruleset being built: ``allow(path, rights)``, ``allow_port``, then ``restrict_self()``.

    Every right of the ABI is handled, so anything not allowed is denied. A
    path that does not exist is skipped (a system dir this machine lacks).
    """

    def __init__(self, *, abi: int, deny_tcp: bool, scope: bool = True) -> None:
        if abi <= 0:
            raise LandlockError(95, "Landlock is not supported by this kernel")
        self.abi = abi
        self.fs = fs_rights_for(abi)
        self.net = (BIND_TCP | CONNECT_TCP) if deny_tcp and abi >= 4 else 0
        self.scoped = (SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL) if scope and abi >= 6 else 0
        self._libc = _libc()
        size = 24 if abi >= 6 else 16 if abi >= 4 else 8
        attr = struct.pack("<QQQ", self.fs, self.net, self.scoped)[:size]
        buf = ctypes.create_string_buffer(attr, size)
        fd = self._libc.syscall(SYS_CREATE_RULESET, buf, ctypes.c_size_t(size), ctypes.c_uint32(0))
        if fd < 0:
            raise _fail("landlock_create_ruleset")
        self.fd = int(fd)
        self.rules: list[tuple[str, int]] = []

    def allow(self, path: str, rights: int) -> bool:
        """Grant ``rights`` beneath ``path`` (a directory) or on it (a file); False if it does not exist."""
        try:
            pfd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except FileNotFoundError:
            return False
        try:
            is_dir = stat.S_ISDIR(os.fstat(pfd).st_mode)
            granted = rights & self.fs
            if not is_dir:
                granted &= FILE_RIGHTS
            if not granted:
                return False
            attr = struct.pack("<Qi", granted, pfd)  # struct landlock_path_beneath_attr is packed: 12 bytes
            buf = ctypes.create_string_buffer(attr, len(attr))
            if self._libc.syscall(SYS_ADD_RULE, ctypes.c_int(self.fd), ctypes.c_int(RULE_PATH_BENEATH), buf, 0) < 0:
                raise _fail(f"landlock_add_rule({path})")
            self.rules.append((path, granted))
            return True
        finally:
            os.close(pfd)

    def allow_port(self, port: int, rights: int) -> None:
        if not self.net:
            return
        buf = ctypes.create_string_buffer(struct.pack("<QQ", rights & self.net, port), 16)
        if self._libc.syscall(SYS_ADD_RULE, ctypes.c_int(self.fd), ctypes.c_int(RULE_NET_PORT), buf, 0) < 0:
            raise _fail(f"landlock_add_rule(port {port})")

    def restrict_self(self) -> None:
        """Enforce the ruleset on this process and what it execs (needs no_new_privs first)."""
        try:
            if self._libc.syscall(SYS_RESTRICT_SELF, ctypes.c_int(self.fd), ctypes.c_uint32(0)) < 0:
                raise _fail("landlock_restrict_self")
        finally:
            os.close(self.fd)
