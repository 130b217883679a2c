"""Cross-encoder graded similarity: Pearson and Spearman correlation of predicted and gold scores."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from sentencekit._optional import require
from sentencekit.evaluation.base import SentenceEvaluator, append_csv_row, csv_file_name

__all__ = ["CrossEncoderCorrelationEvaluator"]

logger = logging.getLogger(__name__)


class CrossEncoderCorrelationEvaluator(SentenceEvaluator):
    """Correlate a one-label cross-encoder's pair scores with gold similarity scores (STS benchmarks).

    Inputs: text pairs and one float per pair (any scale: correlation ignores it). Returns ``pearson`` and
    ``spearman``; ``primary_metric`` is ``spearman``. The names, arguments and keys are the reference's.
    For labelled pairs use :class:`CrossEncoderClassificationEvaluator`; for the bi-encoder equivalent,
    :class:`EmbeddingSimilarityEvaluator`.

    Args:
        sentence_pairs: ``(first, second)`` text pairs.
        scores: Gold similarity per pair.
        name: Prefix of the returned keys and part of the CSV file name.
        prompt_name: Passed to the model's ``predict``.
        batch_size: Pairs per forward pass.
        show_progress_bar: Show the model's progress bar.
        write_csv: Append a row to ``CrossEncoderCorrelationEvaluator[_{name}]_results.csv`` when called with
            an ``output_path``.

    Example:
        ::

            from sentencekit.evaluation import CrossEncoderCorrelationEvaluator
            from sentencekit.readers import read_sts_csv

            s1, s2, gold = read_sts_csv("stsb-en-dev.csv")
            evaluator = CrossEncoderCorrelationEvaluator(list(zip(s1, s2)), gold, name="sts-dev")
            evaluator(cross_encoder)["sts-dev_spearman"]

    """

    def __init__(
        self,
        sentence_pairs: Sequence[Sequence[str]],
        scores: Sequence[float],
        name: str = "",
        prompt_name: str | None = None,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        write_csv: bool = True,
    ) -> None:
        super().__init__(name, batch_size=batch_size, show_progress_bar=bool(show_progress_bar))
        if len(sentence_pairs) != len(scores):
            raise ValueError(
                f"sentence_pairs and scores must have the same length, got {len(sentence_pairs)} and "
                f"{len(scores)}."
            )
        self.sentence_pairs = [tuple(pair) for pair in sentence_pairs]
        self.scores = list(scores)
        self.prompt_name = prompt_name
        self.write_csv = write_csv
        self.csv_file = csv_file_name("CrossEncoderCorrelationEvaluator", name)
        self.csv_headers = ["epoch", "steps", "Pearson_Correlation", "Spearman_Correlation"]
        self.primary_metric = "spearman"

    def __call__(
        self, model: Any, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        """Score the pairs with ``model`` and return Pearson and Spearman correlation with the gold scores."""
        stats = require("scipy.stats", extra="eval", purpose=type(self).__name__)
        self.log_start(epoch, steps, f" ({len(self.sentence_pairs)} pairs)")
        predicted = np.asarray(
            model.predict(
                self.sentence_pairs,
                batch_size=self.batch_size,
                show_progress_bar=self.show_progress_bar,
                prompt_name=self.prompt_name,
                convert_to_numpy=True,
            )
        )
        pearson = float(stats.pearsonr(self.scores, predicted)[0])
        spearman = float(stats.spearmanr(self.scores, predicted)[0])
        logger.info("Correlation: Pearson %.4f, Spearman %.4f", pearson, spearman)
        if output_path is not None and self.write_csv:
            append_csv_row(output_path, self.csv_file, self.csv_headers, [epoch, steps, pearson, spearman])
        return self.prefix_name_to_metrics({"pearson": pearson, "spearman": spearman}, self.name)
