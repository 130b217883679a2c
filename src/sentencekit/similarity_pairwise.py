"""Row-by-row similarity: the ``pairwise_*`` functions compare ``a[i]`` with ``b[i]`` only.

Each returns a dense ``(n,)`` tensor, with distances negated so that larger means "more similar", like the
matrix functions of :mod:`sentencekit.similarity`, which re-exports everything here.
"""

from __future__ import annotations

import logging

import torch
from torch import Tensor

from sentencekit._similarity_inputs import ArrayLike, _pairwise_inputs, _same_layout, normalize_embeddings

__all__ = [
    "pairwise_angle_sim",
    "pairwise_cos_sim",
    "pairwise_dot_score",
    "pairwise_euclidean_sim",
    "pairwise_manhattan_sim",
]

# the name these functions have always logged under, from before they moved out of similarity.py
logger = logging.getLogger("sentencekit.similarity")


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
