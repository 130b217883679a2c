"""Run several evaluators one after the other and merge their results."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sentencekit.evaluation.base import SentenceEvaluator

__all__ = ["SequentialEvaluator"]

logger = logging.getLogger(__name__)


def _last(scores: Sequence[float]) -> float:
    return scores[-1]


class SequentialEvaluator(SentenceEvaluator):
    """Call several evaluators in turn; return all their metrics plus one combined ``sequential_score``.

    Each evaluator's primary metric (or its first key, if it names none) is collected, and
    ``main_score_function`` turns that list into ``sequential_score``, the primary metric. By default it is
    the last evaluator's primary metric. Give the evaluators
    distinct names so that their keys don't collide.

    Use it to hand a training loop several dev sets at once (it accepts a single evaluator).

    Args:
        evaluators: The evaluators, called in order with the same arguments.
        main_score_function: Maps the list of primary scores to ``sequential_score``, e.g.
            ``lambda scores: sum(scores) / len(scores)``.

    Example:
        ::

            from sentencekit.evaluation import SequentialEvaluator

            evaluator = SequentialEvaluator([sts_evaluator, retrieval_evaluator], main_score_function=max)
            results = evaluator(model)
            results["sequential_score"]

    """

    def __init__(
        self,
        evaluators: Iterable[SentenceEvaluator],
        main_score_function: Callable[[Sequence[float]], float] = _last,
    ) -> None:
        super().__init__()
        self.evaluators = list(evaluators)
        self.main_score_function = main_score_function
        self.primary_metric = "sequential_score"

    def __call__(
        self, model: Any, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        """Run every evaluator and return their merged metrics and ``sequential_score``."""
        results: dict[str, float] = {}
        primary_scores: list[float] = []
        for position, evaluator in enumerate(self.evaluators):
            outcome: Any = evaluator(model, output_path, epoch, steps)
            if not isinstance(outcome, dict):  # an evaluator that returns a bare score
                primary_scores.append(float(outcome))
                outcome = {f"evaluator_{position}": float(outcome)}
            else:
                key = getattr(evaluator, "primary_metric", None) or next(iter(outcome))
                primary_scores.append(outcome[key])
            duplicated = sorted(set(outcome) & set(results))
            if duplicated:
                logger.warning(
                    "Evaluator %d overwrites the keys %s; give evaluators distinct names",
                    position,
                    duplicated,
                )
            results.update(outcome)
        results["sequential_score"] = (
            float(self.main_score_function(primary_scores)) if primary_scores else 0.0
        )
        self.primary_metric = "sequential_score"
        return results
