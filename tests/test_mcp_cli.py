"""``symbiont tools ...`` review commands: on the data dir's registry without an engine (audited
straight into the trail), and from another process while an engine runs and an agent's call
waits (decisions reach the waiting engine; the engine copies the CLI's audit records)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import engine.cli
from engine.agents.model import AgentState
from engine.audit import AuditReader
from engine.config import RuntimeConfig
from engine.mcp_tools import ServerConfig, open_tool_service, refuse_every_call
from engine.runtime import Runtime
from tests.helpers import ROOT, agent, fast_config

sys.path.insert(0, str(ROOT / "examples" / "mcp_servers"))
from demo_server import RUG_PULL_DESCRIPTION, build_server  # noqa: E402

S = AgentState


@pytest.fixture(autouse=True)
def _only_tools_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine.cli, "_PLUGINS", ("engine.mcp_tools.cli",))


def run(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = engine.cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def seed(data_dir: Path, *, rug_pull: bool = False) -> None:
    """An engine session that discovered the demo tools (unsigned, allowed) and stopped."""

    async def go() -> None:
        svc = await open_tool_service(RuntimeConfig.default(), data_dir, policy_check=refuse_every_call,
                                      audit=lambda **f: None, start=False)
        svc.add_server(ServerConfig("demo", server=build_server(rug_pull=rug_pull), allow_unsigned=True))
        await svc.discover("demo")
        if rug_pull:
            await svc.approve_tool("demo/echo", "first look")
            await svc.discover("demo")
        await svc.close()

    asyncio.run(go())


def test_review_commands_without_an_engine(tmp_path: Path, capsys) -> None:
    d = str(tmp_path)
    code, _out, err = run(capsys, "tools", "list", "--data-dir", d)
    assert code == 2 and "MCP_002" in err and "no tool registry" in err and "Traceback" not in err
    seed(tmp_path, rug_pull=True)
    code, out, _ = run(capsys, "tools", "list", "--data-dir", d)
    assert code == 0 and "demo/echo" in out and "AwaitingHumanReview" in out
    code, out, _ = run(capsys, "tools", "list", "--data-dir", d, "--state", "awaitinghumanreview", "--json")
    listed = json.loads(out)
    assert code == 0 and len(listed) == 5 and {t["state"] for t in listed} == {"AwaitingHumanReview"}
    code, _, err = run(capsys, "tools", "list", "--data-dir", d, "--state", "Sleeping")
    assert code == 2 and "MCP_007" in err and "PendingReview" in err
    # show: the rug pull with its diff, findings and history
    code, out, _ = run(capsys, "tools", "show", "demo/echo", "--data-dir", d)
    assert code == 0 and "diff against the approved definition" in out and RUG_PULL_DESCRIPTION[:30] in out
    assert "High" in out and "changed" in out and "NOT verified" in out and "-> Signed" in out
    echo = json.loads(run(capsys, "tools", "show", "demo/echo", "--data-dir", d, "--json")[1])
    # approve: bound to the hash the operator saw
    code, _, err = run(capsys, "tools", "approve", "demo/echo", "--data-dir", d, "--hash", "0" * 64)
    assert code == 2 and "MCP_003" in err and "changed while" in err
    code, out, err = run(capsys, "tools", "approve", "demo/echo", "--data-dir", d, "--hash", echo["def_hash"], "--note", "re-read", "--actor", "alice")
    assert code == 0 and "Signed" in out and "operator key sha256:" in out, err
    code, out, _ = run(capsys, "tools", "approve", "demo/add", "--data-dir", d, "--scope", "once")
    assert code == 0 and "Approved (scope once" in out
    code, _, err = run(capsys, "tools", "reject", "demo/fail", "--data-dir", d, "--reason", " ")
    assert code == 2 and "MCP_007" in err and "reason" in err
    code, out, _ = run(capsys, "tools", "reject", "demo/fail", "--data-dir", d, "--reason", "useless")
    assert code == 0 and "Rejected" in out
    code, _, err = run(capsys, "tools", "reject", "demo/fail", "--data-dir", d, "--reason", "again")
    assert code == 2 and "cannot go from Rejected to Rejected" in err
    code, out, _ = run(capsys, "tools", "defer", "demo/slow", "--data-dir", d, "--note", "ask")
    assert code == 0 and "deferred" in out
    code, _, err = run(capsys, "tools", "approve", "demo/nope", "--data-dir", d)
    assert code == 2 and "MCP_002" in err
    shown = json.loads(run(capsys, "tools", "show", "demo/echo", "--data-dir", d, "--json")[1])
    assert shown["state"] == "Signed" and shown["decided_by"] == "cli:alice" and shown["history"][-2]["note"] == "re-read"
    # keys and calls with nothing pending
    code, out, _ = run(capsys, "tools", "keys", "--data-dir", d)
    assert code == 0 and "operator key: sha256:" in out and "pinned domains: none" in out
    code, _, err = run(capsys, "tools", "accept-key", "nowhere.example", "--data-dir", d)
    assert code == 2 and "SCHEMA_004" in err
    code, out, _ = run(capsys, "tools", "calls", "--data-dir", d)
    assert code == 0 and "no calls waiting" in out
    code, _, err = run(capsys, "tools", "allow-call", "call-nope", "--sha", "x", "--data-dir", d)
    assert code == 2 and "MCP_006" in err
    # no engine ran: the decisions went straight into the audit trail with their actor

    async def audited() -> list:
        async with AuditReader(tmp_path) as reader:
            return await reader.query(types="tool.review", limit=200)

    recs = asyncio.run(audited())
    mine = {(r.action, r.resource, r.actor) for r in recs if r.details.get("via") == "cli"}
    assert ("approved", "demo/echo", "cli:alice") in mine and any(a == "rejected" and t == "demo/fail" for a, t, _ in mine)
    assert any(a == "deferred" for a, _, _ in mine)


def test_operator_key_with_loose_permissions_is_refused(tmp_path: Path, capsys) -> None:
    seed(tmp_path)
    d = str(tmp_path)
    assert run(capsys, "tools", "approve", "demo/echo", "--data-dir", d)[0] == 0  # creates the key
    os.chmod(tmp_path / "operator_key.pem", 0o644)
    code, _out, err = run(capsys, "tools", "approve", "demo/add", "--data-dir", d)
    assert code == 1 and "SigningFailed" in err and "operator_key.pem" in err
    code, out, _ = run(capsys, "tools", "keys", "--data-dir", d)
    assert "unusable (SCHEMA_006" in out


CALLER = """
from symbi_agent import AgentError, agent
try:
    out = agent.call_tool("demo/echo", {"text": "through the cli"})
    print("result", out["content"][0]["text"], flush=True)
