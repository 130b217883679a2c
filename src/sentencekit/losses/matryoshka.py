"""MatryoshkaLoss: train embeddings whose leading dimensions are useful on their own."""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable, Sequence
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from sentencekit.losses._common import Features, embed_columns, loss_on_embeddings

__all__ = ["MatryoshkaLoss", "truncate_embeddings"]

logger = logging.getLogger(__name__)


def truncate_embeddings(embeddings: Tensor, dim: int) -> Tensor:
    """The first ``dim`` dimensions of each embedding, scaled back to unit length."""
    if dim > embeddings.shape[-1]:
        raise ValueError(
            f"Cannot truncate {embeddings.shape[-1]}-dimensional embeddings to {dim} dimensions."
        )
    return F.normalize(embeddings[..., :dim], p=2, dim=-1)


class MatryoshkaLoss(nn.Module):
    """Applies another loss to embeddings truncated to several sizes and sums the results (weighted).

    The model runs once per batch; for each size in ``matryoshka_dims`` the embeddings are cut to their
    first ``dim`` dimensions, re-normalized, and given to the inner loss. Afterwards
    ``model.encode(..., truncate_dim=128)`` (or ``SentenceTransformer(..., truncate_dim=128)``) gives
    smaller, faster vectors that lose little quality.

    ======================================  ======================================
    Inputs (text columns, in order)         Labels
    ======================================  ======================================
    whatever the inner loss takes           whatever the inner loss takes
    ======================================  ======================================

    Labels that are embeddings of the model's width (:class:`MSELoss` targets) are truncated along.

    When to use: whenever the embeddings will be stored or searched at reduced size (vector databases,
    two-stage retrieval with a small first stage).

    Related: :class:`Matryoshka2dLoss` (also trains the earlier layers), :class:`AdaptiveLayerLoss`;
    it wraps e.g. :class:`MultipleNegativesRankingLoss`, :class:`CoSENTLoss`,
    :class:`CachedMultipleNegativesRankingLoss` (gradient caching is kept).

    Args:
        model: The SentenceTransformer being trained.
        loss: The inner loss, built on the same model.
        matryoshka_dims: Sizes to train, e.g. ``[768, 512, 256, 128, 64]``; include the full width.
        matryoshka_weights: Weight of each size (default 1 each), in the order of ``matryoshka_dims``.
        n_dims_per_step: Train this many randomly chosen sizes per step (``-1``: all).

    Example:
        >>> inner = losses.MultipleNegativesRankingLoss(model)  # doctest: +SKIP
        >>> loss = losses.MatryoshkaLoss(model, inner, matryoshka_dims=[384, 256, 128, 64])  # doctest: +SKIP
        >>> loss([model.tokenize(["q"]), model.tokenize(["a"])], None).backward()  # doctest: +SKIP
    """

    def __init__(
        self,
        model: nn.Module,
        loss: nn.Module,
        matryoshka_dims: Sequence[int],
        matryoshka_weights: Sequence[float] | None = None,
        n_dims_per_step: int = -1,
    ) -> None:
        super().__init__()
        dims = [int(d) for d in matryoshka_dims]
        if not dims or any(d <= 0 for d in dims):
            raise ValueError(
                f"matryoshka_dims must be a non-empty list of positive sizes, got {list(matryoshka_dims)}."
            )
        weights = [1.0] * len(dims) if matryoshka_weights is None else [float(w) for w in matryoshka_weights]
        if len(weights) != len(dims):
            raise ValueError(
                f"matryoshka_weights has {len(weights)} values for {len(dims)} matryoshka_dims; "
                "give one per size."
            )
        width = self._width(model)
        if width is not None:
            if max(dims) > width:
                raise ValueError(f"matryoshka_dims {dims} exceed the model's embedding width {width}.")
            if width not in dims:
                logger.warning(
                    "matryoshka_dims %s leave out the full width %d, which is then not trained directly.",
                    dims,
                    width,
                )
        ordered = sorted(zip(dims, weights, strict=True), key=lambda dw: -dw[0])
        self.model = model
        self.loss = loss
        self.matryoshka_dims = tuple(d for d, _ in ordered)
        self.matryoshka_weights = tuple(w for _, w in ordered)
        self.n_dims_per_step = int(n_dims_per_step)

    @staticmethod
    def _width(model: nn.Module) -> int | None:
        get = getattr(model, "get_sentence_embedding_dimension", None)
        return int(get()) if callable(get) and get() is not None else None

    def _chosen(self) -> list[int]:
        indices = list(range(len(self.matryoshka_dims)))
        if 0 < self.n_dims_per_step < len(indices):
            indices = sorted(random.sample(indices, self.n_dims_per_step))
        return indices

    def _labels_for(self, labels: Any, dim: int) -> Any:
        width = self._width(self.model)
        if isinstance(labels, Tensor) and labels.dim() in (2, 3) and labels.shape[-1] == width:
            return labels[..., :dim]
        return labels

    def forward(self, sentence_features: Iterable[Features], labels: Tensor | None) -> Tensor:
        """Embed once, then sum the inner loss over the chosen sizes."""
        features = list(sentence_features)
        if getattr(self.loss, "uses_gradient_cache", False):
            chosen = self._chosen()
            return self.loss.forward_with(  # type: ignore[operator]
                features,
                labels,
                lambda embeddings, lab: self._sum_over_dims(features, embeddings, lab, chosen),
            )
        return self._sum_over_dims(features, embed_columns(self.model, features), labels, self._chosen())

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None) -> Tensor:
        """The weighted sum over the chosen sizes of the inner loss on truncated ``embeddings``."""
        return self._sum_over_dims(None, embeddings, labels, self._chosen())

    def _sum_over_dims(
        self, features: list[Features] | None, embeddings: list[Tensor], labels: Any, chosen: list[int]
    ) -> Tensor:
        total: Tensor | None = None
        for index in chosen:
            dim, weight = self.matryoshka_dims[index], self.matryoshka_weights[index]
            truncated = [truncate_embeddings(e, dim) for e in embeddings]
            value = loss_on_embeddings(
                self.loss, self.model, features or [], truncated, self._labels_for(labels, dim)
            )
            total = weight * value if total is None else total + weight * value
        assert total is not None  # at least one size is always chosen
        return total

    @property
    def needs_features(self) -> bool:
        """True when the inner loss must see the features (e.g. GISTEmbedLoss)."""
        return bool(getattr(self.loss, "needs_features", False))

    def get_config_dict(self) -> dict[str, Any]:
        """Hyper-parameters, for the model card."""
        return {
            "loss": type(self.loss).__name__,
            "matryoshka_dims": self.matryoshka_dims,
            "matryoshka_weights": self.matryoshka_weights,
            "n_dims_per_step": self.n_dims_per_step,
        }
