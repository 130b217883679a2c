"""The settings of one training run, shared by ``fit``, the trainers and the command line."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from sentencekit.training.schedules import schedule_name

__all__ = ["MULTI_DATASET_MODES", "PRECISIONS", "LoopSettings"]

PRECISIONS = ("fp32", "fp16", "bf16")
MULTI_DATASET_MODES = ("round_robin", "proportional")


@dataclass(frozen=True)
class LoopSettings:
    """What the training loop does; the front doors translate their arguments into this.

    Attributes:
        epochs: Passes over the training data.
        max_steps: Stop after this many optimizer steps (overrides ``epochs`` when set).
        rounds_per_epoch: Round-robin rounds per epoch (``fit``'s ``steps_per_epoch``); ``None`` uses the
            smallest objective's number of batches.
        scheduler: Learning-rate schedule name (:mod:`sentencekit.training.schedules`).
        warmup_steps: Warm-up in optimizer steps; when 0, ``warmup_ratio`` of all steps is used instead.
        warmup_ratio: Share of all optimizer steps spent warming up (the trainer's argument).
        optimizer_class: The optimizer; AdamW unless told otherwise.
        optimizer_params: Keyword arguments of the optimizer, ``lr`` among them.
        learning_rate_mapping: ``{regex: lr}``: parameters whose name matches (``re.search``, first match
            wins) train at that rate instead of ``optimizer_params["lr"]``.
        weight_decay: Decay of every weight except biases and LayerNorm parameters.
        max_grad_norm: Clip the gradient's global L2 norm to this; ``None`` or 0 disables clipping.
        gradient_accumulation_steps: Batches whose gradients add up to one optimizer step.
        precision: ``"fp32"``; ``"bf16"`` autocast (CUDA or CPU); ``"fp16"`` autocast and loss scaling (CUDA).
        seed: Seeds torch, numpy and ``random`` at the start; ``None`` leaves the generators alone.
        eval_steps: Evaluate every this many optimizer steps; 0 never does.
        eval_at_epoch_end: Also evaluate after every epoch (``fit`` always does).
        best_model_dir: Save the model here whenever the evaluation improves (``fit``'s ``save_best_model``).
        load_best_model_at_end: Load the weights saved in ``best_model_dir`` back into the model at the end.
        metric_for_best_model: Metric key that decides "best"; ``None`` takes the evaluator's primary metric.
        greater_is_better: Direction of that metric; ``None`` asks the evaluator (losses: lower is better).
        checkpoint_dir: Folder of ``checkpoint-<step>`` folders; ``None`` writes none.
        save_steps: Write a checkpoint every this many optimizer steps (0: only when ``save_at_epoch_end``).
        save_at_epoch_end: Also write a checkpoint after each epoch.
        save_total_limit: Keep at most this many checkpoints, deleting the oldest; 0 keeps all.
        multi_dataset: ``"round_robin"`` (one batch of each objective in turn, until the smallest runs out)
            or ``"proportional"`` (every batch of every objective, interleaved at random).
        eval_output_dir: Folder in which evaluators append their CSV rows.
        show_progress_bar: Show a tqdm bar over optimizer steps.
        logging_steps: Log the mean loss every this many optimizer steps.
    """

    epochs: int = 1
    max_steps: int | None = None
    rounds_per_epoch: int | None = None
    scheduler: str = "warmuplinear"
    warmup_steps: int = 0
    warmup_ratio: float = 0.0
    optimizer_class: type[torch.optim.Optimizer] = torch.optim.AdamW
    # 2e-5 is the learning rate of the reference's fit(), the usual one for fine-tuning BERT-sized encoders.
    optimizer_params: Mapping[str, Any] = field(default_factory=lambda: {"lr": 2e-5})
    learning_rate_mapping: Mapping[str, float] = field(default_factory=dict)
    weight_decay: float = 0.01
    max_grad_norm: float | None = 1.0
    gradient_accumulation_steps: int = 1
    precision: str = "fp32"
    seed: int | None = None
    eval_steps: int = 0
    eval_at_epoch_end: bool = True
    best_model_dir: Path | None = None
    load_best_model_at_end: bool = False
    metric_for_best_model: str | None = None
    greater_is_better: bool | None = None
    checkpoint_dir: Path | None = None
    save_steps: int = 0
    save_at_epoch_end: bool = False
    save_total_limit: int = 0
    multi_dataset: str = "round_robin"
    eval_output_dir: Path | None = None
    show_progress_bar: bool = True
    # Often enough to see a trend in a short run, rarely enough not to flood the log of a long one.
    logging_steps: int = 50

    def __post_init__(self) -> None:
        _positive("epochs", self.epochs)
        _positive("gradient_accumulation_steps", self.gradient_accumulation_steps)
        _positive("logging_steps", self.logging_steps)
        for name in ("eval_steps", "save_steps", "save_total_limit", "warmup_steps"):
            _non_negative(name, getattr(self, name))
        if self.max_steps is not None:
            _positive("max_steps", self.max_steps)
        if self.rounds_per_epoch is not None:
            _positive("rounds_per_epoch", self.rounds_per_epoch)
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ValueError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}.")
        object.__setattr__(self, "scheduler", schedule_name(self.scheduler))
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}.")
        if self.multi_dataset not in MULTI_DATASET_MODES:
            raise ValueError(
                f"multi_dataset must be one of {MULTI_DATASET_MODES}, got {self.multi_dataset!r}."
            )
        if self.max_grad_norm is not None and self.max_grad_norm < 0:
            raise ValueError(
                f"max_grad_norm must be positive (or None to disable), got {self.max_grad_norm}."
            )
        if self.load_best_model_at_end and self.best_model_dir is None:
            raise ValueError("load_best_model_at_end needs best_model_dir, where the best model is saved.")
        if not (
            isinstance(self.optimizer_class, type) and issubclass(self.optimizer_class, torch.optim.Optimizer)
        ):
            raise ValueError(
                f"optimizer_class must be a torch.optim.Optimizer subclass, got {self.optimizer_class!r}."
            )


def _positive(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")


def _non_negative(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}.")
