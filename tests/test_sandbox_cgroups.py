"""Per-agent cgroups: the real v1 hierarchy here, and the v2 file formats on a stand-in tree.

cgroup v2 cannot set limits on this machine (its controllers are bound to
v1), so the v2 test points :class:`CgroupManager` at a directory laid out
like a v2 hierarchy and checks what would be written and read there.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from test_sandbox_support import require_cgroups

from engine.sandbox.cgroups import AgentCgroup, CgroupLimits, CgroupManager

MB = 1024 * 1024


def test_v1_group_gets_the_limits_and_is_removed():
    manager = require_cgroups()
    if manager.detect().version != 1:
        return  # covered by the v2 test below on a v2 machine
    cg = manager.create("sbxtest", "limits-1", CgroupLimits(memory_bytes=64 * MB, pids=16, cpu_cores=0.5))
    try:
        mem, pids = cg.dirs["memory"], cg.dirs["pids"]
        assert int((mem / "memory.limit_in_bytes").read_text()) == 64 * MB
        if (mem / "memory.memsw.limit_in_bytes").exists():
            assert int((mem / "memory.memsw.limit_in_bytes").read_text()) == 64 * MB
        assert (pids / "pids.max").read_text().strip() == "16"
        if "cpu" in cg.dirs:
            assert (cg.dirs["cpu"] / "cpu.cfs_quota_us").read_text().strip() == "50000"
        sleeper = subprocess.Popen(["sleep", "60"])
        for path in cg.paths:
            (path / "cgroup.procs").write_text(str(sleeper.pid))
        assert cg.pids() == {sleeper.pid}
        assert cg.oom_kills() == 0
    finally:
        assert cg.remove()
    assert sleeper.wait(5) == -9
    assert not any(p.exists() for p in cg.paths)


def _v2_tree(tmp_path: Path) -> tuple[CgroupManager, Path]:
    root = tmp_path / "cg"
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (root / "cgroup.subtree_control").write_text("")
    (root / "symbi").mkdir()
    (root / "symbi" / "cgroup.subtree_control").write_text("")
    group = root / "symbi" / "eng"
    leaf = group / "agent-1"
    leaf.mkdir(parents=True)
    (group / "cgroup.subtree_control").write_text("")
    for name in ("memory.max", "memory.swap.max", "pids.max", "cpu.max", "cgroup.procs", "cgroup.kill"):
        (leaf / name).write_text("")
    mounts = tmp_path / "mounts"
    mounts.write_text(f"cgroup2 {root} cgroup2 rw,nosuid,nodev,noexec,relatime 0 0\n")
    return CgroupManager(root, mounts), leaf


def test_v2_limits_and_oom_accounting_use_the_v2_files(tmp_path):
    manager, leaf = _v2_tree(tmp_path)
    support = manager.detect()
    assert support.version == 2 and set(support.roots) == {"memory", "pids", "cpu"}
    assert (leaf.parent.parent.parent / "cgroup.subtree_control").read_text() == "+memory +pids +cpu"
    cg = manager.create("eng", "agent-1", CgroupLimits(memory_bytes=64 * MB, pids=16, cpu_cores=1.5))
    assert cg.version == 2 and cg.paths == [leaf]
    assert (leaf / "memory.max").read_text() == str(64 * MB)
    assert (leaf / "memory.swap.max").read_text() == "0"
    assert (leaf / "pids.max").read_text() == "16"
    assert (leaf / "cpu.max").read_text() == "150000 100000"
    (leaf / "memory.events").write_text("low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\n")
    (leaf / "memory.peak").write_text(f"{64 * MB}\n")
    assert cg.oom_kills() == 1 and cg.peak_bytes() == 64 * MB
    assert AgentCgroup.from_paths([str(leaf)]).version == 1  # a stand-in tree has no cgroup.controllers in the leaf


def test_no_cgroup_hierarchy_is_reported_not_raised(tmp_path):
    mounts = tmp_path / "mounts"
    mounts.write_text("proc /proc proc rw 0 0\n")
    support = CgroupManager(tmp_path, mounts).detect()
    assert not support.usable and support.version is None
    assert "no cgroup hierarchy with memory, pids, cpu" in support.detail
