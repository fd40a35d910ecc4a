"""Knowledge benchmarks: embeddings, vector search (latency beside recall), context retrieval, RAG.

Run ``python benchmarks/bench_knowledge.py`` (about 5 minutes: most of it is
two IVF_PQ index builds at 100k vectors) or ``--big`` to add 1M vectors (about
5 more minutes, ~4 GB of memory). :func:`run` returns rows ``(name, value,
unit, seed's claim)``.

Vector search uses synthetic 384-d unit vectors of two kinds, each row says
which: *clustered* (1000 Gaussian clusters, like real sentence embeddings, which
gather by topic) and *random* (uniform on the sphere: every neighbour is almost
equally far, the worst case for any ANN index). Queries are stored vectors
plus a little noise; recall@10 is measured against an exact numpy scan, and is
always printed beside the latency it was measured at. The context and RAG rows
go through the real store (MiniLM, SQLite with items sealed by AES-256-GCM,
LanceDB).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from engine.knowledge import (  # noqa: E402
    ContextStore,
    LanceVectorStore,
    RAGEngine,
    RAGRequest,
    default_embedder,
)

Row = tuple[str, float, str, str]
DIM = 384

_TOPICS = ["database backups", "green tea", "deployment schedule", "GPU cluster", "vacation policy", "refunds",
           "parking", "password reset", "on-call rotation", "office plants", "API rate limits", "log retention"]
_VERBS = ["is documented in", "was changed by", "depends on", "is reviewed with", "is unrelated to", "affects"]


def _sentences(n: int) -> list[str]:
    rng = np.random.default_rng(0)
    return [f"Note {i}: the {rng.choice(_TOPICS)} {rng.choice(_VERBS)} the {rng.choice(_TOPICS)} "
            f"team's plan for week {int(rng.integers(1, 52))}." for i in range(n)]


def _pct(xs: list[float], p: float) -> float:
    return float(np.percentile(np.asarray(xs), p))


def bench_embeddings(n: int = 1024) -> list[Row]:
    t = time.perf_counter()
    emb = default_embedder()
    load = time.perf_counter() - t
    texts = _sentences(n)
    emb.embed(texts[:32])
    t = time.perf_counter()
    emb.embed(texts)
    rate = n / (time.perf_counter() - t)
    one = [_timed(lambda: emb.embed(["How often are database backups taken?"])) for _ in range(50)]
    return [("embedding model load (MiniLM int8 ONNX)", load * 1e3, "ms", "-"),
            ("embedding throughput (batch 64)", rate, "sent/s", "-"),
            ("embed one query p50", statistics.median(one) * 1e3, "ms", "-")]


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _vectors(n: int, kind: str, rng: np.random.Generator) -> np.ndarray:
    if kind == "random":
        vecs = rng.standard_normal((n, DIM), dtype=np.float32)
    else:
        centres = rng.standard_normal((1000, DIM), dtype=np.float32)
        vecs = centres[rng.integers(0, 1000, n)]
        for s in range(0, n, 100_000):  # in place, in slices: keeps the peak memory down at 1M
            vecs[s : s + 100_000] += 0.6 * rng.standard_normal((min(n, s + 100_000) - s, DIM), dtype=np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    return vecs


#: (nprobes, refine_factor) settings measured after the index is built; the first is the default.
SETTINGS = ((128, 20), (64, 10), (20, 1))


def bench_vector_search(n: int, kind: str = "clustered", queries: int = 100) -> list[Row]:
    rng = np.random.default_rng(42)
    vecs = _vectors(n, kind, rng)
    qs = vecs[rng.choice(n, queries, replace=False)] + 0.05 * rng.standard_normal((queries, DIM), dtype=np.float32)
    qs /= np.linalg.norm(qs, axis=1, keepdims=True)
    truth = [set(np.argpartition(-(vecs @ q), 10)[:10].tolist()) for q in qs]
    label = (f"{n // 1000}k" if n < 1_000_000 else f"{n // 1_000_000}M") + f" {kind}"
    rows: list[Row] = []
    claim = "<100 ms (1M+)"
    with tempfile.TemporaryDirectory() as d:
        store = LanceVectorStore(Path(d) / "v", dim=DIM, index_threshold=n)
        t = time.perf_counter()
        for s in range(0, n, 50_000):
            store.add([str(i) for i in range(s, min(n, s + 50_000))], vecs[s : s + 50_000], upsert=False)
        rows.append((f"insert {label} vectors", time.perf_counter() - t, "s", "-"))

        def measure(tag: str) -> None:
            lat, rec = [], []
            for q, tr in zip(qs, truth, strict=True):
                t0 = time.perf_counter()
                hits = store.search(q, 10)
                lat.append((time.perf_counter() - t0) * 1e3)
                rec.append(len(tr & {int(h.id) for h in hits}) / 10)
            rows.append((f"search {label} {tag} p50", _pct(lat, 50), "ms", claim))
            rows.append((f"search {label} {tag} p95", _pct(lat, 95), "ms", claim))
            rows.append((f"search {label} {tag} recall@10", float(np.mean(rec)), "ratio", "-"))

        if n <= 100_000:
            measure("exact scan (no index)")
        t = time.perf_counter()
        store.ensure_index()
        rows.append((f"IVF_PQ index build {label}", time.perf_counter() - t, "s", "-"))
        for nprobes, refine in SETTINGS:
            store.nprobes, store.refine_factor = nprobes, refine
            measure(f"IVF_PQ nprobes={nprobes} refine={refine}")
        store.close()
    return rows


async def _context_and_rag(n_items: int = 1000, queries: int = 50) -> list[Row]:
    emb = default_embedder()
    texts = _sentences(n_items)
    with tempfile.TemporaryDirectory() as d:
        # as the engine opens it: encryption on, background compaction every 100 writes
        st = await ContextStore.open(d, embedder=emb, vectors=LanceVectorStore(Path(d) / "v", dim=DIM,
                                                                                auto_maintain=True))
        put_lat = []
        for t in texts:
            t0 = time.perf_counter()
            await st.put("bench", t, "knowledge")
            put_lat.append((time.perf_counter() - t0) * 1e3)
        st.vectors.wait_for_maintenance(60)
        qtexts = [f"What about the {_TOPICS[i % len(_TOPICS)]} plan?" for i in range(queries)]
        lat = []
        for q in qtexts:
            t0 = time.perf_counter()
            await st.query("bench", q, limit=5)
            lat.append((time.perf_counter() - t0) * 1e3)
        rag = RAGEngine(st)
        rlat = []
        for q in qtexts:
            t0 = time.perf_counter()
            await rag.query(RAGRequest(query=q, agent_id="bench", relevance_threshold=0.0))
            rlat.append((time.perf_counter() - t0) * 1e3)
        await st.close()
    return [
        ("context put (embed + seal + SQLite + LanceDB) p50", _pct(put_lat, 50), "ms", "-"),
        ("context put (embed + seal + SQLite + LanceDB) p95", _pct(put_lat, 95), "ms", "-"),
        (f"context query {n_items} items p50", _pct(lat, 50), "ms", "<50 ms"),
        (f"context query {n_items} items p95", _pct(lat, 95), "ms", "<50 ms"),
        ("RAG extractive end-to-end p50", _pct(rlat, 50), "ms", "<500 ms"),
        ("RAG extractive end-to-end p95", _pct(rlat, 95), "ms", "<500 ms"),
    ]


def run(big: bool = False) -> list[Row]:
    rows = bench_embeddings()
    rows += asyncio.run(_context_and_rag())
    rows += bench_vector_search(100_000, "clustered")
    rows += bench_vector_search(100_000, "random")
    if big:
        rows += bench_vector_search(1_000_000, "clustered")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--big", action="store_true", help="also 1M vectors (about 5 more minutes, ~4 GB)")
    args = ap.parse_args()
    print(f"| {'measure':<52} | {'value':>10} | {'unit':<6} | {'seed claim':<14} |")
    print(f"|{'-' * 54}|{'-' * 12}|{'-' * 8}|{'-' * 16}|")
    for name, value, unit, claim in run(big=args.big):
        print(f"| {name:<52} | {value:>10.3f} | {unit:<6} | {claim:<14} |", flush=True)


if __name__ == "__main__":
    main()
