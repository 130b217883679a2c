"""Contrastive losses on labelled pairs: pull similar pairs together, push dissimilar ones beyond a margin."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from sentencekit.losses._common import Features, check_columns, check_labels, embed_columns

__all__ = ["ContrastiveLoss", "OnlineContrastiveLoss", "SiameseDistanceMetric"]

DistanceFn = Callable[[Tensor, Tensor], Tensor]


def _euclidean(x: Tensor, y: Tensor) -> Tensor:
    return F.pairwise_distance(x, y, p=2)


def _manhattan(x: Tensor, y: Tensor) -> Tensor:
    return F.pairwise_distance(x, y, p=1)


def _cosine_distance(x: Tensor, y: Tensor) -> Tensor:
    return 1 - F.cosine_similarity(x, y)


class SiameseDistanceMetric:
    """Row-wise distances for the contrastive losses: ``distance(a, b)[i]`` compares ``a[i]`` with ``b[i]``.

    ``EUCLIDEAN`` and ``MANHATTAN`` are ``torch.nn.functional.pairwise_distance`` with p=2 and p=1;
    ``COSINE_DISTANCE`` is ``1 - cosine similarity`` (in [0, 2]). Any callable with the same signature works.
    """

    EUCLIDEAN: DistanceFn = staticmethod(_euclidean)
    MANHATTAN: DistanceFn = staticmethod(_manhattan)
    COSINE_DISTANCE: DistanceFn = staticmethod(_cosine_distance)


def _metric_name(fn: DistanceFn) -> str:
    for name in ("EUCLIDEAN", "MANHATTAN", "COSINE_DISTANCE"):
        if fn is getattr(SiameseDistanceMetric, name):
            return f"SiameseDistanceMetric.{name}"
    return getattr(fn, "__name__", repr(fn))


def _binary_labels(loss: str, labels: Tensor | None, rows: int) -> Tensor:
    labels = check_labels(loss, labels, rows)
    return labels.float()


class ContrastiveLoss(nn.Module):
    """The classic contrastive loss: similar pairs (label 1) pulled together, dissimilar ones (0) apart.

    Per pair: ``0.5 * (label * d**2 + (1 - label) * relu(margin - d)**2)`` with ``d`` the distance of the two
    embeddings; the batch's values are averaged (or summed with ``size_average=False``). Labels between 0 and
    1 weight the two terms.

    ========================================  ===============================
    Inputs (text columns, in order)           Labels
    ========================================  ===============================
    (sentence_A, sentence_B)                  1 (similar) or 0 (dissimilar)
    ========================================  ===============================

    When to use: duplicate detection and other binary pair data, when embeddings should be separable by a
    fixed distance threshold.

    Related: :class:`OnlineContrastiveLoss` (only the hard pairs of the batch count; usually better),
    :class:`CosineSimilarityLoss` (graded labels), :class:`MultipleNegativesRankingLoss` (positives only).

    Args:
        model: The SentenceTransformer being trained.
        distance_metric: One of :class:`SiameseDistanceMetric` or any ``(a, b) -> (batch,)`` callable.
        margin: Dissimilar pairs closer than this are penalised.
        size_average: Average over the batch (``True``) or sum.

    Example:
        >>> loss = losses.ContrastiveLoss(model)  # doctest: +SKIP
        >>> batch = [model.tokenize(["How old are you?"]), model.tokenize(["What is your age?"])]
        >>> loss(batch, torch.tensor([1])).backward()  # doctest: +SKIP
    """

    def __init__(
        self,
        model: nn.Module,
        distance_metric: DistanceFn = SiameseDistanceMetric.COSINE_DISTANCE,
        margin: float = 0.5,
        size_average: bool = True,
    ) -> None:
        super().__init__()
        self.model = model
        self.distance_metric = distance_metric
        self.margin = float(margin)
        self.size_average = size_average

    def forward(self, sentence_features: Iterable[Features], labels: Tensor | None) -> Tensor:
        """Embed both columns and return the scalar loss."""
        return self.compute_loss_from_embeddings(embed_columns(self.model, sentence_features), labels)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None) -> Tensor:
        """The loss from the two columns' embeddings."""
        check_columns(type(self).__name__, len(embeddings), exactly=2)
        target = _binary_labels(type(self).__name__, labels, embeddings[0].shape[0])
        distance = self.distance_metric(embeddings[0], embeddings[1])
        per_pair = 0.5 * (target * distance.pow(2) + (1 - target) * F.relu(self.margin - distance).pow(2))
        return per_pair.mean() if self.size_average else per_pair.sum()

    def get_config_dict(self) -> dict[str, Any]:
        """Hyper-parameters, for the model card."""
        return {
            "distance_metric": _metric_name(self.distance_metric),
            "margin": self.margin,
            "size_average": self.size_average,
        }


