"""Context store: real SQLite, real LanceDB / Qdrant local mode, real MiniLM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.clock import FakeClock
from engine.errors import SymbiError
from engine.knowledge import (
    ContextSettings,
    ContextStore,
    LanceVectorStore,
    QdrantVectorStore,
    default_embedder,
    move_aside,
)

ROOT = Path(__file__).resolve().parents[1]

CORPUS = {
    "pw": "To reset your password, open Settings, choose Security and click 'Forgot password'.",
    "tea": "Green tea should be brewed at about 80 degrees Celsius for two to three minutes.",
    "deploy": "Deployments to production run every Tuesday after the integration tests pass.",
    "vacation": "Employees get 25 days of paid vacation per year, plus public holidays.",
    "gpu": "The training cluster has eight GPUs per node connected with NVLink.",
    "refund": "Refunds are issued to the original payment method within 14 days.",
    "parking": "Visitors can park in the underground garage on level minus two.",
    "backup": "Database backups are taken nightly at 02:00 and kept for 30 days.",
}
QUERIES = [
    ("How can I change my login password?", "pw"),
    ("What temperature for making green tea?", "tea"),
    ("When do we ship releases to prod?", "deploy"),
    ("How many holiday days do staff have?", "vacation"),
    ("How many graphics cards per machine?", "gpu"),
    ("How do I get my money back?", "refund"),
    ("Where should guests leave their car?", "parking"),
    ("How often is the database backed up?", "backup"),
]


@pytest.fixture(scope="session")
def emb():
    return default_embedder()


@pytest.fixture(params=["lancedb", "qdrant"])
async def store(request, tmp_path, emb):
    s = await _open(request.param, tmp_path, emb)
    yield s
    await s.close()


async def _open(backend, path, emb, settings=None, clock=None):
    vec = (LanceVectorStore(path / "vector_db", dim=384) if backend == "lancedb"
           else QdrantVectorStore(path=path / "vector_db_qdrant", dim=384))
    return await ContextStore.open(path, embedder=emb, vectors=vec, settings=settings, clock=clock)


async def _load_corpus(store, agent="a1"):
    ids = {}
    for key, text in CORPUS.items():
        ids[key] = (await store.put(agent, text, "knowledge", {"key": key})).id
    return ids


async def test_put_query_round_trip_and_quality(store):
    ids = await _load_corpus(store)
    top1 = 0
    for q, key in QUERIES:
        hits = await store.query("a1", q, limit=3)
        got = [h.item.id for h in hits]
        assert ids[key] in got, (q, [h.item.metadata for h in hits])
        top1 += got[0] == ids[key]
        assert hits[0].item.content == CORPUS[key] or ids[key] in got
        assert all(h.item.metadata["key"] for h in hits)
    assert top1 >= 6


async def test_filters_by_kind(store):
    await store.put("a1", "The meeting with Alice is at 3pm tomorrow.", "short_term")
    await store.put("a1", "Alice's meeting notes: budget approved.", "knowledge")
    hits = await store.query("a1", "meeting with Alice", kinds=["short_term"])
    assert [h.item.kind for h in hits] == ["short_term"]
    with pytest.raises(SymbiError) as ei:
        await store.query("a1", "x", kinds=["bogus"])
    assert ei.value.code.value == "CTX_003"


async def test_privacy_and_sharing(store):
    secret = await store.put("b", "Agent B's private API rollout plan for the payments service.", "knowledge")
    public = await store.put("b", "The payments service is owned by the fintech team.", "knowledge", share_with=["*"])
    only_c = await store.put("b", "Payments on-call rotation: Carol this week.", "knowledge", share_with=["c"])
    seen_a = {h.item.id for h in await store.query("a", "payments service", limit=10)}
    assert secret.id not in seen_a and only_c.id not in seen_a and public.id in seen_a
    seen_c = {h.item.id for h in await store.query("c", "payments service", limit=10)}
    assert only_c.id in seen_c and secret.id not in seen_c
    assert {h.item.id for h in await store.query("a", "payments", include_shared=False)} == set()
    with pytest.raises(SymbiError) as ei:
        await store.get("a", secret.id)
    assert ei.value.code.value == "CTX_004"
    with pytest.raises(SymbiError):
        await store.delete("a", public.id)  # grantee cannot delete
    await store.share("b", secret.id, ["a"])
    assert secret.id in {h.item.id for h in await store.query("a", "payments rollout plan", limit=10)}
    await store.share("b", secret.id, ["a"], revoke=True)
    assert secret.id not in {h.item.id for h in await store.query("a", "payments rollout plan", limit=10)}
    assert {i.id for i in await store.list_items("a", include_shared=True)} == {public.id}


async def test_delete_and_list(store):
    a = await store.put("a1", "first memory", "working")
    b = await store.put("a1", "second memory", "long_term", {"x": 1})
    assert [i.id for i in await store.list_items("a1")] == [b.id, a.id]
    assert [i.id for i in await store.list_items("a1", ["working"])] == [a.id]
    await store.delete("a1", a.id)
    assert [i.id for i in await store.list_items("a1")] == [b.id]
    assert a.id not in {h.item.id for h in await store.query("a1", "first memory")}
    assert store.vectors.count() == 1
    with pytest.raises(SymbiError) as ei:
        await store.delete("a1", a.id)
    assert ei.value.code.value == "CTX_004"


async def test_bad_input_leaves_nothing(store):
    for content in ("", "   ", None):
        with pytest.raises(SymbiError) as ei:
            await store.put("a1", content)  # type: ignore[arg-type]
        assert ei.value.code.value == "CTX_003"
    with pytest.raises(SymbiError) as ei:
        await store.put("a1", "x" * 2_000_000)
    assert ei.value.code.value == "CTX_003" and "limit" in ei.value.message
    with pytest.raises(SymbiError):
        await store.put("a1", "x", "nonsense-kind")
    with pytest.raises(SymbiError):
        await store.put("", "x")
    with pytest.raises(SymbiError):
        await store.put("a1", "x", metadata={"bad": object()})
    with pytest.raises(SymbiError):
        await store.query("a1", "")
    assert await store.list_items("a1") == [] and store.vectors.count() == 0
    # a query in another language is answered (low scores), not an error
    await store.put("a1", "The invoice is due at the end of the month.")
    hits = await store.query("a1", "¿Cuándo vence la factura?")
    assert len(hits) == 1


async def test_retention_expires_items(tmp_path, emb):
    clock = FakeClock()
    st = await _open("lancedb", tmp_path, emb, clock=clock,
                     settings=ContextSettings(retention={"working": 60.0, "long_term": None, "knowledge": 3600.0,
                                                         "conversation": 60.0, "short_term": 600.0}))
    w = await st.put("a1", "scratch note about the build", "working")
    k = await st.put("a1", "the build uses make", "knowledge")
    clock._now += 120
    assert [i.id for i in await st.list_items("a1")] == [k.id]
    assert w.id not in {h.item.id for h in await st.query("a1", "build")}
    assert await st.cleanup() == 1
    assert st.vectors.count() == 1
    await st.close()


async def test_size_limit_error_names_agent_and_size(tmp_path, emb):
    st = await _open("lancedb", tmp_path, emb, settings=ContextSettings(max_context_size_mb=0.01))
    await st.put("agent-x", "a" * 6000)
    with pytest.raises(SymbiError) as ei:
        await st.put("agent-x", "b" * 6000)
    err = ei.value
    assert err.code.value == "CTX_002" and "agent-x" in err.message and "MB" in err.message
    assert len(await st.list_items("agent-x")) == 1 and st.vectors.count() == 1
    await st.put("agent-y", "b" * 6000)  # per agent
    await st.close()


async def test_size_limit_prunes_per_retention_priority(tmp_path, emb):
    st = await _open("lancedb", tmp_path, emb, settings=ContextSettings(max_context_size_mb=0.01, on_size_limit="prune"))
    keep = await st.put("a", "k" * 3000, "long_term")
    drop = await st.put("a", "w" * 3000, "working")
    drop2 = await st.put("a", "c" * 3000, "conversation")
    new = await st.put("a", "n" * 3000, "knowledge")
    ids = {i.id for i in await st.list_items("a")}
    assert keep.id in ids and new.id in ids and drop.id not in ids
    assert drop2.id in ids or len(ids) == 2
    await st.query("a", "anything")  # flushes pending vector deletes
    assert st.vectors.count() == len(ids)
    await st.close()


async def test_item_count_limit(tmp_path, emb):
    st = await _open("lancedb", tmp_path, emb, settings=ContextSettings(max_knowledge_items_per_agent=2))
    await st.put("a", "one fact")
    await st.put("a", "two facts")
    await st.put("a", "a memory", "short_term")  # memory items are counted separately
    with pytest.raises(SymbiError) as ei:
        await st.put("a", "three facts")
    assert ei.value.code.value == "CTX_002"
    await st.close()


async def test_restart_and_rebuild_after_corrupted_vector_dir(tmp_path, emb):
    st = await _open("lancedb", tmp_path, emb)
    ids = await _load_corpus(st)
    await st.close()
    st = await _open("lancedb", tmp_path, emb)
    assert (await st.query("a1", QUERIES[0][0], limit=3))[0].item.id == ids["pw"]
    await st.close()
    for f in (tmp_path / "vector_db").rglob("*.manifest"):
        f.write_bytes(b"garbage")
    with pytest.raises(SymbiError) as ei:
        await _open("lancedb", tmp_path, emb)
    assert ei.value.code.value == "VDB_003"
    broken = move_aside(tmp_path / "vector_db")
    assert broken.exists()
    st = await _open("lancedb", tmp_path, emb)  # fresh, empty index: reconcile is told to rebuild
    assert await st.rebuild_vectors() == len(CORPUS)
    assert (await st.query("a1", QUERIES[1][0], limit=3))[0].item.id == ids["tea"]
    await st.close()


async def test_changed_dimension_against_existing_table(tmp_path, emb):
    st = await _open("lancedb", tmp_path, emb)
    await st.put("a", "hello")
    await st.close()
    with pytest.raises(SymbiError) as ei:
        LanceVectorStore(tmp_path / "vector_db", dim=768)
    assert ei.value.code.value == "VDB_002"


WRITER = r"""
import asyncio, sys
sys.path.insert(0, {root!r})
from engine.knowledge import ContextStore
async def main():
    st = await ContextStore.open({data!r}, env={{"SYMBIONT_VECTOR_BACKEND": "lancedb"}})
    i = 0
    while True:
        item = await st.put("w", f"fact number {{i}} about the writer process", "knowledge", {{"i": i}})
        print(item.id, flush=True)
        i += 1
asyncio.run(main())
"""


async def test_survives_sigkill_of_a_writer(tmp_path, emb):
    proc = subprocess.Popen([sys.executable, "-c", WRITER.format(root=str(ROOT), data=str(tmp_path))],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    acked: list[str] = []
    deadline = time.monotonic() + 30
    while len(acked) < 15 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        acked.append(line.strip())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(acked) >= 15, proc.stderr.read()[-2000:]
    st = await ContextStore.open(tmp_path, embedder=emb, env={"SYMBIONT_VECTOR_BACKEND": "lancedb"})
    stored = {i.id for i in await st.list_items("w", limit=10_000)}
    assert set(acked) <= stored
    assert st.vectors.count() >= len(stored)  # reconcile indexed anything the kill left behind
    hits = await st.query("w", "fact number 3 about the writer process", limit=len(stored))
    assert set(acked) <= {h.item.id for h in hits}
    json.dumps([h.to_dict() for h in hits[:2]])
    await st.close()