except AgentError as exc:
    print("refused", exc.code, flush=True)
"""


async def cli(*argv: str) -> tuple[int, str, str]:
    """The real command in another process (the engine keeps running meanwhile)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "engine.cli", *argv, cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(), err.decode()


async def test_headless_human_in_the_loop_while_the_engine_runs(tmp_path: Path) -> None:
    d = str(tmp_path)
    async with Runtime.open(fast_config(), tmp_path) as rt:
        rt.tools.add_server(ServerConfig("demo", server=build_server(), allow_unsigned=True))
        await rt.tools.discover("demo")
        code, out, err = await cli("--data-dir", d, "tools", "show", "demo/echo", "--json")
        assert code == 0, err
        h = json.loads(out)["def_hash"]
        code, out, err = await cli("--data-dir", d, "tools", "approve", "demo/echo", "--hash", h, "--actor", "alice")
        assert code == 0 and "Signed" in out, err
        assert (await rt.tools.get_tool("demo/echo")).state == "Signed"  # the engine sees it at once
        await rt.create_agent(agent("caller", source=CALLER))
        await rt.start_agent("caller")
        await rt.wait_for_state("caller", S.WAITING, timeout=30)
        async with asyncio.timeout(20):
            while True:
                code, out, err = await cli("--data-dir", d, "tools", "calls", "--json")
                assert code == 0, err
                if json.loads(out):
                    break
        (call,) = json.loads(out)
        assert call["tool_id"] == "demo/echo" and call["arguments"] == {"text": "through the cli"}
        code, _, err = await cli("--data-dir", d, "tools", "allow-call", call["id"], "--sha", "f" * 64, "--actor", "bob")
        assert code == 2 and "does not match" in err
        assert (await rt.get_agent("caller")).state is S.WAITING
        code, out, err = await cli("--data-dir", d, "tools", "allow-call", call["id"], "--sha", call["arguments_sha256"], "--actor", "bob")
        assert code == 0, err
        info = await rt.wait_for_state("caller", S.COMPLETED, S.FAILED, timeout=30)
        logs = "\n".join(await rt.agent_logs("caller"))
        assert info.state is S.COMPLETED and "result through the cli" in logs, logs
        await rt.tools.drain_outbox()  # what the periodic check does within a second
    async with AuditReader(tmp_path) as reader:
        calls = await reader.query(types="tool.call", limit=100)
        reviews = await reader.query(types="tool.review", limit=100)
    flow = [(r.action, r.actor) for r in sorted(calls, key=lambda r: r.seq) if r.resource == "demo/echo"]
    assert [a for a, _ in flow if a in ("approval-requested", "approval-approved", "call", "result")] == [
        "approval-requested", "approval-approved", "call", "result"]
    assert ("approval-approved", "cli:bob") in flow
    assert any(r.action == "approved" and r.actor == "cli:alice" and r.details.get("via") == "cli" for r in reviews)
    assert any(r.action == "call-approved" and r.actor == "cli:bob" for r in calls)
