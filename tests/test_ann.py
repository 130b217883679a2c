"""semantic_search_faiss / semantic_search_usearch: exact search, quantized search with rescoring, parity.

Tests that need faiss or usearch skip when it is not installed; the missing-extra errors are always tested.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from sentencekit.ann import semantic_search_faiss, semantic_search_usearch
from sentencekit.errors import InvalidInputError, MissingDependencyError
from sentencekit.quantization import quantization_ranges, quantize_embeddings
from sentencekit.search import semantic_search

SEARCHES = {"faiss": semantic_search_faiss, "usearch": semantic_search_usearch}


def _unit(n: int, dim: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    """200 tight clusters of 10 rows; a query near a centre has its cluster as its clear top 10."""
    centres = _unit(200, 64, 0)
    corpus = np.repeat(centres, 10, axis=0) + 0.25 * _unit(2000, 64, 1)
    queries = centres[:40] + 0.25 * _unit(40, 64, 2)
    unit = lambda x: (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)  # noqa: E731
    return unit(queries), unit(corpus)


def _exact_ids(queries: np.ndarray, corpus: np.ndarray, k: int) -> list[list[int]]:
    return [[h["corpus_id"] for h in row] for row in semantic_search(queries, corpus, top_k=k)]


def _ids(hits: list[list[dict]]) -> list[list[int]]:
    return [[h["corpus_id"] for h in row] for row in hits]


def _recall(hits: list[list[dict]], truth: list[list[int]]) -> float:
    return float(np.mean([len(set(h) & set(t)) / len(t) for h, t in zip(_ids(hits), truth, strict=True)]))


# --------------------------------------------------------------------------------- without the extras


def test_importing_the_module_imports_no_index_library():
    code = (
        "import sys, sentencekit.ann; assert not {'faiss', 'usearch'} & set(sys.modules), sys.modules.keys()"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    ("library", "modules"), [("faiss", ["faiss"]), ("usearch", ["usearch", "usearch.index"])]
)
def test_missing_extra_names_the_pip_command(monkeypatch, library, modules):
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail
    with pytest.raises(MissingDependencyError, match=rf"pip install 'sentencekit\[{library}\]'"):
        SEARCHES[library](_unit(2, 8, 0), corpus_embeddings=_unit(5, 8, 1))
    with pytest.raises(ImportError):  # a caller's `except ImportError` catches it too
        SEARCHES[library](_unit(2, 8, 0), corpus_embeddings=_unit(5, 8, 1))


# ------------------------------------------------------------------------------------------ arguments


@pytest.mark.parametrize("library", ["faiss", "usearch"])
def test_bad_arguments(library):
    pytest.importorskip(library)
    search, queries, corpus = SEARCHES[library], _unit(2, 8, 0), _unit(5, 8, 1)
    with pytest.raises(InvalidInputError, match="exactly one"):
        search(queries)
    _, _, index = search(queries, corpus_embeddings=corpus, rescore=False, output_index=True)
    with pytest.raises(ValueError, match="exactly one"):
        search(queries, corpus_embeddings=corpus, corpus_index=index)
    bad = "int8" if library == "faiss" else "uint8"
    with pytest.raises(InvalidInputError, match="corpus_precision"):
        search(
            queries,
            corpus_embeddings=quantize_embeddings(corpus, bad, ranges=quantization_ranges(corpus)),
            corpus_precision=bad,
        )
    with pytest.raises(InvalidInputError, match="top_k"):
        search(queries, corpus_embeddings=corpus, top_k=0)


# ------------------------------------------------------------------------------------------ exact search


@pytest.mark.parametrize("library", ["faiss", "usearch"])
def test_float32_exact_equals_brute_force(data, library):
    pytest.importorskip(library)
    queries, corpus = data
    hits, seconds = SEARCHES[library](queries, corpus_embeddings=corpus, top_k=10, rescore=False)
    assert seconds >= 0
    assert _ids(hits) == _exact_ids(queries, corpus, 10)
    cosines = [h["score"] for h in hits[0]]
    # FAISS reports inner products (best first), usearch cosine distances (closest first)
    expected = [h["score"] for h in semantic_search(queries[:1], corpus, top_k=10)[0]]
    got = cosines if library == "faiss" else [1 - c for c in cosines]
    assert got == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("library", ["faiss", "usearch"])
def test_index_is_returned_and_reusable(data, library):
    pytest.importorskip(library)
    queries, corpus = data
    binary = quantize_embeddings(corpus, "ubinary")
    search = SEARCHES[library]
    first, _, index = search(queries, corpus_embeddings=binary, corpus_precision="ubinary", output_index=True)
    # with only the index, the candidates for rescoring are read back from it
    again, _ = search(queries, corpus_index=index, corpus_precision="ubinary")
    assert _ids(again) == _ids(first)
    assert [h["score"] for h in again[0]] == pytest.approx([h["score"] for h in first[0]])


@pytest.mark.parametrize("library", ["faiss", "usearch"])
@pytest.mark.parametrize("precision", ["float32", "ubinary"])
def test_fewer_rows_than_top_k_gives_only_real_hits(library, precision):
    pytest.importorskip(library)
    queries, corpus = _unit(3, 16, 0), _unit(4, 16, 1)
    stored = quantize_embeddings(corpus, precision)
    hits, _ = SEARCHES[library](queries, corpus_embeddings=stored, corpus_precision=precision, top_k=10)
    for row in hits:
        assert sorted(h["corpus_id"] for h in row) == [0, 1, 2, 3]
        assert all(np.isfinite(h["score"]) for h in row)


# ------------------------------------------------------------------------------------ quantized search


@pytest.mark.parametrize(
    ("library", "precision"), [("faiss", "ubinary"), ("usearch", "ubinary"), ("usearch", "binary")]
)
def test_binary_with_rescoring_keeps_recall(data, library, precision):
    pytest.importorskip(library)
    queries, corpus = data
    truth = _exact_ids(queries, corpus, 10)
    binary = quantize_embeddings(corpus, precision)
    plain, _ = SEARCHES[library](queries, corpus_embeddings=binary, corpus_precision=precision, rescore=False)
    rescored, _ = SEARCHES[library](
        queries, corpus_embeddings=binary, corpus_precision=precision, rescore_multiplier=4
    )
    assert _recall(rescored, truth) >= 0.8
    assert _recall(rescored, truth) >= _recall(plain, truth)
    scores = [h["score"] for h in rescored[0]]
    assert scores == sorted(scores, reverse=True)  # rescored: inner products, best first


# Not FAISS uint8: like the reference, it ranks candidates by the inner product of raw 0..255 buckets, which
# is not centred, so its candidates (and recall) are poor; test_same_results_as_reference covers it.
@pytest.mark.parametrize(("library", "precision"), [("usearch", "int8")])
def test_scalar_with_rescoring_keeps_recall(data, library, precision):
    pytest.importorskip(library)
    queries, corpus = data
    ranges = quantization_ranges(corpus)
    stored = quantize_embeddings(corpus, precision, ranges=ranges)
    hits, _ = SEARCHES[library](queries, corpus_embeddings=stored, corpus_precision=precision, ranges=ranges)
    assert _recall(hits, _exact_ids(queries, corpus, 10)) >= 0.8


@pytest.mark.parametrize("library", ["faiss", "usearch"])
def test_approximate_search_finds_most_neighbours(data, library):
    pytest.importorskip(library)
    queries, corpus = data
    hits, _ = SEARCHES[library](queries, corpus_embeddings=corpus, exact=False, rescore=False)
    assert _recall(hits, _exact_ids(queries, corpus, 10)) >= 0.8


# ----------------------------------------------------------------------------------- reference parity


@pytest.mark.parametrize(
    ("library", "precision"),
    [
        ("faiss", "float32"),
        ("faiss", "ubinary"),
        ("faiss", "uint8"),
        ("usearch", "float32"),
        ("usearch", "int8"),
        ("usearch", "ubinary"),
        ("usearch", "binary"),
    ],
)
def test_same_results_as_reference(data, library, precision):
    pytest.importorskip(library)
    st_quantization = pytest.importorskip("sentence_transformers.util.quantization")
    queries, corpus = data
    ranges = quantization_ranges(corpus)
    stored = quantize_embeddings(corpus, precision, ranges=ranges)
    kwargs = {
        "corpus_embeddings": stored,
        "corpus_precision": precision,
        "top_k": 7,
        "ranges": ranges,
        "rescore": precision != "float32",
        "rescore_multiplier": 3,
    }
    ours, _ = SEARCHES[library](queries, **kwargs)
    ref, _ = getattr(st_quantization, f"semantic_search_{library}")(queries, **kwargs)
    assert _ids(ours) == _ids(ref)
    for o, r in zip(ours, ref, strict=True):
        assert [h["score"] for h in o] == pytest.approx([h["score"] for h in r], abs=1e-5)


def test_reachable_from_quantization_like_the_reference():
    import sentencekit.quantization as quantization

    assert quantization.semantic_search_faiss is semantic_search_faiss
    assert quantization.semantic_search_usearch is semantic_search_usearch
    with pytest.raises(AttributeError):
        quantization.semantic_search_annoy  # noqa: B018
