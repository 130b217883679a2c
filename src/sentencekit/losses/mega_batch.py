"""MegaBatchMarginLoss: a margin loss on each pair and the hardest negative mined from a large batch."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sentencekit.errors import InvalidInputError
from sentencekit.losses._common import Features, embed_columns
from sentencekit.losses.cached import GradCacheLoss
from sentencekit.similarity import cos_sim

__all__ = ["MegaBatchMarginLoss"]


class MegaBatchMarginLoss(GradCacheLoss):
    """Hardest-negative margin loss: each anchor's negative is the most similar *other* positive of the batch.

    Per pair ``i``: ``relu(positive_margin - cos(anchor_i, positive_i)) + relu(max_{j != i} cos(anchor_i,
    positive_j) - negative_margin)``, averaged over the batch. The larger the batch, the harder the mined
    negatives, so the loss is meant for batches of hundreds of pairs; with ``use_mini_batched_version``
    (the default) the batch is embedded ``mini_batch_size`` rows at a time and re-embedded inside
    ``loss.backward()`` (gradient caching), which keeps the loss and gradients and bounds the memory.

    ==================================  ======
    Inputs (text columns, in order)     Labels
    ==================================  ======
    (anchor, positive)                  none
    ==================================  ======

    When to use: paraphrase pairs (ParaNMT-style) trained with very large batches. Batch without duplicate
    texts (the ``no_duplicates`` batch sampler), or a duplicate becomes the hardest "negative".

    Related: :class:`CachedMultipleNegativesRankingLoss` (softmax over all in-batch negatives, explicit
    negative columns), :class:`TripletLoss` (a margin with given negatives).

    Args:
        model: The SentenceTransformer being trained.
        positive_margin: ``cos(anchor, positive)`` below this is penalized.
        negative_margin: ``cos(anchor, hardest negative)`` above this is penalized.
        use_mini_batched_version: Embed with gradient caching (same loss, bounded memory, each row embedded
            twice); ``False`` embeds the whole batch at once.
        mini_batch_size: Rows embedded at once in the mini-batched version.
        show_progress_bar: Show progress over the mini-batches.

    Example:
        >>> loss = losses.MegaBatchMarginLoss(model, mini_batch_size=32)  # doctest: +SKIP
        >>> value = loss([model.tokenize(sentences), model.tokenize(paraphrases)], None)  # doctest: +SKIP
        >>> value.backward()  # doctest: +SKIP
    """

    def __init__(
        self,
        model: nn.Module,
        positive_margin: float = 0.8,
        negative_margin: float = 0.3,
        use_mini_batched_version: bool = True,
        mini_batch_size: int = 50,
        show_progress_bar: bool = False,
    ) -> None:
        super().__init__(model, mini_batch_size=mini_batch_size, show_progress_bar=show_progress_bar)
        self.positive_margin = float(positive_margin)
        self.negative_margin = float(negative_margin)
        self.use_mini_batched_version = bool(use_mini_batched_version)
        # MatryoshkaLoss asks this to choose between forward_with and a plain forward.
        self.uses_gradient_cache = self.use_mini_batched_version

    def forward(self, sentence_features: Iterable[Features], labels: Tensor | None = None) -> Tensor:
        """Embed (anchor, positive) and return the loss; ``labels`` are ignored."""
        features = list(sentence_features)
        self._check(len(features))
        if self.use_mini_batched_version:
            return super().forward(features, labels)
        return self.compute_loss_from_embeddings(embed_columns(self.model, features), labels)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None = None) -> Tensor:
        """The loss from the (anchor, positive) embeddings."""
        self._check(len(embeddings))
        anchors, positives = embeddings
        scores = cos_sim(anchors, positives)
        own = torch.eye(scores.shape[0], dtype=torch.bool, device=scores.device)
        hardest = scores.masked_fill(own, -torch.inf).max(dim=1).values
        positive_loss = F.relu(self.positive_margin - scores.diagonal())
        negative_loss = F.relu(hardest - self.negative_margin)  # 0 for a batch of one: no negative
        return (positive_loss + negative_loss).mean()

    def _check(self, columns: int) -> None:
        if columns != 2:
            raise InvalidInputError(
                f"MegaBatchMarginLoss takes exactly 2 text columns (anchor, positive), got {columns}. It "
                "mines each anchor's negative from the other positives of the batch; for explicit negative "
                "columns use CachedMultipleNegativesRankingLoss."
            )

    def get_config_dict(self) -> dict[str, Any]:
        """Hyper-parameters, for the model card."""
        return {
            "positive_margin": self.positive_margin,
            "negative_margin": self.negative_margin,
            "use_mini_batched_version": self.use_mini_batched_version,
            "mini_batch_size": self.mini_batch_size,
        }