class OnlineContrastiveLoss(nn.Module):
    """Contrastive loss on the batch's hard pairs only.

    A positive pair counts when it is farther apart than the closest negative pair of the batch; a negative
    pair counts when it is closer than the farthest positive pair. The loss is the sum of squared distances
    of those positives plus ``relu(margin - d)**2`` of those negatives. Pairs with other labels than 0 and 1
    are ignored.

    ========================================  ===============================
    Inputs (text columns, in order)           Labels
    ========================================  ===============================
    (sentence_A, sentence_B)                  1 (similar) or 0 (dissimilar)
    ========================================  ===============================

    When to use: binary pair data (duplicate questions, paraphrase yes/no); it usually beats
    :class:`ContrastiveLoss` because easy pairs no longer dilute the gradient.

    Related: :class:`ContrastiveLoss`, :class:`BatchHardTripletLoss` (the same idea for class labels).

    Args:
        model: The SentenceTransformer being trained.
        distance_metric: One of :class:`SiameseDistanceMetric` or any ``(a, b) -> (batch,)`` callable.
        margin: Negative pairs closer than this are penalised.

    Example:
        >>> loss = losses.OnlineContrastiveLoss(model)  # doctest: +SKIP
        >>> batch = [model.tokenize(["a", "b"]), model.tokenize(["a!", "c"])]  # doctest: +SKIP
        >>> loss(batch, torch.tensor([1, 0]))  # doctest: +SKIP
    """

    def __init__(
        self,
        model: nn.Module,
        distance_metric: DistanceFn = SiameseDistanceMetric.COSINE_DISTANCE,
        margin: float = 0.5,
    ) -> None:
        super().__init__()
        self.model = model
        self.distance_metric = distance_metric
        self.margin = float(margin)

    def forward(self, sentence_features: Iterable[Features], labels: Tensor | None) -> Tensor:
        """Embed both columns and return the scalar loss."""
        return self.compute_loss_from_embeddings(embed_columns(self.model, sentence_features), labels)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None) -> Tensor:
        """The loss from the two columns' embeddings."""
        check_columns(type(self).__name__, len(embeddings), exactly=2)
        target = check_labels(type(self).__name__, labels, embeddings[0].shape[0])
        distance = self.distance_metric(embeddings[0], embeddings[1])
        positives, negatives = distance[target == 1], distance[target == 0]
        # With one side missing from the batch, its threshold falls back to the other side's mean.
        farthest_positive = positives.max() if positives.numel() else negatives.mean()
        closest_negative = negatives.min() if negatives.numel() else positives.mean()
        hard_positives = positives[positives > closest_negative]
        hard_negatives = negatives[negatives < farthest_positive]
        return hard_positives.pow(2).sum() + F.relu(self.margin - hard_negatives).pow(2).sum()

    def get_config_dict(self) -> dict[str, Any]:
        """Hyper-parameters, for the model card."""
        return {"distance_metric": _metric_name(self.distance_metric), "margin": self.margin}
