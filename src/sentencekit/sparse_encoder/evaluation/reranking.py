"""Re-ranking each query's candidates with sparse embeddings, with how sparse queries and documents were."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from torch import Tensor

from sentencekit.evaluation._embeddings import Role, split_rows
from sentencekit.evaluation.reranking import RerankingEvaluator, Sample
from sentencekit.sparse_encoder.evaluation.base import SparseEvaluatorMixin

__all__ = ["SparseRerankingEvaluator"]

logger = logging.getLogger(__name__)


class SparseRerankingEvaluator(SparseEvaluatorMixin, RerankingEvaluator):
    """:class:`~sentencekit.evaluation.RerankingEvaluator` for a SparseEncoder.

    Each sample is ``{"query": str, "positive": str | list[str], "negative": str | list[str]}``; its
    candidates (positives and negatives) are ranked by similarity to its query, by default the model's own
    similarity (``"dot"`` for SPLADE). Samples without a positive or a negative are dropped.

    Returned keys: ``map``, ``mrr@{at_k}``, ``ndcg@{at_k}`` (the primary metric), plus ``query_`` and
    ``corpus_`` ``active_dims`` and ``sparsity_ratio``, which also end the CSV row.

    Args:
        samples: The samples (a dict of samples is read as its values).
        at_k: Cut-off for MRR and nDCG.
        name: Prefix of the returned keys and part of the CSV file name.
        write_csv: Append a row to ``RerankingEvaluator[_{name}]_results_@{at_k}.csv`` when called with an
            ``output_path``.
        similarity_fct: ``(queries, docs) -> (n_queries, n_docs)`` scores; ``None`` uses the model's.
        batch_size: Encoding batch size.
        show_progress_bar: Show the encoding progress bar.
        use_batched_encoding: The candidates are always encoded together; ``False`` only changes how
            ``corpus_*`` statistics are averaged: per sample (each sample's mean counting once), as the
            reference does when it encodes sample by sample.
        max_active_dims: Keep this many non-zero dimensions per embedding; ``None`` keeps the model's setting.
        mrr_at_k: Deprecated name of ``at_k``; wins over it when given.

    Example:
        ::

            from sentencekit.sparse_encoder.evaluation import SparseRerankingEvaluator

            samples = [{"query": "capital of France", "positive": ["Paris is the capital of France."],
                        "negative": ["Berlin is in Germany.", "France borders Spain."]}]
            SparseRerankingEvaluator(samples, name="toy")(model)["toy_ndcg@10"]

    """

    def __init__(
        self,
        samples: Sequence[Sample] | Mapping[Any, Sample],
        at_k: int = 10,
        name: str = "",
        write_csv: bool = True,
        similarity_fct: Callable[[Tensor, Tensor], Tensor] | None = None,
        batch_size: int = 64,
        show_progress_bar: bool = False,
        use_batched_encoding: bool = True,
        max_active_dims: int | None = None,
        mrr_at_k: int | None = None,
    ) -> None:
        if mrr_at_k is not None:
            logger.warning("mrr_at_k is deprecated; pass at_k=%d instead.", mrr_at_k)
            at_k = mrr_at_k
        self.init_sparsity(max_active_dims)
        self.use_batched_encoding = use_batched_encoding
        super().__init__(
            samples,
            at_k=at_k,
            name=name,
            write_csv=write_csv,
            similarity_fct=similarity_fct,
            batch_size=batch_size,
            show_progress_bar=show_progress_bar,
        )

    def record_sparsity(
        self, model: Any, text_lists: Sequence[Sequence[Any]], embeddings: Sequence[Tensor], role: Role | None
    ) -> None:
        """``query_*`` over all queries; ``corpus_*`` over all candidates, or per sample if not batched."""
        (rows,) = embeddings
        if role == "query" or self.use_batched_encoding:
            self.add_sparsity(model.sparsity(rows), "query_" if role == "query" else "corpus_")
            return
        sizes = [len(sample["positive"]) + len(sample["negative"]) for sample in self.samples]
        for candidates in split_rows(rows, sizes):
            self.add_sparsity(model.sparsity(candidates), "corpus_")
