"""Sparse losses on scored pairs (cosine regression, CoSENT, AnglE), run inside SpladeLoss or CSRLoss.

Each of them compares the pair by cosine (or angle), so, as in the reference, building one sets the model's
``similarity_fn_name`` to ``"cosine"``: the trained model is then used the way it was trained.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import nn

from sentencekit.losses.pair_similarity import CoSENTLoss, CosineSimilarityLoss, PairwiseFn
from sentencekit.similarity import pairwise_angle_sim, pairwise_cos_sim
from sentencekit.sparse_encoder.losses._common import InsideSparseWrapper

if TYPE_CHECKING:
    from sentencekit.sparse_encoder.model import SparseEncoder

__all__ = ["SparseAnglELoss", "SparseCoSENTLoss", "SparseCosineSimilarityLoss"]


class SparseCosineSimilarityLoss(InsideSparseWrapper, CosineSimilarityLoss):
    """:class:`~sentencekit.losses.CosineSimilarityLoss` on sparse embeddings: ``loss_fct(cos(u, v), label)``.

    ========================================  =========================================
    Inputs (text columns, in order)           Labels
    ========================================  =========================================
    (sentence_A, sentence_B)                  float score per pair, usually in [0, 1]
    ========================================  =========================================

    When to use: graded similarity pairs (STS), inside :class:`SpladeLoss` (alone it raises
    ``AttributeError``), usually with ``use_document_regularizer_only=True`` since both sides are sentences.
    Sets ``model.similarity_fn_name = "cosine"``.

    Related: :class:`SparseCoSENTLoss` (usually trains better on the same data), :class:`SparseAnglELoss`.

    Args:
        model: The SparseEncoder being trained.
        loss_fct: Compares the (transformed) cosine with the label; mean squared error by default.
        cos_score_transformation: Applied to the cosine first (identity by default).

    Example:
        >>> loss = losses.SpladeLoss(model, losses.SparseCosineSimilarityLoss(model),
        ...                          document_regularizer_weight=3e-5,
        ...                          use_document_regularizer_only=True)  # doctest: +SKIP
    """

    def __init__(
        self,
        model: SparseEncoder,
        loss_fct: nn.Module | None = None,
        cos_score_transformation: nn.Module | None = None,
    ) -> None:
        model.similarity_fn_name = "cosine"
        super().__init__(model, loss_fct=loss_fct, cos_score_transformation=cos_score_transformation)


class SparseCoSENTLoss(InsideSparseWrapper, CoSENTLoss):
    """:class:`~sentencekit.losses.CoSENTLoss` on sparse embeddings, inside :class:`SpladeLoss` or CSRLoss.

    For every two pairs with ``label_i > label_j`` it penalises ``exp(scale * (sim_j - sim_i))``; only the
    order of the labels matters.

    ========================================  ================================
    Inputs (text columns, in order)           Labels
    ========================================  ================================
    (sentence_A, sentence_B)                  float similarity score per pair
    ========================================  ================================

    When to use: STS-style data for a sparse model; wrap it in :class:`SpladeLoss` (alone it raises
    ``AttributeError``). Sets ``model.similarity_fn_name = "cosine"``.

    Related: :class:`SparseAnglELoss`, :class:`SparseCosineSimilarityLoss`.

    Args:
        model: The SparseEncoder being trained.
        scale: ``1 / temperature`` of the pairwise penalty.
        similarity_fct: Pairwise similarity, cosine by default.

    Example:
        >>> loss = losses.SpladeLoss(model, losses.SparseCoSENTLoss(model), document_regularizer_weight=3e-5,
        ...                          use_document_regularizer_only=True)  # doctest: +SKIP
    """

    def __init__(
        self, model: SparseEncoder, scale: float = 20.0, similarity_fct: PairwiseFn = pairwise_cos_sim
    ) -> None:
        model.similarity_fn_name = "cosine"
        super().__init__(model, scale=scale, similarity_fct=similarity_fct)


class SparseAnglELoss(SparseCoSENTLoss):
    """:class:`SparseCoSENTLoss` on the angle similarity (:func:`~sentencekit.similarity.pairwise_angle_sim`).

    ========================================  ================================
    Inputs (text columns, in order)           Labels
    ========================================  ================================
    (sentence_A, sentence_B)                  float similarity score per pair
    ========================================  ================================

    When to use: like :class:`SparseCoSENTLoss`, where cosine saturates; inside :class:`SpladeLoss` only.
    Unlike the dense :class:`~sentencekit.losses.AnglELoss` it takes pairs only, as in the reference.

    Args:
        model: The SparseEncoder being trained.
        scale: ``1 / temperature`` of the pairwise penalty.

    Example:
        >>> loss = losses.SpladeLoss(model, losses.SparseAnglELoss(model), document_regularizer_weight=3e-5,
        ...                          use_document_regularizer_only=True)  # doctest: +SKIP
    """

    def __init__(self, model: SparseEncoder, scale: float = 20.0) -> None:
        super().__init__(model, scale, similarity_fct=pairwise_angle_sim)
