"""The tier registry: doctor, executor choice, refusal or explicit fallback, reaping, the CLI."""

from __future__ import annotations

import json
import subprocess

import pytest
from test_sandbox_support import IMAGE, make_spec, require_cgroups, require_docker, run_agent

import engine.cli
from engine.agents.model import SecurityTier
from engine.config import SandboxConfig
from engine.errors import ErrorCode, SymbiError
from engine.sandbox import landlock
from engine.sandbox.bwrap import probe as bwrap_probe
from engine.sandbox.cgroups import CgroupLimits, CgroupManager
from engine.sandbox.docker_tier import DockerExecutor, probe_docker
from engine.sandbox.reaper import reap_labelled
from engine.sandbox.registry import SandboxRegistry, engine_label

NAMES = ["native", "native+landlock", "native+bwrap", "docker", "gvisor", "firecracker"]


@pytest.fixture(autouse=True, scope="module")
def _sweep_test_cgroups():
    yield
    reap_labelled("sbxtest", [], CgroupManager(), None)


def registry(tmp_path, **config) -> SandboxRegistry:
    return SandboxRegistry(SandboxConfig(docker_image=IMAGE, **config), tmp_path / "data")


def test_doctor_reports_what_this_machine_offers(tmp_path):
    rows = registry(tmp_path).doctor()
    assert [r.name for r in rows] == NAMES
    assert [r.tier for r in rows] == [SecurityTier.NATIVE] * 3 + [
        SecurityTier.TIER1,
        SecurityTier.TIER2,
        SecurityTier.TIER3,
    ]
    by = {r.name: r for r in rows}
    assert by["native"].available
    assert by["native+bwrap"].available == bwrap_probe().available
    state, _client = probe_docker()
    assert by["docker"].available == (state.reachable and by["docker"].fix is None)
    if not state.reachable:
        assert "Docker unavailable" in by["docker"].detail and "dockerd" in by["docker"].fix
    fc = by["firecracker"]
    assert not fc.available and fc.fix
    assert "firecracker" in fc.detail


def test_doctor_is_cached_and_refresh_probes_again(tmp_path):
    reg = registry(tmp_path)
    first = reg.doctor()
    assert reg.doctor() == first
    assert [r.name for r in reg.refresh()] == NAMES


def test_native_follows_native_isolation(tmp_path):
    bwrap_ok = bwrap_probe().available
    executor, note = registry(tmp_path).executor_for(SecurityTier.NATIVE)
    assert note is None and executor.name == ("native+bwrap" if bwrap_ok else "native+landlock")
    executor, note = registry(tmp_path, native_isolation="landlock").executor_for("Native")
    assert note is None and executor.name == "native+landlock"
    executor, note = registry(tmp_path, native_isolation="none").executor_for("Native")
    assert note is None and executor.name == "native (unconfined)"


def test_no_confinement_possible_is_refused_unless_none_is_written(tmp_path, monkeypatch):
    """An old kernel without Landlock and no bubblewrap: simulated (abi_version -> 0), as no such kernel is here."""
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap to be found
    monkeypatch.setattr("engine.sandbox.landlock.abi_version", lambda: 0)
    reg = registry(tmp_path)
    assert not reg.status("native+landlock").available
    with pytest.raises(SymbiError) as err:
        reg.executor_for(SecurityTier.NATIVE)
    assert err.value.code is ErrorCode.SANDBOX_001
    assert "cannot be confined" in err.value.message and 'native_isolation = "none"' in err.value.hint
    with pytest.raises(SymbiError):  # a fallback from another tier never lands unconfined either
        registry(tmp_path, allow_fallback=True).executor_for(SecurityTier.TIER3)
    executor, note = registry(tmp_path, native_isolation="none").executor_for(SecurityTier.NATIVE)
    assert executor.name == "native (unconfined)" and note is None
    name, detail = registry(tmp_path).native_summary()
    assert name is None and detail.startswith("SANDBOX_001")
    assert SecurityTier.NATIVE not in registry(tmp_path).available_tiers()  # the create form does not offer it
    assert SecurityTier.NATIVE in registry(tmp_path, native_isolation="none").available_tiers()


