"""Sparse retrieval losses: in-batch negatives ranking and triplets, run inside SpladeLoss or CSRLoss."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from sentencekit.losses.ranking import MultipleNegativesRankingLoss, SimilarityFn
from sentencekit.losses.triplet import TripletLoss
from sentencekit.similarity import dot_score
from sentencekit.sparse_encoder.losses._common import InsideSparseWrapper

__all__ = ["SparseMultipleNegativesRankingLoss", "SparseTripletLoss"]


class SparseMultipleNegativesRankingLoss(InsideSparseWrapper, MultipleNegativesRankingLoss):
    """:class:`~sentencekit.losses.MultipleNegativesRankingLoss` for sparse embeddings: dot product, scale 1.

    Each query must rank its own positive above every other document of the batch (and its hard negatives),
    scored by the dot product of the sparse vectors, which is what an inverted index computes at search time.
    Sparse dot products are large already, so no temperature is needed (``scale=1``).

    ==================================================  ======
    Inputs (text columns, in order)                     Labels
    ==================================================  ======
    (anchor, positive)                                  none
    (anchor, positive, negative)                        none
    (anchor, positive, negative_1, ..., negative_n)     none
    ==================================================  ======

    When to use: the default objective of a SPLADE model trained on (query, relevant passage) pairs, inside
    :class:`SpladeLoss` (or :class:`CSRLoss`); called on its own it raises ``AttributeError``. Batch without
    duplicate texts (``batch_sampler="no_duplicates"``).

    Related: :class:`SparseMarginMSELoss` and :class:`SparseDistillKLDivLoss` (distil a teacher's scores),
    :class:`CachedSpladeLoss` (large batches in small memory).

    Args:
        model: The SparseEncoder being trained.
        scale: Similarities are multiplied by this before the softmax (``1 / temperature``).
        similarity_fct: Matrix similarity, :func:`~sentencekit.similarity.dot_score` by default.
        gather_across_devices: The reference's multi-GPU option; sentencekit trains in one process, where
            there is nothing to gather, so it changes nothing.
        directions: As in :class:`~sentencekit.losses.MultipleNegativesRankingLoss`.
        partition_mode: As in :class:`~sentencekit.losses.MultipleNegativesRankingLoss`.
        hardness_mode: As in :class:`~sentencekit.losses.MultipleNegativesRankingLoss`.
        hardness_strength: As in :class:`~sentencekit.losses.MultipleNegativesRankingLoss`.

    Example:
        >>> from sentencekit.sparse_encoder import losses
        >>> loss = losses.SpladeLoss(
        ...     model, losses.SparseMultipleNegativesRankingLoss(model),
        ...     document_regularizer_weight=3e-5, query_regularizer_weight=5e-5)  # doctest: +SKIP
    """

    def __init__(
        self,
        model: nn.Module,
        scale: float = 1.0,
        similarity_fct: SimilarityFn = dot_score,
        gather_across_devices: bool = False,
        directions: Sequence[str] = ("query_to_doc",),
        partition_mode: str = "joint",
        hardness_mode: str | None = None,
        hardness_strength: float = 0.0,
    ) -> None:
        super().__init__(
            model,
            scale=scale,
            similarity_fct=similarity_fct,
            directions=directions,
            partition_mode=partition_mode,
            hardness_mode=hardness_mode,
            hardness_strength=hardness_strength,
        )
        self.gather_across_devices = gather_across_devices

    def get_config_dict(self) -> dict[str, Any]:
        """Hyper-parameters, for the model card."""
        return {**super().get_config_dict(), "gather_across_devices": self.gather_across_devices}


class SparseTripletLoss(InsideSparseWrapper, TripletLoss):
    """:class:`~sentencekit.losses.TripletLoss` on sparse embeddings, inside :class:`SpladeLoss` or CSRLoss.

    ``relu(d(anchor, positive) - d(anchor, negative) + triplet_margin)``, averaged over the batch, with the
    Euclidean distance by default.

    ==========================================  ======
    Inputs (text columns, in order)             Labels
    ==========================================  ======
    (anchor, positive, negative)                none
    ==========================================  ======

    When to use: data given as explicit triplets; wrap it in :class:`SpladeLoss` (alone it raises
    ``AttributeError``). :class:`SparseMultipleNegativesRankingLoss` on the same triplets is usually stronger.

    Args:
        model: The SparseEncoder being trained.
        distance_metric: One of :class:`~sentencekit.losses.TripletDistanceMetric` or any
            ``(a, b) -> (batch,)`` callable.
        triplet_margin: How much farther the negative must be than the positive.

    Example:
        >>> loss = losses.SpladeLoss(
        ...     model, losses.SparseTripletLoss(model),
        ...     document_regularizer_weight=3e-5, query_regularizer_weight=5e-5)  # doctest: +SKIP
    """
