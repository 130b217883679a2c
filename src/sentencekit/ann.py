"""Search float or quantized corpora through an index library: FAISS or usearch (optional extras).

The same calls and return values as ``sentence_transformers.util.semantic_search_faiss`` and
``semantic_search_usearch``. For brute-force search with no extra dependency, see
:func:`~sentencekit.quantization.semantic_search_quantized`.

===========  =================================  ===============================================  ============
library      corpus precisions                  index built (``exact=True`` / ``exact=False``)   extra
===========  =================================  ===============================================  ============
FAISS        float32, uint8                     ``IndexFlatIP`` / ``IndexHNSWFlat`` (M=16)       ``faiss``
FAISS        ubinary                            ``IndexBinaryFlat`` / ``IndexBinaryHNSW`` (M=16) ``faiss``
usearch      float32 / int8 / binary, ubinary   cosine f32 / inner product i8 / Hamming b1       ``usearch``
===========  =================================  ===============================================  ============

Scores are what the library reports: inner products for FAISS float/uint8, Hamming distances for binary
(lower is closer), cosine *distances* for usearch float32. With ``rescore`` (the default), float queries
and a quantized corpus, ``top_k * rescore_multiplier`` candidates are fetched and re-ranked by the inner
product of the float query with each candidate as stored (0/1 bits for binary, bucket lower edges for
int8/uint8); those scores are higher-is-better. For int8/uint8 pass the ``ranges`` (or
``calibration_embeddings``) the corpus was quantized with.

Example:
    >>> corpus = quantize_embeddings(corpus_float, "ubinary")  # doctest: +SKIP
    >>> hits, seconds = semantic_search_faiss(
    ...     queries, corpus_embeddings=corpus, corpus_precision="ubinary", rescore_multiplier=4
    ... )  # doctest: +SKIP

"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from torch import Tensor

from sentencekit._optional import require
from sentencekit.errors import InvalidInputError
from sentencekit.quantization import (
    _dequantize,
    _to_numpy,
    _unpack,
    quantization_ranges,
    quantize_embeddings,
)
from sentencekit.types import Precision

__all__ = ["semantic_search_faiss", "semantic_search_usearch"]

logger = logging.getLogger(__name__)

Hits = list[list[dict[str, int | float]]]

# Graph degree of the approximate (HNSW) indexes, as in the reference.
_HNSW_NEIGHBOURS = 16

_FAISS_PRECISIONS = (Precision.FLOAT32, Precision.UINT8, Precision.UBINARY)
_USEARCH_PRECISIONS = (Precision.FLOAT32, Precision.INT8, Precision.UBINARY, Precision.BINARY)


def semantic_search_faiss(
    query_embeddings: np.ndarray | Tensor,
    corpus_embeddings: np.ndarray | None = None,
    corpus_index: Any = None,
    corpus_precision: str = "float32",
    top_k: int = 10,
    ranges: np.ndarray | None = None,
    calibration_embeddings: np.ndarray | None = None,
    rescore: bool = True,
    rescore_multiplier: int = 2,
    exact: bool = True,
    output_index: bool = False,
) -> tuple[Hits, float] | tuple[Hits, float, Any]:
    """Search with FAISS, building an index from ``corpus_embeddings`` or using ``corpus_index``.

    Args:
        query_embeddings: ``(n, dim)`` queries; float (quantized here, and used for rescoring) or already
            quantized like the corpus (then no rescoring).
        corpus_embeddings: The corpus as returned by :func:`~sentencekit.quantization.quantize_embeddings`
            (or float32). Give this or ``corpus_index``, not both.
        corpus_index: A FAISS index built earlier (e.g. returned with ``output_index=True``).
        corpus_precision: ``"float32"``, ``"uint8"`` or ``"ubinary"``.
        top_k: Results per query (fewer when the index holds fewer).
        ranges: For uint8: the ``(2, dim)`` ranges the corpus was quantized with.
        calibration_embeddings: For uint8 without ``ranges``: embeddings to take the ranges from (else the
            queries themselves, which is rarely what you want).
        rescore: Re-rank ``top_k * rescore_multiplier`` candidates with the float queries.
        rescore_multiplier: How many times ``top_k`` candidates to fetch for rescoring.
        exact: Brute force (flat index) if True, else an HNSW graph.
        output_index: Also return the index, to search it again without rebuilding.

    Returns:
        ``(hits, seconds)`` or, with ``output_index``, ``(hits, seconds, index)``: one list per query of
        ``{"corpus_id": int, "score": float}`` dicts, and the time spent searching and rescoring.

    Raises:
        MissingDependencyError: If faiss is not installed (``pip install 'sentencekit[faiss]'``).
        InvalidInputError: If both or neither of ``corpus_embeddings`` and ``corpus_index`` are given, or the
            precision is not one FAISS supports here.

    """
    faiss = require("faiss", extra="faiss", purpose="semantic_search_faiss")
    precision = _check_call(corpus_embeddings, corpus_index, corpus_precision, _FAISS_PRECISIONS, "FAISS")
    if corpus_index is None:
        assert corpus_embeddings is not None
        corpus_index = _faiss_index(faiss, np.asarray(corpus_embeddings), precision, exact)

    queries, rescore_with, k, ranges = _prepare_queries(
        query_embeddings, precision, top_k, ranges, calibration_embeddings, rescore, rescore_multiplier
    )
    start = time.perf_counter()
    scores, ids = corpus_index.search(queries, k)
    valid = ids >= 0  # FAISS pads short result lists with id -1
    if rescore_with is not None and valid.any():
        if corpus_embeddings is not None:  # the rows as given: no need to read them back from the index
            fetch = _rows_of(np.asarray(corpus_embeddings))
        else:
            fetch = lambda flat_ids: np.stack([corpus_index.reconstruct(int(i)) for i in flat_ids])  # noqa: E731
        scores, ids, valid = _rescore(rescore_with, ids, valid, fetch, precision, ranges, top_k)
    seconds = time.perf_counter() - start
    hits = _hits(scores, ids, valid)
    return (hits, seconds, corpus_index) if output_index else (hits, seconds)


def semantic_search_usearch(
    query_embeddings: np.ndarray | Tensor,
    corpus_embeddings: np.ndarray | None = None,
    corpus_index: Any = None,
    corpus_precision: str = "float32",
    top_k: int = 10,
    ranges: np.ndarray | None = None,
    calibration_embeddings: np.ndarray | None = None,
    rescore: bool = True,
    rescore_multiplier: int = 2,
    exact: bool = True,
    output_index: bool = False,
) -> tuple[Hits, float] | tuple[Hits, float, Any]:
    """Search with usearch, building an index from ``corpus_embeddings`` or using ``corpus_index``.

    Args:
        query_embeddings: ``(n, dim)`` queries; float (quantized here, and used for rescoring) or already
            quantized like the corpus (then no rescoring).
        corpus_embeddings: The corpus as returned by :func:`~sentencekit.quantization.quantize_embeddings`
            (or float32). Give this or ``corpus_index``, not both.
        corpus_index: A ``usearch.index.Index`` built earlier (e.g. returned with ``output_index=True``).
        corpus_precision: ``"float32"``, ``"int8"``, ``"ubinary"`` or ``"binary"``.
        top_k: Results per query (fewer when the index holds fewer).
        ranges: For int8: the ``(2, dim)`` ranges the corpus was quantized with.
        calibration_embeddings: For int8 without ``ranges``: embeddings to take the ranges from (else the
            queries themselves, which is rarely what you want).
        rescore: Re-rank ``top_k * rescore_multiplier`` candidates with the float queries.
        rescore_multiplier: How many times ``top_k`` candidates to fetch for rescoring.
        exact: Passed to usearch's search: brute force if True, else its HNSW graph.
        output_index: Also return the index, to search it again without rebuilding.

    Returns:
        ``(hits, seconds)`` or, with ``output_index``, ``(hits, seconds, index)``: one list per query of
        ``{"corpus_id": int, "score": float}`` dicts, and the time spent searching and rescoring.

    Raises:
        MissingDependencyError: If usearch is not installed (``pip install 'sentencekit[usearch]'``).
        InvalidInputError: If both or neither of ``corpus_embeddings`` and ``corpus_index`` are given, or the
            precision is not one usearch supports here.

    """
    usearch = require("usearch.index", extra="usearch", purpose="semantic_search_usearch")
    precision = _check_call(corpus_embeddings, corpus_index, corpus_precision, _USEARCH_PRECISIONS, "usearch")
    if corpus_index is None:
        assert corpus_embeddings is not None
        corpus_index = _usearch_index(usearch, np.asarray(corpus_embeddings), precision)

    queries, rescore_with, k, ranges = _prepare_queries(
        query_embeddings, precision, top_k, ranges, calibration_embeddings, rescore, rescore_multiplier
    )
    if rescore_with is not None and str(corpus_index.dtype).lower().endswith("f32"):
        # a float index handed in with a quantized precision: its rows are floats, nothing to rescore
        rescore_with, k = None, top_k
    if precision == Precision.BINARY:
        queries = queries.view(np.uint8) ^ 0x80  # the b1 index holds the unshifted (ubinary) bytes
    start = time.perf_counter()
    matches = corpus_index.search(queries, count=k, exact=exact)
    ids, scores = np.atleast_2d(matches.keys), np.atleast_2d(matches.distances)
    # usearch pads short result lists; `counts` says how many are real (a single query's Matches has none)
    counts = getattr(matches, "counts", None)
    counts = np.full(len(ids), ids.shape[1]) if counts is None else np.asarray(counts).reshape(-1)
    valid = np.arange(ids.shape[1]) < counts[:, None]
    if rescore_with is not None and valid.any():
        if corpus_embeddings is not None:  # the rows as given: no need to read them back from the index
            fetch, stored = _rows_of(np.asarray(corpus_embeddings)), precision
        else:  # a b1 index hands back the unshifted (ubinary) bytes
            fetch = lambda flat_ids: np.asarray(corpus_index.get(flat_ids))  # noqa: E731
            stored = Precision.UBINARY if precision == Precision.BINARY else precision
        scores, ids, valid = _rescore(rescore_with, ids, valid, fetch, stored, ranges, top_k)
    seconds = time.perf_counter() - start
    hits = _hits(scores, ids, valid)
    return (hits, seconds, corpus_index) if output_index else (hits, seconds)


# ------------------------------------------------------------------------------------------- indexes


def _faiss_index(faiss: Any, corpus: np.ndarray, precision: Precision, exact: bool) -> Any:
    if precision == Precision.UBINARY:
        bits = corpus.shape[1] * 8
        index = faiss.IndexBinaryFlat(bits) if exact else faiss.IndexBinaryHNSW(bits, _HNSW_NEIGHBOURS)
        index.add(np.ascontiguousarray(corpus, dtype=np.uint8))
        return index
    dim = corpus.shape[1]
    if exact:
        index = faiss.IndexFlatIP(dim)
    else:
        index = faiss.IndexHNSWFlat(dim, _HNSW_NEIGHBOURS, faiss.METRIC_INNER_PRODUCT)
    index.add(np.ascontiguousarray(corpus, dtype=np.float32))  # uint8 buckets are searched as floats
    return index


def _usearch_index(usearch: Any, corpus: np.ndarray, precision: Precision) -> Any:
    if precision in (Precision.BINARY, Precision.UBINARY):
        index = usearch.Index(ndim=corpus.shape[1] * 8, metric="hamming", dtype="b1")
        if precision == Precision.BINARY:
            corpus = corpus.view(np.uint8) ^ 0x80
    elif precision == Precision.INT8:
        index = usearch.Index(ndim=corpus.shape[1], metric="ip", dtype="i8")
    else:
        index = usearch.Index(ndim=corpus.shape[1], metric="cos", dtype="f32")
    index.add(np.arange(len(corpus)), corpus)
    return index


# ---------------------------------------------------------------------------------------------- shared


def _check_call(
    corpus_embeddings: np.ndarray | None,
    corpus_index: Any,
    corpus_precision: str,
    supported: tuple[Precision, ...],
    library: str,
) -> Precision:
    if (corpus_embeddings is None) == (corpus_index is None):
        raise InvalidInputError(
            "Pass exactly one of corpus_embeddings (to build an index) or corpus_index (one built earlier)."
        )
    try:
        precision = Precision(Precision.parse(corpus_precision))
    except ValueError:
        precision = None
    if precision is None or precision not in supported:
        names = ", ".join(repr(p.value) for p in supported)
        raise InvalidInputError(
            f"corpus_precision must be one of {names} for {library}, got {corpus_precision!r}."
        )
    return precision


def _prepare_queries(
    query_embeddings: np.ndarray | Tensor,
    precision: Precision,
    top_k: int,
    ranges: np.ndarray | None,
    calibration_embeddings: np.ndarray | None,
    rescore: bool,
    rescore_multiplier: int,
) -> tuple[np.ndarray, np.ndarray | None, int, np.ndarray | None]:
    """Quantize float queries like the corpus.

    Returns:
        ``(queries, rescore_with, k, ranges)``: the queries to search with, the float queries to rescore
        with (None: no rescoring), how many candidates to fetch, and the int8/uint8 ranges used.

    """
    if top_k <= 0 or rescore_multiplier <= 0:
        raise InvalidInputError(
            f"top_k and rescore_multiplier must be positive integers, got {top_k} and {rescore_multiplier}."
        )
    queries = _to_numpy(query_embeddings, "query_embeddings")
    queries = queries[None, :] if queries.ndim == 1 else queries
    if queries.dtype in (np.int8, np.uint8):
        if rescore:
            logger.warning("Not rescoring: the queries are already quantized. Pass float queries to rescore.")
        return queries, None, top_k, ranges

    rescore_with, k = None, top_k
    if rescore and precision != Precision.FLOAT32:
        rescore_with, k = queries, top_k * rescore_multiplier
    elif rescore:
        logger.warning(
            "Not rescoring: the corpus is float32. Pass rescore=False, or quantize the corpus with "
            "quantize_embeddings and pass its corpus_precision."
        )
    if precision in (Precision.INT8, Precision.UINT8) and ranges is None:
        ranges = quantization_ranges(queries, calibration_embeddings)
    quantized = quantize_embeddings(queries, precision, ranges=ranges)
    assert isinstance(quantized, np.ndarray)
    return quantized, rescore_with, k, ranges


def _rescore(
    queries: np.ndarray,
    ids: np.ndarray,
    valid: np.ndarray,
    fetch_rows: Callable[[np.ndarray], np.ndarray],
    precision: Precision,
    ranges: np.ndarray | None,
    top_k: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Re-rank candidates by the float query's inner product with each candidate as stored; keep ``top_k``.

    ``fetch_rows`` maps corpus ids to their rows in ``precision`` (packed bits, buckets or floats).
    """
    dim = queries.shape[-1]
    # padding slots hold no row: fetch any real candidate there, and disqualify its score below
    safe = np.where(valid, ids, ids[valid][0])
    stored = fetch_rows(safe.reshape(-1))
    if precision in (Precision.BINARY, Precision.UBINARY):
        rows = _unpack(stored, precision, dim)
    else:
        rows = _dequantize(stored, precision, None if ranges is None else _to_numpy(ranges, "ranges"))
    rows = rows.reshape(*ids.shape, dim)
    scores = np.einsum("qd,qkd->qk", queries.astype(np.float64), rows)
    scores[~valid] = -np.inf
    order = np.argsort(-scores, axis=1, kind="stable")[:, :top_k]
    pick = np.take_along_axis
    return pick(scores, order, axis=1), pick(ids, order, axis=1), pick(valid, order, axis=1)


def _rows_of(corpus: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    return lambda flat_ids: corpus[flat_ids]


def _hits(scores: np.ndarray, ids: np.ndarray, valid: np.ndarray) -> Hits:
    return [
        [
            {"corpus_id": int(i), "score": float(s)}
            for s, i, ok in zip(row_s, row_i, row_ok, strict=True)
            if ok
        ]
        for row_s, row_i, row_ok in zip(scores, ids, valid, strict=True)
    ]
