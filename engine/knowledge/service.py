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
import logging
import os
from typing import TYPE_CHECKING, Any

from engine.errors import ErrorCode, SymbiError

if TYPE_CHECKING:
    from engine.knowledge.context import ContextStore
    from engine.knowledge.rag import RAGEngine
    from engine.runtime import Runtime, _Agent

log = logging.getLogger(__name__)
RAG_API_KEY_ENV = "SYMBIONT_RAG_API_KEY"


class KnowledgeService:
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        self._store: ContextStore | None = None
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    async def store(self) -> ContextStore:
        async with self._lock:
            if self._store is None:
                from engine.knowledge.context import ContextStore

                self._store = await ContextStore.open(
                    self.rt.data_dir, context_cfg=self.rt.config.context, vector_cfg=self.rt.config.vector_db,
                    clock=self.rt.clock,
                )
                self._task = asyncio.create_task(self._maintain(), name="knowledge-maintenance")
            return self._store

    async def _maintain(self) -> None:
        interval = float(self.rt.config.context.cleanup_interval)
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

        cfg = self.rt.config.rag
        api_key = os.environ.get(RAG_API_KEY_ENV) or None
        name = cfg.llm_api_key_secret
        if api_key is None and name and cfg.llm_url:
            await self.rt._record("secret.read", None, "use", actor="engine:rag", resource=name)
            value = await (await self.rt.secrets.vault()).get(name)
            api_key = value.reveal()
            self.rt.secrets._register(api_key)
        return RAGEngine(await self.store(), RAGConfig.from_config(cfg, api_key=api_key))

    async def put(self, agent: _Agent, params: dict[str, Any]) -> dict[str, Any]:
        content = params.get("content")
        if not isinstance(content, str):
            raise SymbiError(ErrorCode.PROTO_001, "memory.put needs string content", hint='send {"content": "..."}')
        kind = params.get("kind", "knowledge")
        metadata = params.get("metadata") or {}
        share_with = params.get("share_with") or []
        if not isinstance(metadata, dict) or not isinstance(share_with, list):
            raise SymbiError(ErrorCode.PROTO_001, "metadata must be an object and share_with a list")
        kind = str(kind)
        # policy: Write on Memory "<kind>", and on "shared/<kind>" when the item is shared
        resource = f"shared/{kind}" if share_with else kind
        decision, request = self.rt.policies.check(agent, "Memory", resource, "Write")
        await self.rt._record(
            "memory.put", agent, "put", actor=f"agent:{agent.id}", resource=resource,
            decision="allow" if decision.allowed else "deny",
            details={"bytes": len(content.encode()), "shared_with": len(share_with), "policy": decision.policy,
                     "policy_decision": decision.decision, "policy_request": request},
        )
        if not decision.allowed:
            raise self.rt.policies.denied(decision, f"storing {kind} memory", resource)
        store = await self.store()
        item = await store.put(agent.id, content, kind, metadata, share_with=share_with)
        return {"id": item.id, "kind": item.kind}

    async def query(self, agent: _Agent, params: dict[str, Any]) -> list[dict[str, Any]]:
        text = params.get("query", params.get("text"))
        if not isinstance(text, str):
            raise SymbiError(ErrorCode.PROTO_001, "memory.query needs a query string", hint='send {"query": "..."}')
        limit = params.get("limit", 5)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 100:
            raise SymbiError(ErrorCode.PROTO_001, "limit must be 1..100", offending=limit)
        kinds = params.get("kinds")
        if kinds is not None and (not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds)):
            raise SymbiError(ErrorCode.PROTO_001, "kinds must be a list of strings", offending=kinds)
        # policy: Read on Memory "<kind>" for each kind asked for ("all" when none is named)
        resources = kinds or ["all"]
        checks = [(r, *self.rt.policies.check(agent, "Memory", r, "Read")) for r in resources]
        refused = next(((r, d, req) for r, d, req in checks if not d.allowed), None)
        decision, request = (refused[1], refused[2]) if refused else (checks[0][1], checks[0][2])
        # recorded before the read (fail closed); the query text is not (it can be as sensitive as the memory)
        await self.rt._record(
            "memory.query", agent, "query", actor=f"agent:{agent.id}", resource=",".join(resources),
            decision="deny" if refused else "allow",
            details={"bytes": len(text.encode()), "limit": limit, "policy": decision.policy,
                     "policy_decision": decision.decision, "policy_request": request},
        )
        if refused:
            raise self.rt.policies.denied(refused[1], f"querying {refused[0]} memory", refused[0])
        store = await self.store()
        hits = await store.query(agent.id, text, limit, kinds, bool(params.get("include_shared", True)))
        return [h.to_dict() for h in hits]
