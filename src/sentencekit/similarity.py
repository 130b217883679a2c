"""Similarity between embeddings: full score matrices, row-by-row (pairwise) scores, and normalization.

Every function takes Python lists, numpy arrays or torch tensors (dense or sparse COO) and returns a dense
``torch.Tensor``. The matrix functions (:func:`cos_sim`, :func:`dot_score`, :func:`euclidean_sim`,
:func:`manhattan_sim`) compare every row of ``a`` with every row of ``b`` and treat a 1-D input as a batch of
one; the ``pairwise_*`` functions compare ``a[i]`` with ``b[i]`` only.

Distances are returned negated (``euclidean_sim`` is ``-||a - b||``) so that for every function a larger value
means "more similar", which is what search and ranking code expects.

==========================  =====================  ==============================
function                    result shape           value
==========================  =====================  ==============================
``cos_sim(a, b)``           ``(len(a), len(b))``   cosine of the angle
``dot_score(a, b)``         ``(len(a), len(b))``   inner product
``euclidean_sim(a, b)``     ``(len(a), len(b))``   negative L2 distance
``manhattan_sim(a, b)``     ``(len(a), len(b))``   negative L1 distance
``pairwise_*(a, b)``        ``(len(a),)``          the same, for ``a[i]`` and ``b[i]``
==========================  =====================  ==============================

The ``pairwise_*`` functions live in :mod:`sentencekit.similarity_pairwise` and the input handling
(:func:`as_tensor`, :func:`as_batch`, :func:`normalize_embeddings`) in ``sentencekit._similarity_inputs``;
both are re-exported here, so import everything from this module.

Example:
    >>> from sentencekit.similarity import cos_sim
    >>> cos_sim([[1.0, 0.0]], [[1.0, 0.0], [0.0, 1.0]])
    tensor([[1., 0.]])

"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from sentencekit._similarity_inputs import (
    ArrayLike,
    _matrix_inputs,
    _take_rows,
    as_batch,
    as_tensor,
    normalize_embeddings,
)
from sentencekit.similarity_pairwise import (
    pairwise_angle_sim,
    pairwise_cos_sim,
    pairwise_dot_score,
    pairwise_euclidean_sim,
    pairwise_manhattan_sim,
)
from sentencekit.types import SimilarityFunction

__all__ = [
    "ArrayLike",
    "as_batch",
    "as_tensor",
    "cos_sim",
    "dot_score",
    "euclidean_sim",
    "manhattan_sim",
    "normalize_embeddings",
    "pairwise_angle_sim",
    "pairwise_cos_sim",
    "pairwise_dot_score",
    "pairwise_euclidean_sim",
    "pairwise_manhattan_sim",
    "similarity_fn",
]

# Elements of float64 scratch space one block of the sparse Manhattan computation may use (~32 MB).
_SPARSE_BLOCK_ELEMENTS = 1 << 22


# --------------------------------------------------------------------------------------------- matrices


def cos_sim(a: ArrayLike, b: ArrayLike) -> Tensor:
    """Cosine similarity of every row of ``a`` with every row of ``b``.

    Args:
        a: Embeddings of shape ``(n, dim)`` or ``(dim,)``.
        b: Embeddings of shape ``(m, dim)`` or ``(dim,)``.

    Returns:
        A dense ``(n, m)`` tensor with ``result[i][j] = cos(a[i], b[j])``; rows that are all zero score 0.

    """
    ta, tb = _matrix_inputs(a, b, floating=True)
    return torch.mm(normalize_embeddings(ta), normalize_embeddings(tb).t()).to_dense()


def dot_score(a: ArrayLike, b: ArrayLike) -> Tensor:
    """Inner product of every row of ``a`` with every row of ``b``.

    Args:
        a: Embeddings of shape ``(n, dim)`` or ``(dim,)``.
        b: Embeddings of shape ``(m, dim)`` or ``(dim,)``.

    Returns:
        A dense ``(n, m)`` tensor with ``result[i][j] = a[i] . b[j]``.

    """
    ta, tb = _matrix_inputs(a, b, floating=False)
    return torch.mm(ta, tb.t()).to_dense()


def euclidean_sim(a: ArrayLike, b: ArrayLike) -> Tensor:
    """Negative Euclidean (L2) distance between every row of ``a`` and every row of ``b``.

    Sparse inputs are never densified: the distance is expanded as ``|a|^2 - 2 a.b + |b|^2``.

    Args:
        a: Embeddings of shape ``(n, dim)`` or ``(dim,)``.
        b: Embeddings of shape ``(m, dim)`` or ``(dim,)``.

    Returns:
        A dense ``(n, m)`` tensor with ``result[i][j] = -||a[i] - b[j]||_2``.

    """
    ta, tb = _matrix_inputs(a, b, floating=True)
    if not (ta.is_sparse or tb.is_sparse):
        return -torch.cdist(ta, tb, p=2.0)
    squared = (
        _row_squared_norms(ta).unsqueeze(1) - 2 * torch.mm(ta, tb.t()).to_dense() + _row_squared_norms(tb)
    )
    # rounding can push the squared distance of (nearly) equal vectors slightly below zero
    return -squared.clamp(min=0.0).sqrt()


def manhattan_sim(a: ArrayLike, b: ArrayLike) -> Tensor:
    """Negative Manhattan (L1) distance between every row of ``a`` and every row of ``b``.

    Args:
        a: Embeddings of shape ``(n, dim)`` or ``(dim,)``.
        b: Embeddings of shape ``(m, dim)`` or ``(dim,)``.

    Returns:
        A dense ``(n, m)`` tensor with ``result[i][j] = -||a[i] - b[j]||_1``.

    """
    ta, tb = _matrix_inputs(a, b, floating=True)
    if not (ta.is_sparse or tb.is_sparse):
        return -torch.cdist(ta, tb, p=1.0)
    return -_sparse_manhattan(ta, tb)


def _sparse_manhattan(a: Tensor, b: Tensor) -> Tensor:
    """L1 distances when at least one side is sparse, in memory bounded by ``_SPARSE_BLOCK_ELEMENTS``.

    Only the coordinates where ``b`` is non-zero need ``|a_k - b_k|``; everywhere else the term is ``|a_k|``.
    So ``d(a, b) = sum|a| + sum|b| - sum over b's non-zeros of (|a_k| + |b_k| - |a_k - b_k|)``, computed in
    float64 for blocks of rows of ``a`` against the non-zero entries of ``b``.
    """
    dtype = a.dtype
    b = (b if b.is_sparse else b.to_sparse()).coalesce()
    b_rows, b_cols = b.indices()
    b_values = b.values().double()
    b_abs_sums = torch.zeros(b.shape[0], dtype=torch.float64, device=b.device).index_add_(
        0, b_rows, b_values.abs()
    )
    n, dim = a.shape
    block = max(1, _SPARSE_BLOCK_ELEMENTS // max(b_values.numel(), dim, 1))
    out = torch.empty(n, b.shape[0], dtype=torch.float64, device=b.device)
    for start in range(0, n, block):
        rows = _take_rows(a, start, min(start + block, n)).to_dense().double()
        at_b = rows[:, b_cols]  # (block, nnz of b): a's values where b is non-zero
        overlap = at_b.abs() + b_values.abs() - (at_b - b_values).abs()
        distances = rows.abs().sum(dim=1, keepdim=True) + b_abs_sums
        out[start : start + len(rows)] = distances.index_add_(1, b_rows, overlap, alpha=-1)
    return out.to(dtype)


def _row_squared_norms(t: Tensor) -> Tensor:
    if not t.is_sparse:
        return (t * t).sum(dim=1)
    t = t.coalesce()
    values = t.values()
    return values.new_zeros(t.shape[0]).index_add_(0, t.indices()[0], values * values)


# --------------------------------------------------------------------------------------------- lookup

_MATRIX_FNS: dict[SimilarityFunction, Callable[[ArrayLike, ArrayLike], Tensor]] = {
    SimilarityFunction.COSINE: cos_sim,
    SimilarityFunction.DOT_PRODUCT: dot_score,
    SimilarityFunction.EUCLIDEAN: euclidean_sim,
    SimilarityFunction.MANHATTAN: manhattan_sim,
}
_PAIRWISE_FNS: dict[SimilarityFunction, Callable[[ArrayLike, ArrayLike], Tensor]] = {
    SimilarityFunction.COSINE: pairwise_cos_sim,
    SimilarityFunction.DOT_PRODUCT: pairwise_dot_score,
    SimilarityFunction.EUCLIDEAN: pairwise_euclidean_sim,
    SimilarityFunction.MANHATTAN: pairwise_manhattan_sim,
}


def similarity_fn(
    name: str | SimilarityFunction, pairwise: bool = False
) -> Callable[[ArrayLike, ArrayLike], Tensor]:
    """Look up the function behind a :class:`~sentencekit.types.SimilarityFunction` name.

    Args:
        name: ``"cosine"``, ``"dot"``, ``"euclidean"`` or ``"manhattan"`` (or the enum member).
        pairwise: Return the ``pairwise_*`` variant (``a[i]`` against ``b[i]``) instead of the full matrix.

    Returns:
        For example :func:`cos_sim` for ``"cosine"``, or :func:`pairwise_cos_sim` with ``pairwise=True``.

    Raises:
        ValueError: If ``name`` is not a known similarity function; the message lists the valid names.

    Example:
        >>> similarity_fn("dot")([[1.0, 2.0]], [[3.0, 4.0]])
        tensor([[11.]])

    """
    member = SimilarityFunction.parse(name)
    table = _PAIRWISE_FNS if pairwise else _MATRIX_FNS
    return table[SimilarityFunction(member)]
