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
        assert [i.content for i in await store.list("a1")] == ["a note that stays"]


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
