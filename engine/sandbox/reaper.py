"""Finding and removing what a previous engine left running.

A handle's ``ref`` (persisted by the runtime) names what to look for:

* ``{"kind": "process", "pid", "started"}`` (the plain executor of
  :mod:`engine.agents.executor`): its process group, if the leader is still
  the process that was started (same create time);
* ``{"kind": "native", "pid", "started", "bwrap", "cgroups"}``: the same,
  plus every process still in its cgroups (also ones that left the process
  group), then the cgroups themselves;
* ``{"kind": "docker", "container"}``: the container, removed by force.

:func:`reap_labelled` sweeps what carries an engine's label but no agent
references: containers labelled ``symbi.engine=<label>`` and cgroups under
``symbi/<label>/``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import psutil

from engine.agents.executor import kill_orphan_group
from engine.sandbox.cgroups import PARENT, AgentCgroup, CgroupManager

ClientFactory = Callable[[], Any]


def parse_ref(ref: str | None) -> dict[str, Any]:
    try:
        data = json.loads(ref or "")
    except (TypeError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _reap_cgroups(paths: Iterable[str]) -> str | None:
    existing = [p for p in paths if Path(p).is_dir()]
    if not existing:
        return None
    cg = AgentCgroup.from_paths(existing)
    killed = cg.kill_all()
    removed = cg.remove()
    what = f"{killed} process(es) left in its cgroup killed" if killed else "its empty cgroup"
    return f"{what}{' and removed' if removed else ' (cgroup could not be removed)'}"


def _kill_group(pid: int, started: float | None) -> bool:
    """Kill the orphan's process group unless the leader is gone or only a zombie (nothing runs)."""
    try:
        if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            return False
    except psutil.Error:
        return False
    return kill_orphan_group(pid, started)


def reap_native(data: dict[str, Any]) -> str | None:
    parts: list[str] = []
    pid, started = data.get("pid"), data.get("started")
    if isinstance(pid, int) and _kill_group(pid, started):
        parts.append(f"orphan process group {pid}{' (bwrap)' if data.get('bwrap') else ''} killed")
    cgroup_note = _reap_cgroups(data.get("cgroups") or [])
    if cgroup_note:
        parts.append(cgroup_note)
    return "; ".join(parts) or None


def reap_container(container_id: str, client_factory: ClientFactory) -> str | None:
    import docker.errors

    from engine.errors import SymbiError

    try:
        client = client_factory()
        container = client.containers.get(container_id)
    except docker.errors.NotFound:
        return None
    except SymbiError as exc:
        return f"container {container_id[:12]} not checked: {exc.message}"
    status = container.status
    try:
        container.remove(force=True)
    except docker.errors.NotFound:
        return None
    return f"container {container_id[:12]} ({status}) removed"


def reap_ref(ref: str, client_factory: ClientFactory) -> str | None:
    data = parse_ref(ref)
    kind = data.get("kind")
    if kind == "docker" and isinstance(data.get("container"), str):
        return reap_container(data["container"], client_factory)
    if kind == "native":
        return reap_native(data)
    if kind == "process" and isinstance(data.get("pid"), int):
        pid = data["pid"]
        return f"orphan process group {pid} killed" if _kill_group(pid, data.get("started")) else None
    return None


def reap_labelled(
    engine_label: str,
    keep_refs: Iterable[str],
    cgroups: CgroupManager | None,
    client_factory: ClientFactory | None,
) -> list[str]:
    """Remove containers and cgroups of ``engine_label`` that no ref in ``keep_refs`` names."""
    keep = [parse_ref(r) for r in keep_refs]
    keep_containers = {d.get("container") for d in keep if d.get("kind") == "docker"}
    keep_cgroups = {p for d in keep for p in d.get("cgroups") or []}
    notes: list[str] = []
    if client_factory is not None:
        notes += _sweep_containers(engine_label, keep_containers, client_factory)
    if cgroups is not None:
        leaves: dict[str, list[str]] = {}  # one agent run's group, in every hierarchy
        for root in set(cgroups.detect().roots.values()):
            group = root / PARENT / engine_label
            if group.is_dir():
                for leaf in group.iterdir():
                    if leaf.is_dir() and str(leaf) not in keep_cgroups:
                        leaves.setdefault(leaf.name, []).append(str(leaf))
        for name, paths in sorted(leaves.items()):
            note = _reap_cgroups(paths)
            if note:
                notes.append(f"cgroup {PARENT}/{engine_label}/{name}: {note}")
        for root in set(cgroups.detect().roots.values()):  # the engine's own group, once it is empty
            with contextlib.suppress(OSError):
                (root / PARENT / engine_label).rmdir()
    return notes


def _sweep_containers(engine_label: str, keep: set[Any], client_factory: ClientFactory) -> list[str]:
    import docker.errors

    from engine.errors import SymbiError

    try:
        client = client_factory()
        found = client.containers.list(all=True, filters={"label": [f"symbi.engine={engine_label}"]})
    except SymbiError:
        return []  # no daemon: nothing of ours can be running there
    notes = []
    for container in found:
        if container.id in keep:
            continue
        name = (container.labels or {}).get("symbi.agent_name", "?")
        try:
            container.remove(force=True)
        except docker.errors.NotFound:
            continue
        notes.append(f"container {container.short_id} of agent {name} ({container.status}) removed")
    return notes
