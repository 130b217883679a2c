"""Triplet losses mined inside the batch from class labels: one text column, one class id per text."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sentencekit.losses._common import Features, check_columns, check_labels, embed_columns, function_name
from sentencekit.similarity import cos_sim

__all__ = [
    "BatchAllTripletLoss",
    "BatchHardSoftMarginTripletLoss",
    "BatchHardTripletLoss",
    "BatchHardTripletLossDistanceFunction",
    "BatchSemiHardTripletLoss",
]

MatrixDistanceFn = Callable[[Tensor], Tensor]


class BatchHardTripletLossDistanceFunction:
    """All-pairs distances of one batch of embeddings, ``(batch, dim) -> (batch, batch)``."""

    @staticmethod
    def cosine_distance(embeddings: Tensor) -> Tensor:
        """``1 - cosine similarity`` of every pair."""
        return 1 - cos_sim(embeddings, embeddings)

    @staticmethod
    def euclidean_distance(embeddings: Tensor, squared: bool = False) -> Tensor:
        """L2 distance of every pair (squared with ``squared=True``); exactly 0 on the diagonal.

        Computed from the Gram matrix in fp32; the square root has a finite gradient at 0.
        """
        emb = embeddings.float() if embeddings.dtype in (torch.float16, torch.bfloat16) else embeddings
        gram = emb @ emb.t()
        norms = gram.diagonal()
        squares = (norms.unsqueeze(0) - 2.0 * gram + norms.unsqueeze(1)).clamp(min=0)
        if squared:
            return squares
        zero = squares == 0
        return torch.where(zero, torch.zeros_like(squares), squares.masked_fill(zero, 1.0).sqrt())


def _label_masks(labels: Tensor) -> tuple[Tensor, Tensor]:
    """``(same, different)``: ``same[i, j]`` for ``i != j`` with equal labels; ``different`` otherwise."""
    equal = labels.unsqueeze(0) == labels.unsqueeze(1)
    eye = torch.eye(labels.shape[0], dtype=torch.bool, device=labels.device)
    return equal & ~eye, ~equal


def _hardest(distances: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """Per anchor: the farthest same-class text (0 if none) and the closest other-class one (inf if none)."""
    same, different = _label_masks(labels)
    hardest_positive = (distances * same).max(dim=1).values
    hardest_negative = distances.masked_fill(~different, torch.inf).min(dim=1).values
    return hardest_positive, hardest_negative


class _BatchTripletBase(nn.Module):
    """One text column embedded; labels are class ids; subclasses turn the distance matrix into a loss."""

    def __init__(
        self,
        model: nn.Module,
        distance_metric: MatrixDistanceFn = BatchHardTripletLossDistanceFunction.euclidean_distance,
        margin: float = 5.0,
    ) -> None:
        super().__init__()
        self.model = model
        self.distance_metric = distance_metric
        self.triplet_margin = float(margin)

    @property
    def sentence_embedder(self) -> nn.Module:
        """The model (the reference's attribute name)."""
        return self.model

    def forward(self, sentence_features: Iterable[Features], labels: Tensor | None) -> Tensor:
        """Embed the text column and return the scalar loss."""
        return self.compute_loss_from_embeddings(embed_columns(self.model, sentence_features), labels)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None) -> Tensor:
        """The loss from the column's embeddings and the class labels."""
        check_columns(type(self).__name__, len(embeddings), exactly=1)
        labels = check_labels(type(self).__name__, labels, embeddings[0].shape[0])
        return self._loss(self.distance_metric(embeddings[0]), labels)

    def _loss(self, distances: Tensor, labels: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def get_config_dict(self) -> dict[str, Any]:
        """Hyper-parameters, for the model card."""
        return {"distance_metric": function_name(self.distance_metric), "margin": self.triplet_margin}


class BatchAllTripletLoss(_BatchTripletBase):
    """Every valid triplet of the batch, averaged over those that still violate the margin.

    For anchor ``a``, same-class ``p`` and other-class ``n`` the triplet's value is
    ``relu(d(a, p) - d(a, n) + margin)``; the sum is divided by the number of positive values.

    ==================================  ================================================
    Inputs (text columns, in order)     Labels
    ==================================  ================================================
    (text,)                             class id (int); 2+ texts per class in each batch
    ==================================  ================================================

    When to use: data with class labels (topics, intents, product categories) and no pairs. Use a batch
    sampler that puts several texts of each class in a batch, or there are no positives.

    Related: :class:`BatchHardTripletLoss` (only the hardest triplet per anchor),
    :class:`BatchSemiHardTripletLoss`, :class:`BatchHardSoftMarginTripletLoss`, :class:`SoftmaxLoss`.

    Args:
        model: The SentenceTransformer being trained.
        distance_metric: ``(batch, dim) -> (batch, batch)`` distances, e.g.
            :meth:`BatchHardTripletLossDistanceFunction.cosine_distance`; Euclidean by default.
        margin: How much farther the negative must be than the positive.

    Example:
        >>> loss = losses.BatchAllTripletLoss(model)  # doctest: +SKIP
        >>> loss([model.tokenize(["cheap flights", "book a flight", "my card broke"])],
        ...      torch.tensor([0, 0, 1])).backward()  # doctest: +SKIP
    """

    def _loss(self, distances: Tensor, labels: Tensor) -> Tensor:
        same, different = _label_masks(labels)
        valid = same.unsqueeze(2) & different.unsqueeze(1)  # [a, p, n]
        per_triplet = F.relu(distances.unsqueeze(2) - distances.unsqueeze(1) + self.triplet_margin) * valid
        active = (per_triplet > 1e-16).sum()
        return per_triplet.sum() / (active + 1e-16)


class BatchHardTripletLoss(_BatchTripletBase):
    """For each anchor only its hardest triplet, averaged over the anchors.

    The farthest same-class text against the closest other-class text:
    ``relu(d(a, p_hardest) - d(a, n_hardest) + margin)``.

    ==================================  ================================================
    Inputs (text columns, in order)     Labels
    ==================================  ================================================
    (text,)                             class id (int); 2+ texts per class in each batch
    ==================================  ================================================

    An anchor without a same-class text contributes ``relu(margin - d(a, n_hardest))``; one without an
    other-class text contributes 0.

    When to use: class-labelled data where most triplets are easy; it focuses on the informative ones.
    Sensitive to label noise (a mislabelled text is always "hardest").

    Related: :class:`BatchAllTripletLoss`, :class:`BatchSemiHardTripletLoss`,
    :class:`BatchHardSoftMarginTripletLoss`.

    Args:
        model: The SentenceTransformer being trained.
        distance_metric: ``(batch, dim) -> (batch, batch)`` distances; Euclidean by default.
        margin: How much farther the negative must be than the positive.

    Example:
        >>> loss = losses.BatchHardTripletLoss(model, margin=5)  # doctest: +SKIP
        >>> loss([model.tokenize(texts)], torch.tensor(class_ids)).backward()  # doctest: +SKIP
    """

    def _loss(self, distances: Tensor, labels: Tensor) -> Tensor:
        positive, negative = _hardest(distances, labels)
        return F.relu(positive - negative + self.triplet_margin).mean()


class BatchHardSoftMarginTripletLoss(_BatchTripletBase):
    """:class:`BatchHardTripletLoss` with a soft margin: ``softplus(d(a, p_hardest) - d(a, n_hardest))``.

    ==================================  ================================================
    Inputs (text columns, in order)     Labels
    ==================================  ================================================
    (text,)                             class id (int); 2+ texts per class in each batch
    ==================================  ================================================

    No margin to tune: the softplus keeps pushing the hardest negative away, more gently as it recedes.

    When to use: like :class:`BatchHardTripletLoss` when choosing a margin is awkward (e.g. unnormalized
    Euclidean embeddings).

    Related: :class:`BatchHardTripletLoss`, :class:`BatchAllTripletLoss`, :class:`BatchSemiHardTripletLoss`.

    Args:
        model: The SentenceTransformer being trained.
        distance_metric: ``(batch, dim) -> (batch, batch)`` distances; Euclidean by default.

    Example:
        >>> loss = losses.BatchHardSoftMarginTripletLoss(model)  # doctest: +SKIP
        >>> loss([model.tokenize(texts)], torch.tensor(class_ids)).backward()  # doctest: +SKIP
    """

    def __init__(
        self,
        model: nn.Module,
        distance_metric: MatrixDistanceFn = BatchHardTripletLossDistanceFunction.euclidean_distance,
    ) -> None:
        super().__init__(model, distance_metric, 0.0)

    def _loss(self, distances: Tensor, labels: Tensor) -> Tensor:
        positive, negative = _hardest(distances, labels)
        return F.softplus(positive - negative).mean()

    def get_config_dict(self) -> dict[str, Any]:
        """Hyper-parameters, for the model card."""
        return {"distance_metric": function_name(self.distance_metric)}


class BatchSemiHardTripletLoss(_BatchTripletBase):
    """Triplets with semi-hard negatives, averaged over the batch's same-class pairs.

    For each same-class pair ``(a, p)`` the negative is the closest other-class text that is still farther
    from ``a`` than ``p`` is; when there is none, the farthest other-class text.

    ==================================  ================================================
    Inputs (text columns, in order)     Labels
    ==================================  ================================================
    (text,)                             class id (int); 2+ texts per class in each batch
    ==================================  ================================================

    The loss is ``relu(d(a, p) - d(a, n_semi_hard) + margin)`` averaged over the same-class pairs (FaceNet's
    mining). Anchors without an other-class text in the batch contribute 0.

    When to use: class-labelled data, as a steadier alternative to :class:`BatchHardTripletLoss` early in
    training (the hardest negatives can collapse the embedding).

    Related: :class:`BatchHardTripletLoss`, :class:`BatchAllTripletLoss`.

    Args:
        model: The SentenceTransformer being trained.
        distance_metric: ``(batch, dim) -> (batch, batch)`` distances; Euclidean by default.
        margin: How much farther the negative must be than the positive.

    Example:
        >>> loss = losses.BatchSemiHardTripletLoss(model)  # doctest: +SKIP
        >>> loss([model.tokenize(texts)], torch.tensor(class_ids)).backward()  # doctest: +SKIP
    """

    @property
    def margin(self) -> float:
        """The triplet margin (the reference's attribute name for this loss)."""
        return self.triplet_margin

    def _loss(self, distances: Tensor, labels: Tensor) -> Tensor:
        same, different = _label_masks(labels)
        to_negative = distances.unsqueeze(1)  # [a, 1, n]
        to_positive = distances.detach().unsqueeze(2)  # [a, p, 1]
        beyond = different.unsqueeze(1) & (to_negative.detach() > to_positive)  # [a, p, n]
        semi_hard = to_negative.expand_as(beyond).masked_fill(~beyond, torch.inf).min(dim=2).values
        farthest = distances.masked_fill(~different, -torch.inf).max(dim=1, keepdim=True).values
        negative = torch.where(torch.isfinite(semi_hard), semi_hard, farthest.expand_as(semi_hard))
        pairs = same & different.any(dim=1, keepdim=True)
        per_pair = F.relu(distances - negative + self.triplet_margin)
        return torch.where(pairs, per_pair, 0.0).sum() / pairs.sum().clamp(min=1)
