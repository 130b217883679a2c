"""Cross-encoder pair classification: a score against 0/1 labels, or a predicted class against classes."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from sentencekit._optional import require
from sentencekit.evaluation.base import SentenceEvaluator, append_csv_row, csv_file_name
from sentencekit.evaluation.binary_classification import classification_metrics

__all__ = ["CrossEncoderClassificationEvaluator"]

logger = logging.getLogger(__name__)

_BINARY_HEADERS = [
    "Accuracy",
    "Accuracy_Threshold",
    "F1",
    "F1_Threshold",
    "Precision",
    "Recall",
    "Average_Precision",
]
_MULTICLASS_HEADERS = ["Macro_F1", "Micro_F1", "Weighted_F1"]


class CrossEncoderClassificationEvaluator(SentenceEvaluator):
    """Score labelled pairs with a cross-encoder and report how well the scores classify them.

    =================  =====================================================  ========================
    model              metrics                                                primary metric
    =================  =====================================================  ========================
    one label          ``accuracy``, ``accuracy_threshold``, ``f1``,          ``average_precision``
                       ``f1_threshold``, ``precision``, ``recall``,
                       ``average_precision`` (labels are 0/1; the best
                       threshold on the score is searched)
    several labels     ``f1_macro``, ``f1_micro``, ``f1_weighted`` (the       ``f1_macro``
                       predicted class is the highest score)
    =================  =====================================================  ========================

    Use it for duplicate-question or paraphrase detection (one label) and NLI (three labels). For graded
    similarity use :class:`CrossEncoderCorrelationEvaluator`; for ranking candidates,
    :class:`CrossEncoderRerankingEvaluator`. The names, arguments and keys are the reference's.

    Args:
        sentence_pairs: ``(first, second)`` text pairs.
        labels: One integer label per pair (0/1 for a one-label model, a class index otherwise).
        name: Prefix of the returned keys and part of the CSV file name.
        prompt_name: Passed to the model's ``predict``.
        batch_size: Pairs per forward pass.
        show_progress_bar: Show the model's progress bar.
        write_csv: Append a row to ``CrossEncoderClassificationEvaluator[_{name}]_results.csv`` when called
            with an ``output_path``.

    Example:
        ::

            from sentencekit.evaluation import CrossEncoderClassificationEvaluator

            pairs = [("A man eats.", "Someone is eating."), ("A man eats.", "A cat sleeps.")]
            evaluator = CrossEncoderClassificationEvaluator(pairs, [1, 0], name="toy")
            evaluator(cross_encoder)["toy_average_precision"]

    """

    def __init__(
        self,
        sentence_pairs: Sequence[Sequence[str]],
        labels: Sequence[int],
        *,
        name: str = "",
        prompt_name: str | None = None,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        write_csv: bool = True,
    ) -> None:
        super().__init__(name, batch_size=batch_size, show_progress_bar=bool(show_progress_bar))
        if len(sentence_pairs) != len(labels):
            raise ValueError(
                f"sentence_pairs and labels must have the same length, got {len(sentence_pairs)} and "
                f"{len(labels)}."
            )
        self.sentence_pairs = [tuple(pair) for pair in sentence_pairs]
        self.labels = np.asarray(labels)
        self.prompt_name = prompt_name
        self.write_csv = write_csv
        self.csv_file = csv_file_name("CrossEncoderClassificationEvaluator", name)
        self.csv_headers = ["epoch", "steps", *_BINARY_HEADERS]
        self.primary_metric = "average_precision"

    def __call__(
        self, model: Any, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        """Score the pairs with ``model`` (a cross-encoder); the metrics depend on its number of labels."""
        self.log_start(epoch, steps, f" ({len(self.sentence_pairs)} pairs)")
        scores = np.asarray(
            model.predict(
                self.sentence_pairs,
                batch_size=self.batch_size,
                show_progress_bar=self.show_progress_bar,
                prompt_name=self.prompt_name,
                convert_to_numpy=True,
            )
        )
        if model.num_labels == 1:
            found = classification_metrics(scores.reshape(-1), self.labels.astype(bool), is_distance=False)
            metrics: dict[str, float] = {
                "accuracy": found["accuracy"],
                "accuracy_threshold": found["accuracy_threshold"],
                "f1": found["f1"],
                "f1_threshold": found["f1_threshold"],
                "precision": found["precision"],
                "recall": found["recall"],
                "average_precision": found["ap"],
            }
            self.csv_headers = ["epoch", "steps", *_BINARY_HEADERS]
            self.primary_metric = "average_precision"
        else:
            f1_score = require("sklearn.metrics", extra="eval", purpose=type(self).__name__).f1_score
            predicted = np.argmax(scores, axis=1)
            metrics = {
                f"f1_{average}": float(f1_score(self.labels, predicted, average=average))
                for average in ("macro", "micro", "weighted")
            }
            self.csv_headers = ["epoch", "steps", *_MULTICLASS_HEADERS]
            self.primary_metric = "f1_macro"
        logger.info("%s", ", ".join(f"{key}: {value:.4f}" for key, value in metrics.items()))
        if output_path is not None and self.write_csv:
            append_csv_row(output_path, self.csv_file, self.csv_headers, [epoch, steps, *metrics.values()])
        return self.prefix_name_to_metrics(metrics, self.name)
