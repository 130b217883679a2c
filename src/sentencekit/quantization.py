"""Quantize float embeddings to int8/uint8 (scalar) or packed bits (binary), and search over them.

=============  ==============  ===========================================================================
precision      dtype, width    what each value holds
=============  ==============  ===========================================================================
``float32``    float32, dim    the embedding itself
``uint8``      uint8, dim      bucket 0..255 of the value within its dimension's [min, max] range
``int8``       int8, dim       the same bucket shifted by -128 (so -128..127)
``ubinary``    uint8, dim/8    the sign bits (value > 0), packed 8 per byte, first dimension highest bit
``binary``     int8, dim/8     the packed byte shifted by -128
=============  ==============  ===========================================================================

The ranges of the scalar precisions come from ``ranges`` (a ``(2, dim)`` array of per-dimension minima and
maxima), else from ``calibration_embeddings``, else from the embeddings being quantized. Quantize a corpus and
later its queries with the *same* ranges, or their buckets will not line up.

Example:
    >>> import numpy as np
    >>> from sentencekit.quantization import quantize_embeddings
    >>> quantize_embeddings(np.array([[0.5, -1.0, 0.2, 0.0, 3.0, -2.0, 1.0, 0.1]]), "ubinary")
    array([[171]], dtype=uint8)

"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from sentencekit.errors import InvalidInputError
from sentencekit.types import Precision

# semantic_search_faiss / semantic_search_usearch are reachable here too (see __getattr__ at the end)
__all__ = ["quantization_ranges", "quantize_embeddings", "semantic_search_quantized"]

logger = logging.getLogger(__name__)

# Below this many calibration rows the per-dimension min/max are noisy estimates, so we warn.
_FEW_CALIBRATION_ROWS = 100


def _to_numpy(x: Tensor | np.ndarray | Sequence, name: str) -> np.ndarray:
    if isinstance(x, Tensor):
        x = x.detach()
        if x.is_sparse:
            x = x.to_dense()
        # numpy has no bfloat16
        return (x.float() if x.dtype == torch.bfloat16 else x).cpu().numpy()
    try:
        return np.asarray(x)
    except ValueError as exc:
        raise InvalidInputError(f"{name} is not a rectangular array ({exc}); pass a 2-D array.") from exc


def quantization_ranges(
    embeddings: Tensor | np.ndarray, calibration_embeddings: Tensor | np.ndarray | None = None
) -> np.ndarray:
    """Per-dimension ``[min, max]`` used to bucket values for int8/uint8.

    Args:
        embeddings: The embeddings to quantize; used when no calibration set is given.
        calibration_embeddings: A representative set of embeddings (preferably many: 1,000 or more).

    Returns:
        An array of shape ``(2, dim)``: row 0 the minima, row 1 the maxima.

    Raises:
        InvalidInputError: If the ranges would have to come from a single embedding.

    """
    if calibration_embeddings is None:
        data = _to_numpy(embeddings, "embeddings")
        if data.ndim == 1 or data.shape[0] == 1:
            raise InvalidInputError(
                "Cannot estimate int8/uint8 quantization ranges from a single embedding. Pass `ranges` (a "
                "(2, dim) array of per-dimension min and max) or `calibration_embeddings` from a "
                "representative set."
            )
        if data.shape[0] < _FEW_CALIBRATION_ROWS:
            logger.warning(
                "Estimating quantization ranges from only %d embeddings; pass `ranges` or a larger "
                "`calibration_embeddings` for stable buckets.",
                data.shape[0],
            )
    else:
        data = _to_numpy(calibration_embeddings, "calibration_embeddings")
    return np.vstack((data.min(axis=0), data.max(axis=0)))


def _scalar_quantize(embeddings: np.ndarray, precision: Precision, ranges: np.ndarray) -> np.ndarray:
    dim = embeddings.shape[-1]
    if ranges.shape != (2, dim):
        raise InvalidInputError(
            f"`ranges` must have shape (2, {dim}) (per-dimension min and max), got {ranges.shape}."
        )
    if np.isnan(embeddings).any():
        raise InvalidInputError(
            "Cannot quantize embeddings that contain NaN values; drop or re-encode those rows."
        )
    ranges = ranges.astype(np.float32, copy=False)
    lows = ranges[0]
    widths = (ranges[1] - lows) / 255
    widths = np.where(widths == 0, 1, widths)  # a constant dimension maps everything to bucket 0
    buckets = np.clip(np.floor((embeddings - lows) / widths), 0, 255)
    if precision == Precision.UINT8:
        return buckets.astype(np.uint8)
    return (buckets - 128).astype(np.int8)


def _pack_signs(embeddings: np.ndarray, precision: Precision) -> np.ndarray:
    packed = np.packbits(embeddings > 0, axis=-1)
    if precision == Precision.UBINARY:
        return packed
    return (packed.astype(np.int16) - 128).astype(np.int8)


def _empty_like(dim: int, precision: Precision) -> np.ndarray:
    width = (dim + 7) // 8 if precision in (Precision.BINARY, Precision.UBINARY) else dim
    signed = precision in (Precision.INT8, Precision.BINARY)
    dtype = np.float32 if precision == Precision.FLOAT32 else (np.int8 if signed else np.uint8)
    return np.zeros((0, width), dtype=dtype)


def quantize_embeddings(
    embeddings: Tensor | np.ndarray | list[Tensor] | list[np.ndarray],
    precision: str | Precision,
    ranges: np.ndarray | None = None,
    calibration_embeddings: np.ndarray | None = None,
) -> np.ndarray | list[np.ndarray]:
    """Quantize float embeddings to a smaller precision (see the module docstring for the formats).

    Args:
        embeddings: Float embeddings: a ``(n, dim)`` or ``(dim,)`` array or tensor, a list of vectors,
            or a list of ``(tokens, dim)`` matrices (multi-vector embeddings, quantized with shared ranges).
        precision: ``"float32"``, ``"int8"``, ``"uint8"``, ``"binary"`` or ``"ubinary"``.
        ranges: For int8/uint8: a ``(2, dim)`` array with each dimension's minimum and maximum.
        calibration_embeddings: For int8/uint8 without ``ranges``: embeddings to take the ranges from. Without
            either, the ranges come from ``embeddings`` themselves (which needs at least two rows).

    Returns:
        A numpy array (``float32``, ``int8`` or ``uint8``), or a list of arrays for a list of matrices.

    Raises:
        InvalidInputError: If the embeddings are already integers, contain NaN (int8/uint8), or the ranges
            cannot be determined.
        ValueError: If ``precision`` is not one of the values above.

    Example:
        >>> quantize_embeddings(np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5]]), "uint8")
        array([[  0, 254],
               [254,   0],
               [127, 127]], dtype=uint8)

        (The maximum lands in bucket 254, not 255: in float32, ``(max - min) / ((max - min) / 255)`` rounds
        just below 255. sentence-transformers buckets the same way, and we keep its exact output.)

    """
    prec = Precision(Precision.parse(precision))
    if isinstance(embeddings, list):
        if not embeddings:
            return []
        if all(isinstance(e, (Tensor, np.ndarray)) for e in embeddings):
            arrays = [_to_numpy(e, "embeddings") for e in embeddings]
            if all(a.ndim == 2 for a in arrays):
                return _quantize_matrices(arrays, prec, ranges, calibration_embeddings)
            embeddings = np.array(arrays)
    return _quantize_array(_to_numpy(embeddings, "embeddings"), prec, ranges, calibration_embeddings)


def _quantize_array(
    array: np.ndarray,
    precision: Precision,
    ranges: np.ndarray | None,
    calibration_embeddings: np.ndarray | None,
) -> np.ndarray:
    if array.dtype in (np.int8, np.uint8):
        raise InvalidInputError(
            f"These embeddings are already quantized ({array.dtype}); quantize the float embeddings instead."
        )
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise InvalidInputError(f"Embeddings to quantize must be numbers, got dtype {array.dtype}.")
    if array.ndim == 2 and array.shape[0] == 0 and precision != Precision.FLOAT32:
        return _empty_like(array.shape[1], precision)

    if precision == Precision.FLOAT32:
        return array.astype(np.float32)
    if precision in (Precision.INT8, Precision.UINT8):
        if ranges is None:
            ranges = quantization_ranges(array, calibration_embeddings)
        return _scalar_quantize(array, precision, _to_numpy(ranges, "ranges"))
    return _pack_signs(array, precision)


def _quantize_matrices(
    arrays: list[np.ndarray],
    precision: Precision,
    ranges: np.ndarray | None,
    calibration_embeddings: np.ndarray | None,
) -> list[np.ndarray]:
    """Quantize multi-vector embeddings with one set of ranges, so that all of them share buckets."""
    if precision in (Precision.INT8, Precision.UINT8) and ranges is None:
        calibration = np.concatenate(arrays) if calibration_embeddings is None else calibration_embeddings
        if len(calibration):
            ranges = quantization_ranges(calibration, calibration_embeddings)
    return [_quantize_array(a, precision, ranges, calibration_embeddings) for a in arrays]


# ------------------------------------------------------------------------------------- quantized search


def _dequantize(buckets: np.ndarray, precision: Precision, ranges: np.ndarray | None) -> np.ndarray:
    """Map int8/uint8 buckets back to the lower edge of each bucket (float64)."""
    assert ranges is not None  # checked by the caller
    ranges = ranges.astype(np.float32, copy=False)
    widths = (ranges[1] - ranges[0]) / 255
    widths = np.where(widths == 0, 1, widths)
    values = buckets.astype(np.float64)
    if precision == Precision.INT8:
        values += 128
    return values * widths + ranges[0]


def _as_ubinary(packed: np.ndarray, precision: Precision) -> np.ndarray:
    """Undo the -128 shift of ``binary``, giving the packed sign bytes of ``ubinary``."""
    if precision == Precision.BINARY:
        return (packed.astype(np.int16) + 128).astype(np.uint8)
    return np.ascontiguousarray(packed, dtype=np.uint8)


def _unpack(packed: np.ndarray, precision: Precision, dim: int) -> np.ndarray:
    """Packed (u)binary rows back to 0/1 float64 vectors of length ``dim``."""
    return np.unpackbits(_as_ubinary(packed, precision), axis=-1)[..., :dim].astype(np.float64)


def _negative_hamming(a: Tensor, b: Tensor) -> Tensor:
    """``-hamming(a[i], b[j])`` for packed uint8 bit rows (a score: higher is closer)."""
    xor = torch.bitwise_xor(a.unsqueeze(1), b.unsqueeze(0))  # (n, m, bytes)
    ones = torch.zeros(xor.shape[:2], dtype=torch.int32, device=xor.device)
    for shift in range(8):
        ones += ((xor >> shift) & 1).sum(dim=-1, dtype=torch.int32)
    return -ones.to(torch.float32)


def semantic_search_quantized(
    query_embeddings: np.ndarray | Tensor,
    corpus_embeddings: np.ndarray,
    corpus_precision: str | Precision,
    top_k: int = 10,
    ranges: np.ndarray | None = None,
    rescore: bool = True,
    rescore_multiplier: int = 2,
    rescore_embeddings: np.ndarray | Tensor | None = None,
) -> list[list[dict[str, int | float]]]:
    """Search a quantized corpus exactly with float queries, optionally rescoring with the floats.

    The queries are quantized like the corpus, and candidates are ranked by inner product (float32,
    int8, uint8) or by Hamming distance (binary, ubinary: the score is ``-distance``). With ``rescore``
    (and a quantized corpus), ``top_k * rescore_multiplier`` candidates are fetched and re-ranked by the
    inner product of the *float* query with the dequantized corpus rows (bucket lower edges for
    int8/uint8, 0/1 bits for binary), which recovers most of the float ranking quality. No index library
    is needed: the search is brute force, chunked like :func:`~sentencekit.search.semantic_search`.

    Args:
        query_embeddings: Float query embeddings, ``(n, dim)`` or ``(dim,)``.
        corpus_embeddings: The corpus, as returned by :func:`quantize_embeddings`.
        corpus_precision: The precision the corpus was quantized to.
        top_k: How many results per query.
        ranges: For int8/uint8: the ranges the corpus was quantized with (required there).
        rescore: Re-rank candidates with the float queries.
        rescore_multiplier: How many times ``top_k`` candidates to fetch before rescoring.
        rescore_embeddings: The corpus's float embeddings, ``(n, dim)``, to rescore the candidates with
            instead of their codes. Only the candidates' rows are read, so this can be a memory map
            (``np.load(path, mmap_mode="r")``): the index stays quantized in memory while the ranking gets
            close to float's. Without it, the candidates are rescored from the codes (as in the reference).

    Returns:
        One list per query of ``{"corpus_id": int, "score": float}`` dicts, best first.

    Raises:
        InvalidInputError: On an empty corpus, mismatched dimensions, missing ranges, a non-positive
            ``top_k``, or ``rescore_embeddings`` whose shape is not the corpus's.

    Example:
        >>> corpus = quantize_embeddings(corpus_float, "ubinary")
        >>> hits = semantic_search_quantized(query_float, corpus, "ubinary", top_k=5)
        >>> floats = np.load("corpus.npy", mmap_mode="r")  # rescore with the floats, kept on disk
        >>> hits = semantic_search_quantized(query_float, corpus, "ubinary", rescore_embeddings=floats)

    """
    from sentencekit.search import semantic_search  # search imports similarity; keep quantization light
    from sentencekit.similarity import dot_score

    prec = Precision(Precision.parse(corpus_precision))
    if top_k <= 0 or rescore_multiplier <= 0:
        raise InvalidInputError(
            f"top_k and rescore_multiplier must be positive integers, got {top_k} and {rescore_multiplier}."
        )
    queries = _to_numpy(query_embeddings, "query_embeddings")
    queries = queries[None, :] if queries.ndim == 1 else queries
    corpus = np.asarray(corpus_embeddings)
    if len(corpus) == 0:
        raise InvalidInputError("The corpus is empty; there is nothing to search.")
    dim = queries.shape[-1]
    packed = prec in (Precision.BINARY, Precision.UBINARY)
    width = (dim + 7) // 8 if packed else dim
    if corpus.ndim != 2 or corpus.shape[1] != width:
        raise InvalidInputError(
            f"A {prec.value} corpus for {dim}-dim queries must have shape (n, {width}), got {corpus.shape}. "
            "Quantize the corpus and the queries from the same model."
        )
    if rescore_embeddings is not None:
        rescore_embeddings = _to_numpy(rescore_embeddings, "rescore_embeddings")
        if rescore_embeddings.shape != (len(corpus), dim):
            raise InvalidInputError(
                f"rescore_embeddings must be the corpus's float embeddings, shape ({len(corpus)}, {dim}), "
                f"got {rescore_embeddings.shape}."
            )
    if prec in (Precision.INT8, Precision.UINT8) and ranges is None:
        raise InvalidInputError(f"Searching a {prec.value} corpus needs the `ranges` it was quantized with.")

    do_rescore = rescore and prec != Precision.FLOAT32
    fetch = top_k * rescore_multiplier if do_rescore else top_k
    q_quant = _quantize_array(queries, prec, ranges, None)
    if packed:
        q_t = torch.from_numpy(_as_ubinary(q_quant, prec))
        c_t = torch.from_numpy(_as_ubinary(corpus, prec))
        # the (queries, corpus, bytes) XOR block is what costs memory here: keep it near 64 MB
        chunk = max(1, (1 << 26) // (16 * max(width, 1)))
        hits = semantic_search(
            q_t,
            c_t,
            query_chunk_size=16,
            corpus_chunk_size=chunk,
            top_k=fetch,
            score_function=_negative_hamming,
        )
    else:
        # uint8 buckets are int8 buckets + 128: shift them back so that the inner product is centred
        shift = 128.0 if prec == Precision.UINT8 else 0.0
        hits = semantic_search(
            torch.from_numpy(q_quant.astype(np.float32) - shift),
            torch.from_numpy(np.ascontiguousarray(corpus)),
            top_k=fetch,
            score_function=lambda q, c: dot_score(q, c.to(torch.float32) - shift),
        )
    if not do_rescore:
        return hits

    range_array = None if ranges is None else _to_numpy(ranges, "ranges")
    rescored = []
    for query, query_hits in zip(queries.astype(np.float64), hits, strict=True):
        ids = np.array([h["corpus_id"] for h in query_hits])
        if rescore_embeddings is not None:
            rows = rescore_embeddings[ids].astype(np.float64)
        elif packed:
            rows = _unpack(corpus[ids], prec, dim)
        else:
            rows = _dequantize(corpus[ids], prec, range_array)
        scores = rows @ query
        order = np.argsort(-scores, kind="stable")[:top_k]
        rescored.append([{"corpus_id": int(ids[i]), "score": float(scores[i])} for i in order])
    return rescored


def __getattr__(name: str) -> Any:
    """Resolve the FAISS/usearch searches, which live in :mod:`sentencekit.ann` (it builds on this module).

    They are reachable here too because the reference exposes them beside ``quantize_embeddings``.
    """
    if name in ("semantic_search_faiss", "semantic_search_usearch"):
        from sentencekit import ann

        return getattr(ann, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
