"""Triplet loss on (anchor, positive, negative) columns: the positive must be closer than the negative."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from sentencekit.losses._common import Features, check_columns, embed_columns
from sentencekit.similarity import pairwise_cos_sim

__all__ = ["TripletDistanceMetric", "TripletLoss"]

DistanceFn = Callable[[Tensor, Tensor], Tensor]


def _cosine(x: Tensor, y: Tensor) -> Tensor:
    return 1 - pairwise_cos_sim(x, y)


def _euclidean(x: Tensor, y: Tensor) -> Tensor:
    return (x - y).norm(p=2, dim=-1)


def _manhattan(x: Tensor, y: Tensor) -> Tensor:
    return (x - y).abs().sum(dim=-1)


class TripletDistanceMetric:
    """Row-wise distances for :class:`TripletLoss`: ``distance(a, b)[i]`` compares ``a[i]`` with ``b[i]``.

    ``COSINE`` is ``1 - cosine similarity``, ``EUCLIDEAN`` the L2 and ``MANHATTAN`` the L1 distance. Any
    callable with the same signature works.
    """

    COSINE: DistanceFn = staticmethod(_cosine)
    EUCLIDEAN: DistanceFn = staticmethod(_euclidean)
    MANHATTAN: DistanceFn = staticmethod(_manhattan)


class TripletLoss(nn.Module):
    """``relu(d(anchor, positive) - d(anchor, negative) + triplet_margin)``, averaged over the batch.

    ==========================================  ======
    Inputs (text columns, in order)             Labels
    ==========================================  ======
    (anchor, positive, negative)                none
    ==========================================  ======

    When to use: data given as explicit triplets (e.g. a Wikipedia sentence, one from the same section, one
    from another section). With the default Euclidean distance the margin is in embedding-space units, so
    it depends on the model's norm; with ``COSINE`` a margin around 0.1 to 0.5 is typical.

    Related: :class:`MultipleNegativesRankingLoss` (uses the whole batch as negatives; usually stronger on the
    same triplets), :class:`BatchHardTripletLoss` and friends (triplets mined from class labels).

    Args:
        model: The SentenceTransformer being trained.
        distance_metric: One of :class:`TripletDistanceMetric` or any ``(a, b) -> (batch,)`` callable.
        triplet_margin: How much farther the negative must be than the positive.

    Example:
        >>> loss = losses.TripletLoss(model, distance_metric=losses.TripletDistanceMetric.COSINE,
        ...                           triplet_margin=0.3)  # doctest: +SKIP
        >>> columns = [["a cat"], ["a kitten"], ["a car"]]
        >>> loss([model.tokenize(c) for c in columns], None).backward()  # doctest: +SKIP
    """

    def __init__(
        self,
        model: nn.Module,
        distance_metric: DistanceFn = TripletDistanceMetric.EUCLIDEAN,
        triplet_margin: float = 5.0,
    ) -> None:
        super().__init__()
        self.model = model
        self.distance_metric = distance_metric
        self.triplet_margin = float(triplet_margin)

    def forward(self, sentence_features: Iterable[Features], labels: Tensor | None = None) -> Tensor:
        """Embed the three columns and return the scalar loss (``labels`` are ignored)."""
        return self.compute_loss_from_embeddings(embed_columns(self.model, sentence_features), labels)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None = None) -> Tensor:
        """The loss from the anchor, positive and negative embeddings."""
        check_columns(type(self).__name__, len(embeddings), exactly=3)
        anchor, positive, negative = embeddings
        gap = self.distance_metric(anchor, positive) - self.distance_metric(anchor, negative)
        return F.relu(gap + self.triplet_margin).mean()

    def get_config_dict(self) -> dict[str, Any]:
        """Hyper-parameters, for the model card."""
        name = getattr(self.distance_metric, "__name__", repr(self.distance_metric))
        for member in ("COSINE", "EUCLIDEAN", "MANHATTAN"):
            if self.distance_metric is getattr(TripletDistanceMetric, member):
                name = f"TripletDistanceMetric.{member}"
        return {"distance_metric": name, "triplet_margin": self.triplet_margin}
