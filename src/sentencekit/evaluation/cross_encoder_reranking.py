"""Cross-encoder reranking: order each query's candidate list and report MAP, MRR@k and nDCG@k."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from sentencekit._optional import require
from sentencekit.evaluation.base import SentenceEvaluator, append_csv_row

__all__ = ["CrossEncoderRerankingEvaluator", "candidate_metrics", "ordered_list_metrics"]

logger = logging.getLogger(__name__)

Sample = Mapping[str, Any]


class CrossEncoderRerankingEvaluator(SentenceEvaluator):
    """Score each query against its own candidates with a cross-encoder and measure the ranking.

    Each sample is a dict with ``"query"``, ``"positive"`` (a text or a list) and exactly one of:

    ===============  =========================================================================================
    key              meaning
    ===============  =========================================================================================
    ``negative``     irrelevant texts; candidates are the positives followed by these
    ``documents``    a first-stage ranking (best first, positives among them); the metrics of that ranking are
                     reported too, as ``base_map``, ``base_mrr@k``, ``base_ndcg@k``
    ===============  =========================================================================================

    With ``documents`` and ``always_rerank_positives=True`` (the default) positives the first stage missed
    are added to the candidates, so the best possible score is 1; with ``False`` only the retrieved documents
    are reranked, which measures the whole pipeline. A sample without any relevant candidate scores 0.

    Metrics, averaged over samples: ``map``, ``mrr@{at_k}``, ``ndcg@{at_k}`` (primary). Names, arguments
    and keys are the reference's. Related: :class:`RerankingEvaluator` (bi-encoders),
    :func:`sentencekit.cross_encoder.retrieve_and_rerank` (to build ``documents`` lists).

    Args:
        samples: The samples as above (a dict of samples is read as its values).
        at_k: Cut-off for MRR and nDCG.
        always_rerank_positives: See above; only matters for samples with ``documents``.
        name: Prefix of the returned keys and part of the CSV file name.
        prompt_name: Passed to the model's ``predict``.
        batch_size: Pairs per forward pass.
        show_progress_bar: Show the model's progress bar.
        write_csv: Append a row to ``CrossEncoderRerankingEvaluator[_{name}]_results_@{at_k}.csv`` when
            called with an ``output_path``.

    Example:
        ::

            from sentencekit.evaluation import CrossEncoderRerankingEvaluator

            samples = [{"query": "capital of France", "positive": ["Paris is the capital of France."],
                        "negative": ["Berlin is in Germany.", "France borders Spain."]}]
            CrossEncoderRerankingEvaluator(samples, at_k=10, name="toy")(cross_encoder)["toy_ndcg@10"]

    """

    def __init__(
        self,
        samples: Sequence[Sample] | Mapping[Any, Sample],
        at_k: int = 10,
        always_rerank_positives: bool = True,
        name: str = "",
        prompt_name: str | None = None,
        batch_size: int = 64,
        show_progress_bar: bool = False,
        write_csv: bool = True,
    ) -> None:
        super().__init__(name, batch_size=batch_size, show_progress_bar=show_progress_bar)
        if at_k < 1:
            raise ValueError(f"at_k must be >= 1, got {at_k}")
        self.samples = list(samples.values()) if isinstance(samples, Mapping) else list(samples)
        for number, sample in enumerate(self.samples):
            missing = [key for key in ("query", "positive") if key not in sample]
            if missing or (("negative" in sample) == ("documents" in sample)):
                raise ValueError(
                    f"Sample {number} needs 'query', 'positive' and exactly one of 'negative' and "
                    f"'documents'; it has {sorted(sample)}."
                )
        self.at_k = at_k
        self.always_rerank_positives = always_rerank_positives
        self.prompt_name = prompt_name
        self.write_csv = write_csv
        self.csv_file = (
            "CrossEncoderRerankingEvaluator" + (f"_{name}" if name else "") + f"_results_@{at_k}.csv"
        )
        self.csv_headers = ["epoch", "steps", "MAP", f"MRR@{at_k}", f"NDCG@{at_k}"]
        self.primary_metric = f"ndcg@{at_k}"

    def __call__(
        self, model: Any, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        """Score every sample's candidates in one ``predict`` call and return the ranking metrics."""
        metrics_module = require("sklearn.metrics", extra="eval", purpose=type(self).__name__)
        self.log_start(epoch, steps, f" ({len(self.samples)} queries)")
        pairs: list[tuple[str, str]] = []
        # per sample: relevance of its candidates and its number of positives, None when none is relevant
        plans: list[tuple[list[int], int] | None] = []
        base: list[tuple[float, float, float]] = []
        for sample in self.samples:
            positives = _as_list(sample["positive"])
            if "documents" in sample:
                documents = list(sample["documents"])
                base.append(ordered_list_metrics(documents, positives, self.at_k, metrics_module))
                if self.always_rerank_positives:
                    candidates = positives + [doc for doc in documents if doc not in positives]
                    relevant = [1] * len(positives) + [0] * (len(candidates) - len(positives))
                else:
                    candidates = documents
                    relevant = [int(doc in positives) for doc in documents]
            else:
                candidates = positives + _as_list(sample["negative"])
                relevant = [1] * len(positives) + [0] * (len(candidates) - len(positives))
            if not any(relevant):
                plans.append(None)
                continue
            plans.append((relevant, len(positives)))
            pairs.extend((sample["query"], doc) for doc in candidates)

        scores = np.asarray(
            model.predict(
                pairs,
                batch_size=self.batch_size,
                show_progress_bar=self.show_progress_bar,
                prompt_name=self.prompt_name,
                convert_to_numpy=True,
            )
            if pairs
            else []
        )
        per_sample, start = [], 0
        for plan in plans:
            if plan is None:
                per_sample.append((0.0, 0.0, 0.0))
                continue
            relevant, positives_count = plan
            chunk = scores[start : start + len(relevant)]
            per_sample.append(candidate_metrics(relevant, chunk, positives_count, self.at_k, metrics_module))
            start += len(relevant)

        means = np.mean(per_sample, axis=0) if per_sample else np.full(3, np.nan)
        metrics = {"map": means[2], f"mrr@{self.at_k}": means[0], f"ndcg@{self.at_k}": means[1]}
        if base:
            base_means = np.mean(base, axis=0)
            metrics |= {
                "base_map": base_means[2],
                f"base_mrr@{self.at_k}": base_means[0],
                f"base_ndcg@{self.at_k}": base_means[1],
            }
        logger.info("%s", ", ".join(f"{key}: {float(value):.4f}" for key, value in metrics.items()))
        if output_path is not None and self.write_csv:
            row = [epoch, steps, means[2], means[0], means[1]]
            append_csv_row(output_path, self.csv_file, self.csv_headers, row)
        self.primary_metric = f"ndcg@{self.at_k}"
        return self.prefix_name_to_metrics(metrics, self.name)

    def get_config_dict(self) -> dict[str, Any]:
        """``at_k`` and ``always_rerank_positives``."""
        return {"at_k": self.at_k, "always_rerank_positives": self.always_rerank_positives}


