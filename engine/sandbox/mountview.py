"""A private mount view for a native agent that runs as another uid (standard library only).

When the engine is root, a native agent drops to uid 65534. The paths it
needs (its workspace and program inside the 0700 data dir, an interpreter
under a 0700 home, its protocol socket) may then sit behind directories it
cannot search. In a new mount namespace of its own, the launcher covers the
first such directory on each path with an empty tmpfs and binds back only
what the agent needs, at the same path. What was covered (the data dir with
its keys and databases, root's home) simply does not exist for the agent.
``/tmp`` is always replaced by a private tmpfs. Nothing changes in the
engine's own namespace: propagation is made private before any mount.

Uses ``unshare(CLONE_NEWNS)`` and ``mount(2)`` through ctypes: needs
CAP_SYS_ADMIN, which a root engine has (a restricted container may not; the
doctor probes it).
"""

from __future__ import annotations

import ctypes
import os
import stat
from collections.abc import Iterable

CLONE_NEWNS = 0x00020000
MS_RDONLY, MS_NOSUID, MS_NODEV = 0x1, 0x2, 0x4
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 0x20, 0x1000, 0x4000, 0x40000


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(src: str | None, dest: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = [None if v is None else v.encode() for v in (src, dest, fstype, data)]
    _check(_libc().mount(enc[0], enc[1], enc[2], ctypes.c_ulong(flags), enc[3]), f"mount {dest}")


def searchable_by(path: str, uid: int, gid: int) -> bool:
    """Can ``uid``/``gid`` (no supplementary groups, no capabilities) search directory ``path``?"""
    st = os.stat(path)
    if st.st_uid == uid:
        return bool(st.st_mode & stat.S_IXUSR)
    if st.st_gid == gid:
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)


def _ancestors(path: str) -> list[str]:
    parts = path.strip("/").split("/")
    return ["/" + "/".join(parts[:i]) for i in range(1, len(parts))]


def covers_for(paths: Iterable[str], uid: int, gid: int, always: Iterable[str] = ()) -> list[str]:
    """The directories to cover: the first unsearchable ancestor of each path, plus ``always``; none nested."""
    found = {os.path.normpath(a) for a in always}
    for path in paths:
        for anc in _ancestors(path):
            if not searchable_by(anc, uid, gid):
                found.add(anc)
                break
    ordered = sorted(found, key=lambda p: (p.count("/"), p))
    out: list[str] = []
    for c in ordered:
        if not any(c == o or c.startswith(o.rstrip("/") + "/") for o in out):
            out.append(c)
    return out


def _under(path: str, roots: Iterable[str]) -> bool:
    return any(path.startswith(r.rstrip("/") + "/") for r in roots)


def build(
    binds: list[tuple[str, bool]],
    *,
    uid: int,
    gid: int,
    private_tmp: bool,
    tmp_size_mb: int,
) -> list[str]:
    """Enter a new mount namespace and build the view; ``binds`` are (path, writable). Returns the covers.

    Must run before privileges are dropped (needs CAP_SYS_ADMIN) and before
    Landlock (a Landlock domain forbids mounting).
    """
    paths = [os.path.normpath(p) for p, _ in binds]
    covers = covers_for(paths, uid, gid, always=["/tmp"] if private_tmp else [])
    libc = _libc()
    _check(libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    # Hold every path we will bind back open before anything is covered (opened in the new namespace:
    # a bind's source must be a mount of the caller's own namespace).
    held: list[tuple[str, bool, int, bool]] = []
    for (_, writable), norm in zip(binds, paths, strict=True):
        if not _under(norm, covers):
            continue
        try:
            fd = os.open(norm, os.O_PATH | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        held.append((norm, writable, fd, stat.S_ISDIR(os.fstat(fd).st_mode)))
    for cover in covers:
        if cover == "/tmp":
            _mount("tmpfs", cover, "tmpfs", MS_NOSUID | MS_NODEV, f"mode=1777,size={tmp_size_mb}m")
        else:
            _mount("tmpfs", cover, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=64k,nr_inodes=4096")
    bound: list[str] = []
    for path, writable, fd, is_dir in sorted(held, key=lambda h: h[0]):
        try:
            if _under(path, bound) or path in bound:
                continue  # already visible through a bind above it
            os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
            if is_dir:
                os.makedirs(path, mode=0o755, exist_ok=True)
            elif not os.path.exists(path):
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o444))
            _mount(f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC)
            flags = MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NODEV | (0 if writable else MS_RDONLY)
            _mount(None, path, None, flags)
            bound.append(path)
        finally:
            os.close(fd)
    return covers
