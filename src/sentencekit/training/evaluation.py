"""Evaluation during training: run the evaluator and the loss on held-out data, and judge what is "best"."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sentencekit.training.collate import to_device

__all__ = ["EvalLoss", "EvaluationRunner", "scalar_loss"]

logger = logging.getLogger(__name__)


def scalar_loss(value: torch.Tensor | Mapping[str, torch.Tensor]) -> torch.Tensor:
    """A loss's value as one scalar: a dict of named terms (GlobalOrthogonalRegularizationLoss) is summed."""
    if isinstance(value, Mapping):
        return torch.stack(list(value.values())).sum()
    return value


@dataclass
class EvalLoss:
    """The loss of one held-out dataset, reported as ``eval_<name>_loss`` (``eval_loss`` for one dataset).

    Attributes:
        name: The dataset's name; empty for a single dataset.
        batches: Returns the dataset's batches, in a fixed order, each as ``(inputs, labels)``.
        loss: The loss to average.
    """

    name: str
    batches: Callable[[], Iterable[Any]]
    loss: nn.Module


@dataclass
class EvaluationRunner:
    """Runs an evaluator and held-out losses, and decides whether a result is the best so far.

    Attributes:
        evaluator: An evaluator (``dict`` or ``float`` results), or ``None``.
        output_path: Folder for the evaluator's CSV files.
        prefix: Prefix of every metric key (the trainers use ``"eval_"``, ``fit`` none).
        eval_losses: Held-out losses to report.
        metric_for_best_model: The key that decides "best" (with or without ``prefix``, or any key ending
            with it); ``None`` takes the evaluator's primary metric, else the held-out loss.
        greater_is_better: Direction of that metric; ``None`` asks the evaluator (losses: lower is better).
    """

    evaluator: Any = None
    output_path: Path | None = None
    prefix: str = ""
    eval_losses: Sequence[EvalLoss] = field(default_factory=list)
    metric_for_best_model: str | None = None
    greater_is_better: bool | None = None

    def __bool__(self) -> bool:
        return self.evaluator is not None or bool(self.eval_losses)

    def __call__(self, model: Any, epoch: int, steps: int) -> dict[str, float]:
        """Evaluate ``model``; ``steps`` is -1 at the end of an epoch."""
        metrics: dict[str, float] = {}
        for item in self.eval_losses:
            key = f"{self.prefix}{item.name}_loss" if item.name else f"{self.prefix}loss"
            metrics[key] = _mean_loss(item, model)
        if self.evaluator is not None:
            path = str(self.output_path) if self.output_path is not None else None
            if path is not None:
                Path(path).mkdir(parents=True, exist_ok=True)
            result = self.evaluator(model, output_path=path, epoch=epoch, steps=steps)
            if not isinstance(result, dict):
                result = {"evaluator": float(result)}
            metrics.update({f"{self.prefix}{key}": value for key, value in result.items()})
        return metrics

    def metric_key(self, metrics: dict[str, float]) -> str | None:
        """The key of ``metrics`` that decides which model is best, or ``None`` if there is none."""
        wanted = self.metric_for_best_model
        if wanted is None and self.evaluator is not None:
            wanted = getattr(self.evaluator, "primary_metric", None) or "evaluator"
        if wanted is None:
            wanted = "loss"
        for key in (wanted, f"{self.prefix}{wanted}"):
            if key in metrics:
                return key
        return next((key for key in metrics if key.endswith(wanted)), None)

    def is_better(self, key: str, new: float, best: float | None) -> bool:
        """Whether ``new`` beats ``best`` for metric ``key``."""
        if best is None:
            return True
        greater = self.greater_is_better
        if greater is None:
            greater = not key.endswith("loss") and bool(getattr(self.evaluator, "greater_is_better", True))
        return new > best if greater else new < best


def _mean_loss(item: EvalLoss, model: Any) -> float:
    device = model.device
    was_training = item.loss.training
    item.loss.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for inputs, labels in item.batches():
            total += float(scalar_loss(item.loss(to_device(inputs, device), to_device(labels, device))))
            count += 1
    item.loss.train(was_training)
    return total / max(count, 1)