def ordered_list_metrics(
    documents: Sequence[str], positives: Sequence[str], at_k: int, metrics_module: Any
) -> tuple[float, float, float]:
    """(MRR@k, nDCG@k, average precision) of a ranking given best first, as :func:`candidate_metrics`."""
    relevant = [int(doc in positives) for doc in documents]
    ranks = np.arange(len(relevant), 0, -1, dtype=float)
    return candidate_metrics(relevant, ranks, len(positives), at_k, metrics_module)


def candidate_metrics(
    relevant: Sequence[int], scores: np.ndarray, positives_count: int, at_k: int, metrics_module: Any
) -> tuple[float, float, float]:
    """(MRR@k, nDCG@k, average precision) of one scored candidate list.

    Positives missing from the list still count: nDCG is divided by the ideal gain of all ``positives_count``
    positives (up to k), and AP is scaled by the share of positives present. A list without any relevant
    candidate scores 0.

    Args:
        relevant: 1 for each relevant candidate, else 0.
        scores: The candidates' scores (higher ranks first).
        positives_count: Positives of the query, including those missing from the list.
        at_k: Cut-off of MRR and nDCG.
        metrics_module: ``sklearn.metrics``.
    """
    truth = np.asarray(relevant)
    present = int(truth.sum())
    if present == 0:
        return 0.0, 0.0, 0.0
    positives_count = max(positives_count, present)
    order = np.argsort(-scores, kind="stable")[:at_k]
    hits = np.flatnonzero(truth[order])
    mrr = 1.0 / (hits[0] + 1) if len(hits) else 0.0
    # sklearn refuses a single document; it sits at rank 1
    gain = float(metrics_module.dcg_score([truth], [scores], k=at_k)) if len(truth) > 1 else float(truth[0])
    ideal = float(np.sum(1.0 / np.log2(np.arange(2, min(positives_count, at_k) + 2))))
    precision = float(metrics_module.average_precision_score(truth, scores))
    return mrr, gain / ideal, precision * present / positives_count


def _as_list(texts: str | Sequence[str]) -> list[str]:
    return [texts] if isinstance(texts, str) else list(texts)
