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

Example:
    >>> from sentencekit.similarity import cos_sim
    >>> cos_sim([[1.0, 0.0]], [[1.0, 0.0], [0.0, 1.0]])
    tensor([[1., 0.]])

"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from sentencekit.errors import InvalidInputError
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

logger = logging.getLogger(__name__)

ArrayLike = Tensor | np.ndarray | Sequence
"""What the similarity functions accept: a tensor (dense or sparse COO), a numpy array, or a (nested) list."""

# Elements of float64 scratch space one block of the sparse Manhattan computation may use (~32 MB).
_SPARSE_BLOCK_ELEMENTS = 1 << 22


# --------------------------------------------------------------------------------------------- conversion


def as_tensor(x: ArrayLike, name: str = "embeddings") -> Tensor:
    """Convert ``x`` to a tensor the similarity functions can work with.

    Lists of tensors or arrays are stacked, numpy arrays are wrapped without a copy where numpy allows it,
    sparse COO tensors stay sparse (as float32), and floats narrower than 32 bits (float16, bfloat16) are
    widened to float32 so that scores do not collapse into ties.

    Args:
        x: The embeddings.
        name: How to call ``x`` in error messages.

    Returns:
        A tensor with the same values as ``x``.

    Raises:
        InvalidInputError: If ``x`` cannot be read as a rectangular numeric array.

    """
    try:
        if isinstance(x, Tensor):
            t = x
        elif isinstance(x, np.ndarray):
            t = torch.from_numpy(x) if x.flags.writeable else torch.tensor(x)
        elif isinstance(x, (list, tuple)) and x and all(isinstance(v, Tensor) for v in x):
            if all(v.is_sparse for v in x):
                t = torch.stack([v.coalesce() for v in x])
            else:
                t = torch.stack([v.to_dense() for v in x])
        elif isinstance(x, (list, tuple)) and x and all(isinstance(v, np.ndarray) for v in x):
            t = torch.from_numpy(np.stack(x))
        else:
            t = torch.tensor(x)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise InvalidInputError(
            f"{name} could not be converted to a tensor ({exc}). Pass a 2-D numpy array, a torch "
            "tensor, or a list of equal-length vectors."
        ) from exc
    if t.is_sparse:
        return t.to(torch.float32)
    if t.is_floating_point() and torch.finfo(t.dtype).bits < 32:
        return t.to(torch.float32)
    return t


def as_batch(x: ArrayLike, name: str = "embeddings") -> Tensor:
    """Like :func:`as_tensor`, but a single 1-D embedding becomes a batch of one and >2-D input is rejected.

    Args:
        x: One embedding or a batch of embeddings.
        name: How to call ``x`` in error messages.

    Returns:
        A 2-D tensor of shape ``(batch, dim)``.

    Raises:
        InvalidInputError: If ``x`` has more than two dimensions or cannot be converted.

    """
    t = as_tensor(x, name)
    if t.dim() == 1:
        t = t.unsqueeze(0)
    if t.dim() != 2:
        raise InvalidInputError(
            f"{name} must be one embedding (1-D) or a batch of embeddings (2-D), got shape {tuple(t.shape)}. "
            "Reshape it to (batch, dim)."
        )
    return t


def _as_float(t: Tensor) -> Tensor:
    return t if t.is_floating_point() else t.to(torch.float32)


