"""Distillation losses: the student reproduces a teacher's embeddings or its scores."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor, nn

from sentencekit.errors import InvalidInputError
from sentencekit.losses._common import Features, check_columns, embed_columns, function_name
from sentencekit.losses.embed_distill import EmbedDistillLoss
from sentencekit.similarity import pairwise_dot_score

__all__ = ["DistillKLDivLoss", "MSELoss", "MarginMSELoss", "teacher_margins"]

PairwiseFn = Callable[[Tensor, Tensor], Tensor]


class MSELoss(EmbedDistillLoss):
    """Mean squared error between the student's embeddings and given target (teacher) embeddings.

    It is :class:`EmbedDistillLoss` with ``distance_metric="mse"``, as in the reference.

    Every text column is compared with the target; the columns' errors are averaged. Targets are computed
    once beforehand, e.g. ``teacher.encode(texts)``, and passed as the label.

    ==============================================  ==================================================
    Inputs (text columns, in order)                 Labels
    ==============================================  ==================================================
    (text,)                                         teacher embedding, ``(batch, dim)``
    (source_text, translation)                      teacher embedding of the source, shared by both
    (text_1, ..., text_n)                           one per column, ``(batch, n, dim)``
    ==============================================  ==================================================

    When to use: distilling a large model into a small one, and multilingual knowledge distillation (the
    teacher's English embedding is the target of both the English text and its translation).

    Related: :class:`MarginMSELoss` and :class:`DistillKLDivLoss` (distil scores instead of vectors).

    Args:
        model: The student SentenceTransformer.
        projection_dim: When the teacher is wider or narrower than the student, a trainable linear layer
            maps the student's embeddings to this width first (it lives in the loss).

    Example:
        >>> loss = losses.MSELoss(student)  # doctest: +SKIP
        >>> target = teacher.encode(["Hello world"], convert_to_tensor=True)  # doctest: +SKIP
        >>> batch = [student.tokenize(["Hello world"]), student.tokenize(["Hallo Welt"])]  # doctest: +SKIP
        >>> loss(batch, target)  # doctest: +SKIP
    """

    def __init__(self, model: nn.Module, projection_dim: int | None = None) -> None:
        super().__init__(model, "mse", projection_dim)

    def get_config_dict(self) -> dict[str, Any]:
        """Hyper-parameters, for the model card."""
        return {"projection_dim": self.projection_dim}


def teacher_margins(loss: str, labels: Tensor | list[Tensor] | None, rows: int, negatives: int) -> Tensor:
    """Teacher margins ``(rows, negatives)`` from margins, or from (positive, negatives...) teacher scores.

    Args:
        loss: Name of the calling loss, for messages.
        labels: ``(rows, negatives)`` margins, ``(rows, negatives + 1)`` scores, ``(rows,)`` for one negative,
            or a list of per-row tensors.
        rows: Queries in the batch.
        negatives: Negative columns in the batch.
    """
    if labels is None:
        raise InvalidInputError(f"{loss} needs the teacher's scores or margins as labels, got none.")
    if isinstance(labels, list):
        labels = torch.stack(labels)
    if labels.shape == (rows, negatives + 1):
        labels = labels[:, :1] - labels[:, 1:]
    elif labels.shape == (rows,):
        labels = labels.unsqueeze(1)
    if labels.shape != (rows, negatives):
        raise InvalidInputError(
            f"{loss} expects labels of shape ({rows}, {negatives}) (teacher margins, positive minus "
            f"negative) or ({rows}, {negatives + 1}) (teacher scores of positive and negatives), "
            f"got {tuple(labels.shape)}."
        )
    return labels.detach().float()


class MarginMSELoss(nn.Module):
    """The student's score margins ``sim(q, pos) - sim(q, neg_k)`` regress a teacher's margins (MSE).

    ==================================================  ==============================================
    Inputs (text columns, in order)                     Labels
    ==================================================  ==============================================
    (query, positive, negative)                         teacher margin, or (pos, neg) teacher scores
    (query, positive, negative_1, ..., negative_n)      n margins, or n + 1 teacher scores
    ==================================================  ==============================================

    When to use: distilling a cross-encoder into a bi-encoder on (query, positive, hard negative) data, as
    in MS MARCO training. Only differences are matched, so the teacher's scale need not be the student's.

    Related: :class:`DistillKLDivLoss` (matches the teacher's distribution over candidates),
    :class:`MSELoss` (matches embeddings), :class:`sentencekit.cross_encoder.losses.MarginMSELoss`.

    Args:
        model: The student SentenceTransformer.
        similarity_fct: Pairwise score of the student, dot product by default.

    Example:
        >>> loss = losses.MarginMSELoss(model)  # doctest: +SKIP
        >>> columns = [["what is a cat"], ["A cat is a pet."], ["Paris is a city."]]
        >>> loss([model.tokenize(c) for c in columns], torch.tensor([[8.1, -3.2]]))  # doctest: +SKIP
    """

    def __init__(self, model: nn.Module, similarity_fct: PairwiseFn = pairwise_dot_score) -> None:
        super().__init__()
        self.model = model
        self.similarity_fct = similarity_fct
        self.loss_fct = nn.MSELoss()

    def forward(self, sentence_features: Iterable[Features], labels: Tensor | None) -> Tensor:
        """Embed every column and return the loss against the teacher's margins."""
        return self.compute_loss_from_embeddings(embed_columns(self.model, sentence_features), labels)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None) -> Tensor:
        """The loss from the columns' embeddings and the teacher's labels."""
        check_columns(type(self).__name__, len(embeddings), at_least=3)
        query, positive, negatives = embeddings[0], embeddings[1], embeddings[2:]
        target = teacher_margins(type(self).__name__, labels, query.shape[0], len(negatives))
        positive_score = self.similarity_fct(query, positive)
        margins = torch.stack([positive_score - self.similarity_fct(query, n) for n in negatives], dim=1)
        result: Tensor = self.loss_fct(margins, target.to(margins.dtype))
        return result

    def get_config_dict(self) -> dict[str, Any]:
        """Hyper-parameters, for the model card."""
        return {"similarity_fct": function_name(self.similarity_fct)}


class DistillKLDivLoss(nn.Module):
    """KL divergence from the teacher's softmax over the candidates to the student's.

    For each query, the teacher's scores of (positive, negative_1, ...) divided by ``teacher_temperature``
    give a distribution; the student's scores divided by ``student_temperature`` should give the same. The
    KL divergence is averaged over queries and multiplied by ``student_temperature ** 2`` (so the gradient
    scale does not depend on the temperature).

    ==================================================  ===========================================
    Inputs (text columns, in order)                     Labels
    ==================================================  ===========================================
    (query, positive, negative)                         teacher scores ``(batch, 2)``
    (query, positive, negative_1, ..., negative_n)      teacher scores ``(batch, n + 1)``
    ==================================================  ===========================================

    When to use: distilling a cross-encoder's ranking into a bi-encoder when several candidates per query
    are scored; it transfers the whole ranking, not just one margin.

    Related: :class:`MarginMSELoss`, :class:`MSELoss`.

    Args:
        model: The student SentenceTransformer.
        similarity_fct: Pairwise score of the student, dot product by default.
        temperature: Temperature of both distributions unless set separately below.
        student_temperature: Temperature of the student's scores.
        teacher_temperature: Temperature of the teacher's scores.

    Example:
        >>> loss = losses.DistillKLDivLoss(model, temperature=2.0)  # doctest: +SKIP
        >>> columns = [["q"], ["relevant"], ["not relevant"]]
        >>> loss([model.tokenize(c) for c in columns], torch.tensor([[9.0, 1.0]]))  # doctest: +SKIP
    """

    def __init__(
        self,
        model: nn.Module,
        similarity_fct: PairwiseFn = pairwise_dot_score,
        temperature: float = 1.0,
        student_temperature: float | None = None,
        teacher_temperature: float | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.similarity_fct = similarity_fct
        self.temperature = float(temperature)
        self.student_temperature = float(
            student_temperature if student_temperature is not None else temperature
        )
        self.teacher_temperature = float(
            teacher_temperature if teacher_temperature is not None else temperature
        )
        for name in ("temperature", "student_temperature", "teacher_temperature"):
            value = getattr(self, name)
            if not 0 < value < float("inf"):
                raise ValueError(f"{name} must be a positive finite number, got {value}.")
        self.loss_fct = nn.KLDivLoss(reduction="batchmean")

    def forward(self, sentence_features: Iterable[Features], labels: Tensor | None) -> Tensor:
        """Embed every column and return the KL divergence from the teacher's distribution."""
        return self.compute_loss_from_embeddings(embed_columns(self.model, sentence_features), labels)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None) -> Tensor:
        """The loss from the columns' embeddings and the teacher's scores."""
        check_columns(type(self).__name__, len(embeddings), at_least=3)
        query, candidates = embeddings[0], embeddings[1:]
        expected = (query.shape[0], len(candidates))
        if labels is None or tuple(labels.shape) != expected:
            got = "none" if labels is None else str(tuple(labels.shape))
            raise InvalidInputError(
                f"DistillKLDivLoss expects the teacher's scores of shape {expected} (one per candidate "
                f"column), got {got}."
            )
        student = torch.stack([self.similarity_fct(query, c) for c in candidates], dim=1)
        student_log_probs = torch.log_softmax(student / self.student_temperature, dim=1)
        teacher_probs = torch.softmax(labels.detach().to(student.dtype) / self.teacher_temperature, dim=1)
        result: Tensor = self.loss_fct(student_log_probs, teacher_probs) * self.student_temperature**2
        return result

    def get_config_dict(self) -> dict[str, Any]:
        """Hyper-parameters, for the model card."""
        return {
            "similarity_fct": function_name(self.similarity_fct),
            "temperature": self.temperature,
            "student_temperature": self.student_temperature,
            "teacher_temperature": self.teacher_temperature,
        }
