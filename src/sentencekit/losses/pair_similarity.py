"""Losses on scored pairs: the similarity of two texts should follow (or order like) a gold score."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor, nn

from sentencekit.losses._common import Features, check_columns, check_labels, embed_columns, function_name
from sentencekit.similarity import pairwise_angle_sim, pairwise_cos_sim

__all__ = ["AnglELoss", "CoSENTLoss", "CosineSimilarityLoss", "cosent_loss"]

PairwiseFn = Callable[[Tensor, Tensor], Tensor]


def cosent_loss(scores: Tensor, labels: Tensor, scale: float) -> Tensor:
    """``log(1 + sum over (i, j) with label_i > label_j of exp(scale * (score_j - score_i)))``.

    Every pair of examples whose gold order is known adds a penalty that grows when the model scores them
    the other way round; pairs with equal labels add nothing.

    Args:
        scores: One similarity per example, ``(batch,)``.
        labels: One gold score per example, ``(batch,)``; only their order matters.
        scale: Sharpness of the penalty.
    """
    scores = scores.float() * scale
    labels = labels.to(scores.dtype) if labels.dtype == torch.bool else labels
    wrong_way = scores.unsqueeze(0) - scores.unsqueeze(1)  # [i, j] = score_j - score_i
    ordered = labels.unsqueeze(1) > labels.unsqueeze(0)  # [i, j]: example i should score above example j
    terms = wrong_way.masked_fill(~ordered, -torch.inf).flatten()
    return torch.logsumexp(torch.cat([terms.new_zeros(1), terms]), dim=0)


class CoSENTLoss(nn.Module):
    """CoSENT: a ranking loss on pair similarities, for data with a similarity score per pair.

    For every two pairs ``(i, j)`` of the batch with ``label_i > label_j`` the loss penalises
    ``exp(scale * (sim_j - sim_i))``; the result is ``log(1 + sum of penalties)``. Only the order of the
    labels matters, so any monotone score (0-5 STS ratings, 0/1 labels, probabilities) works as it is.

    ========================================  ================================
    Inputs (text columns, in order)           Labels
    ========================================  ================================
    (sentence_A, sentence_B)                  float similarity score per pair
    ========================================  ================================

    When to use: semantic textual similarity data (STSb and the like); it usually trains better and faster
    than :class:`CosineSimilarityLoss` on the same data.

    Related: :class:`AnglELoss` (the same with an angle-based similarity), :class:`CosineSimilarityLoss`
    (regresses the cosine onto the label instead).

    Args:
        model: The SentenceTransformer being trained.
        scale: ``1 / temperature`` of the pairwise penalty; 20 is the usual value.
        similarity_fct: Pairwise similarity (``a[i]`` against ``b[i]``), by default cosine.

    Example:
        >>> loss = losses.CoSENTLoss(model)  # doctest: +SKIP
        >>> batch = [model.tokenize(["A man eats.", "A girl sings."]),
        ...          model.tokenize(["A man is eating.", "A car drives."])]  # doctest: +SKIP
        >>> loss(batch, torch.tensor([4.8, 0.2])).backward()  # doctest: +SKIP
    """

    def __init__(
        self, model: nn.Module, scale: float = 20.0, similarity_fct: PairwiseFn = pairwise_cos_sim
    ) -> None:
        super().__init__()
        self.model = model
        self.scale = float(scale)
        self.similarity_fct = similarity_fct

    def forward(self, sentence_features: Iterable[Features], labels: Tensor | None) -> Tensor:
        """Embed both columns and return the scalar loss."""
        return self.compute_loss_from_embeddings(embed_columns(self.model, sentence_features), labels)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None) -> Tensor:
        """The loss from the two columns' embeddings."""
        name = type(self).__name__
        check_columns(name, len(embeddings), exactly=2)
        labels = check_labels(name, labels, embeddings[0].shape[0])
        return cosent_loss(self.similarity_fct(embeddings[0], embeddings[1]), labels, self.scale)

    def get_config_dict(self) -> dict[str, Any]:
        """Hyper-parameters, for the model card."""
        return {"scale": self.scale, "similarity_fct": function_name(self.similarity_fct)}


