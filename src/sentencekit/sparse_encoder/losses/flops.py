"""FlopsLoss: the FLOPS regularizer that pushes sparse embeddings towards fewer active dimensions."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from torch import Tensor, nn

from sentencekit.losses._common import Features

__all__ = ["FlopsLoss", "flops"]


def flops(embeddings: Tensor, threshold: float | None = None) -> Tensor:
    """``sum_j (mean_i |w_ij|)^2`` over a batch of non-negative sparse embeddings ``(batch, vocab)``.

    It approximates the number of multiplications a dot product between two such vectors costs, and it
    punishes dimensions that are active for many texts more than rare ones, which keeps the inverted index
    balanced. With ``threshold``, rows with at most that many non-zero values count as zero rows (they are
    already sparse enough), but still take part in the mean.
    """
    if threshold is not None:
        active = (embeddings != 0).sum(dim=1)
        embeddings = embeddings * (active > threshold).to(embeddings.dtype).unsqueeze(1)
    return embeddings.mean(dim=0).pow(2).sum()


class FlopsLoss(nn.Module):
    """The FLOPS regularizer of a sparse encoder: the squared L2 norm of the batch's mean embedding.

    It is not a training objective: :class:`SpladeLoss` applies it (weighted) to the query and document
    embeddings it has already computed, through :meth:`compute_loss_from_embeddings`. Calling it directly on
    features is an error.

    ======================================  ======================================
    Inputs                                  Labels
    ======================================  ======================================
    embeddings ``(batch, vocab)``           none
    ======================================  ======================================

    When to use: give it (or another regularizer) to :class:`SpladeLoss` as ``document_regularizer`` or
    ``query_regularizer`` to change the threshold of one side only; by default SpladeLoss builds its own.

    Related: :class:`SpladeLoss` (its user), :class:`CSRLoss` (sparsity from top-k instead).

    Args:
        model: The SparseEncoder being regularized.
        threshold: When set, only embeddings with more than this many non-zero values are regularized
            ("FLOPS with l0 masking"): short, already sparse texts are left alone.

    Example:
        >>> from sentencekit.sparse_encoder import losses
        >>> regularizer = losses.FlopsLoss(model, threshold=200)  # doctest: +SKIP
        >>> embeddings = model.encode(["a b c"], convert_to_tensor=True)  # doctest: +SKIP
        >>> regularizer.compute_loss_from_embeddings(embeddings)  # doctest: +SKIP
    """

    def __init__(self, model: nn.Module, threshold: float | None = None) -> None:
        super().__init__()
        self.model = model
        self.threshold = threshold

    def forward(self, sentence_features: Iterable[Features], labels: Tensor | None = None) -> Tensor:
        """Refuse: FlopsLoss regularizes embeddings inside :class:`SpladeLoss`."""
        raise NotImplementedError(
            "FlopsLoss is a regularizer, not a training loss: pass it to SpladeLoss as document_regularizer "
            "or query_regularizer (or call compute_loss_from_embeddings on embeddings you computed)."
        )

    def compute_loss_from_embeddings(self, embeddings: Tensor) -> Tensor:
        """The FLOPS value of a ``(batch, vocab)`` tensor of embeddings."""
        return flops(embeddings, self.threshold)

    def get_config_dict(self) -> dict[str, Any]:
        """Hyper-parameters, for the model card."""
        return {"threshold": self.threshold}
