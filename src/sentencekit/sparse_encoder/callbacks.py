"""Training callbacks of sparse encoders: ramp SpladeLoss's regularizer weights up during training.

Sparsity regularization at full weight from the first step collapses a freshly initialized SPLADE model to
empty vectors before the ranking loss has taught it which tokens matter. The reference therefore starts the
weights at 0 and raises them to their configured values over the first part of training;
:class:`~sentencekit.sparse_encoder.SparseEncoderTrainer` adds this callback for every SpladeLoss.
"""

from __future__ import annotations

import enum
from typing import Any

from sentencekit.sparse_encoder.losses.splade import SpladeLoss
from sentencekit.training.state import TrainerCallback, TrainingState

__all__ = ["SchedulerType", "SpladeRegularizerWeightSchedulerCallback"]


class SchedulerType(str, enum.Enum):
    """Shape of the ramp: the weight at ``r`` of the warm-up is ``max * r`` or ``max * r ** 2``."""

    LINEAR = "linear"
    QUADRATIC = "quadratic"

    def __str__(self) -> str:
        return self.value


class SpladeRegularizerWeightSchedulerCallback(TrainerCallback):
    """Raises a :class:`SpladeLoss`'s regularizer weights from 0 to their values over the warm-up steps.

    Before optimizer step ``s`` the weights are ``max * (s / warmup_steps)`` (linear) or its square
    (quadratic), and their full values from ``warmup_steps = int(total_steps * warmup_ratio)`` on. The
    current weights are added to each log line as ``document_regularizer_weight`` and
    ``query_regularizer_weight``.

    Args:
        loss: The SpladeLoss whose ``document_regularizer_weight`` and ``query_regularizer_weight`` it sets;
            their values when the callback is built are the targets.
        scheduler_type: ``"quadratic"`` (the reference's default) or ``"linear"``.
        warmup_ratio: Share of the optimizer steps spent ramping up, in (0, 1].

    Raises:
        ValueError: For a loss that is not a SpladeLoss, an unknown scheduler type, or a ratio outside (0, 1].

    Example:
        >>> ramp = SpladeRegularizerWeightSchedulerCallback(loss, "linear", 0.1)  # doctest: +SKIP
        >>> trainer = SparseEncoderTrainer(model, args, train_dataset=data, loss=loss,
        ...                                callbacks=[ramp])  # doctest: +SKIP
    """

    def __init__(
        self,
        loss: SpladeLoss,
        scheduler_type: str | SchedulerType = SchedulerType.QUADRATIC,
        warmup_ratio: float = 1 / 3,
    ) -> None:
        if not isinstance(loss, SpladeLoss):
            raise ValueError(
                f"SpladeRegularizerWeightSchedulerCallback schedules the weights of a SpladeLoss, got "
                f"{type(loss).__name__}; pass the SpladeLoss (or CachedSpladeLoss) you train with."
            )
        try:
            self.scheduler_type = SchedulerType(str(scheduler_type).lower())
        except ValueError:
            raise ValueError(
                f"scheduler_type must be one of {[t.value for t in SchedulerType]}, got {scheduler_type!r}."
            ) from None
        if not 0 < warmup_ratio <= 1:
            raise ValueError(f"warmup_ratio must be in (0, 1], got {warmup_ratio}.")
        self.loss = loss
        self.warmup_ratio = warmup_ratio
        self.max_document_regularizer_weight = loss.document_regularizer_weight
        self.max_query_regularizer_weight = loss.query_regularizer_weight
        self.warmup_steps: int | None = None  # known once training begins

    def weights_at(self, step: int) -> tuple[float, float | None]:
        """(document, query) weights for optimizer step ``step`` (0-based)."""
        document, query = self.max_document_regularizer_weight, self.max_query_regularizer_weight
        if self.warmup_steps is None or step >= self.warmup_steps:
            return document, query
        ratio = step / self.warmup_steps
        factor = ratio if self.scheduler_type is SchedulerType.LINEAR else ratio**2
        return document * factor, None if query is None else query * factor

    def _apply(self, step: int) -> None:
        self.loss.document_regularizer_weight, self.loss.query_regularizer_weight = self.weights_at(step)

    def on_train_begin(self, state: TrainingState, model: Any) -> None:
        """Fix the warm-up length from the run's total steps and set the weights of the first step."""
        self.warmup_steps = max(1, int(state.total_steps * self.warmup_ratio))
        self._apply(state.global_step)

    def on_step_end(self, state: TrainingState, model: Any) -> None:
        """Set the weights of the next step."""
        self._apply(state.global_step)

    def on_log(self, state: TrainingState, logs: dict[str, float]) -> None:
        """Add the weights the logged steps were trained with."""
        logs["document_regularizer_weight"] = self.loss.document_regularizer_weight
        if self.loss.query_regularizer_weight is not None:
            logs["query_regularizer_weight"] = self.loss.query_regularizer_weight
