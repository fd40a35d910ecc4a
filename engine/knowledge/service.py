"""The runtime's agent memory: the context store opened on first use (the
embedding model costs ~0.25 s and ~100 MB, so an engine that never uses
memory never loads it), and the agent protocol's ``memory.put`` /
``memory.query``. The agent is the one authenticated on its protocol
channel, never a parameter; puts are recorded in the audit trail (kind,
size, item id), never their content.

While the store is open a maintenance task runs every
``[context] cleanup_interval``: expired items are dropped and the vector
store's index is built or refreshed (in its own thread, never blocking).
:meth:`KnowledgeService.rag` gives the RAG engine configured from ``[rag]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.agents.gate import Access, Step
from engine.agents.ports import Recorder, SecretReader
from engine.agents.record import AgentRecord
from engine.clock import Clock
from engine.config import RuntimeConfig
from engine.errors import ErrorCode, SymbiError

if TYPE_CHECKING:
    from engine.knowledge.context import ContextItem, ContextStore
    from engine.knowledge.rag import RAGEngine

log = logging.getLogger(__name__)
RAG_API_KEY_ENV = "SYMBIONT_RAG_API_KEY"
SHARED = "operator"  # the pseudo-owner of what the operator shares with every agent


class KnowledgeService:
    def __init__(
        self, config: RuntimeConfig, data_dir: Path, *, clock: Clock, recorder: Recorder, secrets: SecretReader
    ) -> None:
        self.config = config
        self.data_dir = data_dir
        self.clock = clock
        self.recorder = recorder
        self.secrets = secrets
        self._store: ContextStore | None = None
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    async def store(self) -> ContextStore:
        async with self._lock:
            if self._store is None:
                from engine.knowledge.context import ContextStore

                self._store = await ContextStore.open(
                    self.data_dir,
                    context_cfg=self.config.context,
                    vector_cfg=self.config.vector_db,
                    clock=self.clock,
                )
                self._task = asyncio.create_task(self._maintain(), name="knowledge-maintenance")
            return self._store

    async def _maintain(self) -> None:
        interval = float(self.config.context.cleanup_interval)
        while True:
            await asyncio.sleep(interval)
            store = self._store
            if store is None:
                return
            try:
                await store.maintain()
            except Exception as exc:  # noqa: BLE001 - keep the loop; the next round retries
                log.warning("context maintenance failed: %s", exc)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._store is not None:
            await self._store.close()
            self._store = None

    async def rag(self) -> RAGEngine:
        """The RAG engine over this runtime's context store, configured from ``[rag]``.

        The generator's API key comes from ``SYMBIONT_RAG_API_KEY`` or the vault
        secret named by ``rag.llm_api_key_secret`` (registered for redaction),
        never from the config file.
        """
        from engine.knowledge.rag import RAGConfig, RAGEngine

        cfg = self.config.rag
        api_key = os.environ.get(RAG_API_KEY_ENV) or None
        name = cfg.llm_api_key_secret
        if api_key is None and name and cfg.llm_url:
            api_key = await self.secrets.read_for_engine(name, actor="engine:rag")
        return RAGEngine(await self.store(), RAGConfig.from_config(cfg, api_key=api_key))

    # -- the agent protocol: planned here, checked and recorded by the gate's door -----------

    def plan_put(self, agent: AgentRecord, params: dict[str, Any]) -> Step:
        """``memory.put``: Write on Memory ``<kind>`` (``shared/<kind>`` when the item is shared)."""
        content = params.get("content")
        if not isinstance(content, str):
            raise SymbiError(ErrorCode.PROTO_001, "memory.put needs string content", hint='send {"content": "..."}')
        kind = params.get("kind", "knowledge")
        metadata = params.get("metadata") or {}
        share_with = params.get("share_with") or []
        if not isinstance(metadata, dict) or not isinstance(share_with, list):
            raise SymbiError(ErrorCode.PROTO_001, "metadata must be an object and share_with a list")
        kind = str(kind)
        resource = f"shared/{kind}" if share_with else kind

        async def act() -> dict[str, Any]:
            store = await self.store()
            item = await store.put(agent.id, content, kind, metadata, share_with=share_with)
            return {"id": item.id, "kind": item.kind}

        access = Access(
            "memory.put",
            "put",
            "Memory",
            (resource,),
            "Write",
            f"storing {kind} memory",
            details={"bytes": len(content.encode()), "shared_with": len(share_with)},
        )
        return Step(act, access)

    def plan_query(self, agent: AgentRecord, params: dict[str, Any]) -> Step:
        """``memory.query``: Read on Memory ``<kind>`` for each kind asked for (``all`` when none is named).
        The query text is not recorded (it can be as sensitive as the memory)."""
        text = params.get("query", params.get("text"))
        if not isinstance(text, str):
            raise SymbiError(ErrorCode.PROTO_001, "memory.query needs a query string", hint='send {"query": "..."}')
        limit = params.get("limit", 5)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 100:
            raise SymbiError(ErrorCode.PROTO_001, "limit must be 1..100", offending=limit)
        kinds = params.get("kinds")
        if kinds is not None and (not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds)):
            raise SymbiError(ErrorCode.PROTO_001, "kinds must be a list of strings", offending=kinds)

        async def act() -> list[dict[str, Any]]:
            store = await self.store()
            hits = await store.query(agent.id, text, limit, kinds, bool(params.get("include_shared", True)))
            return [h.to_dict() for h in hits]

        access = Access(
            "memory.query",
            "query",
            "Memory",
            tuple(kinds or ["all"]),
            "Read",
            "querying {resource} memory",
            details={"bytes": len(text.encode()), "limit": limit},
        )
        return Step(act, access)

    # -- the operator's changes (console, API): recorded here before they are made ------------

    async def add_item(
        self,
        owner: str,
        content: str,
        kind: str = "knowledge",
        metadata: dict[str, Any] | None = None,
        *,
        share_with: list[str] | None = None,
        actor: str = "operator",
    ) -> ContextItem:
        """Add an item for ``owner`` (an agent id, or the shared pseudo-owner). Recorded first (kind,
        bytes, owner; never the content); if the record cannot be written nothing is stored."""
        store = await self.store()
        nbytes = len(content.encode("utf-8"))
        with contextlib.suppress(TypeError, ValueError):  # bad metadata: the store refuses it after the record
            nbytes += len(json.dumps(dict(metadata or {}), sort_keys=True).encode("utf-8"))  # as the store counts
        await self.recorder.record(
            "memory.put",
            None,
            "put",
            actor=actor,
            resource=kind,
            details={"bytes": nbytes, "agent": owner},
            agent_id=None if owner == SHARED else owner,
        )
        return await store.put(owner, content, kind, metadata, share_with=share_with)

    async def delete_item(self, owner: str, item_id: str, *, actor: str = "operator") -> None:
        """Delete one of ``owner``'s items. Recorded first (kind and bytes when the item can be read)."""
        store = await self.store()
        kind, nbytes = "", None
        with contextlib.suppress(SymbiError):  # an unreadable (tampered) item can still be deleted
            item = await store.get(owner, item_id)
            if item.agent_id == owner:
                kind, nbytes = item.kind, item.size
        details: dict[str, Any] = {"agent": owner, "item": item_id}
        if nbytes is not None:
            details["bytes"] = nbytes
        await self.recorder.record(
            "memory.delete",
            None,
            "delete",
            actor=actor,
            resource=kind,
            details=details,
            agent_id=None if owner == SHARED else owner,
        )
        await store.delete(owner, item_id)
