"""Distillation of a sparse model: how close its embeddings are to a teacher's, and how sparse they are."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sentencekit.evaluation.mse import MSEEvaluator
from sentencekit.sparse_encoder.evaluation.base import SparseEvaluatorMixin

__all__ = ["SparseMSEEvaluator"]


class SparseMSEEvaluator(SparseEvaluatorMixin, MSEEvaluator):
    """:class:`~sentencekit.evaluation.MSEEvaluator` for a SparseEncoder student (and often teacher).

    ======================  =====================================================
    input                   meaning
    ======================  =====================================================
    ``source_sentences``    texts the teacher embeds (once, at construction)
    ``target_sentences``    texts the evaluated model embeds
    ======================  =====================================================

    Both sides are compared as dense vocabulary-sized vectors (so memory grows with ``texts x vocabulary``);
    a sparse teacher is encoded with the same ``max_active_dims``. Use it to follow the distillation of a
    large SPLADE model into a smaller one with the same vocabulary.

    Returned keys: ``negative_mse`` (the primary metric, ``-100 * mean((teacher - student)^2)``), plus the
    student's ``active_dims`` and ``sparsity_ratio``, which also end the CSV row.

    Args:
        source_sentences: Texts for the teacher.
        target_sentences: Texts for the evaluated model, aligned with ``source_sentences``.
        teacher_model: The model whose embeddings are the target; encoded once, here.
        show_progress_bar: Show the encoding progress bar.
        batch_size: Encoding batch size.
        name: Prefix of the returned keys and part of the CSV file name.
        write_csv: Append a row to ``mse_evaluation_{name}_results.csv`` when called with an ``output_path``.
        max_active_dims: Keep this many non-zero dimensions per embedding; ``None`` keeps the model's setting.

    Example:
        ::

            from sentencekit.sparse_encoder.evaluation import SparseMSEEvaluator

            evaluator = SparseMSEEvaluator(texts, texts, teacher_model=teacher, name="distill")
            evaluator(student)["distill_negative_mse"]  # closer to 0 is better

    """

    sparse_output = False  # the squared error is taken on dense vectors

    def __init__(
        self,
        source_sentences: Sequence[str],
        target_sentences: Sequence[str],
        teacher_model: Any = None,
        show_progress_bar: bool = False,
        batch_size: int = 32,
        name: str = "",
        write_csv: bool = True,
        max_active_dims: int | None = None,
    ) -> None:
        self.init_sparsity(max_active_dims)
        super().__init__(
            source_sentences,
            target_sentences,
            teacher_model=teacher_model,
            show_progress_bar=show_progress_bar,
            batch_size=batch_size,
            name=name,
            write_csv=write_csv,
        )
