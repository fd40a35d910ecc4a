"""The runtime's agent memory: the context store opened on first use (the
embedding model costs ~0.25 s and ~100 MB, so an engine that never uses
memory never loads it), and the agent protocol's ``memory.put`` /
``memory.query``. The agent is the one authenticated on its protocol
channel, never a parameter; puts are recorded in the audit trail (kind,
size, item id), never their content.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from engine.errors import ErrorCode, SymbiError

if TYPE_CHECKING:
    from engine.knowledge.context import ContextStore
    from engine.runtime import Runtime, _Agent


class KnowledgeService:
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        self._store: ContextStore | None = None
        self._lock = asyncio.Lock()

    async def store(self) -> ContextStore:
        async with self._lock:
            if self._store is None:
                from engine.knowledge.context import ContextStore

                self._store = await ContextStore.open(
                    self.rt.data_dir, context_cfg=self.rt.config.context, vector_cfg=self.rt.config.vector_db,
                    clock=self.rt.clock,
                )
            return self._store

    async def close(self) -> None:
        if self._store is not None:
            await self._store.close()
            self._store = None

    async def put(self, agent: _Agent, params: dict[str, Any]) -> dict[str, Any]:
        content = params.get("content")
        if not isinstance(content, str):
            raise SymbiError(ErrorCode.PROTO_001, "memory.put needs string content", hint='send {"content": "..."}')
        kind = params.get("kind", "knowledge")
        metadata = params.get("metadata") or {}
        share_with = params.get("share_with") or []
        if not isinstance(metadata, dict) or not isinstance(share_with, list):
            raise SymbiError(ErrorCode.PROTO_001, "metadata must be an object and share_with a list")
        store = await self.store()
        await self.rt._record(
            "memory.put", agent, "put", actor=f"agent:{agent.id}", resource=str(kind),
            details={"bytes": len(content.encode()), "shared_with": len(share_with)},
        )
        item = await store.put(agent.id, content, str(kind), metadata, share_with=share_with)
        return {"id": item.id, "kind": item.kind}

    async def query(self, agent: _Agent, params: dict[str, Any]) -> list[dict[str, Any]]:
        text = params.get("query", params.get("text"))
        if not isinstance(text, str):
            raise SymbiError(ErrorCode.PROTO_001, "memory.query needs a query string", hint='send {"query": "..."}')
        limit = params.get("limit", 5)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 100:
            raise SymbiError(ErrorCode.PROTO_001, "limit must be 1..100", offending=limit)
        kinds = params.get("kinds")
        store = await self.store()
        hits = await store.query(agent.id, text, limit, kinds, bool(params.get("include_shared", True)))
        return [h.to_dict() for h in hits]
