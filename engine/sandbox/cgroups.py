"""Per-agent control groups: memory, pids and CPU limits on cgroup v1 or v2.

:class:`CgroupManager` finds where the memory, pids and cpu controllers are
mounted under ``sandbox.cgroup_root`` (v1: one hierarchy per controller; v2:
one unified hierarchy whose ``cgroup.controllers`` lists them) and whether we
may write there. :meth:`CgroupManager.create` makes one group per agent run
under ``<hierarchy>/symbi/<engine>/<leaf>`` and writes the limits:

* v1: ``memory.limit_in_bytes`` (and ``memory.memsw.limit_in_bytes`` when
  swap accounting exists, so swap is no way out), ``pids.max``,
  ``cpu.cfs_period_us`` / ``cpu.cfs_quota_us``;
* v2: ``memory.max`` (+ ``memory.swap.max`` 0), ``pids.max``, ``cpu.max``.

The child joins before it execs: the executor opens each ``cgroup.procs``
here (as the engine, which may write it) and the child writes ``0`` ("me")
to the inherited descriptors in its pre-exec hook. After exit,
:meth:`AgentCgroup.oom_kills` and :meth:`AgentCgroup.peak_bytes` say whether
the kernel's OOM killer ended it and how high it got; :meth:`AgentCgroup.kill_all`
kills every process left in the group (also ones that left the process
group), and :meth:`AgentCgroup.remove` deletes the group.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

CONTROLLERS = ("memory", "pids", "cpu")
PARENT = "symbi"
CFS_PERIOD_US = 100_000
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True)
class CgroupSupport:
    """What this machine offers: the version in use and controller -> hierarchy root."""

    version: int | None
    roots: dict[str, Path] = field(default_factory=dict)
    detail: str = ""

    @property
    def usable(self) -> bool:
        return bool(self.roots)


@dataclass(frozen=True)
class CgroupLimits:
    memory_bytes: int | None = None
    pids: int | None = None
    cpu_cores: float | None = None


def _mounts(mounts_file: Path) -> list[tuple[str, str, set[str]]]:
    """(mount point, fs type, options) of every cgroup mount."""
    out: list[tuple[str, str, set[str]]] = []
    try:
        text = mounts_file.read_text()
    except OSError:
        return out
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[2] in ("cgroup", "cgroup2"):
            point = parts[1].replace("\\040", " ")
            out.append((point, parts[2], set(parts[3].split(","))))
    return out


def _under(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


def _writable(path: Path) -> bool:
    """Can we create groups under ``path``? (creating our parent group proves it)."""
    try:
        (path / PARENT).mkdir(exist_ok=True)
    except OSError:
        return False
    return os.access(path / PARENT, os.W_OK)


class CgroupManager:
    """Detects the cgroup hierarchies under ``root`` and creates agent groups in them."""

    def __init__(self, root: Path | str = "/sys/fs/cgroup", mounts_file: Path | str = "/proc/self/mounts") -> None:
        self.root = Path(root)
        self.mounts_file = Path(mounts_file)
        self._support: CgroupSupport | None = None

    def detect(self, refresh: bool = False) -> CgroupSupport:
        if self._support is None or refresh:
            self._support = self._detect()
        return self._support

    def _detect(self) -> CgroupSupport:
        mounts = [m for m in _mounts(self.mounts_file) if _under(Path(m[0]), self.root)]
        v1: dict[str, Path] = {}
        for point, fstype, opts in mounts:
            if fstype == "cgroup":
                for ctrl in CONTROLLERS:
                    if ctrl in opts:
                        v1[ctrl] = Path(point)
        if v1:
            roots = {c: p for c, p in v1.items() if _writable(p)}
            missing = [c for c in CONTROLLERS if c not in roots]
            if not roots:
                return CgroupSupport(1, {}, f"cgroup v1 under {self.root} is not writable")
            detail = f"cgroup v1: {', '.join(sorted(roots))}"
            if missing:
                detail += f" (not available: {', '.join(missing)})"
            return CgroupSupport(1, roots, detail)
        for point, fstype, _opts in mounts:
            if fstype != "cgroup2":
                continue
            base = Path(point)
            try:
                available = set((base / "cgroup.controllers").read_text().split())
            except OSError:
                continue
            ctrls = [c for c in CONTROLLERS if c in available]
            if not ctrls:
                continue
            if not _writable(base) or not self._enable_v2(base, ctrls):
                return CgroupSupport(2, {}, f"cgroup v2 at {base}: cannot enable {', '.join(ctrls)} for sub-groups")
            missing = [c for c in CONTROLLERS if c not in ctrls]
            detail = f"cgroup v2: {', '.join(ctrls)}" + (f" (not available: {', '.join(missing)})" if missing else "")
            return CgroupSupport(2, {c: base for c in ctrls}, detail)
        return CgroupSupport(None, {}, f"no cgroup hierarchy with {', '.join(CONTROLLERS)} under {self.root}")

    @staticmethod
    def _enable_v2(base: Path, ctrls: list[str]) -> bool:
        """Delegate the controllers to our parent group's children (v2's subtree_control)."""
        want = " ".join(f"+{c}" for c in ctrls)
        try:
            for level in (base, base / PARENT):
                (level / "cgroup.subtree_control").write_text(want)
        except OSError:
            return False
        return True

    def create(self, group: str, leaf: str, limits: CgroupLimits) -> AgentCgroup:
        """Make ``symbi/<group>/<leaf>`` in every usable hierarchy and write the limits.

        Raises OSError when the kernel refuses; the caller turns that into SANDBOX_003."""
        support = self.detect()
        group, leaf = _SAFE.sub("_", group) or "default", _SAFE.sub("_", leaf)
        dirs: dict[str, Path] = {}
        for ctrl, root in support.roots.items():
            path = root / PARENT / group / leaf
            if support.version == 2:
                (root / PARENT / group).mkdir(parents=True, exist_ok=True)
                _write(root / PARENT / group / "cgroup.subtree_control", " ".join(f"+{c}" for c in support.roots))
            if path.exists():  # a stale group with the same name: empty and reuse it
                AgentCgroup(support.version or 1, {ctrl: path}).kill_all()
            path.mkdir(parents=True, exist_ok=True)
            dirs[ctrl] = path
        cg = AgentCgroup(support.version or 1, dirs)
        cg.apply(limits)
        return cg


def _write(path: Path, value: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _read_key(path: Path, key: str) -> int | None:
    """The value of ``key N`` in a flat-keyed file such as memory.events or memory.oom_control."""
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key and value.strip().isdigit():
                return int(value)
    except OSError:
        return None
    return None


@dataclass
class AgentCgroup:
    """One agent run's group(s): controller -> directory (v2: the same directory for all)."""

    version: int
    dirs: dict[str, Path]

    @property
    def paths(self) -> list[Path]:
        return sorted(set(self.dirs.values()))

    def apply(self, limits: CgroupLimits) -> None:
        mem, pids, cpu = self.dirs.get("memory"), self.dirs.get("pids"), self.dirs.get("cpu")
        if self.version == 1:
            if mem is not None and limits.memory_bytes:
                _write(mem / "memory.limit_in_bytes", str(limits.memory_bytes))
                if (mem / "memory.memsw.limit_in_bytes").exists():
                    _write(mem / "memory.memsw.limit_in_bytes", str(limits.memory_bytes))
            if pids is not None and limits.pids:
                _write(pids / "pids.max", str(limits.pids))
            if cpu is not None and limits.cpu_cores:
                _write(cpu / "cpu.cfs_period_us", str(CFS_PERIOD_US))
                _write(cpu / "cpu.cfs_quota_us", str(max(1000, int(limits.cpu_cores * CFS_PERIOD_US))))
            return
        if mem is not None and limits.memory_bytes:
            _write(mem / "memory.max", str(limits.memory_bytes))
            if (mem / "memory.swap.max").exists():
                _write(mem / "memory.swap.max", "0")
        if pids is not None and limits.pids:
            _write(pids / "pids.max", str(limits.pids))
        if cpu is not None and limits.cpu_cores:
            _write(cpu / "cpu.max", f"{max(1000, int(limits.cpu_cores * CFS_PERIOD_US))} {CFS_PERIOD_US}")

    def open_join_fds(self) -> list[int]:
        """Write-only descriptors of every ``cgroup.procs``; a child writes b"0" to join."""
        fds: list[int] = []
        try:
            for path in self.paths:
                fds.append(os.open(path / "cgroup.procs", os.O_WRONLY | os.O_CLOEXEC))
        except OSError:
            for fd in fds:
                os.close(fd)
            raise
        return fds

    def pids(self) -> set[int]:
        found: set[int] = set()
        for path in self.paths:
            try:
                found.update(int(p) for p in (path / "cgroup.procs").read_text().split())
            except (OSError, ValueError):
                continue
        return found

    def oom_kills(self) -> int:
        mem = self.dirs.get("memory")
        if mem is None:
            return 0
        if self.version == 1:
            return _read_key(mem / "memory.oom_control", "oom_kill") or 0
        return _read_key(mem / "memory.events", "oom_kill") or 0

    def peak_bytes(self) -> int | None:
        mem = self.dirs.get("memory")
        if mem is None:
            return None
        return _read_int(mem / ("memory.max_usage_in_bytes" if self.version == 1 else "memory.peak"))

    def memory_limit(self) -> int | None:
        mem = self.dirs.get("memory")
        if mem is None:
            return None
        return _read_int(mem / ("memory.limit_in_bytes" if self.version == 1 else "memory.max"))

    def kill_all(self, rounds: int = 50) -> int:
        """SIGKILL every process in the group until it is empty (a fork bomb may race us)."""
        killed = 0
        for _ in range(rounds):
            pids = self.pids()
            if not pids:
                break
            if self.version == 2:
                for path in self.paths:
                    with contextlib.suppress(OSError):
                        _write(path / "cgroup.kill", "1")
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
                    killed += 1
            time.sleep(0.005)
        return killed

    def remove(self, timeout: float = 2.0) -> bool:
        """Kill what is left and remove the group; True when every directory is gone."""
        self.kill_all()
        deadline = time.monotonic() + timeout
        ok = True
        for path in self.paths:
            while True:
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:
                    if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                        ok = False
                        break
                    self.kill_all(rounds=1)
                    time.sleep(0.01)
        return ok

    @classmethod
    def from_paths(cls, paths: list[str]) -> AgentCgroup:
        """Rebuild from a persisted ref (the controller names do not matter for kill and remove)."""
        version = 2 if any((Path(p) / "cgroup.controllers").exists() for p in paths) else 1
        return cls(version, {str(i): Path(p) for i, p in enumerate(paths)})
