"""Hybrid search: fuse a dense and a sparse ranking with Reciprocal Rank Fusion and measure all three."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sentencekit._optional import require
from sentencekit.evaluation.base import SentenceEvaluator, csv_file_name, evaluation_context
from sentencekit.evaluation.cross_encoder_reranking import ordered_list_metrics

__all__ = ["ReciprocalRankFusionEvaluator"]

logger = logging.getLogger(__name__)

Sample = Mapping[str, Any]
# the relevant documents and the query text are read from the dense samples
_REQUIRED_KEYS = {
    "dense": ("query_id", "query", "positive", "documents"),
    "sparse": ("query_id", "documents"),
}


class ReciprocalRankFusionEvaluator(SentenceEvaluator):
    """Combine a dense and a sparse retriever's rankings by Reciprocal Rank Fusion and score all three.

    Both sample lists hold one dict per query, in the same order::

        {"query_id": "q1", "query": "what causes rain?",
         "positive": ["Rain forms when ..."],            # the relevant documents (one text or a list)
         "documents": ["doc ranked 1st", "doc ranked 2nd", ...]}   # the retriever's ranking, best first

    A document's fused score is ``sum over the retrievers that returned it of 1 / (rrf_k + rank)`` (ranks
    from 1); the fused list is ordered by that score, ties keeping the dense-then-sparse order of first
    appearance. The query's relevant documents are those of the dense sample.

    For each of the dense, the sparse and the fused ranking it reports ``map`` (average precision over the
    whole list), ``mrr@{at_k}`` and ``ndcg@{at_k}``, averaged over queries. Relevant documents that a
    ranking misses still count: nDCG is divided by the ideal gain of all of them, and AP is scaled by the
    share it found. Nothing is encoded: the evaluator is called without a model.

    Returned keys: ``dense_map``, ``dense_mrr@k``, ``dense_ndcg@k``, ``sparse_*`` likewise, and the fused
    ``map``, ``mrr@k`` and ``ndcg@k``; ``primary_metric`` is ``ndcg@{at_k}``.

    Args:
        dense_samples: The dense retriever's ranking per query.
        sparse_samples: The sparse retriever's ranking of the same queries, in the same order.
        at_k: Cut-off for MRR and nDCG (MAP uses the whole list).
        rrf_k: The constant of the fusion formula; larger values flatten the advantage of top ranks.
        name: Prefix of the returned keys and part of the file names.
        batch_size: Kept for the reference's signature; nothing is encoded.
        show_progress_bar: Kept for the reference's signature.
        write_csv: Append a row to ``ReciprocalRankFusion_evaluation[_{name}]_results.csv`` when called with
            an ``output_path``.
        write_predictions: Also write the fused rankings to
            ``ReciprocalRankFusion_evaluation[_{name}]_predictions.jsonl`` (overwritten each call).

    Raises:
        ValueError: When the lists are empty or differ in length, a sample lacks a key, or the query ids do
            not line up.

    Example:
        ::

            from sentencekit.sparse_encoder.evaluation import ReciprocalRankFusionEvaluator

            dense = [{"query_id": "q1", "query": "rain", "positive": ["d2"], "documents": ["d1", "d2"]}]
            sparse = [{"query_id": "q1", "query": "rain", "positive": ["d2"], "documents": ["d2", "d3"]}]
            evaluator = ReciprocalRankFusionEvaluator(dense, sparse, at_k=10)
            evaluator()["ndcg@10"]  # the fused ranking puts d2 first: 1.0

    """

    def __init__(
        self,
        dense_samples: Sequence[Sample],
        sparse_samples: Sequence[Sample],
        at_k: int = 10,
        rrf_k: int = 60,
        name: str = "",
        batch_size: int = 32,
        show_progress_bar: bool = False,
        write_csv: bool = True,
        write_predictions: bool = False,
    ) -> None:
        super().__init__(name, batch_size=batch_size, show_progress_bar=show_progress_bar)
        if len(dense_samples) != len(sparse_samples):
            raise ValueError(
                f"dense_samples and sparse_samples must have the same length (one entry per query, in the "
                f"same order), got {len(dense_samples)} and {len(sparse_samples)}"
            )
        if not dense_samples:
            raise ValueError(f"{type(self).__name__} needs at least one query's pair of rankings")
        for index, (dense, sparse) in enumerate(zip(dense_samples, sparse_samples, strict=True)):
            for side, sample in (("dense", dense), ("sparse", sparse)):
                missing = [key for key in _REQUIRED_KEYS[side] if key not in sample]
                if missing:
                    raise ValueError(
                        f"{side}_samples[{index}] lacks {missing}; each needs {list(_REQUIRED_KEYS[side])}"
                    )
            if dense["query_id"] != sparse["query_id"]:
                raise ValueError(
                    f"query ids differ at index {index}: {dense['query_id']!r} (dense) vs "
                    f"{sparse['query_id']!r} (sparse); give both lists in the same query order"
                )
        if at_k < 1:
            raise ValueError(f"at_k must be >= 1, got {at_k}")
        self.dense_samples = list(dense_samples)
        self.sparse_samples = list(sparse_samples)
        self.at_k = at_k
        self.rrf_k = rrf_k
        self.write_csv = write_csv
        self.write_predictions = write_predictions
        self.csv_file = csv_file_name("ReciprocalRankFusion_evaluation", name)
        self.predictions_file = csv_file_name("ReciprocalRankFusion_evaluation", name, "_predictions.jsonl")
        self.csv_headers = ["epoch", "steps"] + [
            f"{side}_{metric}"
            for side in ("Dense", "Sparse", "Fusion")
            for metric in ("MAP", f"MRR@{at_k}", f"NDCG@{at_k}")
        ]
        self.primary_metric = f"ndcg@{at_k}"

    def __call__(  # type: ignore[override]  # the reference's signature: fused rankings need no model
        self, output_path: str | Path | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        """Fuse every query's two rankings and return the mean metrics of dense, sparse and fused lists.

        Raises:
            TypeError: When given a model in place of ``output_path`` (this evaluator takes none).
        """
        if output_path is not None and not isinstance(output_path, (str, Path)):
            raise TypeError(
                f"{type(self).__name__} scores the rankings it was given and takes no model: call it as "
                f"evaluator() or evaluator(output_path=...), got {type(output_path).__name__}"
            )
        metrics_module = require("sklearn.metrics", extra="eval", purpose=type(self).__name__)
        logger.info(
            "%s: fusing %d queries of the %s dataset%s",
            type(self).__name__,
            len(self.dense_samples),
            self.name or "unnamed",
            evaluation_context(epoch, steps),
        )
        per_query: dict[str, list[tuple[float, float, float]]] = {"dense": [], "sparse": [], "fusion": []}
        predictions = []  # the fused rankings, for write_predictions
        for dense, sparse in zip(self.dense_samples, self.sparse_samples, strict=True):
            positives = [dense["positive"]] if isinstance(dense["positive"], str) else list(dense["positive"])
            fused = self.fuse(dense["documents"], sparse["documents"])
            for side, documents in (
                ("dense", dense["documents"]),
                ("sparse", sparse["documents"]),
                ("fusion", fused),
            ):
                per_query[side].append(
                    ordered_list_metrics(list(documents), positives, self.at_k, metrics_module)
                )
            predictions.append(
                {
                    "query_id": dense["query_id"],
                    "query": dense["query"],
                    "positive": positives,
                    "documents": fused,
                }
            )

        metrics: dict[str, float] = {}
        for side, prefix in (("dense", "dense_"), ("sparse", "sparse_"), ("fusion", "")):
            mrr, ndcg, average_precision = (float(value) for value in np.mean(per_query[side], axis=0))
            metrics |= {
                f"{prefix}map": average_precision,
                f"{prefix}mrr@{self.at_k}": mrr,
                f"{prefix}ndcg@{self.at_k}": ndcg,
            }
        logger.info("%s", ", ".join(f"{key} {value:.4f}" for key, value in metrics.items()))

        if output_path is not None:
            if self.write_csv:
                self.write_csv_row(
                    output_path, self.csv_file, self.csv_headers, [epoch, steps, *metrics.values()]
                )
            if self.write_predictions:
                path = Path(output_path) / self.predictions_file
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("".join(json.dumps(line) + "\n" for line in predictions), encoding="utf-8")
        self.primary_metric = f"ndcg@{self.at_k}"
        return self.prefix_name_to_metrics(metrics, self.name)

    def fuse(self, dense_documents: Sequence[str], sparse_documents: Sequence[str]) -> list[str]:
        """The documents of both rankings ordered by fused score, ties in dense-then-sparse order."""
        scores: dict[str, float] = {}
        for documents in (dense_documents, sparse_documents):
            ranks = {
                document: rank for rank, document in enumerate(documents, start=1)
            }  # a repeat: its last rank
            for document, rank in ranks.items():
                scores[document] = scores.get(document, 0.0) + 1 / (self.rrf_k + rank)
        return sorted(scores, key=scores.__getitem__, reverse=True)

    def get_config_dict(self) -> dict[str, Any]:
        """``at_k``, ``rrf_k`` and ``write_predictions``."""
        return {"at_k": self.at_k, "rrf_k": self.rrf_k, "write_predictions": self.write_predictions}
