"""Pair classification: how well one similarity threshold tells duplicates or paraphrases from other pairs."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from sentencekit.evaluation._embeddings import (
    check_similarity_names,
    model_similarity_name,
    pairwise_similarity,
)
from sentencekit.evaluation._thresholds import RankedSweep, midpoint_thresholds
from sentencekit.evaluation.base import (
    SentenceEvaluator,
    csv_file_name,
    require_columns,
)

__all__ = ["BinaryClassificationEvaluator"]

logger = logging.getLogger(__name__)

_METRICS = ("accuracy", "accuracy_threshold", "f1", "f1_threshold", "precision", "recall", "ap", "mcc")
_CSV_METRICS = ("accuracy", "accuracy_threshold", "f1", "precision", "recall", "f1_threshold", "ap", "mcc")
_DISTANCES = ("euclidean", "manhattan")


class BinaryClassificationEvaluator(SentenceEvaluator):
    """Score labelled sentence pairs by similarity and find the threshold that best separates the labels.

    For each similarity function the pairs are ranked, and the evaluator reports the best accuracy and the
    best F1 any threshold reaches (with those thresholds, and the precision and recall at the best F1), the
    average precision of the ranking (threshold-free), and the Matthews correlation at the best-F1 threshold.

    ============================  =======================================
    input                         meaning
    ============================  =======================================
    ``sentences1[i]``             first text of pair ``i``
    ``sentences2[i]``             second text of pair ``i``
    ``labels[i]``                 1 if the pair is similar, else 0
    ============================  =======================================

    For ``"euclidean"`` and ``"manhattan"`` the thresholds are distances (smaller is more similar). Use it
    for duplicate-question detection (Quora), paraphrase identification (MRPC) or any 0/1 pair labels; for
    graded scores use :class:`EmbeddingSimilarityEvaluator`.

    Returned keys: ``{fn}_{metric}`` for metric in ``accuracy, accuracy_threshold, f1, f1_threshold,
    precision, recall, ap, mcc``, plus ``max_{metric}`` over functions when there are several.
    ``primary_metric`` is ``{fn}_ap`` (one function) or ``max_ap``.

    Args:
        sentences1: First text of each pair.
        sentences2: Second text of each pair.
        labels: 0 or 1 per pair.
        name: Prefix of the returned keys and part of the CSV file name.
        batch_size: Encoding batch size.
        show_progress_bar: Show the encoding progress bar.
        write_csv: Append a row to ``binary_classification_evaluation[_{name}]_results.csv`` when called with
            an ``output_path``.
        truncate_dim: Keep only the first ``truncate_dim`` embedding dimensions.
        similarity_fn_names: Similarities to evaluate; ``None`` uses the model's ``similarity_fn_name``.

    Example:
        ::

            from sentencekit.evaluation import BinaryClassificationEvaluator
            from sentencekit.readers import read_quora_duplicates

            pairs = read_quora_duplicates("quora_duplicates/test.tsv")
            evaluator = BinaryClassificationEvaluator(*pairs, name="quora")
            evaluator(model)["quora_cosine_ap"]

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
        truncate_dim: int | None = None,
        similarity_fn_names: Sequence[str] | None = None,
    ) -> None:
        super().__init__(
            name, batch_size=batch_size, show_progress_bar=show_progress_bar, truncate_dim=truncate_dim
        )
        require_columns(
            "BinaryClassificationEvaluator",
            "labelled pair",
            sentences1=sentences1,
            sentences2=sentences2,
            labels=labels,
        )
        bad = sorted({label for label in labels if label not in (0, 1)}, key=str)
        if bad:
            raise ValueError(f"labels must be 0 or 1, got {bad[:5]}")
        self.sentences1 = list(sentences1)
        self.sentences2 = list(sentences2)
        self.labels = [int(label) for label in labels]
        self.write_csv = write_csv
        self.similarity_fn_names = check_similarity_names(similarity_fn_names or [])
        self.csv_file = csv_file_name("binary_classification_evaluation", name)

    @property
    def csv_headers(self) -> list[str]:
        """Columns of the CSV file: ``epoch, steps`` then eight metrics per similarity function."""
        return ["epoch", "steps"] + [f"{fn}_{m}" for fn in self.similarity_fn_names for m in _CSV_METRICS]

    def __call__(
        self, model: Any, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        """Encode the pairs, sweep thresholds per similarity function and return the metrics."""
        self.log_start(epoch, steps)
        if not self.similarity_fn_names:
            self.similarity_fn_names = [model_similarity_name(model)]
        embeddings1, embeddings2 = self.embed(
            model,
            self.sentences1,
            self.sentences2,
        )
        labels = np.asarray(self.labels, dtype=bool)
        per_fn: dict[str, dict[str, float]] = {}
        for fn_name in self.similarity_fn_names:
            scores = pairwise_similarity(fn_name)(embeddings1, embeddings2).detach().cpu().float().numpy()
            is_distance = fn_name in _DISTANCES
            if is_distance:  # the pairwise functions negate distances; thresholds are reported as distances
                scores = -scores
            per_fn[fn_name] = classification_metrics(scores, labels, is_distance=is_distance)
            logger.info(
                "%s: accuracy %.2f%% (threshold %.4f), F1 %.2f%% (threshold %.4f), AP %.2f%%",
                fn_name,
                100 * per_fn[fn_name]["accuracy"],
                per_fn[fn_name]["accuracy_threshold"],
                100 * per_fn[fn_name]["f1"],
                per_fn[fn_name]["f1_threshold"],
                100 * per_fn[fn_name]["ap"],
            )

        if output_path is not None and self.write_csv:
            row = [per_fn[fn][m] for fn in self.similarity_fn_names for m in _CSV_METRICS]
            self.write_csv_row(output_path, self.csv_file, self.csv_headers, [epoch, steps, *row])

        metrics = {f"{fn}_{m}": value for fn, values in per_fn.items() for m, value in values.items()}
        if len(per_fn) > 1:
            metrics.update({f"max_{m}": max(values[m] for values in per_fn.values()) for m in _METRICS})
            self.primary_metric = "max_ap"
        else:
            self.primary_metric = f"{self.similarity_fn_names[0]}_ap"
        return self.prefix_name_to_metrics(metrics, self.name)

    def get_config_dict(self) -> dict[str, Any]:
        """``truncate_dim`` when set."""
        return {} if self.truncate_dim is None else {"truncate_dim": self.truncate_dim}


def classification_metrics(scores: np.ndarray, labels: np.ndarray, is_distance: bool) -> dict[str, float]:
    """Best-threshold accuracy and F1, average precision and MCC of ``scores`` against 0/1 ``labels``.

    Args:
        scores: One score per pair; higher means more similar unless ``is_distance``.
        labels: One boolean per pair.
        is_distance: ``scores`` are distances (lower means more similar); thresholds are then distances too.

    """
    sign = -1 if is_distance else 1
    oriented = sign * scores  # higher = more similar from here on
    sweep = RankedSweep.from_scores(oriented, labels)
    thresholds = midpoint_thresholds(sweep.scores, sweep.ends)

    accuracy, cut = sweep.best_accuracy()
    if cut >= 0:
        accuracy_threshold = thresholds[cut]
    elif len(sweep.scores):  # nothing called positive: just above the top score
        accuracy_threshold = np.nextafter(sweep.scores[0], np.inf, dtype=sweep.scores.dtype)
    else:
        accuracy_threshold = -sign  # the reference's placeholder when there is no data

    f1, precision, recall, cut = sweep.best_f1()
    f1_threshold = thresholds[cut] if cut >= 0 else 0.0
    predicted = oriented >= f1_threshold
    return {
        "accuracy": accuracy,
        "accuracy_threshold": float(sign * accuracy_threshold),
        "f1": f1,
        "f1_threshold": float(sign * f1_threshold),
        "precision": precision,
        "recall": recall,
        "ap": sweep.average_precision(),
        "mcc": matthews_correlation(labels, predicted),
    }


def matthews_correlation(labels: np.ndarray, predicted: np.ndarray) -> float:
    """Matthews correlation coefficient of two boolean arrays (0 when a confusion-matrix margin is empty)."""
    tp = int(np.sum(labels & predicted))
    tn = int(np.sum(~labels & ~predicted))
    fp = int(np.sum(~labels & predicted))
    fn = int(np.sum(labels & ~predicted))
    denominator = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return (tp * tn - fp * fn) / denominator if denominator else 0.0