def _common_dtype(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    if a.dtype == b.dtype:
        return a, b
    dtype = torch.promote_types(a.dtype, b.dtype)
    return a.to(dtype), b.to(dtype)


def _check_dims(a: Tensor, b: Tensor) -> None:
    if a.shape[-1] != b.shape[-1]:
        raise InvalidInputError(
            f"Cannot compare embeddings of dimension {a.shape[-1]} with embeddings of dimension "
            f"{b.shape[-1]}. Both sides must come from the same model (and the same truncate_dim)."
        )


def _matrix_inputs(a: ArrayLike, b: ArrayLike, *, floating: bool) -> tuple[Tensor, Tensor]:
    ta, tb = as_batch(a, "a"), as_batch(b, "b")
    _check_dims(ta, tb)
    if floating:
        ta, tb = _as_float(ta), _as_float(tb)
    return _common_dtype(ta, tb)


def _pairwise_inputs(a: ArrayLike, b: ArrayLike, *, floating: bool) -> tuple[Tensor, Tensor]:
    ta, tb = as_tensor(a, "a"), as_tensor(b, "b")
    if ta.dim() == 0 or tb.dim() == 0:
        raise InvalidInputError("Pairwise similarity needs vectors or batches of vectors, got a scalar.")
    _check_dims(ta, tb)
    try:
        torch.broadcast_shapes(ta.shape, tb.shape)
    except RuntimeError:
        raise InvalidInputError(
            f"Pairwise similarity compares a[i] with b[i], so a and b need the same number of rows; got "
            f"shapes {tuple(ta.shape)} and {tuple(tb.shape)}. Use the matrix version (e.g. cos_sim) to "
            "compare all pairs."
        ) from None
    if floating:
        ta, tb = _as_float(ta), _as_float(tb)
    return _common_dtype(ta, tb)


def _same_layout(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """Make both operands sparse when one is: the dense one is usually mostly zeros in that case."""
    if a.is_sparse != b.is_sparse:
        return (a, b.to_sparse()) if a.is_sparse else (a.to_sparse(), b)
    return a, b


# ------------------------------------------------------------------------------------------ normalization


def normalize_embeddings(embeddings: ArrayLike) -> Tensor:
    """Scale every embedding (the last dimension) to unit L2 length; all-zero rows stay zero.

    Args:
        embeddings: A vector or a batch of vectors, dense or sparse COO.

    Returns:
        A tensor of the same shape and layout as the input.

    """
    t = as_tensor(embeddings)
    if not t.is_sparse:
        return torch.nn.functional.normalize(_as_float(t), p=2, dim=-1)
    t = t.coalesce()
    indices, values = t.indices(), t.values()
    dtype = values.dtype
    values = values.float() if values.dtype in (torch.float16, torch.bfloat16) else values
    if t.dim() == 1:
        values = torch.nn.functional.normalize(values, p=2, dim=0)
    else:
        row_norms = values.new_zeros(t.shape[0]).index_add_(0, indices[0], values * values).sqrt()
        norms = row_norms[indices[0]]
        values = torch.where(norms > 0, values / torch.where(norms > 0, norms, 1.0), values)
    # the indices come from a coalesced tensor, so the invariants hold and need no re-check
    return torch.sparse_coo_tensor(
        indices, values.to(dtype), t.shape, is_coalesced=True, check_invariants=False
    )


def _row_squared_norms(t: Tensor) -> Tensor:
    if not t.is_sparse:
        return (t * t).sum(dim=1)
    t = t.coalesce()
    values = t.values()
    return values.new_zeros(t.shape[0]).index_add_(0, t.indices()[0], values * values)


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


def _take_rows(t: Tensor, start: int, end: int) -> Tensor:
    """Rows ``start:end`` of a dense or sparse COO tensor (sparse tensors cannot be sliced)."""
    if not t.is_sparse:
        return t[start:end]
    return t.index_select(0, torch.arange(start, end, device=t.device))


# -------------------------------------------------------------------------------------------- pairwise


def pairwise_dot_score(a: ArrayLike, b: ArrayLike) -> Tensor:
    """Inner product of ``a[i]`` with ``b[i]`` for every ``i``.

    Args:
        a: Embeddings of shape ``(n, dim)``.
        b: Embeddings of shape ``(n, dim)``.

    Returns:
        A dense ``(n,)`` tensor.

    """
    ta, tb = _pairwise_inputs(a, b, floating=False)
    return (ta * tb).sum(dim=-1).to_dense()


def pairwise_cos_sim(a: ArrayLike, b: ArrayLike) -> Tensor:
    """Cosine similarity of ``a[i]`` with ``b[i]`` for every ``i``.

    Args:
        a: Embeddings of shape ``(n, dim)``.
        b: Embeddings of shape ``(n, dim)``.

    Returns:
        A dense ``(n,)`` tensor.

    """
    ta, tb = _pairwise_inputs(a, b, floating=True)
    return (normalize_embeddings(ta) * normalize_embeddings(tb)).sum(dim=-1).to_dense()


def pairwise_euclidean_sim(a: ArrayLike, b: ArrayLike) -> Tensor:
    """Negative Euclidean distance between ``a[i]`` and ``b[i]`` for every ``i``.

    Args:
        a: Embeddings of shape ``(n, dim)``.
        b: Embeddings of shape ``(n, dim)``.

    Returns:
        A dense ``(n,)`` tensor.

    """
    ta, tb = _same_layout(*_pairwise_inputs(a, b, floating=True))
    diff = ta - tb
    if diff.is_sparse:
        return -(diff * diff).sum(dim=-1).to_dense().sqrt()
    return -torch.linalg.vector_norm(diff, dim=-1)


def pairwise_manhattan_sim(a: ArrayLike, b: ArrayLike) -> Tensor:
    """Negative Manhattan distance between ``a[i]`` and ``b[i]`` for every ``i``.

    Args:
        a: Embeddings of shape ``(n, dim)``.
        b: Embeddings of shape ``(n, dim)``.

    Returns:
        A dense ``(n,)`` tensor.

    """
    ta, tb = _same_layout(*_pairwise_inputs(a, b, floating=True))
    return -(ta - tb).abs().sum(dim=-1).to_dense()


def pairwise_angle_sim(a: ArrayLike, b: ArrayLike) -> Tensor:
    """AnglE similarity of ``a[i]`` and ``b[i]``: ``|cos + sin|`` of the unit vectors as complex numbers.

    Dimension ``k`` of the first half pairs with dimension ``k`` of the second half (an odd dimension is
    padded with a zero). Sparse inputs are densified.

    Args:
        a: Embeddings of shape ``(n, dim)``.
        b: Embeddings of shape ``(n, dim)``.

    Returns:
        A dense ``(n,)`` tensor.

    """
    ta, tb = _pairwise_inputs(a, b, floating=True)
    if ta.is_sparse or tb.is_sparse:
        logger.debug("pairwise_angle_sim densifies sparse inputs")
    ta, tb = ta.to_dense(), tb.to_dense()
    if ta.dim() == 1:
        ta, tb = ta.unsqueeze(0), tb.unsqueeze(0)
    if ta.shape[-1] % 2:
        ta = torch.nn.functional.pad(ta, (0, 1))
        tb = torch.nn.functional.pad(tb, (0, 1))
    ua = torch.nn.functional.normalize(ta, p=2, dim=-1)
    ub = torch.nn.functional.normalize(tb, p=2, dim=-1)
    cos = (ua * ub).sum(dim=-1)
    re_a, im_a = ua.chunk(2, dim=-1)
    re_b, im_b = ub.chunk(2, dim=-1)
    sin = (im_a * re_b - re_a * im_b).sum(dim=-1)
    return (cos + sin).abs()


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
