"""semantic_search_quantized with rescore_embeddings: candidates rescored with the corpus's float rows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sentencekit.errors import InvalidInputError
from sentencekit.quantization import quantization_ranges, quantize_embeddings, semantic_search_quantized
from sentencekit.search import semantic_search


def _unit(n: int, dim: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("precision", ["ubinary", "binary", "int8", "uint8"])
def test_float_rescoring_of_all_rows_is_exact_search(precision):
    queries, corpus = _unit(12, 32, 0), _unit(60, 32, 1)
    ranges = quantization_ranges(corpus)
    codes = quantize_embeddings(corpus, precision, ranges=ranges)
    # with every row a candidate, rescoring with the floats is plain exact search
    hits = semantic_search_quantized(
        queries, codes, precision, top_k=5, ranges=ranges, rescore_multiplier=12, rescore_embeddings=corpus
    )
    exact = semantic_search(queries, corpus, top_k=5)
    assert [[h["corpus_id"] for h in row] for row in hits] == [[h["corpus_id"] for h in row] for row in exact]
    assert [h["score"] for h in hits[0]] == pytest.approx([h["score"] for h in exact[0]], abs=1e-6)


def test_float_rescoring_reads_a_memory_map_and_a_tensor(tmp_path):
    queries, corpus = _unit(5, 16, 2), _unit(40, 16, 3)
    np.save(tmp_path / "corpus.npy", corpus)
    codes = quantize_embeddings(corpus, "ubinary")
    from_memmap = semantic_search_quantized(
        queries, codes, "ubinary", rescore_embeddings=np.load(tmp_path / "corpus.npy", mmap_mode="r")
    )
    from_tensor = semantic_search_quantized(
        queries, codes, "ubinary", rescore_embeddings=torch.from_numpy(corpus)
    )
    assert from_memmap == from_tensor


def test_without_rescore_embeddings_nothing_changes():
    queries, corpus = _unit(5, 16, 4), _unit(40, 16, 5)
    codes = quantize_embeddings(corpus, "ubinary")
    plain = semantic_search_quantized(queries, codes, "ubinary")
    assert plain == semantic_search_quantized(queries, codes, "ubinary", rescore_embeddings=None)
    # no rescoring asked for: the float rows are not used
    assert semantic_search_quantized(queries, codes, "ubinary", rescore=False) == semantic_search_quantized(
        queries, codes, "ubinary", rescore=False, rescore_embeddings=corpus
    )


def test_rescore_embeddings_of_another_shape_are_rejected():
    corpus = _unit(40, 16, 6)
    codes = quantize_embeddings(corpus, "ubinary")
    with pytest.raises(InvalidInputError, match="rescore_embeddings"):
        semantic_search_quantized(corpus[:2], codes, "ubinary", rescore_embeddings=corpus[:39])