async def test_required_bwrap_missing_is_refused_or_an_explicit_fallback(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap to be found
    with pytest.raises(SymbiError) as err:
        registry(tmp_path, native_isolation="bwrap").executor_for(SecurityTier.NATIVE)
    assert err.value.code is ErrorCode.SANDBOX_001
    assert "bubblewrap" in err.value.message and "apt-get install bubblewrap" in err.value.hint
    executor, note = registry(tmp_path, native_isolation="bwrap", allow_fallback=True).executor_for("Native")
    assert executor.name == "native+landlock"
    assert note is not None and note.startswith("bubblewrap unavailable")


async def test_tier3_is_unavailable_naming_what_is_missing(tmp_path):
    with pytest.raises(SymbiError) as err:
        registry(tmp_path).executor_for(SecurityTier.TIER3)
    assert err.value.code is ErrorCode.SANDBOX_001
    assert "Tier3 (firecracker) is unavailable" in err.value.message
    assert "firecracker binary 'firecracker' not found" in err.value.message
    assert "no guest kernel configured" in err.value.message
    assert "sandbox.firecracker_kernel" in err.value.hint


async def test_fallback_runs_natively_and_says_so(tmp_path):
    executor, note = registry(tmp_path, allow_fallback=True).executor_for(SecurityTier.TIER3)
    assert executor.name.endswith("(fallback from Tier3)")
    assert note is not None and "Tier3 (firecracker) is unavailable" in note and "allow_fallback" in note
    run = await run_agent(executor, make_spec(tmp_path, "print('hi')"))
    assert run.rc == 0 and run.stdout == ["hi"] and run.handle.tier == executor.name


async def test_docker_unreachable_is_refused_or_an_explicit_fallback(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:9")  # nothing listens there
    reg = registry(tmp_path)
    rows = {r.name: r for r in reg.doctor()}
    assert not rows["docker"].available and not rows["gvisor"].available
    assert rows["docker"].detail.startswith("Docker unavailable")
    for tier in (SecurityTier.TIER1, SecurityTier.TIER2):
        with pytest.raises(SymbiError) as err:
            reg.executor_for(tier)
        assert err.value.code is ErrorCode.SANDBOX_001
        assert "Docker unavailable" in err.value.message and "dockerd" in err.value.hint
    executor, note = registry(tmp_path, allow_fallback=True).executor_for(SecurityTier.TIER1)
    assert executor.name.endswith("(fallback from Tier1)") and "Docker unavailable" in note


def test_docker_tiers_here(tmp_path):
    require_docker("runsc")
    reg = registry(tmp_path)
    docker, note = reg.executor_for(SecurityTier.TIER1)
    assert isinstance(docker, DockerExecutor) and docker.name == "docker" and docker.runtime is None and note is None
    gvisor, _ = reg.executor_for(SecurityTier.TIER2)
    assert isinstance(gvisor, DockerExecutor) and gvisor.name == "gvisor" and gvisor.runtime == "runsc"
    assert reg.available_tiers()[:3] == [SecurityTier.NATIVE, SecurityTier.TIER1, SecurityTier.TIER2]


def test_missing_image_is_sandbox_002(tmp_path):
    require_docker()
    reg = SandboxRegistry(SandboxConfig(docker_image="symbi-no-such-image:never"), tmp_path / "data")
    row = reg.status("docker")
    assert not row.available and row.fix == "run `symbiont sandbox prepare-image`"
    with pytest.raises(SymbiError) as err:
        reg.executor_for(SecurityTier.TIER1)
    assert err.value.code is ErrorCode.SANDBOX_002 and "prepare-image" in err.value.hint


async def test_reap_all_labelled_sweeps_stray_cgroups_but_keeps_referenced_ones(tmp_path):
    cgroups = require_cgroups()
    reg = registry(tmp_path)
    label = f"sbxtest-{reg.engine_label[:6]}"
    stray = cgroups.create(label, "stray-1", CgroupLimits(pids=8))
    kept = cgroups.create(label, "kept-1", CgroupLimits(pids=8))
    sleeper = subprocess.Popen(["sleep", "60"])
    for path in stray.paths:
        (path / "cgroup.procs").write_text(str(sleeper.pid))
    keep_ref = json.dumps({"kind": "native", "pid": 0, "cgroups": [str(p) for p in kept.paths]})
    notes = await reg.reap_all_labelled(label, keep_refs=[keep_ref])
    assert any(n.startswith(f"cgroup symbi/{label}/stray-1: 1 process(es) left in its cgroup killed") for n in notes)
    assert sleeper.wait(5) == -9
    assert not any(p.exists() for p in stray.paths) and all(p.exists() for p in kept.paths)
    assert kept.remove()
    assert await reg.reap_all_labelled(label) == []
    assert not any(p.parent.exists() for p in kept.paths)  # the engine's empty group goes too


async def test_reap_of_nothing_left(tmp_path):
    reg = registry(tmp_path)
    assert await reg.reap("not json") is None
    assert await reg.reap(json.dumps({"kind": "process", "pid": 2**22 - 1, "started": 1.0})) is None
    assert await reg.reap(json.dumps({"kind": "native", "pid": 2**22 - 1, "cgroups": ["/nonexistent/x"]})) is None


def test_engine_label_is_per_data_dir(tmp_path):
    assert engine_label(tmp_path / "a") != engine_label(tmp_path / "b")
    assert registry(tmp_path).labels == {"symbi.engine": engine_label(tmp_path / "data")}


# --------------------------------------------------------------------------- #
# CLI
# --------------------------------------------------------------------------- #


def cli(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    monkeypatch.setattr(engine.cli, "_PLUGINS", ("engine.sandbox.cli",))
    rc = engine.cli.main(list(args))
    return rc, capsys.readouterr().out


def test_cli_doctor_prints_a_table(tmp_path, monkeypatch, capsys):
    rc, out = cli(monkeypatch, capsys, "--data-dir", str(tmp_path), "sandbox", "doctor")
    assert rc == 0
    lines = out.splitlines()
    assert lines[0].split() == ["TIER", "NAME", "STATUS", "DETAIL", "/", "FIX"]
    assert any(line.split()[:3] == ["Tier3", "firecracker", "missing"] for line in lines)
    assert any(line.split()[:2] == ["Landlock", "on" if landlock.abi_version() else "off"] for line in lines)
    assert "native agents here: native+" in out
    assert any("fix: install a firecracker release binary" in line for line in lines)
    assert "tiers that work here: Native" in out


def test_cli_doctor_json(tmp_path, monkeypatch, capsys):
    rc, out = cli(monkeypatch, capsys, "--data-dir", str(tmp_path), "sandbox", "doctor", "--json")
    doc = json.loads(out)
    rows = doc["tiers"]
    assert rc == 0 and [r["name"] for r in rows] == NAMES
    assert rows[-1] == {**rows[-1], "tier": "Tier3", "available": False}
    layers = {layer["layer"]: layer for layer in doc["layers"]}
    assert set(layers) == {"uid change", "Landlock", "seccomp", "cgroups", "bubblewrap", "Docker", "gVisor"}
    assert doc["native"]["executor"] in ("native+bwrap", "native+landlock")


def test_cli_prepare_image_is_idempotent(tmp_path, monkeypatch, capsys):
    require_docker()
    rc, out = cli(monkeypatch, capsys, "--data-dir", str(tmp_path), "sandbox", "prepare-image", "--tag", IMAGE)
    last = out.strip().splitlines()[-1]
    assert rc == 0
    assert last.endswith(": up to date") or last.startswith(f"built {IMAGE}")
