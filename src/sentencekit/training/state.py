"""Where a training run stands, and the callback hooks that see it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["TrainerCallback", "TrainingState"]


@dataclass
class TrainingState:
    """Progress of a run; saved in checkpoints and handed to callbacks.

    Attributes:
        epoch: The epoch in progress (0-based); equals the number of epochs once training has ended.
        step_in_epoch: Batches of the current epoch already trained on.
        global_step: Optimizer steps taken.
        total_steps: Optimizer steps the run will take.
        best_metric: Best value of the model-selection metric so far.
        best_step: Global step at which ``best_metric`` was reached.
        metrics: The last evaluation's metrics.
        log_history: Logged losses and evaluations, oldest first.
        train_seconds: Wall time spent in training so far (summed over resumed runs).
        should_stop: Set it from a callback to end training after the current step.
    """

    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    total_steps: int = 0
    best_metric: float | None = None
    best_step: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    log_history: list[dict[str, Any]] = field(default_factory=list)
    train_seconds: float = 0.0
    should_stop: bool = False

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly copy (``should_stop`` is not kept)."""
        data = asdict(self)
        data.pop("should_stop")
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingState:
        """Rebuild a state written by :meth:`to_dict`."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__ and k != "should_stop"}
        return cls(**known)


class TrainerCallback:
    """Hooks called by the training loop; subclass and override the ones you need (all do nothing here).

    Any object with some of these methods works as a callback. Set ``state.should_stop = True`` to end
    training early.
    """

    def on_train_begin(self, state: TrainingState, model: Any) -> None:
        """Before the first step (also when resuming)."""

    def on_step_end(self, state: TrainingState, model: Any) -> None:
        """After each optimizer step (and after the evaluation and checkpoint of that step, if any)."""

    def on_log(self, state: TrainingState, logs: dict[str, float]) -> None:
        """When the mean training loss is logged."""

    def on_evaluate(self, state: TrainingState, metrics: dict[str, float]) -> None:
        """After each evaluation."""

    def on_save(self, state: TrainingState, path: str) -> None:
        """After a checkpoint is written."""

    def on_epoch_end(self, state: TrainingState, model: Any) -> None:
        """After each epoch (and its evaluation)."""

    def on_train_end(self, state: TrainingState, model: Any) -> None:
        """After training."""
