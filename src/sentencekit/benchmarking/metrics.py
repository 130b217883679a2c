"""Agreement of embeddings with a baseline path, and the STSb Spearman correlation, in plain numpy."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["max_abs_diff", "min_cosine", "spearman", "stsb_spearman"]


def _unit(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.maximum(norms, 1e-12)


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    """The largest absolute difference between two embedding matrices of the same shape."""
    return float(np.abs(a - b).max()) if a.size else 0.0


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    """The lowest cosine similarity between row ``i`` of ``a`` and row ``i`` of ``b``, over all rows."""
    return float((_unit(a) * _unit(b)).sum(axis=1).min()) if len(a) else 1.0


def _ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties given the mean of the ranks they span (as Spearman's correlation needs)."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    starts = np.concatenate(([0], np.flatnonzero(np.diff(ordered)) + 1))
    ends = np.concatenate((starts[1:], [len(values)]))
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return ranks


def spearman(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Spearman's rank correlation of ``x`` and ``y`` (ties averaged); NaN when either is constant."""
    rx = _ranks(np.asarray(x, dtype=np.float64))
    ry = _ranks(np.asarray(y, dtype=np.float64))
    rx -= rx.mean()
    ry -= ry.mean()
    denominator = float(np.sqrt((rx * rx).sum() * (ry * ry).sum()))
    return float((rx * ry).sum() / denominator) if denominator else float("nan")


def stsb_spearman(
    embeddings: np.ndarray,
    index: dict[str, int],
    sentences1: Sequence[str],
    sentences2: Sequence[str],
    scores: Sequence[float],
) -> float:
    """Spearman correlation of the pairs' cosine similarities with their gold scores.

    Args:
        embeddings: One row per text; ``index`` maps each text to its row.
        index: Row of every sentence of the pairs.
        sentences1: First sentence of each pair.
        sentences2: Second sentence of each pair.
        scores: Gold similarity of each pair.
    """
    unit = _unit(embeddings)
    left = unit[[index[s] for s in sentences1]]
    right = unit[[index[s] for s in sentences2]]
    return spearman((left * right).sum(axis=1), scores)
