"""Context items at rest: sealed (AES-256-GCM) and compressed in SQLite, no text in the
vector store, key file handling, plaintext rows from older data dirs, one engine per store."""

from __future__ import annotations

import base64
import json
import os
import sqlite3
from pathlib import Path

import pytest

from engine.config import RuntimeConfig
from engine.errors import SymbiError
from engine.knowledge import ContextSettings, ContextStore, LanceVectorStore, QdrantVectorStore, default_embedder

PLANTED = "The vault combination for the Zanzibar office is 4417-9932-ALPHA."
META = "Project Nightingale budget memo"


@pytest.fixture(scope="module")
def emb():
    return default_embedder()


async def _open(path: Path, emb, backend: str = "lancedb", **settings) -> ContextStore:
    vec = (LanceVectorStore(path / "vector_db", dim=384) if backend == "lancedb"
           else QdrantVectorStore(path=path / "vector_db_qdrant", dim=384))
    return await ContextStore.open(path, embedder=emb, vectors=vec, settings=ContextSettings(**settings))


def _files_containing(root: Path, needle: str) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and needle.encode() in p.read_bytes())


@pytest.mark.parametrize("backend", ["lancedb", "qdrant"])
async def test_no_file_of_the_data_dir_holds_the_planted_sentence(tmp_path, emb, backend):
    st = await _open(tmp_path, emb, backend)
    item = await st.put("a1", PLANTED, "long_term", {"title": META})
    await st.put("a1", "An unrelated note about lunch. " * 40, "working")  # compressible
    hits = await st.query("a1", "What is the vault combination?", limit=1)
    assert hits[0].item.content == PLANTED and hits[0].item.metadata == {"title": META}
    await st.close()
    assert _files_containing(tmp_path, PLANTED) == [] and _files_containing(tmp_path, META) == []
    assert _files_containing(tmp_path, "Zanzibar") == []
    st = await _open(tmp_path, emb, backend)  # reopened: still readable
    assert (await st.get("a1", item.id)).content == PLANTED
    await st.close()


async def test_the_grep_finds_plaintext_when_encryption_is_off(tmp_path, emb):
    """The check above can fail: with sealing off the sentence is on disk."""
    st = await _open(tmp_path, emb, encryption_required=False, compression=False)
    await st.put("a1", PLANTED)
    await st.close()
    assert any(f.endswith("context.db") or "context.db" in f for f in _files_containing(tmp_path, PLANTED))
    assert not any("vector_db" in f for f in _files_containing(tmp_path, PLANTED))  # never in the index


async def test_key_file_is_private_and_compression_shrinks_rows(tmp_path, emb):
    st = await _open(tmp_path, emb)
    text = "The same line repeated for compression. " * 200
    item = await st.put("a1", text)
    await st.close()
    key = tmp_path / "contexts" / "context.key"
    assert key.stat().st_mode & 0o777 == 0o600
    db = sqlite3.connect(tmp_path / "contexts" / "context.db")
    (blob,) = db.execute("SELECT content FROM items WHERE id = ?", (item.id,)).fetchone()
    db.close()
    assert isinstance(blob, bytes) and len(blob) < len(text) / 5


async def test_loose_missing_or_wrong_key_is_ctx_005_and_nothing_is_lost(tmp_path, emb):
    st = await _open(tmp_path, emb)
    item = await st.put("a1", PLANTED)
    await st.close()
    key = tmp_path / "contexts" / "context.key"
    good = key.read_bytes()

    key.chmod(0o644)
    with pytest.raises(SymbiError) as ei:
        await _open(tmp_path, emb)
    assert ei.value.code.value == "CTX_005" and str(key) in ei.value.message and "chmod" in ei.value.hint
    key.chmod(0o600)

    key.unlink()
    with pytest.raises(SymbiError) as ei:
        await _open(tmp_path, emb)
    assert ei.value.code.value == "CTX_005" and "missing" in ei.value.message and "backup" in ei.value.hint
    assert not key.exists()  # no fresh key that could read nothing

    key.write_bytes(base64.b64encode(os.urandom(32)) + b"\n")  # a well-formed key, but another one
    key.chmod(0o600)
    with pytest.raises(SymbiError) as ei:
        await _open(tmp_path, emb)
    assert ei.value.code.value == "CTX_005" and "not the key" in ei.value.message

    key.write_bytes(b"garbage")
    with pytest.raises(SymbiError) as ei:
        await _open(tmp_path, emb)
    assert ei.value.code.value == "CTX_005"

    key.write_bytes(good)  # restored from backup: everything is there
    st = await _open(tmp_path, emb)
    assert (await st.get("a1", item.id)).content == PLANTED
    await st.close()


