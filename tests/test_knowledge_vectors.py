"""Vector stores: one suite, run against LanceDB and Qdrant's local mode."""

from __future__ import annotations

import numpy as np
import pytest

from engine.errors import SymbiError
from engine.knowledge import LanceVectorStore, QdrantVectorStore, open_vector_store

DIM = 16


def _make(backend, path, dim=DIM):
    if backend == "lancedb":
        return LanceVectorStore(path / "lance", dim=dim, index_threshold=300)
    return QdrantVectorStore(path=path / "qdrant", dim=dim)


@pytest.fixture(params=["lancedb", "qdrant"])
def backend(request):
    return request.param


def _unit(rng, n, dim=DIM):
    v = rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_add_search_filter_delete_count(backend, tmp_path):
    s = _make(backend, tmp_path)
    rng = np.random.default_rng(1)
    v = _unit(rng, 20)
    meta = [{"agent_id": f"a{i % 2}", "kind": "knowledge" if i < 10 else "working", "shared": i == 15,
             "text": f"doc {i}", "source": f"s{i}"} for i in range(20)]
    s.add([f"id{i}" for i in range(20)], v, meta)
    assert s.count() == 20
    hits = s.search(v[3], 5)
    assert hits[0].id == "id3" and hits[0].score == pytest.approx(1.0, abs=1e-4)
    assert hits[0].metadata["source"] == "s3" and hits[0].metadata["text"] == "doc 3"
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    only_a0 = s.search(v[3], 20, {"agent_id": "a0"})
    assert only_a0 and all(h.metadata["agent_id"] == "a0" for h in only_a0)
    mixed = s.search(v[3], 20, {"$or": [{"agent_id": "a0"}, {"shared": True}], "kind": ["working"]})
    assert {h.id for h in mixed} == {f"id{i}" for i in range(10, 20) if i % 2 == 0 or i == 15}
    # upsert replaces
    s.add(["id3"], v[4:5], [{"agent_id": "a1", "text": "moved"}])
    assert s.count() == 20
    assert s.search(v[4], 2, {"agent_id": "a1"})[0].id in {"id3", "id4"}
    s.delete(["id3", "id4", "missing"])
    assert s.count() == 18
    assert all(h.id not in {"id3", "id4"} for h in s.search(v[3], 20))
    s.close()


def test_wrong_dimension_and_bad_vectors(backend, tmp_path):
    s = _make(backend, tmp_path)
    with pytest.raises(SymbiError) as ei:
        s.add(["x"], np.ones((1, DIM + 1), np.float32))
    assert ei.value.code.value == "VDB_002"
    with pytest.raises(SymbiError) as ei:
        s.search(np.ones(DIM - 1, np.float32), 3)
    assert ei.value.code.value == "VDB_002"
    with pytest.raises(SymbiError) as ei:
        s.add(["x"], np.full((1, DIM), np.nan, np.float32))
    assert ei.value.code.value == "VDB_002"
    with pytest.raises(SymbiError) as ei:
        s.search(np.ones(DIM, np.float32), 3, {"content; DROP": 1})
    assert ei.value.code.value == "VDB_001"
    assert s.count() == 0


def test_reopen_keeps_data_and_rejects_changed_dimension(backend, tmp_path):
    s = _make(backend, tmp_path)
    s.add(["a", "b"], _unit(np.random.default_rng(2), 2), [{"text": "x'y"}, {}])
    s.close()
    s2 = _make(backend, tmp_path)
    assert s2.count() == 2
    s2.close()
    with pytest.raises(SymbiError) as ei:
        _make(backend, tmp_path, dim=DIM * 2)
    assert ei.value.code.value == "VDB_002"


def test_lance_corrupted_dir_is_vdb_003(tmp_path):
    s = LanceVectorStore(tmp_path / "v", dim=DIM)
    s.add(["a"], _unit(np.random.default_rng(3), 1))
    s.close()
    for f in (tmp_path / "v").rglob("*.manifest"):
        f.write_bytes(b"garbage")
    with pytest.raises(SymbiError) as ei:
        LanceVectorStore(tmp_path / "v", dim=DIM)
    assert ei.value.code.value == "VDB_003"


