"""Bad input and failure around the context store: each a clear CTX_/VDB_/RAG_ error, nothing stored lost,
and the vector index rebuilt from the context store when it is lost."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine.errors import SymbiError
from engine.knowledge import (
    ContextStore,
    LanceVectorStore,
    RAGEngine,
    RAGRequest,
    default_embedder,
    move_aside,
)

FACTS = [
    "The release train leaves every second Thursday.",
    "Pager duty handovers happen at 09:00 on Mondays.",
    "The canteen closes at 14:30 on Fridays.",
]


@pytest.fixture(scope="module")
def emb():
    return default_embedder()


async def _open(path: Path, emb, **kw) -> ContextStore:
    return await ContextStore.open(path, embedder=emb, env={"SYMBIONT_VECTOR_BACKEND": "lancedb", **kw})


async def _seed(path: Path, emb) -> dict[str, str]:
    st = await _open(path, emb)
    ids = {f: (await st.put("a1", f)).id for f in FACTS}
    await st.close()
    return ids


async def test_missing_vector_store_is_rebuilt_from_the_context_store(tmp_path, emb):
    ids = await _seed(tmp_path, emb)
    shutil.rmtree(tmp_path / "vector_db")
    st = await _open(tmp_path, emb)
    assert st.vectors.count() == len(FACTS)
    hit = (await st.query("a1", "When is the pager handover?", limit=1))[0]
    assert hit.item.id == ids[FACTS[1]]
    await st.close()


async def test_corrupted_vector_store_is_vdb_003_then_moved_aside_and_rebuilt(tmp_path, emb):
    ids = await _seed(tmp_path, emb)
    for f in (tmp_path / "vector_db").rglob("*.manifest"):
        f.write_bytes(b"\x00garbage")
    with pytest.raises(SymbiError) as ei:
        await _open(tmp_path, emb)
    assert ei.value.code.value == "VDB_003" and "rebuild" in ei.value.hint
    move_aside(tmp_path / "vector_db")
    st = await _open(tmp_path, emb)  # the lock was released by the failed open; the index is refilled
    assert (await st.query("a1", "When does the canteen close?", limit=1))[0].item.id == ids[FACTS[2]]
    await st.close()


async def test_changed_vector_dimension_against_an_existing_table(tmp_path, emb):
    await _seed(tmp_path, emb)
    with pytest.raises(SymbiError) as ei:
        await _open(tmp_path, emb, SYMBIONT_VECTOR_DIMENSION="768")
    assert ei.value.code.value == "VDB_002" and "768" in ei.value.message and "384" in ei.value.message
    # nothing lost, and the store was not left locked
    st = await _open(tmp_path, emb)
    assert len(await st.list_items("a1")) == len(FACTS)
    await st.close()


async def test_embedder_width_differs_from_the_store(tmp_path, emb):
    class Wide:
        model_id, dim = "wide-model", 768

        def embed(self, texts):  # pragma: no cover - never reached
            raise AssertionError

    with pytest.raises(SymbiError) as ei:
        await ContextStore.open(tmp_path, embedder=Wide(), vectors=LanceVectorStore(tmp_path / "v", dim=384))
    assert ei.value.code.value == "VDB_002" and ei.value.offending == "wide-model"


async def test_corrupted_context_store_is_ctx_001_and_left_untouched(tmp_path, emb):
    await _seed(tmp_path, emb)
    db = tmp_path / "contexts" / "context.db"
    for extra in ("-wal", "-shm"):
        Path(str(db) + extra).unlink(missing_ok=True)
    garbage = b"this is not a database" * 100
    db.write_bytes(garbage)
    with pytest.raises(SymbiError) as ei:
        await _open(tmp_path, emb)
    assert ei.value.code.value == "CTX_001" and str(db) == ei.value.offending and "backup" in ei.value.hint
    assert db.read_bytes() == garbage


async def test_huge_empty_and_foreign_language_input(tmp_path, emb):
    st = await _open(tmp_path, emb)
    await st.put("a1", FACTS[0])
    with pytest.raises(SymbiError) as ei:
        await st.put("a1", "word " * 300_000)
    assert ei.value.code.value == "CTX_003" and "split" in ei.value.hint
    with pytest.raises(SymbiError) as ei:
        await st.put("a1", "\n\t ")
    assert ei.value.code.value == "CTX_003"
    with pytest.raises(SymbiError) as ei:
        await st.query("a1", "q" * 10_000)
    assert ei.value.code.value == "CTX_003"
    rag = RAGEngine(st)
    # another language: answered from what is there (or honestly nothing), not an error
    r = await rag.query(RAGRequest(query="Quand part le train de livraison ?", agent_id="a1", relevance_threshold=-1))
    assert r.sources and r.sources[0].content == FACTS[0]
    r = await rag.query(RAGRequest(query="列車はいつ出発しますか", agent_id="a1"))
    assert r.mode in ("none", "extractive")
    with pytest.raises(SymbiError) as ei:
        await rag.query(RAGRequest(query="", agent_id="a1"))
    assert ei.value.code.value == "RAG_003"
    assert [i.content for i in await st.list_items("a1")] == [FACTS[0]]  # nothing half-stored
    await st.close()
