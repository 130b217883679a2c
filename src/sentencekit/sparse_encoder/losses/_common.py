"""What the sparse losses share: the guard on losses that only score embeddings inside a sparse wrapper."""

from __future__ import annotations

from collections.abc import Iterable

from torch import Tensor

from sentencekit.losses._common import Features

__all__ = ["InsideSparseWrapper"]


class InsideSparseWrapper:
    """Mixin of the sparse losses that run inside :class:`SpladeLoss` or :class:`CSRLoss` only.

    Such a loss scores embeddings (its ``compute_loss_from_embeddings`` is what the wrapper calls) but adds
    no sparsity term of its own: trained alone, a SPLADE model would grow dense. As in the reference,
    calling it directly raises ``AttributeError`` with the line that wraps it.
    """

    def forward(self, sentence_features: Iterable[Features], labels: Tensor | None = None) -> Tensor:
        """Refuse: the loss must be given to :class:`SpladeLoss` or :class:`CSRLoss`."""
        name = type(self).__name__
        raise AttributeError(
            f"{name} should not be used alone: it adds no sparsity regularization. Wrap it, e.g. "
            f"SpladeLoss(model, loss={name}(model), document_regularizer_weight=3e-5, "
            f"query_regularizer_weight=5e-5) for a SPLADE model (MLMTransformer + SpladePooling), or "
            f"CSRLoss(model, loss={name}(model)) for a model ending in a SparseAutoEncoder."
        )
