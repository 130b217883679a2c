"""Translation matching: whether a sentence's nearest neighbour in the other language is its translation."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sentencekit.evaluation.base import (
    SentenceEvaluator,
    csv_file_name,
    require_columns,
)
from sentencekit.similarity import cos_sim

__all__ = ["TranslationEvaluator"]

logger = logging.getLogger(__name__)


class TranslationEvaluator(SentenceEvaluator):
    """Accuracy of finding each sentence's translation by cosine similarity, in both directions.

    ======================  ==============================================
    input                   meaning
    ======================  ==============================================
    ``source_sentences[i]`` a sentence in the source language
    ``target_sentences[i]`` its translation
    ======================  ==============================================

    For every source sentence the most similar target sentence is looked up; it is correct when its text
    equals the true translation's (so repeated targets are not penalised). The same is done from target to
    source.
    Use it to check a multilingual model's cross-lingual alignment (e.g. after :class:`MSEEvaluator`-style
    distillation) on parallel data such as the translated STS benchmark.

    Returned keys: ``src2trg_accuracy``, ``trg2src_accuracy`` and their ``mean_accuracy``, the primary metric.

    Args:
        source_sentences: Sentences in one language.
        target_sentences: Their translations, aligned by position.
        show_progress_bar: Show the encoding progress bar.
        batch_size: Encoding batch size.
        name: Prefix of the returned keys and part of the CSV file name.
        print_wrong_matches: Log (at INFO) every source sentence whose best match is wrong, with the top 5.
        write_csv: Append a row to ``translation_evaluation[_{name}]_results.csv`` when called with an
            ``output_path``.
        truncate_dim: Keep only the first ``truncate_dim`` embedding dimensions.

    Example:
        ::

            from sentencekit.evaluation import TranslationEvaluator

            en = ["A man is playing a guitar.", "A dog runs in the park."]
            de = ["Ein Mann spielt Gitarre.", "Ein Hund rennt im Park."]
            TranslationEvaluator(en, de, name="en-de")(model)["en-de_mean_accuracy"]

    """

    def __init__(
        self,
        source_sentences: Sequence[str],
        target_sentences: Sequence[str],
        show_progress_bar: bool = False,
        batch_size: int = 16,
        name: str = "",
        print_wrong_matches: bool = False,
        write_csv: bool = True,
        truncate_dim: int | None = None,
    ) -> None:
        super().__init__(
            name, batch_size=batch_size, show_progress_bar=show_progress_bar, truncate_dim=truncate_dim
        )
        require_columns(
            "TranslationEvaluator",
            "sentence pair",
            source_sentences=source_sentences,
            target_sentences=target_sentences,
        )
        self.source_sentences = list(source_sentences)
        self.target_sentences = list(target_sentences)
        self.print_wrong_matches = print_wrong_matches
        self.write_csv = write_csv
        self.csv_file = csv_file_name("translation_evaluation", name)
        self.csv_headers = ["epoch", "steps", "src2trg", "trg2src"]
        self.primary_metric = "mean_accuracy"

    def __call__(
        self, model: Any, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        """Encode both sides, match each sentence to its most similar counterpart, return the accuracies."""
        self.log_start(epoch, steps)
        sources, targets = self.embed(
            model,
            self.source_sentences,
            self.target_sentences,
        )
        scores = cos_sim(sources, targets).detach().cpu()
        best_target = scores.argmax(dim=1).tolist()
        best_source = scores.argmax(dim=0).tolist()
        n = len(self.source_sentences)
        src2trg = sum(self.target_sentences[j] == self.target_sentences[i] for i, j in enumerate(best_target))
        trg2src = sum(self.source_sentences[j] == self.source_sentences[i] for i, j in enumerate(best_source))
        if self.print_wrong_matches:
            self._log_wrong_matches(scores, best_target)
        metrics = {
            "src2trg_accuracy": src2trg / n if n else 0.0,
            "trg2src_accuracy": trg2src / n if n else 0.0,
        }
        metrics["mean_accuracy"] = (metrics["src2trg_accuracy"] + metrics["trg2src_accuracy"]) / 2
        logger.info(
            "Accuracy src2trg %.2f%%, trg2src %.2f%%",
            100 * metrics["src2trg_accuracy"],
            100 * metrics["trg2src_accuracy"],
        )
        if output_path is not None and self.write_csv:
            row = [epoch, steps, metrics["src2trg_accuracy"], metrics["trg2src_accuracy"]]
            self.write_csv_row(output_path, self.csv_file, self.csv_headers, row)
        self.primary_metric = "mean_accuracy"
        return self.prefix_name_to_metrics(metrics, self.name)

    def _log_wrong_matches(self, scores: Any, best_target: list[int]) -> None:
        for i, j in enumerate(best_target):
            if self.target_sentences[j] == self.target_sentences[i]:
                continue
            top = scores[i].topk(min(5, scores.shape[1]))
            candidates = "; ".join(
                f"{index} ({value:.4f}) {self.target_sentences[index]}"
                for value, index in zip(top.values.tolist(), top.indices.tolist(), strict=True)
            )
            logger.info(
                "Source %d matched target %d instead of %d: %r -> %r (true %r). Top 5: %s",
                i,
                j,
                i,
                self.source_sentences[i],
                self.target_sentences[j],
                self.target_sentences[i],
                candidates,
            )

    def get_config_dict(self) -> dict[str, Any]:
        """``truncate_dim`` when set."""
        return {} if self.truncate_dim is None else {"truncate_dim": self.truncate_dim}
