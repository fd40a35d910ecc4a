"""Issue #12's escapes, tried for real by a hostile agent through the whole engine, in every tier this machine has.

The default tier is run with bubblewrap and Docker hidden from the engine (PATH without bwrap, DOCKER_HOST
pointing nowhere), as on a new user's bare machine: the built-in confinement must refuse every escape. It is
never skipped in CI. The same agent then runs in native+bwrap, Docker and gVisor where they exist, and once
with ``native_isolation = "none"`` as the control that shows the probe does get through when nothing stops it.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
from pathlib import Path

import pytest
from helpers import agent, fast_config
from test_sandbox_support import IMAGE, require_bwrap, require_docker, require_landlock

from engine.agents.model import AgentState as S
from engine.agents.model import SecurityTier
from engine.runtime import Runtime

HOSTILE = (Path(__file__).parent / "agents" / "hostile.py").read_text()
ESCAPES = (
    "read_master_key",
    "read_signing_key",
    "read_audit_db",
    "read_shadow",
    "read_outside",
    "write_data_dir",
    "tcp_loopback",
    "udp_send",
    "signal_engine",
    "ptrace_engine",
)


class Targets:
    """A TCP listener and a UDP socket on loopback that count what reached them, and a file outside."""

    def __init__(self, tmp_path: Path) -> None:
        self.tcp_accepted = 0
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.udp.setblocking(False)
        self.outside = tmp_path / "elsewhere" / "secret.txt"
        self.outside.parent.mkdir()
        self.outside.write_text("TOPSECRET")
        self.outside.chmod(0o644)
        self.outside.parent.chmod(0o755)
        self.server: asyncio.base_events.Server | None = None

    async def start(self) -> Targets:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.tcp_accepted += 1
            writer.close()

        self.server = await asyncio.start_server(serve, "127.0.0.1", 0)
        return self

    def udp_received(self) -> int:
        n = 0
        while True:
            try:
                self.udp.recv(100)
                n += 1
            except BlockingIOError:
                return n

    def input(self, data: Path) -> dict:
        assert self.server is not None
        return {
            "data_dir": str(data),
            "engine_pid": os.getpid(),
            "tcp_port": self.server.sockets[0].getsockname()[1],
            "udp_port": self.udp.getsockname()[1],
            "outside_file": str(self.outside),
        }

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        self.udp.close()


@pytest.fixture
async def targets(tmp_path):
    t = await Targets(tmp_path).start()
    yield t
    await t.close()


@pytest.fixture
def bare_machine(tmp_path, monkeypatch):
    """Neither bubblewrap nor a Docker daemon, as far as the engine can tell."""
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")


async def run_hostile(tmp_path: Path, targets: Targets, tier: SecurityTier, **sandbox) -> tuple[dict, str]:
    """Run the hostile agent to completion; (its report, the tier it ran in). ``planted`` is added to the report."""
    data = tmp_path / "data"
    config = fast_config(sandbox={"docker_image": IMAGE, **sandbox})
    async with Runtime.open(config, data) as rt:
        await rt.secrets.set("shared/db_password", "hunter2")  # so keys/master.key exists
        for key in ("keys/master.key", "keys/runtime_ed25519.pem", "audit.db"):
            assert (data / key).exists(), key
        await rt.create_agent(agent("hostile", source=HOSTILE, security_tier=tier))
        await rt.start_agent("hostile", input=targets.input(data))
        info = await rt.wait_for_state("hostile", S.COMPLETED, S.FAILED, timeout=90)
        logs = await rt.agent_logs("hostile")
        assert info.state is S.COMPLETED, (info.last_error, logs[-15:])
        line = next(ln for ln in logs if "HOSTILE " in ln)
        result = json.loads(line.split("HOSTILE ", 1)[1])
        assert info.result == result
        result["planted"] = (data / "planted.txt").exists()
        print(f"\nHOSTILE {info.tier_used}: {json.dumps(result, sort_keys=True)}")  # shown with pytest -s
        return result, info.tier_used or ""


def assert_all_refused(result: dict, targets: Targets, *, own_netns: bool = False) -> None:
    """Every escape refused. ``own_netns``: a container has a loopback of its own, so a UDP datagram to
    127.0.0.1 can be "sent" there; what matters is that nothing reached the host's receiver (checked)."""
    got_through = {k: v for k, v in result.items() if k in ESCAPES and not v.startswith("denied:")}
    if own_netns and got_through.get("udp_send") == "ok:sent":
        del got_through["udp_send"]
    assert got_through == {}, result
    assert result["write_workspace"] == "ok:written" and result["planted"] is False
    assert targets.tcp_accepted == 0 and targets.udp_received() == 0


async def test_default_tier_on_a_bare_machine_refuses_every_escape(tmp_path, targets, bare_machine):
    require_landlock()
    result, tier = await run_hostile(tmp_path, targets, SecurityTier.NATIVE)
    assert tier == "native+landlock"
    assert_all_refused(result, targets)
    if os.geteuid() == 0:
        assert result["uid"] == 65534


async def test_bubblewrap_tier_refuses_every_escape(tmp_path, targets):
    require_bwrap()
    result, tier = await run_hostile(tmp_path, targets, SecurityTier.NATIVE, native_isolation="bwrap")
    assert tier == "native+bwrap"
    assert_all_refused(result, targets)


@pytest.mark.parametrize(
    ("tier", "runtime", "name"), [(SecurityTier.TIER1, None, "docker"), (SecurityTier.TIER2, "runsc", "gvisor")]
)
async def test_container_tiers_refuse_every_escape(tmp_path, targets, tier, runtime, name):
    require_docker(runtime)
    result, used = await run_hostile(tmp_path, targets, tier)
    assert used == name
    assert_all_refused(result, targets, own_netns=True)


async def test_unconfined_control_shows_the_probe_gets_through(tmp_path, targets, bare_machine):
    """native_isolation = "none", written on purpose: the same agent reaches the host (so the probe can fail)."""
    result, tier = await run_hostile(tmp_path, targets, SecurityTier.NATIVE, native_isolation="none")
    assert tier == "native (unconfined)"
    assert result["read_outside"] == "ok:9" and result["tcp_loopback"] == "ok:connected"
    assert result["udp_send"] == "ok:sent" and result["signal_engine"] == "ok:signalled"
    assert result["ptrace_engine"] == "ok:attached" and result["read_shadow"].startswith("ok:")
    assert targets.tcp_accepted == 1 and result["planted"] is True
