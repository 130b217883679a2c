"""Re-ranking: order a small candidate list per query so that the positives come first."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from sentencekit._optional import require
from sentencekit.evaluation._embeddings import model_similarity_name, similarity_matrix, split_rows
from sentencekit.evaluation.base import SentenceEvaluator
from sentencekit.similarity import cos_sim

__all__ = ["RerankingEvaluator"]

logger = logging.getLogger(__name__)

Sample = Mapping[str, Any]


class RerankingEvaluator(SentenceEvaluator):
    """Rank each query's own positives and negatives by similarity and report MAP, MRR@k and nDCG@k.

    Each sample is a dict::

        {"query": "what causes rain?",
         "positive": ["Rain forms when ..."],          # one text or a list
         "negative": ["The Nile is ...", "..."]}       # one text or a list

    Samples without a positive or without a negative are dropped. Unlike
    :class:`InformationRetrievalEvaluator`, every query is only compared with its own candidates, which makes
    it the right tool for hard-negative sets (e.g. AskUbuntu, SciDocs re-ranking, mined negatives).

    Metrics, averaged over samples: ``map`` (average precision of the full candidate ranking), ``mrr@k``
    (reciprocal rank of the first positive within the top ``at_k``) and ``ndcg@k``. ``primary_metric`` is
    ``ndcg@{at_k}``.

    Args:
        samples: The samples as above (a dict of samples is read as its values).
        at_k: Cut-off for MRR and nDCG.
        name: Prefix of the returned keys and part of the CSV file name.
        write_csv: Append a row to ``RerankingEvaluator[_{name}]_results_@{at_k}.csv`` when called with an
            ``output_path``.
        similarity_fct: ``(queries, docs) -> (n_queries, n_docs)`` scores; cosine by default, ``None`` for the
            model's own similarity function.
        batch_size: Encoding batch size.
        show_progress_bar: Show the encoding progress bar.
        truncate_dim: Keep only the first ``truncate_dim`` embedding dimensions.

    Example:
        ::

            from sentencekit.evaluation import RerankingEvaluator

            samples = [{"query": "capital of France", "positive": ["Paris is the capital of France."],
                        "negative": ["Berlin is in Germany.", "France borders Spain."]}]
            RerankingEvaluator(samples, at_k=10, name="toy")(model)["toy_ndcg@10"]

    """

    def __init__(
        self,
        samples: Sequence[Sample] | Mapping[Any, Sample],
        at_k: int = 10,
        name: str = "",
        write_csv: bool = True,
        similarity_fct: Callable[[Tensor, Tensor], Tensor] | None = cos_sim,
        batch_size: int = 64,
        show_progress_bar: bool = False,
        truncate_dim: int | None = None,
    ) -> None:
        super().__init__(
            name, batch_size=batch_size, show_progress_bar=show_progress_bar, truncate_dim=truncate_dim
        )
        if at_k < 1:
            raise ValueError(f"at_k must be >= 1, got {at_k}")
        raw = list(samples.values()) if isinstance(samples, Mapping) else list(samples)
        self.samples = [
            {
                "query": sample["query"],
                "positive": _as_list(sample["positive"]),
                "negative": _as_list(sample["negative"]),
            }
            for sample in raw
        ]
        self.samples = [sample for sample in self.samples if sample["positive"] and sample["negative"]]
        if not self.samples:
            raise ValueError(
                f"RerankingEvaluator needs samples with at least one positive and one negative; none of the "
                f"{len(raw)} given has both"
            )
        self.at_k = at_k
        self.write_csv = write_csv
        self.similarity_fct = similarity_fct
        self.csv_file = "RerankingEvaluator" + (f"_{name}" if name else "") + f"_results_@{at_k}.csv"
        self.csv_headers = ["epoch", "steps", "MAP", f"MRR@{at_k}", f"NDCG@{at_k}"]
        self.primary_metric = f"ndcg@{at_k}"

    def __call__(
        self, model: Any, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        """Encode queries and candidates, rank each sample's candidates and return the metrics."""
        metrics_module = require("sklearn.metrics", extra="eval", purpose="RerankingEvaluator")
        self.log_start(epoch, steps, f" ({len(self.samples)} samples)")
        (queries,) = self.embed(
            model,
            [sample["query"] for sample in self.samples],
            role="query",
        )
        (documents,) = self.embed(
            model,
            [doc for sample in self.samples for doc in sample["positive"] + sample["negative"]],
            role="document",
        )
        similarity = self.similarity_fct or similarity_matrix(model_similarity_name(model))
        sizes = [len(sample["positive"]) + len(sample["negative"]) for sample in self.samples]
        average_precisions, reciprocal_ranks, ndcgs = [], [], []
        for sample, query, candidates in zip(
            self.samples, split_rows(queries, [1] * len(sizes)), split_rows(documents, sizes), strict=True
        ):
            n_pos, n_neg = len(sample["positive"]), len(sample["negative"])
            scores = similarity(query, candidates).detach().reshape(-1).cpu()
            relevance = np.array([1] * n_pos + [0] * n_neg)
            top = torch.argsort(scores, descending=True)[: self.at_k].numpy()
            first = np.flatnonzero(relevance[top])
            reciprocal_ranks.append(1.0 / (first[0] + 1) if len(first) else 0.0)
            predicted = scores.double().numpy()
            ndcgs.append(metrics_module.ndcg_score([relevance], [predicted], k=self.at_k))
            average_precisions.append(metrics_module.average_precision_score(relevance, predicted))

        metrics = {
            "map": float(np.mean(average_precisions)) if average_precisions else float("nan"),
            f"mrr@{self.at_k}": float(np.mean(reciprocal_ranks)) if reciprocal_ranks else float("nan"),
            f"ndcg@{self.at_k}": float(np.mean(ndcgs)) if ndcgs else float("nan"),
        }
        logger.info(
            "MAP %.4f, MRR@%d %.4f, NDCG@%d %.4f",
            metrics["map"],
            self.at_k,
            metrics[f"mrr@{self.at_k}"],
            self.at_k,
            metrics[f"ndcg@{self.at_k}"],
        )
        if output_path is not None and self.write_csv:
            self.write_csv_row(
                output_path, self.csv_file, self.csv_headers, [epoch, steps, *metrics.values()]
            )
        self.primary_metric = f"ndcg@{self.at_k}"
        return self.prefix_name_to_metrics(metrics, self.name)

    def get_config_dict(self) -> dict[str, Any]:
        """``at_k``, and ``truncate_dim`` when set."""
        config: dict[str, Any] = {"at_k": self.at_k}
        if self.truncate_dim is not None:
            config["truncate_dim"] = self.truncate_dim
        return config


def _as_list(texts: str | Sequence[str]) -> list[str]:
    return [texts] if isinstance(texts, str) else list(texts)
