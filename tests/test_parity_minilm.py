"""all-MiniLM-L6-v2 (from the packaged-model source) against the reference, on real STSb sentences."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import read_sts
from sentencekit import SentenceTransformer, quantize_embeddings

st = pytest.importorskip("sentence_transformers")
N = 240  # >= 200 sentences, as the acceptance asks; kept small for the default run


@pytest.fixture(scope="module")
def models(minilm_path):
    return (
        SentenceTransformer(str(minilm_path), device="cpu"),
        st.SentenceTransformer(str(minilm_path), device="cpu"),
    )


@pytest.fixture(scope="module")
def texts():
    rows = read_sts("test")
    return list(dict.fromkeys(s for r in rows for s in r[:2]))[:N]


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"normalize_embeddings": True},
        {"truncate_dim": 128},
        {"truncate_dim": 128, "normalize_embeddings": True},
        {"prompt": "query: "},
        {"batch_size": 1},
        {"batch_size": 7},
    ],
    ids=str,
)
def test_embeddings_match_reference(models, texts, kwargs):
    ours, ref = models
    subset = texts if kwargs.get("batch_size") != 1 else texts[:40]
    a, b = ours.encode(subset, **kwargs), ref.encode(subset, **kwargs)
    assert a.shape == b.shape and a.dtype == b.dtype == np.float32
    assert np.abs(a - b).max() <= 1e-5


@pytest.mark.parametrize("precision", ["int8", "uint8", "binary", "ubinary"])
def test_quantized_codes_match_reference(models, texts, precision):
    ours, ref = models
    a, b = ours.encode(texts, precision=precision), ref.encode(texts, precision=precision)
    assert a.dtype == b.dtype and a.shape == b.shape
    # The quantizer itself is bit-identical: same floats in, same codes out.
    floats = ref.encode(texts)
    np.testing.assert_array_equal(
        quantize_embeddings(floats, precision=precision), st.quantize_embeddings(floats, precision=precision)
    )
    # End to end, batches differ (we sort by tokens, the reference by characters) and the default path
    # runs ONNX Runtime's fused kernels, so floats differ by up to ~3e-7; a component sitting on an int8
    # bucket edge can land one step away (~1 in 10,000 here). Sign bits never flip at this size.
    steps = np.abs(a.astype(np.int32) - b.astype(np.int32))
    if precision in ("binary", "ubinary"):
        np.testing.assert_array_equal(a, b)
    else:
        assert steps.max() <= 1 and steps.astype(bool).mean() < 5e-4


def test_token_embeddings_match_reference(models, texts):
    ours, ref = models
    a = ours.encode(texts[:50], output_value="token_embeddings")
    b = ref.encode(texts[:50], output_value="token_embeddings")
    for x, y in zip(a, b, strict=True):
        assert x.shape == y.shape
        assert float((x - y).abs().max()) <= 1e-5


def test_tensor_and_single_outputs(models, texts):
    ours, _ = models
    t = ours.encode(texts[:5], convert_to_tensor=True)
    assert isinstance(t, torch.Tensor) and t.shape == (5, 384)
    one = ours.encode(texts[0])
    assert one.shape == (384,)
    np.testing.assert_allclose(one, t[0].numpy(), atol=1e-6)
    listed = ours.encode(texts[:3], convert_to_numpy=False)
    assert isinstance(listed, list) and all(isinstance(x, torch.Tensor) for x in listed)


def test_similarity_matches_reference(models, texts):
    ours, ref = models
    emb = ours.encode(texts[:20])
    np.testing.assert_allclose(ours.similarity(emb, emb).numpy(), ref.similarity(emb, emb).numpy(), atol=1e-6)
    np.testing.assert_allclose(
        ours.similarity_pairwise(emb[:10], emb[10:]).numpy(),
        ref.similarity_pairwise(emb[:10], emb[10:]).numpy(),
        atol=1e-6,
    )


def test_saved_by_us_loads_in_reference(models, texts, tmp_path):
    ours, ref = models
    ours.save(tmp_path / "m")
    reloaded = st.SentenceTransformer(str(tmp_path / "m"), device="cpu")
    assert np.abs(reloaded.encode(texts[:64]) - ref.encode(texts[:64])).max() <= 1e-5


def test_saved_by_reference_v6_loads_in_ours(models, texts, tmp_path):
    ours, ref = models
    ref.save(str(tmp_path / "v6"))
    assert "embedding_dimension" in (tmp_path / "v6" / "1_Pooling" / "config.json").read_text()
    loaded = SentenceTransformer(str(tmp_path / "v6"), device="cpu")
    assert loaded.max_seq_length == 256
    assert np.abs(loaded.encode(texts[:64]) - ours.encode(texts[:64])).max() <= 1e-5


def test_truncate_context_manager_and_dimension(models, texts):
    ours, _ = models
    assert ours.get_sentence_embedding_dimension() == 384
    with ours.truncate_sentence_embeddings(64):
        assert ours.encode(texts[:2]).shape == (2, 64)
        assert ours.get_sentence_embedding_dimension() == 64
    assert ours.encode(texts[:2]).shape == (2, 384)
