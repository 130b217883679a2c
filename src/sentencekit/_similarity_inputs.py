"""Input handling shared by the matrix and pairwise similarity functions of :mod:`sentencekit.similarity`.

Coercion of lists, numpy arrays and (sparse COO) tensors to tensors (:func:`as_tensor`, :func:`as_batch`),
the dimension, dtype and layout checks both families run first, row slicing that also works on sparse tensors,
and :func:`normalize_embeddings`. Everything here is re-exported from :mod:`sentencekit.similarity`; import
it from there.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from sentencekit.errors import InvalidInputError

__all__ = [
    "ArrayLike",
    "_as_float",
    "_check_dims",
    "_common_dtype",
    "_matrix_inputs",
    "_pairwise_inputs",
    "_same_layout",
    "_take_rows",
    "as_batch",
    "as_tensor",
    "normalize_embeddings",
]

ArrayLike = Tensor | np.ndarray | Sequence
"""What the similarity functions accept: a tensor (dense or sparse COO), a numpy array, or a (nested) list."""


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


def _take_rows(t: Tensor, start: int, end: int) -> Tensor:
    """Rows ``start:end`` of a dense or sparse COO tensor (sparse tensors cannot be sliced)."""
    if not t.is_sparse:
        return t[start:end]
    return t.index_select(0, torch.arange(start, end, device=t.device))


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
