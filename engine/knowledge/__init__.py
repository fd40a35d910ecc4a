"""Agent context, knowledge and RAG: embeddings, vector stores, the context store, the RAG engine.

Typical wiring (the runtime's agent-protocol gate calls these after its
policy check and audit append)::

    store = await ContextStore.open(data_dir, context_cfg=cfg.context, vector_cfg=cfg.vector_db)
    item = await store.put(agent_id, content, kind="knowledge", metadata={...})
    hits = await store.query(agent_id, "question", limit=5)
    answer = await RAGEngine(store).query(RAGRequest(query="question", agent_id=agent_id))
"""

from engine.knowledge.context import (
    EVERYONE,
    KINDS,
    ContextHit,
    ContextItem,
    ContextSettings,
    ContextStore,
    move_aside,
)
from engine.knowledge.embeddings import (
    Embedder,
    MiniLMOnnxEmbedder,
    OllamaEmbedder,
    OpenAICompatibleEmbedder,
    default_embedder,
    locate_minilm_files,
)
from engine.knowledge.rag import RAGConfig, RAGEngine, RAGRequest, RAGResponse, RAGSource
from engine.knowledge.vectors import (
    LanceVectorStore,
    QdrantVectorStore,
    VectorHit,
    VectorStore,
    open_vector_store,
)

__all__ = [
    "EVERYONE",
    "KINDS",
    "ContextHit",
    "ContextItem",
    "ContextSettings",
    "ContextStore",
    "Embedder",
    "LanceVectorStore",
    "MiniLMOnnxEmbedder",
    "OllamaEmbedder",
    "OpenAICompatibleEmbedder",
    "QdrantVectorStore",
    "RAGConfig",
    "RAGEngine",
    "RAGRequest",
    "RAGResponse",
    "RAGSource",
    "VectorHit",
    "VectorStore",
    "default_embedder",
    "locate_minilm_files",
    "move_aside",
    "open_vector_store",
]
