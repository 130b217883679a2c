"""Pair classification with sparse embeddings, with how sparse they were."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from sentencekit.evaluation._embeddings import Role
from sentencekit.evaluation.binary_classification import BinaryClassificationEvaluator
from sentencekit.sparse_encoder.evaluation.base import SparseEvaluatorMixin

__all__ = ["SparseBinaryClassificationEvaluator"]


class SparseBinaryClassificationEvaluator(SparseEvaluatorMixin, BinaryClassificationEvaluator):
    """:class:`~sentencekit.evaluation.BinaryClassificationEvaluator` for a SparseEncoder.

    Finds the similarity threshold that best separates labelled pairs (duplicates, paraphrases) using sparse
    embeddings, and reports how sparse they were.

    ============================  =======================================
    input                         meaning
    ============================  =======================================
    ``sentences1[i]``             first text of pair ``i``
    ``sentences2[i]``             second text of pair ``i``
    ``labels[i]``                 1 if the pair is similar, else 0
    ============================  =======================================

    Returned keys: those of the dense evaluator (``dot_accuracy``, ``dot_f1``, ``dot_ap``, ... for a SPLADE
    model), plus ``active_dims`` and ``sparsity_ratio`` over the distinct texts of both columns (each text
    counted once, as it is encoded once). ``primary_metric`` is ``{fn}_ap`` (one function) or ``max_ap``.

    Args:
        sentences1: First text of each pair.
        sentences2: Second text of each pair.
        labels: 0 or 1 per pair.
        name: Prefix of the returned keys and part of the CSV file name.
        batch_size: Encoding batch size.
        show_progress_bar: Show the encoding progress bar.
        write_csv: Append a row to ``binary_classification_evaluation[_{name}]_results.csv`` when called with
            an ``output_path``.
        max_active_dims: Keep this many non-zero dimensions per embedding; ``None`` keeps the model's setting.
        similarity_fn_names: Similarities to evaluate; ``None`` uses the model's (``"dot"`` for SPLADE).

    Example:
        ::

            from sentencekit.readers import read_quora_duplicates
            from sentencekit.sparse_encoder.evaluation import SparseBinaryClassificationEvaluator

            pairs = read_quora_duplicates("quora_duplicates/test.tsv")
            evaluator = SparseBinaryClassificationEvaluator(*pairs, name="quora")
            evaluator(model)["quora_dot_ap"]

    """

    def __init__(
        self,
        sentences1: Sequence[str],
        sentences2: Sequence[str],
        labels: Sequence[int],
        name: str = "",
        batch_size: int = 32,
        show_progress_bar: bool = False,
        write_csv: bool = True,
        max_active_dims: int | None = None,
        similarity_fn_names: Sequence[str] | None = None,
    ) -> None:
        self.init_sparsity(max_active_dims)
        super().__init__(
            sentences1,
            sentences2,
            labels,
            name=name,
            batch_size=batch_size,
            show_progress_bar=show_progress_bar,
            write_csv=write_csv,
            similarity_fn_names=similarity_fn_names,
        )

    def record_sparsity(
        self, model: Any, text_lists: Sequence[Sequence[Any]], embeddings: Sequence[Tensor], role: Role | None
    ) -> None:
        """One entry over the distinct texts of both columns (the reference encodes those in one call)."""
        first_rows: dict[Any, int] = {}
        try:
            for position, text in enumerate(text for texts in text_lists for text in texts):
                first_rows.setdefault(text, position)
        except TypeError:  # unhashable inputs: the reference encodes each column in its own call
            super().record_sparsity(model, text_lists, embeddings, role)
            return
        rows = torch.cat(list(embeddings))
        distinct = torch.tensor(list(first_rows.values()), device=rows.device)
        self.add_sparsity(model.sparsity(rows.index_select(0, distinct)))
