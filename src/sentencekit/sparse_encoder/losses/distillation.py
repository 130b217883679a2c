"""Sparse distillation losses: a teacher's margins, score distributions or embeddings, for a SparseEncoder."""

from __future__ import annotations

from torch import nn

from sentencekit.losses.distillation import DistillKLDivLoss, MarginMSELoss, MSELoss, PairwiseFn
from sentencekit.similarity import pairwise_dot_score
from sentencekit.sparse_encoder.losses._common import InsideSparseWrapper

__all__ = ["SparseDistillKLDivLoss", "SparseMSELoss", "SparseMarginMSELoss"]


class SparseMarginMSELoss(InsideSparseWrapper, MarginMSELoss):
    """:class:`~sentencekit.losses.MarginMSELoss` on sparse embeddings, inside :class:`SpladeLoss` or CSRLoss.

    The student's margins ``dot(q, pos) - dot(q, neg_k)`` regress the teacher's margins (mean squared error).

    ==================================================  ==============================================
    Inputs (text columns, in order)                     Labels
    ==================================================  ==============================================
    (query, positive, negative)                         teacher margin, or (pos, neg) teacher scores
    (query, positive, negative_1, ..., negative_n)      n margins, or n + 1 teacher scores
    ==================================================  ==============================================

    When to use: distilling a cross-encoder (or a stronger SPLADE model) into a SPLADE model on
    (query, positive, hard negative) rows, as in the SPLADE++ recipes; wrap it in :class:`SpladeLoss`
    (alone it raises ``AttributeError``).

    Related: :class:`SparseDistillKLDivLoss`, :class:`SparseMSELoss`.

    Args:
        model: The student SparseEncoder.
        similarity_fct: Pairwise score of the student, dot product by default.

    Example:
        >>> loss = losses.SpladeLoss(
        ...     model, losses.SparseMarginMSELoss(model),
        ...     document_regularizer_weight=3e-5, query_regularizer_weight=5e-5)  # doctest: +SKIP
    """


class SparseDistillKLDivLoss(InsideSparseWrapper, DistillKLDivLoss):
    """:class:`~sentencekit.losses.DistillKLDivLoss` for sparse embeddings, with temperature 2 by default.

    KL divergence from the teacher's softmax over (positive, negatives...) to the student's, both divided by
    their temperature; multiplied by ``student_temperature ** 2``.

    ==================================================  ===========================================
    Inputs (text columns, in order)                     Labels
    ==================================================  ===========================================
    (query, positive, negative)                         teacher scores ``(batch, 2)``
    (query, positive, negative_1, ..., negative_n)      teacher scores ``(batch, n + 1)``
    ==================================================  ===========================================

    When to use: distilling a teacher's ranking of several candidates per query into a SPLADE model; wrap it
    in :class:`SpladeLoss` (alone it raises ``AttributeError``).

    Related: :class:`SparseMarginMSELoss`.

    Args:
        model: The student SparseEncoder.
        similarity_fct: Pairwise score of the student, dot product by default.
        temperature: Temperature of both distributions unless set separately below.
        student_temperature: Temperature of the student's scores.
        teacher_temperature: Temperature of the teacher's scores.

    Example:
        >>> loss = losses.SpladeLoss(
        ...     model, losses.SparseDistillKLDivLoss(model),
        ...     document_regularizer_weight=3e-5, query_regularizer_weight=5e-5)  # doctest: +SKIP
    """

    def __init__(
        self,
        model: nn.Module,
        similarity_fct: PairwiseFn = pairwise_dot_score,
        temperature: float = 2.0,
        student_temperature: float | None = None,
        teacher_temperature: float | None = None,
    ) -> None:
        super().__init__(
            model,
            similarity_fct=similarity_fct,
            temperature=temperature,
            student_temperature=student_temperature,
            teacher_temperature=teacher_temperature,
        )


class SparseMSELoss(MSELoss):
    """:class:`~sentencekit.losses.MSELoss` for a SparseEncoder: its embeddings regress a teacher's.

    Every text column is compared with the target embedding (mean squared error over the vocabulary), and
    the columns' errors are averaged. Unlike the other sparse losses it may be used on its own.

    ==============================================  ==================================================
    Inputs (text columns, in order)                 Labels
    ==============================================  ==================================================
    (text,)                                         teacher embedding, ``(batch, vocab)``
    (text_1, ..., text_n)                           the same target for every column
    ==============================================  ==================================================

    When to use: distilling a SPLADE teacher with the same vocabulary into a student, e.g. into another
    language (the teacher embeds the English text; the student learns it for the translation too).

    Related: :class:`SparseMarginMSELoss` (distils score margins instead of vectors).

    Args:
        model: The student SparseEncoder.

    Example:
        >>> target = teacher.encode(["Hello world"], convert_to_tensor=True)  # doctest: +SKIP
        >>> loss = losses.SparseMSELoss(student)  # doctest: +SKIP
        >>> batch = [student.tokenize(["Hello world"]), student.tokenize(["Hallo Welt"])]  # doctest: +SKIP
        >>> loss(batch, target).backward()  # doctest: +SKIP
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__(model)
