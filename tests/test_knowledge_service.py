"""The runtime's knowledge service: [rag] settings and the API key from the vault (audited, never
from the config file), the periodic cleanup task, vector search switched off by configuration."""

from __future__ import annotations

import asyncio

import pytest

from engine.errors import SymbiError
from engine.runtime import Runtime
from tests.helpers import fast_config


async def test_rag_engine_from_config_with_the_key_from_the_vault(tmp_path, monkeypatch):
    monkeypatch.delenv("SYMBIONT_RAG_API_KEY", raising=False)
    cfg = fast_config(rag={"max_results": 2, "relevance_threshold": 0.1, "llm_url": "http://127.0.0.1:9/v1",
                           "llm_model": "local", "llm_api_key_secret": "rag/api_key"})
    async with Runtime.open(cfg, tmp_path / "data") as rt:
        await rt.secrets.set("rag/api_key", "sk-test-4242-not-real")
        rag = await rt.knowledge.rag()
        c = rag.config
        assert (c.max_results, c.relevance_threshold, c.llm_base_url, c.llm_model) == (2, 0.1, "http://127.0.0.1:9/v1",
                                                                                       "local")
        assert c.llm_api_key == "sk-test-4242-not-real" and "sk-test" not in repr(c)
        events = await rt.audit.query(types="secret.read", actor="engine:rag")
        assert [(e.action, e.resource) for e in events] == [("use", "rag/api_key")]
        assert all("sk-test" not in str(e.details) for e in events)
        monkeypatch.setenv("SYMBIONT_RAG_API_KEY", "sk-from-env")
        assert (await rt.knowledge.rag()).config.llm_api_key == "sk-from-env"


async def test_cleanup_task_drops_expired_items(tmp_path):
    async with Runtime.open(fast_config(context={"cleanup_interval": 1.0}), tmp_path / "data") as rt:
        store = await rt.knowledge.store()
        await store.put("a1", "a note that lives half a second", "working", ttl=0.5)
        await store.put("a1", "a note that stays", "long_term")
        assert sum((await store.usage("a1"))["items"].values()) == 2
        async with asyncio.timeout(10):
            while sum((await store.usage("a1"))["items"].values()) != 1:
                await asyncio.sleep(0.1)
        assert [i.content for i in await store.list_items("a1")] == ["a note that stays"]


async def test_vector_search_switched_off(tmp_path):
    async with Runtime.open(fast_config(context={"enable_vector_db": False}), tmp_path / "data") as rt:
        store = await rt.knowledge.store()
        assert store.vectors is None
        item = await store.put("a1", "stored without an index")
        assert (await store.get("a1", item.id)).content == "stored without an index"
        with pytest.raises(SymbiError) as ei:
            await store.query("a1", "index")
        assert ei.value.code.value == "VDB_001" and "enable_vector_db" in ei.value.hint
    assert not (tmp_path / "data" / "vector_db").exists()


async def test_agents_start_cleanly_once_lancedb_is_loaded(tmp_path, capfd):
    """LanceDB registers a fork hook that restarts its runtime thread in a forked child and warns
    (on the engine's stderr, before the child's output is redirected) of a deadlock risk. Agents
    start through an exec wrapper (no Python between fork and exec in the engine), so the hook
    never runs: no warning on the console's terminal or in the agent's log; the store still works."""
    import os
    import warnings

    from engine.agents.model import AgentState
    from tests.helpers import agent

    def to_stderr(message, category, filename, lineno, file=None, line=None):  # as outside pytest
        os.write(2, f"{category.__name__}: {message}\n".encode())

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = to_stderr
        await _start_agent_after_lance(tmp_path, agent, AgentState)
    assert "fork support" not in capfd.readouterr().err


async def _start_agent_after_lance(tmp_path, agent, AgentState):
    async with Runtime.open(fast_config(), tmp_path / "data") as rt:
        store = await rt.knowledge.store()
        await store.put("a1", "the engine has LanceDB loaded now")
        await rt.create_agent(agent("after-lance"))
        await rt.start_agent("after-lance")
        info = await rt.wait_for_state("after-lance", AgentState.COMPLETED, AgentState.FAILED, timeout=30)
        logs = "\n".join(await rt.agent_logs("after-lance"))
        assert info.state is AgentState.COMPLETED, logs
        assert "fork" not in logs.lower(), logs
        assert [h.item.content for h in await store.query("a1", "which database is loaded")] == [
            "the engine has LanceDB loaded now"
        ]
