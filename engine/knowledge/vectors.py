"""Vector stores: the :class:`VectorStore` interface, LanceDB and Qdrant backends.

A store holds rows of ``id``, a unit vector and a fixed set of filterable
fields (:data:`FIELDS`: ``agent_id``, ``kind``, ``shared``, ``created_at``,
``text``); any other metadata rides along as JSON. Scores are cosine
similarities (higher is better, 1.0 = same direction).

Filters are small dicts, the same for both backends::

    {"agent_id": "a1"}                        # equality
    {"kind": ["knowledge", "long_term"]}      # IN
    {"$or": [{"agent_id": "a1"}, {"shared": True}], "kind": "knowledge"}

The store is an index, not the source of truth: the context store (SQLite)
can rebuild it (:meth:`ContextStore.rebuild_vectors`). The context store
leaves ``text`` empty: content is kept sealed in SQLite, never here.

LanceDB maintenance runs in one background thread at a time, never blocking
adds or searches: past ``index_threshold`` rows it builds the ANN index, and
after every ``optimize_every`` writes it compacts the fragments and folds new
rows into the index incrementally (rows not yet in the index are still found:
LanceDB scans them exactly).
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import uuid
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

import numpy as np

from engine.errors import ErrorCode, SymbiError

if TYPE_CHECKING:
    from lancedb.query import LanceVectorQueryBuilder
    from qdrant_client import models as qdrant_models

# LanceDB's Rust core logs warnings (e.g. "KMeans: more than 10% of clusters are empty" during an
# index build) straight to file descriptor 2, where they would scribble over the console's
# screen. Errors still show; LANCEDB_LOG set by the operator wins. Read when lancedb loads.
os.environ.setdefault("LANCEDB_LOG", "error")

FIELDS: dict[str, type] = {"agent_id": str, "kind": str, "shared": bool, "created_at": float, "text": str}
DEFAULT_INDEX_THRESHOLD = 50_000
INDEX_TYPES = ("ivf_pq", "ivf_hnsw_sq")
# Tuned on 100k and 1M clustered 384-d vectors (benchmarks/bench_knowledge.py): recall@10 1.0 at 100k, 0.93 at 1M,
# p50 14-18 ms on 2 cores; nprobes=64 refine=10 gave 0.82 at 1M.
DEFAULT_INDEX_TYPE = "ivf_pq"
DEFAULT_NPROBES = 128
DEFAULT_REFINE_FACTOR = 20
DEFAULT_OPTIMIZE_EVERY = 100
log = logging.getLogger(__name__)


@dataclass
class VectorHit:
    id: str
    score: float
    metadata: dict[str, Any] = field(default_factory=dict)


class VectorStore(Protocol):
    """What the context store and RAG engine need from a vector database."""

    backend: str
    dim: int

    def add(self, ids: Sequence[str], vectors: np.ndarray, metadata: Sequence[Mapping[str, Any]] | None = None) -> None:
        """Insert or replace rows by id."""

    def search(self, vector: np.ndarray, k: int = 10, filter: Mapping[str, Any] | None = None) -> list[VectorHit]:
        """The ``k`` nearest rows by cosine similarity, best first."""

    def delete(self, ids: Sequence[str]) -> None: ...

    def count(self) -> int: ...

    def close(self) -> None: ...


# ---------------------------------------------------------------- helpers


def check_vectors(vectors: Any, dim: int, n: int | None = None) -> np.ndarray:
    """``vectors`` as a finite float32 ``(n, dim)`` array, or ``VDB_002``."""
    arr = np.asarray(vectors, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != dim:
        raise SymbiError(
            ErrorCode.VDB_002,
            f"vector dimension {arr.shape[-1] if arr.ndim else 0} does not match the store's {dim}",
            offending=tuple(arr.shape),
            hint="use the embedder the store was built with, or rebuild the vectors",
        )
    if n is not None and arr.shape[0] != n:
        raise SymbiError(ErrorCode.VDB_002, f"{arr.shape[0]} vectors for {n} ids", offending=n)
    if not np.isfinite(arr).all():
        raise SymbiError(ErrorCode.VDB_002, "vector contains NaN or infinity", hint="check the embedder")
    return arr


def _split_meta(meta: Mapping[str, Any] | None) -> dict[str, Any]:
    meta = dict(meta or {})
    row: dict[str, Any] = {}
    for name, typ in FIELDS.items():
        val = meta.pop(name, None)
        if val is None:
            val = typ()
        row[name] = typ(val)
    row["meta"] = json.dumps(meta, sort_keys=True, default=str)
    return row


def _join_meta(row: Mapping[str, Any]) -> dict[str, Any]:
    out = {name: row.get(name) for name in FIELDS}
    try:
        out.update(json.loads(row.get("meta") or "{}"))
    except ValueError:
        pass
    return out


def _check_filter_key(key: str) -> None:
    if key not in FIELDS:
        raise SymbiError(
            ErrorCode.VDB_001,
            f"cannot filter on {key!r}",
            offending=key,
            hint=f"filterable fields: {', '.join(FIELDS)}",
        )


def _sql_literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise SymbiError(ErrorCode.VDB_001, "non-finite filter value", offending=value)
        return repr(float(value)) if isinstance(value, float) else str(value)
    return "'" + str(value).replace("'", "''") + "'"


def filter_to_sql(flt: Mapping[str, Any] | None) -> str | None:
    """Translate the filter dict into a LanceDB (DataFusion) SQL predicate."""
    if not flt:
        return None
    parts: list[str] = []
    for key, val in flt.items():
        if key == "$or":
            subs = [s for s in (filter_to_sql(f) for f in val) if s]
            if subs:
                parts.append("(" + " OR ".join(f"({s})" for s in subs) + ")")
            continue
        _check_filter_key(key)
        if isinstance(val, list | tuple | set | frozenset):
            vals = list(val)
            if not vals:
                parts.append("false")
            else:
                parts.append(f"{key} IN ({', '.join(_sql_literal(v) for v in vals)})")
        else:
            parts.append(f"{key} = {_sql_literal(val)}")
    return " AND ".join(parts) if parts else None


# ---------------------------------------------------------------- LanceDB


class LanceVectorStore:
    """Embedded LanceDB table, cosine distance, an ANN index past ``index_threshold`` rows.

    ``auto_maintain`` (what :func:`open_vector_store` asks for) starts index
    builds and compaction in a background thread as rows arrive; without it
    call :meth:`ensure_index` / :meth:`optimize` yourself.
    """

    backend = "lancedb"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        dim: int = 384,
        table: str = "symbiont_context",
        index_threshold: int = DEFAULT_INDEX_THRESHOLD,
        nprobes: int = DEFAULT_NPROBES,
        refine_factor: int = DEFAULT_REFINE_FACTOR,
        index_type: str = DEFAULT_INDEX_TYPE,
        auto_maintain: bool = False,
        optimize_every: int = DEFAULT_OPTIMIZE_EVERY,
    ) -> None:
        import lancedb
        import pyarrow as pa

        if index_type not in INDEX_TYPES:
            raise SymbiError(
                ErrorCode.VDB_001,
                f"unknown index type {index_type!r}",
                offending=index_type,
                hint=f"one of {', '.join(INDEX_TYPES)}",
            )
        self.path = Path(path)
        self.dim = dim
        self.table_name = table
        self.index_threshold = index_threshold
        self.nprobes = nprobes
        self.refine_factor = refine_factor
        self.index_type = index_type
        self.auto_maintain = auto_maintain
        self.optimize_every = optimize_every
        self._lock = threading.RLock()
        self._indexed: bool | None = None
        self._build_lock = threading.Lock()  # one index build / optimize at a time
        self._bg_guard = threading.Lock()
        self._bg: threading.Thread | None = None
        self._writes_since_optimize = 0
        self._rows_hint = 0
        #: The last background maintenance failure (shown by the console), or None.
        self.last_maintenance_error: str | None = None
        self._schema = pa.schema(
            [
                pa.field("id", pa.string()),
                pa.field("vector", pa.list_(pa.float32(), dim)),
                pa.field("agent_id", pa.string()),
                pa.field("kind", pa.string()),
                pa.field("shared", pa.bool_()),
                pa.field("created_at", pa.float64()),
                pa.field("text", pa.string()),
                pa.field("meta", pa.string()),
            ]
        )
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self._db = lancedb.connect(str(self.path))
            if (self.path / f"{table}.lance").exists():
                self._tbl = self._db.open_table(table)
                self._check_existing()
                self._tbl.count_rows()  # touches the manifest: fails here if corrupted
            else:
                self._tbl = self._db.create_table(table, schema=self._schema)
            self._rows_hint = int(self._tbl.count_rows())
        except SymbiError:
            raise
        except Exception as exc:
            raise SymbiError(
                ErrorCode.VDB_003,
                f"vector store unreadable: {exc.__class__.__name__}: {exc}",
                offending=str(self.path),
                hint="the store is an index: move the directory aside and rebuild it from the context store",
            ) from exc

    def _check_existing(self) -> None:
        import pyarrow as pa

        vec = self._tbl.schema.field("vector").type
        width = vec.list_size if isinstance(vec, pa.FixedSizeListType) else -1
        if width != self.dim:
            raise SymbiError(
                ErrorCode.VDB_002,
                f"existing vector table {self.table_name!r} has dimension {width}, configured {self.dim}",
                offending=str(self.path),
                hint="set vector_db.dimension back, or rebuild the vectors with the new embedder",
            )

    def _wrap(self, what: str, exc: Exception) -> SymbiError:
        return SymbiError(
            ErrorCode.VDB_001, f"vector store {what} failed: {exc.__class__.__name__}: {exc}", offending=str(self.path)
        )

    def add(
        self,
        ids: Sequence[str],
        vectors: np.ndarray,
        metadata: Sequence[Mapping[str, Any]] | None = None,
        *,
        upsert: bool = True,
    ) -> None:
        import pyarrow as pa

        ids = [str(i) for i in ids]
        if not ids:
            return
        arr = check_vectors(vectors, self.dim, len(ids))
        metas = [_split_meta(m) for m in (metadata or [{}] * len(ids))]
        cols: dict[str, Any] = {
            "id": pa.array(ids, pa.string()),
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(arr.reshape(-1), pa.float32()), self.dim),
        }
        for name in (*FIELDS, "meta"):
            cols[name] = pa.array([m[name] for m in metas], self._schema.field(name).type)
        data = pa.Table.from_pydict(cols, schema=self._schema)
        with self._lock:
            try:
                if upsert:
                    (self._tbl.merge_insert("id").when_matched_update_all().when_not_matched_insert_all().execute(data))
                else:
                    self._tbl.add(data)
            except Exception as exc:
                raise self._wrap("add", exc) from exc
            self._writes_since_optimize += 1
            self._rows_hint += len(ids)
        if self.auto_maintain and (
            (self._indexed is not True and self._rows_hint >= self.index_threshold)
            or self._writes_since_optimize >= self.optimize_every
        ):
            self.maintain_in_background()

    def search(self, vector: np.ndarray, k: int = 10, filter: Mapping[str, Any] | None = None) -> list[VectorHit]:
        q = check_vectors(vector, self.dim)[0]
        where = filter_to_sql(filter)
        with self._lock:
            try:
                # a vector query gives a LanceVectorQueryBuilder; lancedb annotates search() with the base class
                s = cast("LanceVectorQueryBuilder", self._tbl.search(q)).distance_type("cosine").limit(max(1, int(k)))
                if where:
                    s = s.where(where, prefilter=True)
                if self.is_indexed():
                    s = s.nprobes(self.nprobes)
                    if self.refine_factor > 1:
                        s = s.refine_factor(self.refine_factor)
                rows = s.select(["id", *FIELDS, "meta", "_distance"]).to_list()
            except Exception as exc:
                raise self._wrap("search", exc) from exc
        return [VectorHit(r["id"], 1.0 - float(r["_distance"]), _join_meta(r)) for r in rows]

    def delete(self, ids: Sequence[str]) -> None:
        ids = [str(i) for i in ids]
        if not ids:
            return
        with self._lock:
            try:
                for start in range(0, len(ids), 500):
                    chunk = ids[start : start + 500]
                    self._tbl.delete(f"id IN ({', '.join(_sql_literal(i) for i in chunk)})")
            except Exception as exc:
                raise self._wrap("delete", exc) from exc

    def count(self) -> int:
        with self._lock:
            return int(self._tbl.count_rows())

    def is_indexed(self) -> bool:
        if self._indexed is None:
            try:
                self._indexed = any("vector" in (getattr(ix, "columns", None) or []) for ix in self._tbl.list_indices())
            except Exception:
                self._indexed = False
        return self._indexed

    def needs_index(self) -> bool:
        return not self.is_indexed() and self.count() >= self.index_threshold

    def _index_config(self, n: int) -> Any:
        from lancedb.index import IvfHnswSq, IvfPq

        if self.index_type == "ivf_hnsw_sq":
            # HNSW graphs inside a few large partitions.
            return IvfHnswSq(distance_type="cosine", num_partitions=max(1, n // 100_000 + 1))
        partitions = max(1, min(int(math.sqrt(n)), 4096))
        sub = next(d for d in (48, 32, 24, 16, 12, 8, 6, 4, 3, 2, 1) if self.dim % d == 0)
        return IvfPq(distance_type="cosine", num_partitions=partitions, num_sub_vectors=sub)

    def ensure_index(self, *, force: bool = False) -> bool:
        """Build the ANN index when past the threshold (slow: about a minute per 100k rows on 2 cores).

        Returns True if built. Adds and searches go on meanwhile (the build
        works on a snapshot; rows added during it are scanned exactly until the
        next :meth:`optimize`).
        """
        with self._build_lock:
            if not force and not self.needs_index():
                return False
            n = self.count()
            if n < 256:
                return False  # the quantiser's training needs rows
            tbl = self._tbl
            try:
                tbl.create_index("vector", config=self._index_config(n), replace=True)
            except Exception as exc:
                raise self._wrap("index build", exc) from exc
            self._indexed = True
            self._writes_since_optimize = 0
        return True

    def optimize(self) -> None:
        """Compact fragments and fold new rows into the index incrementally (off the hot path)."""
        with self._build_lock:
            tbl = self._tbl
            self._writes_since_optimize = 0
            try:
                tbl.optimize(cleanup_older_than=timedelta(hours=1))
            except Exception as exc:
                raise self._wrap("optimize", exc) from exc

    def maintain_in_background(self) -> bool:
        """Start the maintenance thread unless one is running. Returns True if started."""
        with self._bg_guard:
            if self._bg is not None and self._bg.is_alive():
                return False
            self._bg = threading.Thread(target=self._maintain, name="lancedb-maintenance", daemon=True)
            self._bg.start()
            return True

    def _maintain(self) -> None:
        try:
            if not self.ensure_index() and self._writes_since_optimize >= self.optimize_every:
                self.optimize()
            self.last_maintenance_error = None
        except Exception as exc:  # logged and kept for the console; the next write tries again
            self.last_maintenance_error = str(exc)
            log.warning("vector store maintenance failed: %s", exc)

    def wait_for_maintenance(self, timeout: float | None = None) -> bool:
        """Wait for the background thread (tests, benchmarks, shutdown). True when none is running."""
        bg = self._bg
        if bg is not None:
            bg.join(timeout)
            return not bg.is_alive()
        return True

    def scrub_text(self) -> int:
        """Blank the ``text`` column of rows an older version stored it in, and drop old versions. Returns rows."""
        with self._lock:
            try:
                n = int(self._tbl.count_rows("text != ''"))
                if n:
                    self._tbl.update(where="text != ''", values={"text": ""})
                    with warnings.catch_warnings():  # "removes every version": wanted; one engine per store
                        warnings.simplefilter("ignore", UserWarning)
                        self._tbl.optimize(cleanup_older_than=timedelta(0))
            except Exception as exc:
                raise self._wrap("scrub", exc) from exc
        return n

    def close(self) -> None:
        self.wait_for_maintenance(5.0)  # an unfinished build is simply redone after the next open
        # released for good: a closed store is never used again, so the attributes stay non-Optional
        self._tbl = None  # type: ignore[assignment]
        self._db = None  # type: ignore[assignment]


# ---------------------------------------------------------------- Qdrant


_NS = uuid.UUID("6f1d6a52-3f55-4d4c-9d8e-6b8a3c1e0b11")


def _qid(item_id: str) -> str:
    return str(uuid.uuid5(_NS, item_id))


class QdrantVectorStore:
    """qdrant-client: local mode (``path=``, embedded, for tests and single users) or a server (``url=``)."""

    backend = "qdrant"

    def __init__(
        self,
        *,
        path: str | os.PathLike[str] | None = None,
        url: str | None = None,
        dim: int = 384,
        collection: str = "symbiont_context",
        timeout: float = 30.0,
    ) -> None:
        try:
            from qdrant_client import QdrantClient, models
        except ImportError as exc:
            raise SymbiError(
                ErrorCode.VDB_001, "the qdrant backend needs qdrant-client", hint="pip install 'symbi-console[qdrant]'"
            ) from exc
        self._m = models
        self.dim = dim
        self.collection = collection
        self.path = Path(path) if path else None
        try:
            if path is not None:
                Path(path).mkdir(parents=True, exist_ok=True)
                self._client = QdrantClient(path=str(path))
            else:
                self._client = QdrantClient(url=url, timeout=int(timeout))
            if self._client.collection_exists(collection):
                info = self._client.get_collection(collection)
                size = info.config.params.vectors.size  # type: ignore[union-attr]  # qdrant types vectors as one or named; ours is one
                if size != dim:
                    raise SymbiError(
                        ErrorCode.VDB_002,
                        f"existing Qdrant collection {collection!r} has dimension {size}, configured {dim}",
                        offending=collection,
                        hint="set vector_db.dimension back, or rebuild the vectors",
                    )
            else:
                self._client.create_collection(
                    collection, vectors_config=models.VectorParams(size=dim, distance=models.Distance.COSINE)
                )
                for name, typ in FIELDS.items():
                    if name == "text" or path is not None:  # local mode ignores payload indexes
                        continue
                    schema = {
                        str: models.PayloadSchemaType.KEYWORD,
                        bool: models.PayloadSchemaType.BOOL,
                        float: models.PayloadSchemaType.FLOAT,
                    }[typ]
                    self._client.create_payload_index(collection, name, field_schema=schema)
        except SymbiError:
            raise
        except Exception as exc:
            text = str(exc)
            code = ErrorCode.VDB_004 if "already accessed" in text else ErrorCode.VDB_003
            raise SymbiError(
                code,
                f"Qdrant store unavailable: {exc.__class__.__name__}: {text[:300]}",
                offending=str(path or url),
                hint="another engine may hold it; local mode allows one process",
            ) from exc
        self._lock = threading.RLock()

    def _filter(self, flt: Mapping[str, Any] | None) -> qdrant_models.Filter | None:
        m = self._m
        if not flt:
            return None
        must: list[Any] = []
        for key, val in flt.items():
            if key == "$or":
                should = [self._filter(f) for f in val]
                must.append(m.Filter(should=[s for s in should if s is not None]))
                continue
            _check_filter_key(key)
            if isinstance(val, list | tuple | set | frozenset):
                must.append(m.FieldCondition(key=key, match=m.MatchAny(any=list(val))))
            else:
                must.append(m.FieldCondition(key=key, match=m.MatchValue(value=val)))
        out: qdrant_models.Filter = m.Filter(must=must)
        return out

    def add(
        self,
        ids: Sequence[str],
        vectors: np.ndarray,
        metadata: Sequence[Mapping[str, Any]] | None = None,
        *,
        upsert: bool = True,
    ) -> None:
        ids = [str(i) for i in ids]
        if not ids:
            return
        arr = check_vectors(vectors, self.dim, len(ids))
        metas = metadata or [{}] * len(ids)
        points = []
        for i, vec, meta in zip(ids, arr, metas, strict=True):
            row = _split_meta(meta)
            row["id"] = i
            points.append(self._m.PointStruct(id=_qid(i), vector=vec.tolist(), payload=row))
        with self._lock:
            try:
                for start in range(0, len(points), 1000):
                    self._client.upsert(self.collection, points=points[start : start + 1000], wait=True)
            except Exception as exc:
                raise SymbiError(ErrorCode.VDB_001, f"Qdrant upsert failed: {exc}", offending=self.collection) from exc

    def search(self, vector: np.ndarray, k: int = 10, filter: Mapping[str, Any] | None = None) -> list[VectorHit]:
        q = check_vectors(vector, self.dim)[0]
        with self._lock:
            try:
                res = self._client.query_points(
                    self.collection,
                    query=q.tolist(),
                    limit=max(1, int(k)),
                    query_filter=self._filter(filter),
                    with_payload=True,
                ).points
            except SymbiError:
                raise
            except Exception as exc:
                raise SymbiError(ErrorCode.VDB_001, f"Qdrant search failed: {exc}", offending=self.collection) from exc
        # with_payload=True: every point comes back with its payload
        payloads = [cast(dict[str, Any], p.payload) for p in res]
        return [VectorHit(pl["id"], float(p.score), _join_meta(pl)) for p, pl in zip(res, payloads, strict=True)]

    def delete(self, ids: Sequence[str]) -> None:
        if not ids:
            return
        with self._lock:
            self._client.delete(
                self.collection, points_selector=self._m.PointIdsList(points=[_qid(str(i)) for i in ids]), wait=True
            )

    def count(self) -> int:
        with self._lock:
            return int(self._client.count(self.collection, exact=True).count)

    def close(self) -> None:
        try:
            self._client.close()
        except Exception:
            pass


def open_vector_store(
    data_dir: str | os.PathLike[str],
    vector_cfg: Any = None,
    *,
    env: Mapping[str, str] | None = None,
    index_threshold: int | None = None,
) -> VectorStore:
    """The configured backend. ``SYMBIONT_VECTOR_BACKEND`` / ``SYMBIONT_VECTOR_DATA_PATH`` beat ``vector_cfg``
    (a :class:`engine.config.VectorDbConfig`); relative paths are under ``data_dir``."""
    env = os.environ if env is None else env
    cfg_backend: str = getattr(vector_cfg, "backend", "lancedb")
    cfg_path: str = getattr(vector_cfg, "data_path", "vector_db")
    cfg_dim: int = getattr(vector_cfg, "dimension", 384)
    cfg_name: str = getattr(vector_cfg, "collection_name", "symbiont_context")
    backend = env.get("SYMBIONT_VECTOR_BACKEND") or cfg_backend
    rel = env.get("SYMBIONT_VECTOR_DATA_PATH") or cfg_path
    dim = int(env.get("SYMBIONT_VECTOR_DIMENSION") or cfg_dim)
    name = env.get("SYMBIONT_VECTOR_COLLECTION") or cfg_name
    path = Path(rel)
    if not path.is_absolute():
        path = Path(data_dir) / path
    if backend == "lancedb":
        cfg_threshold: int = getattr(vector_cfg, "index_threshold", DEFAULT_INDEX_THRESHOLD)
        return LanceVectorStore(
            path,
            dim=dim,
            table=name,
            index_threshold=index_threshold or cfg_threshold,
            nprobes=getattr(vector_cfg, "nprobes", DEFAULT_NPROBES),
            refine_factor=getattr(vector_cfg, "refine_factor", DEFAULT_REFINE_FACTOR),
            index_type=getattr(vector_cfg, "index_type", DEFAULT_INDEX_TYPE),
            auto_maintain=True,
        )
    if backend == "qdrant":
        url = env.get("SYMBIONT_VECTOR_URL") or getattr(vector_cfg, "url", None)
        host = env.get("SYMBIONT_VECTOR_HOST")
        port = env.get("SYMBIONT_VECTOR_PORT")
        if not url and (host or port):
            url = f"http://{host or 'localhost'}:{port or 6333}"
        if url:
            return QdrantVectorStore(
                url=url, dim=dim, collection=name, timeout=float(getattr(vector_cfg, "timeout", 30.0))
            )
        return QdrantVectorStore(path=path.with_name(path.name + "_qdrant"), dim=dim, collection=name)
    raise SymbiError(
        ErrorCode.VDB_001,
        f"vector backend {backend!r} not available here",
        offending=backend,
        hint="use lancedb or qdrant",
    )
