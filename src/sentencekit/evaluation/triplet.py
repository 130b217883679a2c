"""Triplet accuracy: how often an anchor is closer to its positive than to its negative."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

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

__all__ = ["TripletEvaluator"]

logger = logging.getLogger(__name__)

_ALL_FUNCTIONS = ("cosine", "dot", "manhattan", "euclidean")


class TripletEvaluator(SentenceEvaluator):
    """Fraction of (anchor, positive, negative) triplets where the positive scores above the negative.

    ======================  =========================================================
    input                   meaning
    ======================  =========================================================
    ``anchors[i]``          the reference text (encoded as a query)
    ``positives[i]``        a text that should be close to it (encoded as a document)
    ``negatives[i]``        a text that should be further away (encoded as a document)
    ======================  =========================================================

    A triplet counts as correct when ``sim(anchor, positive) > sim(anchor, negative) + margin``. Use it with
    NLI-derived triplets (premise, entailment, contradiction) or hard-negative mining output, and as the dev
    evaluator of triplet and multiple-negatives ranking losses.

    Returned keys: ``{fn}_accuracy`` per similarity function, plus ``max_accuracy`` when there are several.
    ``primary_metric`` is ``{main_similarity_function}_accuracy``, else ``max_accuracy`` or the only one.

    Args:
        anchors: Anchor texts.
        positives: Positive text per anchor.
        negatives: Negative text per anchor.
        main_similarity_function: The similarity whose accuracy is the primary metric.
        margin: Required gap between positive and negative score: one number for all functions, or a dict
            from function name to margin (missing names get 0). ``None`` means 0.
        name: Prefix of the returned keys and part of the CSV file name.
        batch_size: Encoding batch size.
        show_progress_bar: Show the encoding progress bar.
        write_csv: Append a row to ``triplet_evaluation[_{name}]_results.csv`` when called with an
            ``output_path``.
        truncate_dim: Keep only the first ``truncate_dim`` embedding dimensions.
        similarity_fn_names: Similarities to evaluate; ``None`` uses ``main_similarity_function`` or else the
            model's ``similarity_fn_name``.

    Example:
        ::

            from sentencekit.evaluation import TripletEvaluator
            from sentencekit.readers import read_triplet_tsv

            triplets = read_triplet_tsv("snli/snli_test_triplets.tsv")
            evaluator = TripletEvaluator(*triplets, name="snli_test")
            evaluator(model)["snli_test_cosine_accuracy"]

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
        truncate_dim: int | None = None,
        similarity_fn_names: Sequence[str] | None = None,
    ) -> None:
        super().__init__(
            name, batch_size=batch_size, show_progress_bar=show_progress_bar, truncate_dim=truncate_dim
        )
        require_columns(
            "TripletEvaluator", "triplet", anchors=anchors, positives=positives, negatives=negatives
        )
        self.anchors = list(anchors)
        self.positives = list(positives)
        self.negatives = list(negatives)
        self.main_similarity_function = (
            SimilarityFunction.parse(main_similarity_function) if main_similarity_function else None
        )
        names = list(similarity_fn_names or [])
        if not names and self.main_similarity_function is not None:
            names = [str(self.main_similarity_function)]
        self.similarity_fn_names = check_similarity_names(names)
        self.margin = _margins(margin)
        self.write_csv = write_csv
        self.csv_file = csv_file_name("triplet_evaluation", name)

    @property
    def csv_headers(self) -> list[str]:
        """Columns of the CSV file: ``epoch, steps`` then ``accuracy_{fn}`` per function."""
        return ["epoch", "steps"] + [f"accuracy_{fn}" for fn in self.similarity_fn_names]

    def __call__(
        self, model: Any, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        """Encode the triplets and return the accuracy per similarity function."""
        self.log_start(epoch, steps)
        (anchors,) = self.embed(
            model,
            self.anchors,
            role="query",
        )
        positives, negatives = self.embed(
            model,
            self.positives,
            self.negatives,
            role="document",
        )
        if not self.similarity_fn_names:
            self.similarity_fn_names = [model_similarity_name(model)]

        metrics: dict[str, float] = {}
        for fn_name in self.similarity_fn_names:
            score = pairwise_similarity(fn_name)
            correct = score(anchors, positives) > score(anchors, negatives) + self.margin[fn_name]
            metrics[f"{fn_name}_accuracy"] = correct.float().mean().item()
            logger.info("Accuracy with %s similarity: %.2f%%", fn_name, 100 * metrics[f"{fn_name}_accuracy"])

        if output_path is not None and self.write_csv:
            self.write_csv_row(
                output_path, self.csv_file, self.csv_headers, [epoch, steps, *metrics.values()]
            )

        if len(metrics) > 1:
            metrics["max_accuracy"] = max(metrics.values())
        if self.main_similarity_function is not None:
            self.primary_metric = f"{self.main_similarity_function}_accuracy"
        elif len(self.similarity_fn_names) > 1:
            self.primary_metric = "max_accuracy"
        else:
            self.primary_metric = f"{self.similarity_fn_names[0]}_accuracy"
        return self.prefix_name_to_metrics(metrics, self.name)

    def get_config_dict(self) -> dict[str, Any]:
        """Non-zero margins and ``truncate_dim`` when set."""
        config: dict[str, Any] = {}
        if any(self.margin.values()):
            config["margin"] = dict(self.margin)
        if self.truncate_dim is not None:
            config["truncate_dim"] = self.truncate_dim
        return config


def _margins(margin: float | Mapping[str, float] | None) -> dict[str, float]:
    """Expand ``margin`` into one value per similarity function, rejecting unknown names."""
    if margin is None:
        return dict.fromkeys(_ALL_FUNCTIONS, 0.0)
    if isinstance(margin, Mapping):
        unknown = sorted(set(margin) - set(_ALL_FUNCTIONS))
        if unknown:
            raise ValueError(
                f"margin has unknown similarity names {unknown}; use keys from {list(_ALL_FUNCTIONS)}"
            )
        return {fn: float(margin.get(fn, 0.0)) for fn in _ALL_FUNCTIONS}
    if isinstance(margin, (int, float)):
        return dict.fromkeys(_ALL_FUNCTIONS, float(margin))
    raise ValueError(f"margin must be a number or a dict keyed by {list(_ALL_FUNCTIONS)}, got {margin!r}")
