"""Semantic textual similarity: how well embedding similarity ranks sentence pairs against gold scores."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sentencekit._optional import require
from sentencekit.evaluation._embeddings import (
    check_similarity_names,
    model_similarity_name,
    pairwise_similarity,
)
from sentencekit.evaluation.base import (
    SentenceEvaluator,
    csv_file_name,
    require_columns,
)
from sentencekit.types import SimilarityFunction

__all__ = ["EmbeddingSimilarityEvaluator"]

logger = logging.getLogger(__name__)


class EmbeddingSimilarityEvaluator(SentenceEvaluator):
    """Correlate embedding similarities of sentence pairs with human similarity scores (STS).

    For each pair the model's embeddings are compared with one or more similarity functions, and the Pearson
    and Spearman correlations between those similarities and the gold ``scores`` are reported. Spearman (rank)
    correlation is the usual headline number; the scale of ``scores`` does not matter.

    ============================  ==========================================
    input                         meaning
    ============================  ==========================================
    ``sentences1[i]``             first sentence of pair ``i``
    ``sentences2[i]``             second sentence of pair ``i``
    ``scores[i]``                 gold similarity of pair ``i`` (e.g. 0-5)
    ============================  ==========================================

    Use it for STS-benchmark-style data and as a dev-set evaluator while training on similarity losses. For
    labels that are 0/1 (duplicate or not), use :class:`BinaryClassificationEvaluator` instead.

    Returned keys: ``pearson_{fn}`` and ``spearman_{fn}`` per similarity function, plus ``pearson_max`` and
    ``spearman_max`` when there are several. ``primary_metric`` is ``spearman_{main_similarity}``, else
    ``spearman_max`` (several functions) or ``spearman_{fn}`` (one).

    Args:
        sentences1: First sentence of each pair.
        sentences2: Second sentence of each pair.
        scores: Gold similarity of each pair.
        batch_size: Encoding batch size.
        main_similarity: The similarity whose Spearman is the primary metric; ``None`` picks as above.
        similarity_fn_names: Similarities to report (``"cosine"``, ``"dot"``, ``"euclidean"``,
            ``"manhattan"``); ``None`` uses ``main_similarity`` or else the model's ``similarity_fn_name``.
        name: Prefix of the returned keys and part of the CSV file name.
        show_progress_bar: Show the encoding progress bar.
        write_csv: Append a row to ``similarity_evaluation[_{name}][_{precision}]_results.csv`` when called
            with an ``output_path``.
        precision: Evaluate quantized embeddings (``"int8"``, ``"uint8"``, ``"binary"``, ``"ubinary"``);
            ``None`` for float32.
        truncate_dim: Keep only the first ``truncate_dim`` embedding dimensions (Matryoshka models).

    Example:
        ::

            from sentencekit import SentenceTransformer
            from sentencekit.evaluation import EmbeddingSimilarityEvaluator
            from sentencekit.readers import read_sts_csv

            data = read_sts_csv("stsb-en-test.csv")
            evaluator = EmbeddingSimilarityEvaluator(*data, name="sts_test")
            results = evaluator(SentenceTransformer("all-MiniLM-L6-v2"))
            results[evaluator.primary_metric]  # "sts_test_spearman_cosine" -> 0.82

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
        precision: str | None = None,
        truncate_dim: int | None = None,
    ) -> None:
        super().__init__(
            name, batch_size=batch_size, show_progress_bar=show_progress_bar, truncate_dim=truncate_dim
        )
        require_columns(
            "EmbeddingSimilarityEvaluator",
            "sentence pair",
            sentences1=sentences1,
            sentences2=sentences2,
            scores=scores,
        )
        self.sentences1 = list(sentences1)
        self.sentences2 = list(sentences2)
        self.scores = [float(score) for score in scores]
        self.main_similarity = SimilarityFunction.parse(main_similarity) if main_similarity else None
        names = list(similarity_fn_names or [])
        if not names and self.main_similarity is not None:
            names = [str(self.main_similarity)]
        self.similarity_fn_names = check_similarity_names(names)
        self.write_csv = write_csv
        self.precision = precision
        self.csv_file = csv_file_name("similarity_evaluation", "_".join(filter(None, [name, precision])))

    @property
    def csv_headers(self) -> list[str]:
        """Columns of the CSV file: ``epoch, steps`` then ``{fn}_pearson, {fn}_spearman`` per function."""
        return ["epoch", "steps"] + [
            f"{fn}_{m}" for fn in self.similarity_fn_names for m in ("pearson", "spearman")
        ]

    def __call__(
        self, model: Any, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        """Encode the pairs, correlate their similarities with the gold scores and return the metrics."""
        stats = require("scipy.stats", extra="eval", purpose="EmbeddingSimilarityEvaluator")
        self.log_start(epoch, steps)
        if not self.similarity_fn_names:
            self.similarity_fn_names = [model_similarity_name(model)]
        embeddings1, embeddings2 = self.embed(
            model,
            self.sentences1,
            self.sentences2,
            precision=self.precision,
        )

        metrics: dict[str, float] = {}
        for fn_name in self.similarity_fn_names:
            predicted = pairwise_similarity(fn_name)(embeddings1, embeddings2).detach().cpu().double().numpy()
            metrics[f"pearson_{fn_name}"] = float(stats.pearsonr(self.scores, predicted)[0])
            metrics[f"spearman_{fn_name}"] = float(stats.spearmanr(self.scores, predicted)[0])
            logger.info(
                "%s similarity: Pearson %.4f, Spearman %.4f",
                fn_name.capitalize(),
                metrics[f"pearson_{fn_name}"],
                metrics[f"spearman_{fn_name}"],
            )

        if output_path is not None and self.write_csv:
            row = [metrics[f"{m}_{fn}"] for fn in self.similarity_fn_names for m in ("pearson", "spearman")]
            self.write_csv_row(output_path, self.csv_file, self.csv_headers, [epoch, steps, *row])

        if len(self.similarity_fn_names) > 1:
            for measure in ("pearson", "spearman"):
                metrics[f"{measure}_max"] = max(metrics[f"{measure}_{fn}"] for fn in self.similarity_fn_names)
        if self.main_similarity is not None:
            self.primary_metric = f"spearman_{self.main_similarity}"
        elif len(self.similarity_fn_names) > 1:
            self.primary_metric = "spearman_max"
        else:
            self.primary_metric = f"spearman_{self.similarity_fn_names[0]}"
        return self.prefix_name_to_metrics(metrics, self.name)

    @property
    def description(self) -> str:
        """Label used in reports."""
        return "Semantic Similarity"

    def get_config_dict(self) -> dict[str, Any]:
        """``truncate_dim`` and ``precision`` when set."""
        return {
            key: value
            for key, value in (("truncate_dim", self.truncate_dim), ("precision", self.precision))
            if value is not None
        }
