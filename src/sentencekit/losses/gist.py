"""GISTEmbedLoss: in-batch negatives ranking where a guide model removes likely false negatives."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn

from sentencekit.losses._common import Features, check_columns, embed_columns
from sentencekit.losses.cached_gist import GuidedRanking

__all__ = ["GISTEmbedLoss"]


class GISTEmbedLoss(GuidedRanking, nn.Module):
    """:class:`MultipleNegativesRankingLoss` guided by a second, frozen model that spots false negatives.

    The candidates of anchor ``i`` are all positives (and negatives) of the batch and, optionally, the other
    anchors and positives. Any candidate that the *guide* scores closer to the anchor than the anchor's own
    positive (minus ``margin``) is treated as a possible positive and removed from the softmax. The rest is a
    cross-entropy over cosine similarities divided by ``temperature``.

    ==================================================  ======
    Inputs (text columns, in order)                     Labels
    ==================================================  ======
    (anchor, positive)                                  none
    (anchor, positive, negative)                        none
    ==================================================  ======

    When to use: like :class:`MultipleNegativesRankingLoss`, when the data has many near-duplicates (FAQ,
    duplicate questions, large web pairs) that would otherwise be punished as negatives. It costs one extra
    forward pass of the guide (no gradient). The guide runs in eval mode and is not part of the loss's
    parameters or state: it is never trained or checkpointed.

    Related: :class:`MultipleNegativesRankingLoss`, :class:`CachedMultipleNegativesRankingLoss`.

    Args:
        model: The SentenceTransformer being trained.
        guide: A trained SentenceTransformer (any tokenizer: texts are re-tokenized for it when needed).
        temperature: Softmax temperature of the cosine similarities (0.01 means scale 100).
        margin_strategy: ``"absolute"`` drops candidates with guide score > positive score - margin;
            ``"relative"`` drops those with > positive score * (1 - margin).
        margin: The slack of that comparison (0: drop only candidates the guide likes better).
        contrast_anchors: Also contrast each anchor with the other anchors.
        contrast_positives: Also contrast each positive with the other positives.

    Example:
        >>> guide = SentenceTransformer("all-MiniLM-L6-v2")  # doctest: +SKIP
        >>> loss = losses.GISTEmbedLoss(model, guide)  # doctest: +SKIP
        >>> batch = [model.tokenize(["q1", "q2"]), model.tokenize(["a1", "a2"])]  # doctest: +SKIP
        >>> loss(batch, None).backward()  # doctest: +SKIP
    """

    # Wrapper losses (Matryoshka, adaptive layers) must call forward(): the guide needs the features too.
    needs_features = True

    def __init__(
        self,
        model: nn.Module,
        guide: nn.Module,
        temperature: float = 0.01,
        margin_strategy: str = "absolute",
        margin: float = 0.0,
        contrast_anchors: bool = True,
        contrast_positives: bool = True,
    ) -> None:
        super().__init__()
        self.model = model
        self._set_guide(guide, temperature, margin_strategy, margin, contrast_anchors, contrast_positives)

    def _guide_features(self, sentence_features: list[Features]) -> list[Features]:
        if not self.must_retokenize:
            return [dict(f) for f in sentence_features]
        tokenizer: Any = self.model.tokenizer
        guide: Any = self.guide
        return [
            guide.tokenize(tokenizer.batch_decode(f["input_ids"], skip_special_tokens=True))
            for f in sentence_features
        ]

    def forward(self, sentence_features: Iterable[Features], labels: Tensor | None = None) -> Tensor:
        """Embed the columns with the model (and, without gradient, the guide) and return the loss."""
        features = list(sentence_features)
        check_columns(type(self).__name__, len(features), at_least=2)
        guide_inputs = self._guide_features(features)
        embeddings = embed_columns(self.model, features)
        was_training = self.guide.training
        self.guide.eval()
        try:
            with torch.no_grad():
                guide_embeddings = embed_columns(self.guide, guide_inputs)
        finally:
            self.guide.train(was_training)
        device = embeddings[0].device
        return self.compute_loss_from_embeddings(embeddings, labels, [g.to(device) for g in guide_embeddings])

    def compute_loss_from_embeddings(
        self, embeddings: list[Tensor], labels: Tensor | None, guide_embeddings: list[Tensor]
    ) -> Tensor:
        """The loss from the model's and the guide's embeddings of (anchor, positive[, negative])."""
        if len(embeddings) not in (2, 3):
            raise ValueError(f"GISTEmbedLoss takes 2 or 3 text columns, got {len(embeddings)}.")
        return self._guided_loss(embeddings, guide_embeddings)

    def get_config_dict(self) -> dict[str, Any]:
        """Hyper-parameters, for the model card."""
        return self._guide_config()