async def test_plaintext_rows_from_an_older_data_dir_are_read_and_sealed(tmp_path, emb):
    st = await _open(tmp_path, emb, encryption_required=False, compression=False)
    old = await st.put("a1", PLANTED, "knowledge", {"title": META})
    await st.close()
    # an older version also kept a text copy in LanceDB
    lance = LanceVectorStore(tmp_path / "vector_db", dim=384)
    lance._tbl.update(where="true", values={"text": PLANTED})
    lance.close()
    assert _files_containing(tmp_path, PLANTED)

    st = await _open(tmp_path, emb)  # encryption required (the default)
    got = await st.get("a1", old.id)
    assert got.content == PLANTED and got.metadata == {"title": META}
    assert (await st.query("a1", "vault combination", limit=1))[0].item.id == old.id
    await st.close()
    assert _files_containing(tmp_path, PLANTED) == []


async def test_tampered_item_is_ctx_001_and_can_be_deleted(tmp_path, emb):
    st = await _open(tmp_path, emb)
    bad = await st.put("a1", "first item")
    good = await st.put("a1", "second item")
    st._db.execute("UPDATE items SET content = ? WHERE id = ?",
                   (st._db.execute("SELECT content FROM items WHERE id = ?", (good.id,)).fetchone()[0], bad.id))
    with pytest.raises(SymbiError) as ei:
        await st.get("a1", bad.id)  # another row's sealed value does not open here
    assert ei.value.code.value == "CTX_001" and ei.value.offending == bad.id
    assert (await st.get("a1", good.id)).content == "second item"
    await st.delete("a1", bad.id)
    assert [i.id for i in await st.list_items("a1")] == [good.id]
    await st.close()


async def test_a_second_engine_on_the_same_store_is_ctx_006(tmp_path, emb):
    st = await _open(tmp_path, emb)
    await st.put("a1", "held by the first engine")
    with pytest.raises(SymbiError) as ei:
        await ContextStore.open(tmp_path, embedder=emb, vectors=LanceVectorStore(tmp_path / "other_v", dim=384))
    assert ei.value.code.value == "CTX_006" and str(os.getpid()) in ei.value.message
    await st.close()
    st = await _open(tmp_path, emb)  # free again after close
    assert len(await st.list_items("a1")) == 1
    await st.close()


async def test_settings_come_from_the_config_sections(tmp_path, emb):
    cfg = RuntimeConfig.from_dict({
        "context": {"encryption_required": False, "compression": True, "max_context_size_mb": 0.5,
                    "on_size_limit": "prune", "max_item_bytes": "2KiB", "cleanup_interval": "10m"},
        "vector_db": {"index_threshold": 1000, "nprobes": 32, "refine_factor": 5, "index_type": "ivf_hnsw_sq"},
        "rag": {"max_results": 3, "relevance_threshold": 0.4, "hybrid_weight": 0.5, "llm_url": "http://x/v1"},
    })
    s = ContextSettings.from_config(cfg.context)
    assert (s.encryption_required, s.compression, s.max_context_size_mb, s.on_size_limit, s.max_item_bytes) == (
        False, True, 0.5, "prune", 2048)
    assert cfg.context.cleanup_interval == 600
    st = await ContextStore.open(tmp_path, context_cfg=cfg.context, vector_cfg=cfg.vector_db, embedder=emb)
    v = st.vectors
    assert (v.index_threshold, v.nprobes, v.refine_factor, v.index_type, v.auto_maintain) == (
        1000, 32, 5, "ivf_hnsw_sq", True)
    with pytest.raises(SymbiError) as ei:
        await st.put("a1", "x" * 3000)
    assert ei.value.code.value == "CTX_003"
    await st.close()
    from engine.knowledge import RAGConfig

    r = RAGConfig.from_config(cfg.rag, api_key="k")
    assert (r.max_results, r.relevance_threshold, r.hybrid_weight, r.llm_base_url, r.llm_api_key) == (
        3, 0.4, 0.5, "http://x/v1", "k")
    assert "llm_api_key" not in repr(r)  # never printed with the settings
    with pytest.raises(SymbiError) as ei:
        RuntimeConfig.from_dict({"context": {"on_size_limit": "explode"}})
    assert ei.value.code.value == "CONFIG_001"
    json.dumps(cfg.to_dict())