def test_lance_builds_index_past_threshold_and_keeps_recall(tmp_path):
    s = LanceVectorStore(tmp_path / "v", dim=DIM, index_threshold=300, nprobes=64, refine_factor=10)
    rng = np.random.default_rng(4)
    v = _unit(rng, 400)
    s.add([str(i) for i in range(400)], v, upsert=False)
    assert s.needs_index()
    assert s.ensure_index()
    assert s.is_indexed() and not s.needs_index()
    found = sum(s.search(v[i], 1)[0].id == str(i) for i in range(0, 400, 20))
    assert found >= 18


def test_qdrant_local_mode_second_opener_is_refused(tmp_path):
    s = QdrantVectorStore(path=tmp_path / "q", dim=DIM)
    with pytest.raises(SymbiError) as ei:
        QdrantVectorStore(path=tmp_path / "q", dim=DIM)
    assert ei.value.code.value in ("VDB_004", "VDB_003")
    s.close()


def test_open_vector_store_honours_env(tmp_path):
    s = open_vector_store(tmp_path, None, env={"SYMBIONT_VECTOR_BACKEND": "qdrant", "SYMBIONT_VECTOR_DIMENSION": "8"})
    assert s.backend == "qdrant" and s.dim == 8
    s.close()
    s = open_vector_store(tmp_path, None, env={"SYMBIONT_VECTOR_DATA_PATH": str(tmp_path / "elsewhere")})
    assert s.backend == "lancedb" and (tmp_path / "elsewhere").is_dir()
    with pytest.raises(SymbiError) as ei:
        open_vector_store(tmp_path, None, env={"SYMBIONT_VECTOR_BACKEND": "noop"})
    assert ei.value.code.value == "VDB_001"


def test_lance_auto_maintenance_builds_the_index_in_the_background(tmp_path):
    s = LanceVectorStore(tmp_path / "v", dim=DIM, index_threshold=300, auto_maintain=True, optimize_every=3)
    rng = np.random.default_rng(5)
    v = _unit(rng, 500)
    s.add([str(i) for i in range(200)], v[:200], upsert=False)
    assert not s.is_indexed() and s.wait_for_maintenance(30)
    s.add([str(i) for i in range(200, 400)], v[200:400], upsert=False)  # past the threshold: a build starts
    # adds and searches go on whether or not the build is still running
    s.add([str(i) for i in range(400, 500)], v[400:], upsert=False)
    assert s.search(v[450], 1)[0].id == "450"
    assert s.wait_for_maintenance(60) and s.last_maintenance_error is None
    assert s.is_indexed() and s.count() == 500
    # rows added after the build are found (scanned exactly until the next optimize folds them in)
    assert sum(s.search(v[i], 1)[0].id == str(i) for i in range(400, 500, 10)) >= 9
    for _ in range(3):  # optimize_every writes: an incremental optimize runs in the background
        s.add(["late"], _unit(rng, 1))
    assert s.wait_for_maintenance(60) and s.last_maintenance_error is None
    assert s.count() == 501
    s.close()
    s2 = LanceVectorStore(tmp_path / "v", dim=DIM)
    assert s2.is_indexed()  # the index is on disk
    s2.close()


def test_index_build_does_not_write_warnings_to_the_terminal(tmp_path):
    """LanceDB's Rust warnings go to fd 2 (over the console's screen); the engine keeps them off."""
    import subprocess
    import sys

    code = (
        "import numpy as np\n"
        "from engine.knowledge.vectors import LanceVectorStore\n"
        f"s = LanceVectorStore({str(tmp_path / 'v')!r}, dim=16, index_threshold=256)\n"
        "v = np.ones((600, 16), dtype='float32')\n"
        "s.add([f'i{i}' for i in range(600)], v)\n"
        "assert s.ensure_index(force=True)\n"
        "print('built')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={k: v for k, v in __import__("os").environ.items() if k != "LANCEDB_LOG"})
    assert out.returncode == 0 and "built" in out.stdout, out.stderr
    assert "WARN" not in out.stderr, out.stderr
