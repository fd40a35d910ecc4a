"""RAG engine: extractive answers with citations, thresholds, timeouts, a generated answer via a stand-in LLM."""

from __future__ import annotations

import asyncio
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from engine.errors import SymbiError
from engine.knowledge import ContextStore, LanceVectorStore, RAGConfig, RAGEngine, RAGRequest, default_embedder

DOCS = {
    "tea": "Green tea is brewed at about 80 degrees Celsius. Boiling water makes it bitter. Steep it for two minutes.",
    "deploy": "Production deployments happen every Tuesday. They start only after the integration tests pass.",
    "backup": "Database backups run nightly at 02:00. Each backup is kept for 30 days.",
    "parking": "Visitors park in the underground garage on level minus two.",
}


@pytest.fixture
async def store(tmp_path):
    st = await ContextStore.open(tmp_path, embedder=default_embedder(), vectors=LanceVectorStore(tmp_path / "v", dim=384))
    st.keys = {}
    for k, text in DOCS.items():
        st.keys[k] = (await st.put("a1", text, "knowledge", {"source": f"{k}.md"})).id
    yield st
    await st.close()


async def test_extractive_answer_cites_the_right_source(store):
    rag = RAGEngine(store)
    r = await rag.query(RAGRequest(query="At what temperature should green tea be brewed?", agent_id="a1"))
    assert r.mode == "extractive"
    assert r.sources[0].item_id == store.keys["tea"]
    assert r.sources[0].metadata == {"source": "tea.md"}
    assert "80 degrees" in r.answer and "[1]" in r.answer
    cited = {int(n) for n in re.findall(r"\[(\d+)\]", r.answer)}
    assert cited <= {s.n for s in r.sources}
    assert all(0 < s.vector_score <= 1 and 0 <= s.lexical_score <= 1 for s in r.sources)
    assert [s.score for s in r.sources] == sorted((s.score for s in r.sources), reverse=True)
    assert r.timings_ms["total"] > 0
    json.dumps(r.to_dict())


async def test_threshold_filters_and_no_answer(store):
    rag = RAGEngine(store)
    r = await rag.query(RAGRequest(query="When are backups taken?", agent_id="a1", relevance_threshold=0.35))
    assert [s.item_id for s in r.sources] == [store.keys["backup"]]
    r = await rag.query(RAGRequest(query="Who won the football world cup in 1966?", agent_id="a1",
                                   relevance_threshold=0.4))
    assert r.sources == [] and r.mode == "none"
    r = await rag.query(RAGRequest(query="When are backups taken?", agent_id="a1", include_metadata=False,
                                   max_results=2, relevance_threshold=-1))
    assert len(r.sources) == 2 and r.sources[0].metadata is None


async def test_other_agents_private_knowledge_is_not_retrieved(store):
    r = await RAGEngine(store).query(RAGRequest(query="green tea temperature", agent_id="intruder",
                                                relevance_threshold=-1))
    assert r.sources == []


async def test_bad_requests(store):
    rag = RAGEngine(store)
    for req in (RAGRequest(query="", agent_id="a1"), RAGRequest(query="x" * 5000, agent_id="a1"),
                RAGRequest(query="ok", agent_id="a1", relevance_threshold=2.0),
                RAGRequest(query="ok", agent_id="a1", timeout=0), RAGRequest(query="ok", agent_id="")):
        with pytest.raises(SymbiError) as ei:
            await rag.query(req)
        assert ei.value.code.value == "RAG_003"


async def test_timeout_is_rag_004(store):
    class Slow:
        model_id, dim = "slow", 384

        def embed(self, texts):
            import time

            time.sleep(0.5)
            return default_embedder().embed(texts)

    store.embedder = Slow()
    with pytest.raises(SymbiError) as ei:
        await RAGEngine(store).query(RAGRequest(query="tea", agent_id="a1", timeout=0.1))
    assert ei.value.code.value == "RAG_004"
    await asyncio.sleep(0.5)  # let the worker thread finish before teardown


class _StandInLLM(BaseHTTPRequestHandler):
    """A stand-in for an OpenAI-compatible chat endpoint (not a model): echoes the first passage number."""

    seen: list = []

    def log_message(self, *a):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _StandInLLM.seen.append(body)
        user = body["messages"][-1]["content"]
        first = re.search(r"\[(\d+)\] ([^.]*)", user)
        data = json.dumps({"choices": [{"message": {"content": f"{first.group(2)} [{first.group(1)}]"}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


async def test_generated_answer_through_local_standin(store):
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _StandInLLM)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        cfg = RAGConfig(llm_base_url=f"http://127.0.0.1:{srv.server_address[1]}/v1", llm_model="stand-in")
        r = await RAGEngine(store, cfg).query(RAGRequest(query="Which day are production deployments?",
                                                         agent_id="a1"))
        assert r.mode == "generated" and r.answer.endswith("[1]") and "Tuesday" in r.answer
        assert r.sources[0].item_id == store.keys["deploy"]
        assert _StandInLLM.seen[-1]["model"] == "stand-in"
        bad = RAGEngine(store, RAGConfig(llm_base_url="http://127.0.0.1:1/v1", timeout=2))
        with pytest.raises(SymbiError) as ei:
            await bad.query(RAGRequest(query="deployments", agent_id="a1"))
        assert ei.value.code.value == "RAG_001"
    finally:
        srv.shutdown()
        srv.server_close()
