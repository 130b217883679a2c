"""quantize_embeddings is bit-identical to sentence-transformers'; quantized search ranks sensibly."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sentencekit.errors import InvalidInputError
from sentencekit.quantization import quantization_ranges, quantize_embeddings, semantic_search_quantized
from sentencekit.search import semantic_search
from sentencekit.similarity import dot_score

st_quantize = pytest.importorskip("sentence_transformers").quantize_embeddings

PRECISIONS = ["float32", "int8", "uint8", "binary", "ubinary"]


@pytest.fixture(autouse=True)
def _quiet_small_calibration_warnings(caplog):
    caplog.set_level(logging.ERROR)


def _same(ours, ref) -> None:
    assert isinstance(ours, np.ndarray)
    assert ours.dtype == ref.dtype
    assert ours.shape == ref.shape
    np.testing.assert_array_equal(ours, ref)


def _data(n: int, dim: int, seed: int, dtype=np.float32) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, dim)).astype(dtype)


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("dim", [1, 8, 13, 64])
def test_bit_identical_to_reference(precision, dtype, dim):
    emb = _data(40, dim, seed=dim, dtype=dtype)
    _same(quantize_embeddings(emb, precision), st_quantize(emb, precision))


@pytest.mark.parametrize("precision", ["int8", "uint8"])
def test_ranges_and_calibration_sources(precision):
    emb, calibration = _data(30, 16, 1), _data(300, 16, 2)
    ranges = np.vstack([calibration.min(0), calibration.max(0)])
    from_calibration = quantize_embeddings(emb, precision, calibration_embeddings=calibration)
    _same(from_calibration, st_quantize(emb, precision, calibration_embeddings=calibration))
    _same(quantize_embeddings(emb, precision, ranges=ranges), st_quantize(emb, precision, ranges=ranges))
    # the ranges win over calibration embeddings, and equal ranges give equal buckets
    _same(quantize_embeddings(emb, precision, ranges=ranges, calibration_embeddings=emb), from_calibration)
    np.testing.assert_array_equal(quantization_ranges(emb, calibration), ranges)
    # a single embedding can be quantized once ranges are known
    _same(
        quantize_embeddings(emb[0], precision, ranges=ranges), st_quantize(emb[0], precision, ranges=ranges)
    )


def test_scalar_buckets_by_hand():
    emb = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5], [2.0, -1.0]], dtype=np.float32)
    ranges = np.array([[0.0, 0.0], [1.0, 1.0]], dtype=np.float32)
    # bucket = floor((x - min) / ((max - min) / 255)), clipped to 0..255; in float32 1 / (1 / 255) is
    # 254.99998, so the maximum itself lands in 254 (as in the reference), and only values above it in 255
    expected = np.array([[0, 254], [254, 0], [127, 127], [255, 0]], dtype=np.uint8)
    np.testing.assert_array_equal(quantize_embeddings(emb, "uint8", ranges=ranges), expected)
    np.testing.assert_array_equal(
        quantize_embeddings(emb, "int8", ranges=ranges), (expected.astype(int) - 128).astype(np.int8)
    )
    constant = quantize_embeddings(np.ones((3, 2)), "uint8")  # zero-width range: everything in bucket 0
    np.testing.assert_array_equal(constant, np.zeros((3, 2), dtype=np.uint8))


def test_binary_packing_by_hand():
    emb = np.array([[0.5, -1.0, 0.2, 0.0, 3.0, -2.0, 1.0, 0.1, 7.0]])
    ubinary = quantize_embeddings(emb, "ubinary")
    np.testing.assert_array_equal(ubinary, np.array([[0b10101011, 0b10000000]], dtype=np.uint8))
    np.testing.assert_array_equal(
        quantize_embeddings(emb, "binary"), np.array([[0b10101011 - 128, 0]], dtype=np.int8)
    )


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_torch_inputs(precision, dtype):
    emb = torch.from_numpy(_data(20, 10, 3)).to(dtype)
    _same(quantize_embeddings(emb, precision), st_quantize(emb, precision))


@pytest.mark.parametrize("precision", PRECISIONS)
def test_list_inputs(precision):
    emb = _data(12, 9, 4)
    vectors = list(emb)
    _same(quantize_embeddings(vectors, precision), st_quantize(vectors, precision))
    _same(quantize_embeddings(emb.tolist(), precision), st_quantize(emb.tolist(), precision))
    tensors = [torch.from_numpy(v) for v in emb]
    _same(quantize_embeddings(tensors, precision), st_quantize(tensors, precision))
    assert quantize_embeddings([], precision) == []


@pytest.mark.parametrize("precision", PRECISIONS)
def test_multi_vector_matrices_share_ranges(precision):
    docs = [_data(n, 6, seed=n) for n in (3, 7, 1)]
    ours, ref = quantize_embeddings(docs, precision), st_quantize(docs, precision)
    assert isinstance(ours, list)
    assert len(ours) == len(ref) == 3
    for o, r in zip(ours, ref, strict=True):
        _same(o, r)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_empty_matrix(precision):
    empty = np.zeros((0, 12), dtype=np.float32)
    _same(quantize_embeddings(empty, precision), st_quantize(empty, precision))


@given(
    n=st.integers(2, 30),
    dim=st.integers(1, 40),
    scale=st.floats(1e-3, 1e3),
    seed=st.integers(0, 2**16),
    precision=st.sampled_from(PRECISIONS),
    use_calibration=st.booleans(),
)
@settings(max_examples=25, deadline=None)
def test_bit_identical_property(n, dim, scale, seed, precision, use_calibration):
    emb = _data(n, dim, seed) * np.float32(scale)
    kwargs = (
        {"calibration_embeddings": _data(50, dim, seed + 1) * np.float32(scale)} if use_calibration else {}
    )
    _same(quantize_embeddings(emb, precision, **kwargs), st_quantize(emb, precision, **kwargs))


# ----------------------------------------------------------------------------------------------- bad input


def test_already_quantized_input_is_rejected():
    with pytest.raises(InvalidInputError, match="already quantized"):
        quantize_embeddings(np.zeros((3, 4), dtype=np.int8), "binary")


def test_single_embedding_needs_ranges():
    with pytest.raises(InvalidInputError, match="single embedding"):
        quantize_embeddings(_data(1, 4, 0), "int8")
    with pytest.raises(InvalidInputError, match="single embedding"):
        quantize_embeddings(_data(1, 4, 0)[0], "uint8")


def test_unknown_precision_lists_the_valid_ones():
    with pytest.raises(ValueError, match="ubinary"):
        quantize_embeddings(_data(3, 4, 0), "int4")


def test_wrong_ranges_shape():
    with pytest.raises(InvalidInputError, match=r"shape \(2, 4\)"):
        quantize_embeddings(_data(3, 4, 0), "int8", ranges=np.zeros((2, 5)))


def test_nan_is_rejected_for_scalar_quantization():
    emb = _data(3, 4, 0)
    emb[1, 2] = np.nan
    with pytest.raises(InvalidInputError, match="NaN"):
        quantize_embeddings(emb, "uint8", ranges=np.array([[-1.0] * 4, [1.0] * 4]))


# ------------------------------------------------------------------------------------------ quantized search


def _ids(hits):
    return [[h["corpus_id"] for h in row] for row in hits]


def test_quantized_search_on_float32_is_plain_dot_search():
    corpus, queries = _data(80, 16, 5), _data(4, 16, 6)
    ours = semantic_search_quantized(queries, corpus, "float32", top_k=7)
    exact = semantic_search(
        torch.from_numpy(queries), torch.from_numpy(corpus), top_k=7, score_function=dot_score
    )
    assert _ids(ours) == _ids(exact)


@pytest.mark.parametrize("precision", ["binary", "ubinary"])
def test_binary_search_without_rescoring_ranks_by_hamming_distance(precision):
    corpus, queries = _data(60, 20, 7), _data(3, 20, 8)
    hits = semantic_search_quantized(
        queries, quantize_embeddings(corpus, precision), precision, 5, rescore=False
    )
    corpus_bits, query_bits = corpus > 0, queries > 0
    for q, row in enumerate(hits):
        distances = (corpus_bits != query_bits[q]).sum(axis=1)
        assert [h["score"] for h in row] == sorted((-distances).tolist(), reverse=True)[:5]
        assert all(h["score"] == -distances[h["corpus_id"]] for h in row)


@pytest.mark.parametrize("precision", ["int8", "uint8", "binary", "ubinary"])
def test_rescoring_orders_candidates_by_float_score(precision):
    corpus, queries = _data(300, 32, 9), _data(5, 32, 10)
    ranges = quantization_ranges(corpus)
    quantized = quantize_embeddings(corpus, precision, ranges=ranges)
    hits = semantic_search_quantized(
        queries, quantized, precision, top_k=10, ranges=ranges, rescore_multiplier=5
    )
    exact = _ids(semantic_search(queries, corpus, top_k=10, score_function=dot_score))
    for row in hits:
        assert len(row) == 10
        scores = [h["score"] for h in row]
        assert scores == sorted(scores, reverse=True)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(_ids(hits), exact, strict=True)])
    assert recall >= (0.8 if precision.endswith("int8") else 0.3)


def test_quantized_search_bad_input():
    corpus = quantize_embeddings(_data(10, 16, 0), "ubinary")
    with pytest.raises(InvalidInputError, match=r"shape \(n, 1\)"):
        semantic_search_quantized(_data(2, 8, 1), corpus, "ubinary")
    with pytest.raises(InvalidInputError, match="positive"):
        semantic_search_quantized(_data(2, 16, 1), corpus, "ubinary", top_k=0)
    with pytest.raises(InvalidInputError, match="ranges"):
        semantic_search_quantized(_data(2, 16, 1), quantize_embeddings(_data(10, 16, 0), "int8"), "int8")
    with pytest.raises(InvalidInputError, match="empty"):
        semantic_search_quantized(_data(2, 16, 1), corpus[:0], "ubinary")
