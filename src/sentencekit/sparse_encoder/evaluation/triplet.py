"""Triplet accuracy of sparse embeddings, with how sparse anchors, positives and negatives were."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor

from sentencekit.evaluation._embeddings import Role
from sentencekit.evaluation.triplet import TripletEvaluator
from sentencekit.sparse_encoder.evaluation.base import SparseEvaluatorMixin
from sentencekit.types import SimilarityFunction

__all__ = ["SparseTripletEvaluator"]

logger = logging.getLogger(__name__)


class SparseTripletEvaluator(SparseEvaluatorMixin, TripletEvaluator):
    """:class:`~sentencekit.evaluation.TripletEvaluator` for a SparseEncoder.

    ======================  =========================================================
    input                   meaning
    ======================  =========================================================
    ``anchors[i]``          the reference text (encoded as a query)
    ``positives[i]``        a text that should be close to it (encoded as a document)
    ``negatives[i]``        a text that should be further away (encoded as a document)
    ======================  =========================================================

    A triplet is correct when ``sim(anchor, positive) > sim(anchor, negative) + margin``.

    Returned keys: ``{fn}_accuracy`` per similarity function (``dot_accuracy`` for a SPLADE model), plus
    ``max_accuracy`` when there are several, and ``anchor_``, ``positive_`` and ``negative_`` ``active_dims``
    and ``sparsity_ratio``, which also end the CSV row. ``primary_metric`` is the dense evaluator's.

    Args:
        anchors: Anchor texts.
        positives: Positive text per anchor.
        negatives: Negative text per anchor.
        main_similarity_function: The similarity whose accuracy is the primary metric.
        margin: Required gap between positive and negative score: one number, or a dict by function name.
        name: Prefix of the returned keys and part of the CSV file name.
        batch_size: Encoding batch size.
        show_progress_bar: Show the encoding progress bar.
        write_csv: Append a row to ``triplet_evaluation[_{name}]_results.csv`` when called with an
            ``output_path``.
        max_active_dims: Keep this many non-zero dimensions per embedding; ``None`` keeps the model's setting.
        similarity_fn_names: Similarities to evaluate; ``None`` uses ``main_similarity_function`` or else the
            model's (``"dot"`` for SPLADE).
        main_distance_function: The former name of ``main_similarity_function``, still read when that is
            ``None``; ``"deprecated"`` (the default) means not given.

    Example:
        ::

            from sentencekit.readers import read_triplet_tsv
            from sentencekit.sparse_encoder.evaluation import SparseTripletEvaluator

            triplets = read_triplet_tsv("snli/snli_test_triplets.tsv")
            evaluator = SparseTripletEvaluator(*triplets, name="snli_test")
            evaluator(model)["snli_test_dot_accuracy"]

    """

    def __init__(
        self,
        anchors: Sequence[str],
        positives: Sequence[str],
        negatives: Sequence[str],
        main_similarity_function: str | SimilarityFunction | None = None,
        margin: float | Mapping[str, float] | None = None,
        name: str = "",
        batch_size: int = 16,
        show_progress_bar: bool = False,
        write_csv: bool = True,
        max_active_dims: int | None = None,
        similarity_fn_names: Sequence[str] | None = None,
        main_distance_function: str | SimilarityFunction | None = "deprecated",
    ) -> None:
        if main_distance_function != "deprecated" and main_similarity_function is None:
            logger.warning("main_distance_function is deprecated; pass main_similarity_function instead.")
            main_similarity_function = main_distance_function
        self.init_sparsity(max_active_dims)
        super().__init__(
            anchors,
            positives,
            negatives,
            main_similarity_function=main_similarity_function,
            margin=margin,
            name=name,
            batch_size=batch_size,
            show_progress_bar=show_progress_bar,
            write_csv=write_csv,
            similarity_fn_names=similarity_fn_names,
        )

    def record_sparsity(
        self, model: Any, text_lists: Sequence[Sequence[Any]], embeddings: Sequence[Tensor], role: Role | None
    ) -> None:
        """Anchors are embedded as queries; positives and negatives together, as documents."""
        prefixes = ("anchor_",) if role == "query" else ("positive_", "negative_")
        for prefix, rows in zip(prefixes, embeddings, strict=True):
            self.add_sparsity(model.sparsity(rows), prefix)
