"""Retrieval-augmented answers over an agent's context, with cited sources.

Pipeline: validate -> embed the query -> vector retrieval over what the agent
may see (:meth:`ContextStore.query`, privacy and expiry enforced there) ->
hybrid rerank (cosine blended with BM25 over the candidates) -> relevance
threshold on the cosine score -> answer:

* extractive (no language model configured): the passages' sentences closest
  to the query, each followed by its source's ``[n]``;
* generated, when ``RAGConfig.llm_base_url`` names an OpenAI-compatible
  ``/chat/completions`` endpoint: the passages go in numbered, the model is
  told to cite them as ``[n]``.

The whole request runs under ``RAGRequest.timeout`` (``RAG_004``).
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from engine.errors import ErrorCode, SymbiError
from engine.knowledge.context import ContextHit, ContextStore

_WORD = re.compile(r"\w+", re.UNICODE)
_SENT = re.compile(r"(?<=[.!?])\s+|\n{2,}")
_STOP = frozenset(
    "a an and are as at be by for from has have how i in is it its of on or that the this to was were what when "
    "where which who why will with do does did can".split()
)


@dataclass
class RAGConfig:
    """Seed's RAG settings plus ours (hybrid weight, LLM endpoint)."""

    max_results: int = 5
    relevance_threshold: float = 0.25  # on cosine similarity
    candidate_multiplier: int = 4
    hybrid_weight: float = 0.75  # share of the cosine score in the blended score
    max_answer_sentences: int = 3
    max_query_chars: int = 2_000
    timeout: float = 10.0
    llm_base_url: str | None = None
    llm_model: str = "gpt-4o-mini"
    llm_api_key: str | None = field(default=None, repr=False)
    llm_max_tokens: int = 400

    @classmethod
    def from_config(cls, rag: Any, *, api_key: str | None = None) -> RAGConfig:
        """From ``[rag]`` (:class:`engine.config.RagConfig`); the API key comes from the vault or env, never the file."""
        if rag is None:
            return cls(llm_api_key=api_key)
        return cls(
            max_results=rag.max_results,
            relevance_threshold=rag.relevance_threshold,
            timeout=rag.timeout,
            hybrid_weight=rag.hybrid_weight,
            candidate_multiplier=rag.candidate_multiplier,
            max_answer_sentences=rag.max_answer_sentences,
            llm_base_url=rag.llm_url,
            llm_model=rag.llm_model,
            llm_max_tokens=rag.llm_max_tokens,
            llm_api_key=api_key,
        )


@dataclass
class RAGRequest:
    query: str
    agent_id: str
    max_results: int | None = None
    include_metadata: bool = True
    relevance_threshold: float | None = None
    timeout: float | None = None
    kinds: list[str] | None = None
    include_shared: bool = True


@dataclass
class RAGSource:
    n: int
    item_id: str
    owner: str
    kind: str
    score: float  # blended score used for the ranking
    vector_score: float  # cosine similarity
    lexical_score: float  # BM25, normalised to [0, 1] over the candidates
    content: str
    metadata: dict[str, Any] | None = None


@dataclass
class RAGResponse:
    query: str
    agent_id: str
    answer: str
    sources: list[RAGSource]
    mode: str  # "extractive" | "generated" | "none"
    timings_ms: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def tokens(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in _STOP]


def bm25(query: str, docs: list[str], k1: float = 1.2, b: float = 0.75) -> list[float]:
    """Okapi BM25 of ``query`` against ``docs`` (IDF over ``docs`` themselves)."""
    q = set(tokens(query))
    toks = [tokens(d) for d in docs]
    if not q or not docs:
        return [0.0] * len(docs)
    avg = sum(len(t) for t in toks) / len(toks) or 1.0
    df = Counter(w for t in toks for w in set(t) if w in q)
    n = len(docs)
    out = []
    for t in toks:
        tf = Counter(w for w in t if w in q)
        s = 0.0
        for w, f in tf.items():
            idf = math.log(1 + (n - df[w] + 0.5) / (df[w] + 0.5))
            s += idf * f * (k1 + 1) / (f + k1 * (1 - b + b * len(t) / avg))
        out.append(s)
    return out


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENT.split(text) if s and s.strip()]


