"""A seccomp-BPF filter for agents, built by hand (standard library only; the launcher imports it by path).

It refuses, with EPERM, the system calls an agent never needs and that
widen the kernel's attack surface or reach outside the sandbox: tracing
other processes (ptrace, process_vm_*, kcmp, pidfd_getfd), mounting and
namespaces (mount, umount2, pivot_root, chroot, the new mount API, unshare,
setns, and clone with any CLONE_NEW* flag), kernel keys (add_key,
request_key, keyctl), bpf, perf_event_open, userfaultfd, io_uring (it would
bypass this filter), module loading and kexec, reboot, swap, the clock,
quotas, syslog, open_by_handle_at (the "shocker" escape) and the like.
``clone3`` answers ENOSYS so the C library falls back to ``clone``, whose
flags a filter can see. Without the Network capability, ``socket()`` is
refused for every family but AF_UNIX (Landlock has no rule for UDP).

Only x86-64 is supported (numbers checked on this machine); elsewhere
:func:`supported` is False and the launcher applies no filter (the doctor
says so). A call from another ABI (i386, x32) is refused outright.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct

AUDIT_ARCH_X86_64 = 0xC000003E
X32_BIT = 0x40000000

# x86-64 numbers (arch/x86/entry/syscalls/syscall_64.tbl)
DENIED_X86_64 = {
    "ptrace": 101,
    "syslog": 103,
    "uselib": 134,
    "personality": 135,
    "vhangup": 153,
    "pivot_root": 155,
    "_sysctl": 156,
    "adjtimex": 159,
    "chroot": 161,
    "acct": 163,
    "settimeofday": 164,
    "mount": 165,
    "umount2": 166,
    "swapon": 167,
    "swapoff": 168,
    "reboot": 169,
    "sethostname": 170,
    "setdomainname": 171,
    "iopl": 172,
    "ioperm": 173,
    "create_module": 174,
    "init_module": 175,
    "delete_module": 176,
    "quotactl": 179,
    "lookup_dcookie": 212,
    "clock_settime": 227,
    "kexec_load": 246,
    "add_key": 248,
    "request_key": 249,
    "keyctl": 250,
    "unshare": 272,
    "move_pages": 279,
    "perf_event_open": 298,
    "fanotify_init": 300,
    "name_to_handle_at": 303,
    "open_by_handle_at": 304,
    "clock_adjtime": 305,
    "setns": 308,
    "process_vm_readv": 310,
    "process_vm_writev": 311,
    "kcmp": 312,
    "finit_module": 313,
    "kexec_file_load": 320,
    "bpf": 321,
    "userfaultfd": 323,
    "io_uring_setup": 425,
    "io_uring_enter": 426,
    "io_uring_register": 427,
    "open_tree": 428,
    "move_mount": 429,
    "fsopen": 430,
    "fsconfig": 431,
    "fsmount": 432,
    "fspick": 433,
    "pidfd_getfd": 438,
    "mount_setattr": 442,
    "quotactl_fd": 443,
}
NR_CLONE, NR_CLONE3, NR_SOCKET = 56, 435, 41
PERSONALITY_QUERY = 0xFFFFFFFF  # personality(0xffffffff) only reads the persona: allowed (Python calls it)
CLONE_NEW_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000 | 0x80
AF_UNIX = 1

# BPF opcodes and seccomp return values
LD_W_ABS = 0x20
JEQ_K = 0x15
JGE_K = 0x35
JSET_K = 0x45
RET_K = 0x06
RET_ALLOW = 0x7FFF0000
RET_ERRNO = 0x00050000
RET_KILL_PROCESS = 0x80000000
OFF_NR, OFF_ARCH, OFF_ARG0 = 0, 4, 16  # struct seccomp_data; arg0's low 32 bits (little endian)
PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2


def supported() -> bool:
    return os.uname().machine == "x86_64"


def describe() -> str:
    if not supported():
        return f"seccomp filter not applied: only x86-64 is supported (this is {os.uname().machine})"
    return f"seccomp filter: {len(DENIED_X86_64) + 2} system calls refused (ptrace, mount, bpf, keyctl, kexec, ...)"


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("<HBBI", code, jt, jf, k & 0xFFFFFFFF)


def program(*, allow_network: bool) -> bytes:
    """The filter as raw ``struct sock_filter`` instructions."""
    deny = RET_ERRNO | errno.EPERM
    out = [
        _insn(LD_W_ABS, 0, 0, OFF_ARCH),
        _insn(JEQ_K, 1, 0, AUDIT_ARCH_X86_64),
        _insn(RET_K, 0, 0, RET_KILL_PROCESS),
        _insn(LD_W_ABS, 0, 0, OFF_NR),
        _insn(JGE_K, 0, 1, X32_BIT),
        _insn(RET_K, 0, 0, deny),
    ]
    for name, nr in sorted(DENIED_X86_64.items(), key=lambda kv: kv[1]):
        if name == "personality":
            # allowed only as a query: load arg0, compare, reload nr
            out += [
                _insn(JEQ_K, 0, 4, nr),
                _insn(LD_W_ABS, 0, 0, OFF_ARG0),
                _insn(JEQ_K, 0, 1, PERSONALITY_QUERY),
                _insn(RET_K, 0, 0, RET_ALLOW),
                _insn(RET_K, 0, 0, deny),
            ]
            continue
        out += [_insn(JEQ_K, 0, 1, nr), _insn(RET_K, 0, 0, deny)]
    out += [_insn(JEQ_K, 0, 1, NR_CLONE3), _insn(RET_K, 0, 0, RET_ERRNO | errno.ENOSYS)]
    out += [
        _insn(JEQ_K, 0, 4, NR_CLONE),
        _insn(LD_W_ABS, 0, 0, OFF_ARG0),
        _insn(JSET_K, 0, 1, CLONE_NEW_FLAGS),
        _insn(RET_K, 0, 0, deny),
        _insn(RET_K, 0, 0, RET_ALLOW),
    ]
    if not allow_network:
        out += [
            _insn(JEQ_K, 0, 4, NR_SOCKET),
            _insn(LD_W_ABS, 0, 0, OFF_ARG0),
            _insn(JEQ_K, 1, 0, AF_UNIX),
            _insn(RET_K, 0, 0, RET_ERRNO | errno.EACCES),
            _insn(RET_K, 0, 0, RET_ALLOW),
        ]
    out.append(_insn(RET_K, 0, 0, RET_ALLOW))
    return b"".join(out)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install(*, allow_network: bool) -> int:
    """Install the filter on this process (inherited across fork and exec); returns its length.

    Sets no_new_privs first (required for an unprivileged filter). Raises OSError on failure.
    """
    code = program(allow_network=allow_network)
    buf = ctypes.create_string_buffer(code, len(code))
    prog = _SockFprog(len(code) // 8, ctypes.cast(buf, ctypes.c_void_p))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl(PR_SET_NO_NEW_PRIVS): {errno.errorcode.get(err, err)}")
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl(PR_SET_SECCOMP): {errno.errorcode.get(err, err)}")
    return len(code) // 8
