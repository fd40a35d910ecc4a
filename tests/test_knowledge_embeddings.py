"""Embeddings: the real offline MiniLM (int8 ONNX), and the HTTP backends against a local stand-in server."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from engine.errors import SymbiError
from engine.knowledge import MiniLMOnnxEmbedder, OllamaEmbedder, OpenAICompatibleEmbedder, default_embedder


@pytest.fixture(scope="session")
def emb():
    return default_embedder()


def test_shape_dtype_and_unit_norm(emb):
    v = emb.embed(["hello world", "a much longer sentence " * 50, "x"])
    assert v.shape == (3, 384) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)


def test_related_sentences_score_well_above_unrelated(emb):
    pairs_related = [
        ("The cat sat on the mat.", "A kitten was resting on the rug."),
        ("How do I reset my password?", "Steps to recover a forgotten account password."),
        ("The stock market fell sharply today.", "Share prices dropped steeply on Wall Street."),
    ]
    pairs_unrelated = [
        ("The cat sat on the mat.", "Quarterly revenue rose by eight percent."),
        ("How do I reset my password?", "The volcano erupted at dawn."),
        ("The stock market fell sharply today.", "Bake the bread at 220 degrees."),
    ]
    for a, b in pairs_related:
        va, vb = emb.embed([a, b])
        assert float(va @ vb) >= 0.5, (a, b)
    for a, b in pairs_unrelated:
        va, vb = emb.embed([a, b])
        assert float(va @ vb) <= 0.2, (a, b)


def test_batch_order_is_preserved(emb):
    texts = ["short", "a somewhat longer sentence here", "mid length one"]
    batch = emb.embed(texts)
    for t, row in zip(texts, batch, strict=True):
        assert np.allclose(emb.embed([t])[0], row, atol=1e-4)


def test_missing_model_file_is_a_clear_error(tmp_path):
    with pytest.raises(SymbiError) as ei:
        MiniLMOnnxEmbedder(model_path=tmp_path / "nope.onnx", tokenizer_path=tmp_path / "nope.json")
    assert ei.value.code.value == "RAG_002"


def test_corrupt_model_file_is_a_clear_error(tmp_path):
    from engine.knowledge.embeddings import locate_minilm_files

    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"not an onnx model")
    with pytest.raises(SymbiError) as ei:
        MiniLMOnnxEmbedder(model_path=bad, tokenizer_path=locate_minilm_files()[1])
    assert ei.value.code.value == "RAG_002"


class _StandIn(BaseHTTPRequestHandler):
    """A stand-in embeddings server (not a real model): fixed 4-d vectors, OpenAI and Ollama shapes."""

    def log_message(self, *a):  # quiet
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        vecs = [[float(len(t)), 1.0, 0.0, 0.0] for t in body["input"]]
        if self.path == "/v1/embeddings":
            out = {"data": [{"index": i, "embedding": v} for i, v in reversed(list(enumerate(vecs)))]}
        elif self.path == "/api/embed":
            out = {"embeddings": vecs}
        else:
            self.send_response(404)
            self.end_headers()
            return
        data = json.dumps(out).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def standin():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _StandIn)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_openai_compatible_embedder_against_local_standin(standin):
    e = OpenAICompatibleEmbedder(standin + "/v1", "stand-in", 4)
    v = e.embed(["ab", "abcd"])
    assert v.shape == (2, 4)
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0)
    assert v[0][0] < v[1][0]  # order restored from "index"
    with pytest.raises(SymbiError) as ei:
        OpenAICompatibleEmbedder(standin + "/v1", "stand-in", 384).embed(["x"])
    assert ei.value.code.value == "VDB_002"
    e.close()


def test_ollama_embedder_against_local_standin(standin):
    e = OllamaEmbedder(standin, "stand-in", 4)
    assert e.embed(["a", "b", "c"]).shape == (3, 4)
    with pytest.raises(SymbiError) as ei:
        OpenAICompatibleEmbedder(standin + "/wrong", "stand-in", 4).embed(["x"])
    assert ei.value.code.value == "RAG_002"
