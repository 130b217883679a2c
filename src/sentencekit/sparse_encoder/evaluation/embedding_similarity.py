"""Semantic textual similarity of sparse embeddings, with how sparse they were."""

from __future__ import annotations

from collections.abc import Sequence

from sentencekit.evaluation.embedding_similarity import EmbeddingSimilarityEvaluator
from sentencekit.sparse_encoder.evaluation.base import SparseEvaluatorMixin
from sentencekit.types import SimilarityFunction

__all__ = ["SparseEmbeddingSimilarityEvaluator"]


class SparseEmbeddingSimilarityEvaluator(SparseEvaluatorMixin, EmbeddingSimilarityEvaluator):
    """:class:`~sentencekit.evaluation.EmbeddingSimilarityEvaluator` for a SparseEncoder.

    Correlates the similarities of sparse embeddings of sentence pairs with gold scores (STS), and reports
    how sparse the embeddings were.

    ============================  ==========================================
    input                         meaning
    ============================  ==========================================
    ``sentences1[i]``             first sentence of pair ``i``
    ``sentences2[i]``             second sentence of pair ``i``
    ``scores[i]``                 gold similarity of pair ``i`` (e.g. 0-5)
    ============================  ==========================================

    Returned keys: those of the dense evaluator (``pearson_dot``, ``spearman_dot``, ... for a SPLADE model,
    whose similarity is ``"dot"``), plus ``active_dims`` (mean non-zero dimensions per embedding) and
    ``sparsity_ratio`` (mean share of zero dimensions), averaged over the two columns. Both also end the CSV
    row. ``primary_metric`` is the dense evaluator's (``spearman_dot`` by default).

    Args:
        sentences1: First sentence of each pair.
        sentences2: Second sentence of each pair.
        scores: Gold similarity of each pair.
        batch_size: Encoding batch size.
        main_similarity: The similarity whose Spearman is the primary metric.
        similarity_fn_names: Similarities to report; ``None`` uses ``main_similarity`` or the model's.
        name: Prefix of the returned keys and part of the CSV file name.
        show_progress_bar: Show the encoding progress bar.
        write_csv: Append a row to ``similarity_evaluation[_{name}]_results.csv`` when called with an
            ``output_path``.
        max_active_dims: Keep this many non-zero dimensions per embedding; ``None`` keeps the model's setting.

    Example:
        ::

            from sentencekit.readers import read_sts_csv
            from sentencekit.sparse_encoder import SparseEncoder
            from sentencekit.sparse_encoder.evaluation import SparseEmbeddingSimilarityEvaluator

            data = read_sts_csv("stsb-en-test.csv")
            evaluator = SparseEmbeddingSimilarityEvaluator(*data, name="sts_test", max_active_dims=64)
            results = evaluator(SparseEncoder("naver/splade-v3"))
            results["sts_test_spearman_dot"], results["sts_test_active_dims"]  # <= 64 active dims

    """

    def __init__(
        self,
        sentences1: Sequence[str],
        sentences2: Sequence[str],
        scores: Sequence[float],
        batch_size: int = 16,
        main_similarity: str | SimilarityFunction | None = None,
        similarity_fn_names: Sequence[str] | None = None,
        name: str = "",
        show_progress_bar: bool = False,
        write_csv: bool = True,
        max_active_dims: int | None = None,
    ) -> None:
        self.init_sparsity(max_active_dims)
        super().__init__(
            sentences1,
            sentences2,
            scores,
            batch_size=batch_size,
            main_similarity=main_similarity,
            similarity_fn_names=similarity_fn_names,
            name=name,
            show_progress_bar=show_progress_bar,
            write_csv=write_csv,
        )
