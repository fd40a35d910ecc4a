"""The runtime records what it does in the audit trail, and fails closed."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import pytest

from engine.agents.model import AgentState
from engine.audit import verify
from engine.errors import ErrorCode, SymbiError
from engine.runtime import Runtime
from tests.helpers import ROOT, agent, fast_config

S = AgentState


async def test_an_idle_engine_leaves_a_verifiable_chain(tmp_path):
    async with Runtime.open(fast_config(), tmp_path):
        pass
    async with Runtime.open(fast_config(), tmp_path):
        pass
    report = verify(tmp_path)
    assert report.ok, report.render()
    types = [r.type for r in await _records(tmp_path)]
    assert types.count("engine.start") == 2 and types.count("engine.stop") == 2


async def test_lifecycle_actions_and_allocations_are_recorded(tmp_path):
    async with Runtime.open(fast_config(), tmp_path) as rt:
        info = await rt.create_agent(agent("hello"))
        await rt.start_agent("hello")
        await rt.wait_for_state("hello", S.COMPLETED, timeout=20)
    records = await _records(tmp_path)
    mine = [(r.type, r.actor, r.action) for r in records if r.agent == info.id or r.resource == "hello"]
    assert ("agent.create", "operator", "create") in mine
    assert ("agent.start", "operator", "start") in mine
    assert ("resource.allocate", "engine", "allocate") in mine
    assert ("agent.state", "engine", "Running->Completed") in mine
    assert ("resource.release", "engine", "release") in mine
    create = next(r for r in records if r.type == "agent.create")
    assert "program_sha256" in create.details and "dsl_source" not in create.details
    assert verify(tmp_path).ok


async def test_when_the_audit_cannot_be_written_actions_do_not_happen(tmp_path):
    cfg = fast_config(audit={"busy_timeout": 0.2})
    async with Runtime.open(cfg, tmp_path) as rt:
        await rt.create_agent(agent("before"))
        # a real failure that works as root: another connection holds the write lock
        blocker = sqlite3.connect(tmp_path / "audit.db", timeout=0.1)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(SymbiError) as err:
                await rt.create_agent(agent("after"))
            assert err.value.code is ErrorCode.AUDIT_001
            with pytest.raises(SymbiError) as err:
                await rt.start_agent("before")
            assert err.value.code is ErrorCode.AUDIT_001
        finally:
            blocker.rollback()
            blocker.close()
        # the trail stays failed until reopened: still refused, nothing happened
        with pytest.raises(SymbiError):
            await rt.start_agent("before")
        assert [a.name for a in await rt.list_agents()] == ["before"]
        assert (await rt.get_agent("before")).state is S.CREATED
    # reopening recovers, and the chain of what did happen verifies
    async with Runtime.open(fast_config(), tmp_path) as rt:
        assert [a.name for a in await rt.list_agents()] == ["before"]
        await rt.start_agent("before")
        await rt.wait_for_state("before", S.COMPLETED, timeout=20)
    assert verify(tmp_path).ok


def test_symbiont_audit_verify_and_query_on_an_engine_data_dir(tmp_path):
    import asyncio

    async def run():
        async with Runtime.open(fast_config(), tmp_path) as rt:
            await rt.create_agent(agent("a1"))

    asyncio.run(run())
    ok = subprocess.run([sys.executable, "-m", "engine.cli", "--data-dir", str(tmp_path), "audit", "verify"],
                        cwd=ROOT, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    q = subprocess.run([sys.executable, "-m", "engine.cli", "--data-dir", str(tmp_path), "audit", "query",
                        "--type", "agent.create", "--json"], cwd=ROOT, capture_output=True, text=True)
    assert q.returncode == 0 and "a1" in q.stdout
    con = sqlite3.connect(tmp_path / "audit.db")
    con.execute("UPDATE events SET action = 'forged' WHERE type = 'agent.create'")
    con.commit()
    con.close()
    bad = subprocess.run([sys.executable, "-m", "engine.cli", "--data-dir", str(tmp_path), "audit", "verify"],
                         cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode == 1 and "modified" in bad.stdout + bad.stderr


async def _records(data_dir):
    from engine.audit import AuditReader

    async with AuditReader(data_dir) as reader:
        return await reader.query(limit=10_000)
