"""Persistent per-agent context: memory, conversation and knowledge items.

SQLite (``<data_dir>/<context.storage_path>/context.db``, WAL, synchronous=FULL)
is the source of truth: every item, who owns it, who it is shared with, when
it expires. The vector store is an index over the items' embeddings and can be
rebuilt from SQLite at any time (:meth:`ContextStore.rebuild_vectors`).

Write order keeps the two consistent across a crash (kill -9 included):
``put`` commits the row with ``embedded=0``, adds the vector, then flips
``embedded=1``; on open, rows still at 0 are re-embedded (the vector add is an
idempotent upsert). ``delete`` removes the row first, so a vector left behind
is never returned (every hit is checked against SQLite).

Privacy: an item is visible to its owner, to agents it is shared with, and to
everyone when shared with ``"*"``. Every query is checked against SQLite.

At rest (:mod:`engine.knowledge.atrest`): ``content`` and ``metadata`` are
compressed and sealed with AES-256-GCM when ``encryption_required``; the vector
store holds only vectors, ids and the filter fields (owner, kind, shared flag,
time), never the text. Plaintext rows from older data dirs are read and, when
encryption is required, sealed in place on open.

One engine per store: an exclusive lock on ``context.lock`` (released by the
kernel if the engine dies) makes a second opener a clear ``CTX_006``.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.clock import Clock, SystemClock
from engine.errors import ErrorCode, SymbiError
from engine.knowledge.atrest import KEY_FILE, FieldCodec, key_id, load_or_create_key
from engine.knowledge.embeddings import Embedder
from engine.knowledge.vectors import VectorStore

KINDS = ("conversation", "working", "short_term", "long_term", "knowledge")
MEMORY_KINDS = ("conversation", "working", "short_term", "long_term")
#: When pruning for space, drop these kinds first (oldest first within a kind).
PRUNE_ORDER = ("working", "conversation", "short_term", "knowledge", "long_term")
EVERYONE = "*"
MAX_ITEM_BYTES = 1_048_576
MAX_QUERY_CHARS = 8_192

_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    id TEXT PRIMARY KEY,
    agent_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    content TEXT NOT NULL,
    metadata TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL,
    size INTEGER NOT NULL,
    embedded INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS items_agent ON items(agent_id, kind, created_at);
CREATE INDEX IF NOT EXISTS items_expiry ON items(expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS items_unembedded ON items(embedded) WHERE embedded = 0;
CREATE TABLE IF NOT EXISTS shares (
    item_id TEXT NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    grantee TEXT NOT NULL,
    PRIMARY KEY (item_id, grantee)
);
CREATE INDEX IF NOT EXISTS shares_grantee ON shares(grantee);
CREATE TABLE IF NOT EXISTS store_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass
class ContextItem:
    id: str
    agent_id: str
    kind: str
    content: str
    metadata: dict[str, Any]
    created_at: float
    expires_at: float | None = None
    shared_with: list[str] = field(default_factory=list)
    size: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ContextHit:
    item: ContextItem
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {"score": self.score, **self.item.to_dict()}


@dataclass
class ContextSettings:
    """What the store enforces. :meth:`from_config` reads ``[context]``; the size fields are ours."""

    retention: dict[str, float | None] = field(
        default_factory=lambda: {
            "conversation": 86_400.0,
            "working": 86_400.0,
            "short_term": 604_800.0,
            "long_term": None,
            "knowledge": 2_592_000.0,
        }
    )
    max_context_size_mb: float = 100.0
    on_size_limit: str = "error"  # or "prune"
    max_memory_items_per_agent: int = 10_000
    max_knowledge_items_per_agent: int = 5_000
    max_item_bytes: int = MAX_ITEM_BYTES
    encryption_required: bool = True
    compression: bool = True
    #: Where the key lives; default ``<storage dir>/context.key``.
    key_path: str | None = None

    @classmethod
    def from_config(cls, ctx: Any, **overrides: Any) -> ContextSettings:
        s = cls()
        if ctx is not None:
            s.retention.update(
                conversation=ctx.session_retention,
                working=ctx.session_retention,
                short_term=ctx.memory_retention,
                knowledge=ctx.knowledge_retention,
            )
            s.max_memory_items_per_agent = ctx.max_memory_items_per_agent
            s.max_knowledge_items_per_agent = ctx.max_knowledge_items_per_agent
            for name in (
                "max_context_size_mb",
                "on_size_limit",
                "max_item_bytes",
                "encryption_required",
                "compression",
            ):
                if hasattr(ctx, name):
                    setattr(s, name, getattr(ctx, name))
        for k, v in overrides.items():
            setattr(s, k, v)
        if s.on_size_limit not in ("error", "prune"):
            raise SymbiError(
                ErrorCode.CONFIG_001, "on_size_limit must be 'error' or 'prune'", offending=s.on_size_limit
            )
        return s


def _check_agent(agent_id: str) -> str:
    if not isinstance(agent_id, str) or not agent_id.strip() or len(agent_id) > 256 or agent_id == EVERYONE:
        raise SymbiError(ErrorCode.CTX_003, "invalid agent id", offending=agent_id)
    return agent_id


class ContextStore:
    """Per-agent context over SQLite + a vector store. Async API; blocking work runs in threads.

    One store per data dir per process (the runtime's data-dir lock keeps a
    second engine out).
    """

    def __init__(
        self,
        db_path: str | os.PathLike[str],
        vectors: VectorStore | None,
        embedder: Embedder,
        settings: ContextSettings | None = None,
        *,
        clock: Clock | None = None,
    ) -> None:
        self.db_path = Path(db_path)
        self.vectors = vectors
        self.embedder = embedder
        self.settings = settings or ContextSettings()
        self.clock = clock or SystemClock()
        self._lock = threading.RLock()
        self._vlock = threading.Lock()
        self._pending_vector_deletes: list[str] = []
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        from engine.lockfile import FileLock

        self._flock = FileLock(self.db_path.with_name("context.lock"))
        holder = self._flock.acquire()
        if holder is not None:
            raise SymbiError(
                ErrorCode.CTX_006,
                f"context store in use by another engine (pid {holder})",
                offending=str(self.db_path.parent),
                hint="stop the other engine, or give this one its own data dir",
            )
        try:
            self._db = sqlite3.connect(str(self.db_path), check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.execute("PRAGMA secure_delete=ON")  # deleted rows are zeroed, not left in free pages
            self._db.executescript(_SCHEMA)
            self._db.execute("SELECT COUNT(*) FROM items").fetchone()
        except sqlite3.DatabaseError as exc:
            self._flock.release()
            raise SymbiError(
                ErrorCode.CTX_001,
                f"context store unreadable: {exc}",
                offending=str(self.db_path),
                hint="restore the file from a backup",
            ) from exc
        try:
            self.codec = self._open_codec()
        except BaseException:
            self._db.close()
            self._flock.release()
            raise

    def _open_codec(self) -> FieldCodec:
        """Load (or create) the key and check it is the one the rows were sealed with."""
        s = self.settings
        path = Path(s.key_path) if s.key_path else self.db_path.with_name(KEY_FILE)
        row = self._db.execute("SELECT value FROM store_meta WHERE name = 'key_id'").fetchone()
        stored = row[0] if row else None
        key = load_or_create_key(path, may_create=s.encryption_required and stored is None)
        if key is None and stored is not None:
            n = self._db.execute("SELECT COUNT(*) FROM items WHERE typeof(content) = 'blob'").fetchone()[0]
            raise SymbiError(
                ErrorCode.CTX_005,
                f"context encryption key {path} is missing and {n} stored items are encrypted",
                offending=str(path),
                hint="restore context.key from your backup of the data dir; do not delete the context store",
            )
        if key is not None:
            if stored is not None and stored != key_id(key):
                raise SymbiError(
                    ErrorCode.CTX_005,
                    f"context encryption key {path} is not the key this context store was encrypted with",
                    offending=str(path),
                    hint="restore the matching context.key from your backup of the data dir",
                )
            if stored is None:
                self._db.execute("INSERT INTO store_meta VALUES ('key_id', ?)", (key_id(key),))
        return FieldCodec(key, encrypt=s.encryption_required, compress=s.compression, key_path=path)

    # ------------------------------------------------------------ lifecycle

    @classmethod
    async def open(
        cls,
        data_dir: str | os.PathLike[str],
        *,
        context_cfg: Any = None,
        vector_cfg: Any = None,
        embedder: Embedder | None = None,
        vectors: VectorStore | None = None,
        settings: ContextSettings | None = None,
        clock: Clock | None = None,
        env: Mapping[str, str] | None = None,
    ) -> ContextStore:
        """Open (creating) the store under ``data_dir`` and reconcile it with the vector index."""
        from engine.knowledge.embeddings import default_embedder
        from engine.knowledge.vectors import open_vector_store

        if embedder is None:
            embedder = await asyncio.to_thread(default_embedder)
        env_backend = (os.environ if env is None else env).get("SYMBIONT_VECTOR_BACKEND")
        disabled = getattr(context_cfg, "enable_vector_db", True) is False or (
            (env_backend or getattr(vector_cfg, "backend", "lancedb")) == "noop"
        )
        if vectors is None and not disabled:
            vectors = await asyncio.to_thread(open_vector_store, data_dir, vector_cfg, env=env)
        if vectors is not None and vectors.dim != embedder.dim:
            await asyncio.to_thread(vectors.close)
            raise SymbiError(
                ErrorCode.VDB_002,
                f"embedder width {embedder.dim} != vector store {vectors.dim}",
                offending=embedder.model_id,
                hint="set vector_db.dimension to the embedder's width",
            )
        storage = getattr(context_cfg, "storage_path", "contexts")
        path = Path(storage) if Path(storage).is_absolute() else Path(data_dir) / storage
        try:
            store = await asyncio.to_thread(
                cls,
                path / "context.db",
                vectors,
                embedder,
                settings or ContextSettings.from_config(context_cfg),
                clock=clock,
            )
        except BaseException:
            if vectors is not None:
                await asyncio.to_thread(vectors.close)
            raise
        try:
            await asyncio.to_thread(store._seal_plaintext_rows)
            scrub = getattr(vectors, "scrub_text", None)
            if store.settings.encryption_required and scrub is not None:
                await asyncio.to_thread(scrub)  # older versions kept a text copy in LanceDB
            await store.reconcile()
        except BaseException:
            await store.close()
            raise
        return store

    async def close(self) -> None:
        with self._lock:
            if self._db is None:
                return
            self._db.close()
            self._db = None  # type: ignore[assignment]  # closed: nothing uses the store after close()
            self._flock.release()
        if self.vectors is not None:
            await asyncio.to_thread(self.vectors.close)

    def _seal_plaintext_rows(self) -> int:
        """Seal (or compress) rows an older data dir stored as plaintext. Returns how many."""
        if not (self.settings.encryption_required or self.settings.compression):
            return 0
        with self._lock:
            rows = self._db.execute(
                "SELECT id, content, metadata FROM items WHERE typeof(content) = 'text' OR typeof(metadata) = 'text'"
            ).fetchall()
            if not rows or not self.settings.encryption_required:
                return 0
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "UPDATE items SET content = ?, metadata = ? WHERE id = ?",
                    [
                        (
                            self.codec.seal(i, "content", self.codec.open(i, "content", c)),
                            self.codec.seal(i, "metadata", self.codec.open(i, "metadata", m)),
                            i,
                        )
                        for i, c, m in rows
                    ],
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            # Old plaintext pages: zeroed by secure_delete; rewrite the file and empty the WAL to be sure.
            self._db.execute("VACUUM")
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return len(rows)

    async def reconcile(self) -> int:
        """Embed and index rows a crash left un-indexed; drop expired items. Returns rows re-indexed.

        A vector store holding fewer rows than SQLite says are indexed (deleted,
        moved aside, or a new backend) is refilled from SQLite.
        """
        await self.cleanup()
        vectors = self.vectors
        if vectors is not None:

            def lost() -> bool:
                with self._lock:
                    n = self._db.execute("SELECT COUNT(*) FROM items WHERE embedded = 1").fetchone()[0]
                if n and vectors.count() < n:
                    with self._lock:
                        self._db.execute("UPDATE items SET embedded = 0")
                    return True
                return False

            await asyncio.to_thread(lost)
        rows = await asyncio.to_thread(self._fetch, "SELECT * FROM items WHERE embedded = 0", ())
        if rows and self.vectors is not None:
            await self._index(rows)
        return len(rows)

    async def maintain(self) -> int:
        """Periodic upkeep (``[context] cleanup_interval``): drop expired items, then let the
        vector store build or refresh its index in its own thread. Returns items dropped."""
        n = await self.cleanup()
        start = getattr(self.vectors, "maintain_in_background", None)
        if start is not None:
            start()
        return n

    async def rebuild_vectors(self, vectors: VectorStore | None = None) -> int:
        """Re-embed every item into ``vectors`` (a fresh store, e.g. after a corrupted or resized one)."""
        if vectors is not None:
            self.vectors = vectors
        await asyncio.to_thread(self._exec, "UPDATE items SET embedded = 0", ())
        return await self.reconcile()

    # ------------------------------------------------------------ SQLite helpers (run in threads)

    def _exec(self, sql: str, args: Sequence[Any]) -> None:
        with self._lock:
            self._db.execute(sql, args)

    def _fetch(self, sql: str, args: Sequence[Any]) -> list[ContextItem]:
        with self._lock:
            cur = self._db.execute(sql, args)
            cols = [c[0] for c in cur.description]
            rows = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
            items = [self._item(r) for r in rows]
            if items:
                shares: dict[str, list[str]] = {}
                ids = [i.id for i in items]
                for start in range(0, len(ids), 500):
                    chunk = ids[start : start + 500]
                    q = f"SELECT item_id, grantee FROM shares WHERE item_id IN ({','.join('?' * len(chunk))})"
                    for item_id, grantee in self._db.execute(q, chunk):
                        shares.setdefault(item_id, []).append(grantee)
                for i in items:
                    i.shared_with = sorted(shares.get(i.id, []))
        return items

    def _item(self, r: Mapping[str, Any]) -> ContextItem:
        i = r["id"]
        return ContextItem(
            id=i,
            agent_id=r["agent_id"],
            kind=r["kind"],
            content=self.codec.open(i, "content", r["content"]),
            metadata=json.loads(self.codec.open(i, "metadata", r["metadata"])),
            created_at=r["created_at"],
            expires_at=r["expires_at"],
            size=r["size"],
        )

    def _visible_sql(self, agent_id: str) -> tuple[str, list[Any]]:
        return (
            "(items.agent_id = ? OR items.id IN (SELECT item_id FROM shares WHERE grantee IN (?, ?)))",
            [agent_id, agent_id, EVERYONE],
        )

    def _vector_meta(self, item: ContextItem) -> dict[str, Any]:
        # Filter fields only: the content lives sealed in SQLite, never in the vector store.
        return {
            "agent_id": item.agent_id,
            "kind": item.kind,
            "shared": bool(item.shared_with),
            "created_at": item.created_at,
        }

    async def _index(self, items: list[ContextItem]) -> None:
        assert self.vectors is not None
        for start in range(0, len(items), 256):
            chunk = items[start : start + 256]
            vecs = await asyncio.to_thread(self.embedder.embed, [i.content for i in chunk])
            await asyncio.to_thread(self._vadd, chunk, vecs)

    def _vadd(self, items: list[ContextItem], vecs: np.ndarray) -> None:
        assert self.vectors is not None
        with self._vlock:
            # LanceDB: index building and compaction are scheduled in the background by the store itself.
            self.vectors.add([i.id for i in items], vecs, [self._vector_meta(i) for i in items])
        with self._lock:
            self._db.executemany("UPDATE items SET embedded = 1 WHERE id = ?", [(i.id,) for i in items])

    # ------------------------------------------------------------ public API

    async def put(
        self,
        agent_id: str,
        content: str,
        kind: str = "knowledge",
        metadata: Mapping[str, Any] | None = None,
        *,
        share_with: Iterable[str] | None = None,
        ttl: float | None = None,
    ) -> ContextItem:
        """Store one item for ``agent_id``; embed and index it. Returns the stored item."""
        _check_agent(agent_id)
        if kind not in KINDS:
            raise SymbiError(
                ErrorCode.CTX_003, f"unknown context kind {kind!r}", offending=kind, hint=f"one of {', '.join(KINDS)}"
            )
        if not isinstance(content, str) or not content.strip():
            raise SymbiError(ErrorCode.CTX_003, "empty content", offending=agent_id, hint="store some text")
        try:
            meta_json = json.dumps(dict(metadata or {}), sort_keys=True)
        except (TypeError, ValueError) as exc:
            raise SymbiError(ErrorCode.CTX_003, f"metadata is not JSON: {exc}", offending=agent_id) from exc
        size = len(content.encode("utf-8")) + len(meta_json.encode("utf-8"))
        if size > self.settings.max_item_bytes:
            raise SymbiError(
                ErrorCode.CTX_003,
                f"item of {size} bytes is over the {self.settings.max_item_bytes}-byte limit",
                offending=agent_id,
                hint="split the document into smaller passages",
            )
        now = self.clock.time()
        retention = self.settings.retention.get(kind) if ttl is None else ttl
        item = ContextItem(
            id=uuid.uuid4().hex,
            agent_id=agent_id,
            kind=kind,
            content=content,
            metadata=json.loads(meta_json),
            created_at=now,
            expires_at=None if retention is None else now + retention,
            shared_with=sorted({_check_agent(g) if g != EVERYONE else g for g in (share_with or [])}),
            size=size,
        )
        # Embed before touching storage: a model failure leaves nothing behind.
        vec = None
        if self.vectors is not None:
            vec = await asyncio.to_thread(self.embedder.embed, [content])
        await asyncio.to_thread(self._insert, item)
        if vec is not None and self.vectors is not None:
            try:
                await asyncio.to_thread(self._vadd, [item], vec)
            except BaseException:
                await asyncio.to_thread(self._remove_rows, [item.id])
                raise
        return item

    def _insert(self, item: ContextItem) -> None:
        s = self.settings
        victims: list[str] = []
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                used, n_mem, n_know = self._db.execute(
                    "SELECT COALESCE(SUM(size),0), SUM(kind != 'knowledge'), SUM(kind = 'knowledge') FROM items WHERE agent_id = ?",
                    (item.agent_id,),
                ).fetchone()
                limit = int(s.max_context_size_mb * 1024 * 1024)
                is_know = item.kind == "knowledge"
                count_limit = s.max_knowledge_items_per_agent if is_know else s.max_memory_items_per_agent
                count = (n_know if is_know else n_mem) or 0
                if used + item.size > limit or count + 1 > count_limit:
                    if s.on_size_limit != "prune":
                        if used + item.size > limit:
                            raise SymbiError(
                                ErrorCode.CTX_002,
                                f"context of agent {item.agent_id!r} would be {(used + item.size) / 1048576:.2f} MB, "
                                f"over max_context_size_mb={s.max_context_size_mb}",
                                offending=item.agent_id,
                                details={"used_bytes": used, "item_bytes": item.size},
                                hint="delete items, raise context.max_context_size_mb or set on_size_limit='prune'",
                            )
                        raise SymbiError(
                            ErrorCode.CTX_002,
                            f"agent {item.agent_id!r} has {count} {'knowledge' if is_know else 'memory'} items, the limit",
                            offending=item.agent_id,
                            hint="delete items or raise the per-agent item limit",
                        )
                    victims = self._prune_locked(item, used, limit, count, count_limit)
                self._db.execute(
                    "INSERT INTO items (id, agent_id, kind, content, metadata, created_at, expires_at, size, embedded)"
                    " VALUES (?,?,?,?,?,?,?,?,0)",
                    (
                        item.id,
                        item.agent_id,
                        item.kind,
                        self.codec.seal(item.id, "content", item.content),
                        self.codec.seal(item.id, "metadata", json.dumps(item.metadata, sort_keys=True)),
                        item.created_at,
                        item.expires_at,
                        item.size,
                    ),
                )
                self._db.executemany("INSERT INTO shares VALUES (?, ?)", [(item.id, g) for g in item.shared_with])
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._pending_vector_deletes.extend(victims)

    def _prune_locked(self, item: ContextItem, used: int, limit: int, count: int, count_limit: int) -> list[str]:
        """Drop the agent's items per retention priority (then oldest first) until the new one fits."""
        is_know = item.kind == "knowledge"
        order = " ".join(f"WHEN '{k}' THEN {n}" for n, k in enumerate(PRUNE_ORDER))
        rows = self._db.execute(
            f"SELECT id, size, kind FROM items WHERE agent_id = ? ORDER BY CASE kind {order} END, created_at",
            (item.agent_id,),
        ).fetchall()
        victims: list[str] = []
        for item_id, size, kind in rows:
            if used + item.size <= limit and count + 1 <= count_limit:
                break
            if count + 1 > count_limit and used + item.size <= limit and ((kind == "knowledge") != is_know):
                continue  # over the count limit only: prune the same class
            victims.append(item_id)
            used -= size
            if (kind == "knowledge") == is_know:
                count -= 1
        if used + item.size > limit:
            raise SymbiError(
                ErrorCode.CTX_002,
                f"item of {item.size} bytes cannot fit agent {item.agent_id!r}'s "
                f"max_context_size_mb={self.settings.max_context_size_mb}",
                offending=item.agent_id,
            )
        for start in range(0, len(victims), 500):
            chunk = victims[start : start + 500]
            self._db.execute(f"DELETE FROM items WHERE id IN ({','.join('?' * len(chunk))})", chunk)
        return victims

    async def query(
        self,
        agent_id: str,
        text: str,
        limit: int = 5,
        kinds: Sequence[str] | None = None,
        include_shared: bool = True,
        *,
        min_score: float | None = None,
    ) -> list[ContextHit]:
        """Semantic search over what ``agent_id`` may see, best first (score = cosine similarity)."""
        _check_agent(agent_id)
        if not isinstance(text, str) or not text.strip():
            raise SymbiError(ErrorCode.CTX_003, "empty query", offending=agent_id)
        if len(text) > MAX_QUERY_CHARS:
            raise SymbiError(
                ErrorCode.CTX_003, f"query of {len(text)} characters is over {MAX_QUERY_CHARS}", offending=agent_id
            )
        limit = max(1, min(int(limit), 1000))
        if kinds:
            bad = [k for k in kinds if k not in KINDS]
            if bad:
                raise SymbiError(ErrorCode.CTX_003, f"unknown context kind {bad[0]!r}", offending=bad[0])
        if self.vectors is None:
            raise SymbiError(ErrorCode.VDB_001, "vector search is disabled", hint="set context.enable_vector_db = true")
        await self._flush_vector_deletes()
        vec = (await asyncio.to_thread(self.embedder.embed, [text]))[0]
        flt: dict[str, Any] = (
            {"$or": [{"agent_id": agent_id}, {"shared": True}]} if include_shared else {"agent_id": agent_id}
        )
        if kinds:
            flt["kind"] = list(kinds)
        hits = await asyncio.to_thread(self.vectors.search, vec, limit * 3 + 10, flt)
        if not hits:
            return []
        now = self.clock.time()
        vis_sql, vis_args = self._visible_sql(agent_id)
        if not include_shared:
            vis_sql, vis_args = "items.agent_id = ?", [agent_id]
        ids = [h.id for h in hits]
        items = await asyncio.to_thread(
            self._fetch,
            f"SELECT * FROM items WHERE id IN ({','.join('?' * len(ids))}) AND {vis_sql}"
            " AND (expires_at IS NULL OR expires_at > ?)",
            [*ids, *vis_args, now],
        )
        by_id = {i.id: i for i in items}
        out = [ContextHit(by_id[h.id], h.score) for h in hits if h.id in by_id]
        if min_score is not None:
            out = [h for h in out if h.score >= min_score]
        return out[:limit]

    async def list_items(
        self,
        agent_id: str,
        kinds: Sequence[str] | None = None,
        *,
        include_shared: bool = False,
        limit: int = 100,
        offset: int = 0,
        newest_first: bool = True,
    ) -> list[ContextItem]:
        _check_agent(agent_id)
        if include_shared:
            where, args = self._visible_sql(agent_id)
        else:
            where, args = "items.agent_id = ?", [agent_id]
        if kinds:
            where += f" AND kind IN ({','.join('?' * len(kinds))})"
            args += list(kinds)
        where += " AND (expires_at IS NULL OR expires_at > ?)"
        args.append(self.clock.time())
        order = "DESC" if newest_first else "ASC"
        return await asyncio.to_thread(
            self._fetch,
            f"SELECT * FROM items WHERE {where} ORDER BY created_at {order}, rowid {order} LIMIT ? OFFSET ?",
            [*args, int(limit), int(offset)],
        )

    async def get(self, agent_id: str, item_id: str) -> ContextItem:
        where, args = self._visible_sql(_check_agent(agent_id))
        rows = await asyncio.to_thread(self._fetch, f"SELECT * FROM items WHERE id = ? AND {where}", [item_id, *args])
        if not rows:
            raise SymbiError(ErrorCode.CTX_004, "no such context item visible to this agent", offending=item_id)
        return rows[0]

    async def delete(self, agent_id: str, item_id: str) -> None:
        """Delete one of ``agent_id``'s own items (a grantee cannot delete a shared item)."""
        _check_agent(agent_id)

        def owned() -> bool:  # no decryption: an unreadable (tampered) item can still be deleted
            with self._lock:
                return (
                    self._db.execute(
                        "SELECT 1 FROM items WHERE id = ? AND agent_id = ?", (item_id, agent_id)
                    ).fetchone()
                    is not None
                )

        if not await asyncio.to_thread(owned):
            raise SymbiError(ErrorCode.CTX_004, f"agent {agent_id!r} owns no item with this id", offending=item_id)
        await asyncio.to_thread(self._remove_rows, [item_id])
        await self._flush_vector_deletes()

    def _remove_rows(self, ids: list[str]) -> None:
        with self._lock:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                self._db.execute(f"DELETE FROM items WHERE id IN ({','.join('?' * len(chunk))})", chunk)
            self._pending_vector_deletes.extend(ids)

    async def _flush_vector_deletes(self) -> None:
        with self._lock:
            ids, self._pending_vector_deletes = self._pending_vector_deletes, []
        vectors = self.vectors
        if ids and vectors is not None:

            def run() -> None:
                with self._vlock:
                    vectors.delete(ids)

            try:
                await asyncio.to_thread(run)
            except SymbiError:
                with self._lock:  # try again later; the rows are gone, so these vectors are never returned
                    self._pending_vector_deletes.extend(ids)

    async def share(
        self, agent_id: str, item_id: str, with_agents: Iterable[str] = (EVERYONE,), *, revoke: bool = False
    ) -> ContextItem:
        """Share (or with ``revoke=True`` un-share) an own item with named agents or ``"*"`` (everyone)."""
        _check_agent(agent_id)
        grantees = sorted({g if g == EVERYONE else _check_agent(g) for g in with_agents})
        rows = await asyncio.to_thread(
            self._fetch, "SELECT * FROM items WHERE id = ? AND agent_id = ?", [item_id, agent_id]
        )
        if not rows:
            raise SymbiError(ErrorCode.CTX_004, f"agent {agent_id!r} owns no item with this id", offending=item_id)

        def change() -> None:
            with self._lock:
                if revoke:
                    self._db.executemany(
                        "DELETE FROM shares WHERE item_id = ? AND grantee = ?", [(item_id, g) for g in grantees]
                    )
                else:
                    self._db.executemany("INSERT OR IGNORE INTO shares VALUES (?, ?)", [(item_id, g) for g in grantees])
                self._db.execute("UPDATE items SET embedded = 0 WHERE id = ?", (item_id,))

        await asyncio.to_thread(change)
        item = (await asyncio.to_thread(self._fetch, "SELECT * FROM items WHERE id = ?", [item_id]))[0]
        if self.vectors is not None:
            await self._index([item])  # refresh the 'shared' flag used to pre-filter
        return item

    async def cleanup(self) -> int:
        """Drop expired items (call every ``context.archiving_interval``). Returns how many."""
        now = self.clock.time()

        def purge() -> list[str]:
            with self._lock:
                ids = [
                    r[0]
                    for r in self._db.execute(
                        "SELECT id FROM items WHERE expires_at IS NOT NULL AND expires_at <= ?", (now,)
                    )
                ]
            if ids:
                self._remove_rows(ids)
            return ids

        ids = await asyncio.to_thread(purge)
        await self._flush_vector_deletes()
        return len(ids)

    async def usage(self, agent_id: str) -> dict[str, Any]:
        """Bytes and item counts per kind for one agent."""

        def q() -> dict[str, Any]:
            with self._lock:
                rows = self._db.execute(
                    "SELECT kind, COUNT(*), COALESCE(SUM(size),0) FROM items WHERE agent_id = ? GROUP BY kind",
                    (agent_id,),
                ).fetchall()
            return {
                "bytes": sum(r[2] for r in rows),
                "items": {r[0]: r[1] for r in rows},
                "limit_bytes": int(self.settings.max_context_size_mb * 1048576),
            }

        return await asyncio.to_thread(q)


def move_aside(path: str | os.PathLike[str]) -> Path:
    """Rename a broken vector directory to ``<name>.broken-<ts>`` (kept, never deleted)."""
    p = Path(path)
    dest = p.with_name(f"{p.name}.broken-{int(time.time())}")
    shutil.move(str(p), str(dest))
    return dest
