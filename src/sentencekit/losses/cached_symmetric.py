"""CachedMultipleNegativesSymmetricRankingLoss: the symmetric in-batch ranking loss with gradient caching."""

from __future__ import annotations

from typing import Any

from torch import nn

from sentencekit.losses._common import function_name
from sentencekit.losses.cached import CachedMultipleNegativesRankingLoss
from sentencekit.losses.ranking import SimilarityFn
from sentencekit.similarity import cos_sim

__all__ = ["CachedMultipleNegativesSymmetricRankingLoss"]


class CachedMultipleNegativesSymmetricRankingLoss(CachedMultipleNegativesRankingLoss):
    """:class:`MultipleNegativesSymmetricRankingLoss` with gradient caching: large batches in small memory.

    Anchors pick their positive among the batch's candidates and positives pick their anchor among the
    batch's anchors; the two cross-entropies are averaged. The batch is embedded ``mini_batch_size`` rows at
    a time and re-embedded inside ``loss.backward()``, so the loss and gradients are those of
    :class:`MultipleNegativesSymmetricRankingLoss` on the whole batch (dropout masks included) while only
    one mini-batch holds activations. It is :class:`CachedMultipleNegativesRankingLoss` with
    ``directions=("query_to_doc", "doc_to_query")`` and ``partition_mode="per_direction"``.

    ==================================================  ======
    Inputs (text columns, in order)                     Labels
    ==================================================  ======
    (anchor, positive)                                  none
    (anchor, positive, negative_1, ..., negative_n)     none
    ==================================================  ======

    Negative columns are extra candidates for the anchors; the positives still look only among anchors.

    When to use: symmetric tasks (paraphrases, duplicate questions, parallel sentences) where a batch of
    hundreds or thousands of pairs helps but does not fit in memory. Batch without duplicate texts (the
    ``no_duplicates`` batch sampler), or a duplicate becomes a false negative.

    Related: :class:`MultipleNegativesSymmetricRankingLoss` (same loss without caching),
    :class:`CachedMultipleNegativesRankingLoss` (one direction, or any set of directions),
    :class:`MatryoshkaLoss` (can wrap this loss; the caching is kept).

    Args:
        model: The SentenceTransformer being trained.
        scale: ``1 / temperature``; 20 suits cosine similarity.
        similarity_fct: Matrix similarity between the two sides.
        mini_batch_size: Rows embedded at once; memory, not the result, depends on it.
        show_progress_bar: Show progress over the mini-batches.

    Example:
        >>> loss = losses.CachedMultipleNegativesSymmetricRankingLoss(model, 32)  # doctest: +SKIP
        >>> value = loss([model.tokenize(questions), model.tokenize(duplicates)], None)  # doctest: +SKIP
        >>> value.backward()  # re-embeds 32 rows at a time  # doctest: +SKIP
    """

    def __init__(
        self,
        model: nn.Module,
        scale: float = 20.0,
        similarity_fct: SimilarityFn = cos_sim,
        mini_batch_size: int = 32,
        show_progress_bar: bool = False,
    ) -> None:
        super().__init__(
            model,
            scale=scale,
            similarity_fct=similarity_fct,
            mini_batch_size=mini_batch_size,
            directions=("query_to_doc", "doc_to_query"),
            partition_mode="per_direction",
            show_progress_bar=show_progress_bar,
        )

    def get_config_dict(self) -> dict[str, Any]:
        """Hyper-parameters, for the model card."""
        return {
            "scale": self.scale,
            "similarity_fct": function_name(self.similarity_fct),
            "mini_batch_size": self.mini_batch_size,
        }