class AnglELoss(CoSENTLoss):
    """AnglE: :class:`CoSENTLoss` on an angle-based similarity that keeps a gradient where cosine saturates.

    The embeddings are read as complex vectors (first half real, second half imaginary) and the similarity
    is :func:`~sentencekit.similarity.pairwise_angle_sim`. With more than two columns, each negative column is
    paired with the anchor and given the label ``1 - label`` (``label`` defaults to 1).

    ==================================================  ============================================
    Inputs (text columns, in order)                     Labels
    ==================================================  ============================================
    (sentence_A, sentence_B)                            float similarity score per pair
    (anchor, positive, negative_1, ..., negative_n)     optional score in [0, 1] (default 1)
    ==================================================  ============================================

    When to use: like :class:`CoSENTLoss`; often slightly better on STS, and usable as an auxiliary loss
    with hard negatives.

    Related: :class:`CoSENTLoss`, :class:`CosineSimilarityLoss`.

    Args:
        model: The SentenceTransformer being trained.
        scale: ``1 / temperature`` of the pairwise penalty.

    Example:
        >>> loss = losses.AnglELoss(model)  # doctest: +SKIP
        >>> loss([model.tokenize(["a"]), model.tokenize(["b"])], torch.tensor([1.0]))  # doctest: +SKIP
    """

    def __init__(self, model: nn.Module, scale: float = 20.0) -> None:
        super().__init__(model, scale=scale, similarity_fct=pairwise_angle_sim)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None) -> Tensor:
        """The loss from the columns' embeddings; negatives become extra pairs with label ``1 - label``."""
        if len(embeddings) <= 2:
            return super().compute_loss_from_embeddings(embeddings, labels)
        anchor, others = embeddings[0], embeddings[1:]
        rows = anchor.shape[0]
        if labels is None:
            labels = torch.ones(rows, device=anchor.device)
        labels = check_labels(type(self).__name__, labels, rows).float()
        pair_labels = torch.cat([labels, (1 - labels).repeat(len(others) - 1)])
        scores = self.similarity_fct(anchor.repeat(len(others), 1), torch.cat(others, dim=0))
        return cosent_loss(scores, pair_labels, self.scale)


class CosineSimilarityLoss(nn.Module):
    """Regresses the cosine similarity of each pair onto its gold score: ``loss_fct(cos(u, v), label)``.

    ========================================  =========================================
    Inputs (text columns, in order)           Labels
    ========================================  =========================================
    (sentence_A, sentence_B)                  float score per pair, usually in [0, 1]
    ========================================  =========================================

    Scale STS ratings to [0, 1] (or [-1, 1]) first: the cosine cannot reach 5.

    When to use: pairs with graded similarity when the absolute cosine value should mean something (for a
    fixed threshold later). For ranking quality alone :class:`CoSENTLoss` is usually better.

    Related: :class:`CoSENTLoss`, :class:`AnglELoss`, :class:`ContrastiveLoss` (binary labels).

    Args:
        model: The SentenceTransformer being trained.
        loss_fct: Compares the (transformed) cosine with the label; mean squared error by default.
        cos_score_transformation: Applied to the cosine first (identity by default).

    Example:
        >>> loss = losses.CosineSimilarityLoss(model)  # doctest: +SKIP
        >>> batch = [model.tokenize(["a cat"]), model.tokenize(["a kitten"])]  # doctest: +SKIP
        >>> loss(batch, torch.tensor([0.9]))  # doctest: +SKIP
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fct: nn.Module | None = None,
        cos_score_transformation: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.loss_fct = loss_fct if loss_fct is not None else nn.MSELoss()
        self.cos_score_transformation = (
            cos_score_transformation if cos_score_transformation is not None else nn.Identity()
        )

    def forward(self, sentence_features: Iterable[Features], labels: Tensor | None) -> Tensor:
        """Embed both columns and return the scalar loss."""
        return self.compute_loss_from_embeddings(embed_columns(self.model, sentence_features), labels)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None) -> Tensor:
        """The loss from the two columns' embeddings."""
        name = type(self).__name__
        check_columns(name, len(embeddings), exactly=2)
        labels = check_labels(name, labels, embeddings[0].shape[0])
        cosine = torch.cosine_similarity(embeddings[0], embeddings[1])
        result: Tensor = self.loss_fct(self.cos_score_transformation(cosine), labels.float())
        return result

    def get_config_dict(self) -> dict[str, Any]:
        """Hyper-parameters, for the model card."""
        return {
            "loss_fct": function_name(self.loss_fct),
            "cos_score_transformation": function_name(self.cos_score_transformation),
        }