class RAGEngine:
    def __init__(self, store: ContextStore, config: RAGConfig | None = None) -> None:
        self.store = store
        self.config = config or RAGConfig()

    async def query(self, request: RAGRequest) -> RAGResponse:
        cfg = self.config
        if not isinstance(request.query, str) or not request.query.strip():
            raise SymbiError(ErrorCode.RAG_003, "empty RAG query", offending=request.agent_id, hint="ask something")
        if len(request.query) > cfg.max_query_chars:
            raise SymbiError(
                ErrorCode.RAG_003,
                f"query of {len(request.query)} characters is over {cfg.max_query_chars}",
                offending=request.agent_id,
            )
        thr = cfg.relevance_threshold if request.relevance_threshold is None else request.relevance_threshold
        if not -1.0 <= thr <= 1.0:
            raise SymbiError(ErrorCode.RAG_003, "relevance_threshold must be within [-1, 1]", offending=thr)
        timeout = cfg.timeout if request.timeout is None else request.timeout
        if timeout <= 0:
            raise SymbiError(ErrorCode.RAG_003, "timeout must be positive", offending=timeout)
        try:
            return await asyncio.wait_for(self._run(request, thr), timeout)
        except TimeoutError as exc:
            raise SymbiError(
                ErrorCode.RAG_004,
                f"RAG query took longer than {timeout:g} s",
                offending=request.query[:80],
                hint="raise the timeout or ask a narrower question",
            ) from exc

    async def _run(self, req: RAGRequest, threshold: float) -> RAGResponse:
        cfg = self.config
        t0 = time.perf_counter()
        k = max(1, int(req.max_results or cfg.max_results))
        try:
            hits = await self.store.query(
                req.agent_id,
                req.query,
                limit=k * cfg.candidate_multiplier,
                kinds=req.kinds,
                include_shared=req.include_shared,
            )
        except SymbiError as exc:
            if exc.code.value.startswith("CTX_"):
                raise SymbiError(ErrorCode.RAG_003, exc.message, offending=exc.offending, hint=exc.hint) from exc
            raise
        t1 = time.perf_counter()
        ranked = self._rerank(req.query, hits)
        ranked = [r for r in ranked if r[0].score >= threshold][:k]
        sources = [
            RAGSource(
                n=i + 1,
                item_id=h.item.id,
                owner=h.item.agent_id,
                kind=h.item.kind,
                score=round(s, 4),
                vector_score=round(h.score, 4),
                lexical_score=round(lex, 4),
                content=h.item.content,
                metadata=h.item.metadata if req.include_metadata else None,
            )
            for i, (h, s, lex) in enumerate(ranked)
        ]
        t2 = time.perf_counter()
        if not sources:
            answer, mode = "No stored knowledge is relevant enough to answer this.", "none"
        elif cfg.llm_base_url:
            answer, mode = await self._generate(req.query, sources, cfg.llm_base_url), "generated"
        else:
            answer, mode = await self._extract(req.query, sources), "extractive"
        t3 = time.perf_counter()
        return RAGResponse(
            query=req.query,
            agent_id=req.agent_id,
            answer=answer,
            sources=sources,
            mode=mode,
            timings_ms={
                "retrieve": (t1 - t0) * 1e3,
                "rerank": (t2 - t1) * 1e3,
                "answer": (t3 - t2) * 1e3,
                "total": (t3 - t0) * 1e3,
            },
        )

    def _rerank(self, query: str, hits: list[ContextHit]) -> list[tuple[ContextHit, float, float]]:
        if not hits:
            return []
        lex = bm25(query, [h.item.content for h in hits])
        top = max(lex) or 1.0
        w = self.config.hybrid_weight
        scored = [(h, w * h.score + (1 - w) * (lx / top), lx / top) for h, lx in zip(hits, lex, strict=True)]
        scored.sort(key=lambda t: t[1], reverse=True)
        return scored

    async def _extract(self, query: str, sources: list[RAGSource]) -> str:
        sents: list[tuple[int, str]] = [(s.n, x) for s in sources for x in split_sentences(s.content)][:400]
        if not sents:
            return ""
        emb = self.store.embedder
        vecs = await asyncio.to_thread(emb.embed, [query] + [x for _, x in sents])
        sims = vecs[1:] @ vecs[0]
        order = np.argsort(-sims)[: self.config.max_answer_sentences]
        best = float(sims[order[0]])
        picked = [i for i in order if sims[i] >= best - 0.2] or [int(order[0])]
        return " ".join(f"{sents[i][1]} [{sents[i][0]}]" for i in picked)

    async def _generate(self, query: str, sources: list[RAGSource], base_url: str) -> str:
        import httpx

        cfg = self.config
        passages = "\n\n".join(f"[{s.n}] {s.content}" for s in sources)
        body = {
            "model": cfg.llm_model,
            "max_tokens": cfg.llm_max_tokens,
            "messages": [
                {
                    "role": "system",
                    "content": "Answer only from the numbered passages. Cite each claim as [n]. "
                    "If the passages do not answer the question, say so.",
                },
                {"role": "user", "content": f"Passages:\n{passages}\n\nQuestion: {query}"},
            ],
        }
        headers = {"Authorization": f"Bearer {cfg.llm_api_key}"} if cfg.llm_api_key else {}
        try:
            async with httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=cfg.timeout, headers=headers) as client:
                resp = await client.post("/chat/completions", json=body)
                resp.raise_for_status()
                return str(resp.json()["choices"][0]["message"]["content"]).strip()
        except (httpx.HTTPError, KeyError, IndexError, ValueError) as exc:
            raise SymbiError(
                ErrorCode.RAG_001,
                f"language model endpoint failed: {exc.__class__.__name__}: {exc}",
                offending=base_url,
                hint="check RAG llm_base_url / model, or unset it for extractive answers",
            ) from exc
