"""The training loop every front door uses: ``fit``, the trainers and ``sentencekit train``.

One optimizer (AdamW by default) covers the model and every loss's own parameters (``SoftmaxLoss``'s
classifier, ...). Each optimizer step adds up the gradients of ``gradient_accumulation_steps`` batches, clips
their global norm, steps the optimizer (through a loss scaler under fp16) and then the learning-rate
schedule. Evaluation, best-model saving and checkpoints happen on optimizer-step boundaries, so a checkpoint
never splits an accumulation group and resuming from one continues the same sequence of steps.

The optimizer's parameter groups and options come from :mod:`sentencekit.training.optimizer`
(:func:`parameter_groups` and :func:`optimizer_options` are re-exported here).
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from sentencekit.training.checkpoints import (
    load_model_weights,
    loss_extra_state,
    read_training_state,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from sentencekit.training.collate import to_device
from sentencekit.training.evaluation import EvaluationRunner, scalar_loss
from sentencekit.training.model_card import TrainingRecord
from sentencekit.training.optimizer import optimizer_options, parameter_groups
from sentencekit.training.schedules import build_scheduler
from sentencekit.training.settings import LoopSettings
from sentencekit.training.state import TrainingState
from sentencekit.training.streams import BatchStream, epoch_order

__all__ = ["Objective", "TrainingLoop", "parameter_groups"]

logger = logging.getLogger(__name__)


@dataclass
class Objective:
    """One training objective: a stream of batches and the loss computed on them.

    Attributes:
        name: Shown in logs and the model card.
        stream: Supplies ``(inputs, labels)`` batches.
        loss: ``loss(inputs, labels)`` returns a scalar tensor, or a dict of named scalars (summed).
    """

    name: str
    stream: BatchStream
    loss: nn.Module


class TrainingLoop:
    """Trains ``model`` on ``objectives`` with ``settings``.

    Args:
        model: A :class:`~sentencekit.SentenceTransformer` or :class:`~sentencekit.cross_encoder.CrossEncoder`
            (anything with ``save``, ``device`` and a ``(folder, device=)`` constructor).
        objectives: The training objectives; several are interleaved by ``settings.multi_dataset``.
        settings: The run's settings.
        evaluation: What to evaluate during training, or ``None``.
        callbacks: Objects with some of the :class:`~sentencekit.training.state.TrainerCallback` methods.
        record: The model card's record, brought up to date before every save and at the end.
    """

    def __init__(
        self,
        model: Any,
        objectives: Sequence[Objective],
        settings: LoopSettings,
        evaluation: EvaluationRunner | None = None,
        callbacks: Sequence[Any] = (),
        record: TrainingRecord | None = None,
    ) -> None:
        if not objectives:
            raise ValueError("Training needs at least one objective (a dataset or DataLoader and a loss).")
        self.model = model
        self.objectives = list(objectives)
        self.settings = settings
        self.evaluation = evaluation if evaluation else None
        self.callbacks = list(callbacks)
        self.record = record
        self.state = TrainingState()
        self._epoch_lengths: list[int] = []
        self._window: list[float] = []
        self._term_windows: dict[str, list[float]] = {}  # a dict-valued loss's named terms, logged apiece
        self._losses: list[nn.Module] = list({id(o.loss): o.loss for o in self.objectives}.values())

    # --- set-up -------------------------------------------------------------------------------------------

    def _plan_steps(self) -> tuple[int, int]:
        """(optimizer steps per epoch, total optimizer steps), from epoch 0's batch counts."""
        for objective in self.objectives:
            objective.stream.start_epoch(0)
        lengths = [o.stream.batches_per_pass() for o in self.objectives]
        empty = [o.name for o, length in zip(self.objectives, lengths, strict=True) if length == 0]
        if empty:
            raise ValueError(f"Training objective(s) {empty} have no batches: their data is empty.")
        s = self.settings
        batches = len(epoch_order(lengths, s.multi_dataset, s.rounds_per_epoch, s.seed or 0, 0))
        per_epoch = max(1, math.ceil(batches / s.gradient_accumulation_steps))
        total = s.max_steps if s.max_steps is not None else per_epoch * s.epochs
        return per_epoch, total

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        precision = self.settings.precision
        if precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.float16 if precision == "fp16" else torch.bfloat16
        return torch.autocast(device_type=self.model.device.type, dtype=dtype)

    def _scaler(self) -> torch.amp.GradScaler | None:
        if self.settings.precision != "fp16":
            return None
        if self.model.device.type != "cuda":
            raise ValueError("fp16 training needs a CUDA device; on CPU use bf16 instead.")
        return torch.amp.GradScaler("cuda")

    # --- the run ------------------------------------------------------------------------------------------

    def run(self, resume_from: str | Path | None = None) -> TrainingState:
        """Train, optionally continuing from checkpoint folder ``resume_from``; returns the final state."""
        s = self.settings
        if s.seed is not None:
            random.seed(s.seed)
            np.random.seed(s.seed)
            torch.manual_seed(s.seed)
        device = self.model.device
        for loss in self._losses:
            loss.to(device)
        groups = parameter_groups(self.model, self._losses, s.weight_decay, s.learning_rate_mapping)
        self.optimizer = s.optimizer_class(
            groups, **optimizer_options(s.optimizer_class, s.optimizer_params, groups)
        )
        per_epoch, total = self._plan_steps()
        epochs = math.ceil(total / per_epoch) if s.max_steps is not None else s.epochs
        warmup = s.warmup_steps or math.ceil(s.warmup_ratio * total)
        self.scheduler = build_scheduler(self.optimizer, s.scheduler, warmup, total)
        self.scaler = self._scaler()
        self.state = TrainingState(total_steps=total)
        resumed = self._resume(Path(resume_from)) if resume_from is not None else False
        logger.info(
            "Training %d objective(s) for %d optimizer steps (%d per epoch, %d warm-up, schedule %s)",
            len(self.objectives),
            total,
            per_epoch,
            warmup,
            s.scheduler,
        )
        self._train_mode(True)
        self._emit("on_train_begin", self.state, self.model)
        bar = tqdm(
            total=total, initial=self.state.global_step, desc="Training", disable=not s.show_progress_bar
        )
        started = time.perf_counter() - self.state.train_seconds
        try:
            while self.state.epoch < epochs and not self._done():
                self._run_epoch(self.state.epoch, resumed, bar, started)
                resumed = False
        finally:
            bar.close()
            self.state.train_seconds = time.perf_counter() - started
        if s.best_model_dir is not None and s.load_best_model_at_end and self.state.best_step is not None:
            load_model_weights(self.model, s.best_model_dir)
            logger.info("Loaded the best model (step %d) from %s", self.state.best_step, s.best_model_dir)
        self._train_mode(False)
        self._update_record()
        self._emit("on_train_end", self.state, self.model)
        return self.state

    def _done(self) -> bool:
        return self.state.should_stop or self.state.global_step >= self.state.total_steps

    def _run_epoch(self, epoch: int, resumed: bool, bar: Any, started: float) -> None:
        s = self.settings
        if not (resumed and self.state.step_in_epoch):
            for objective in self.objectives:
                objective.stream.start_epoch(epoch)
            self.state.step_in_epoch = 0
            self._epoch_lengths = [o.stream.batches_per_pass() for o in self.objectives]
        lengths = self._epoch_lengths  # a resumed epoch keeps the counts it started with
        order = epoch_order(lengths, s.multi_dataset, s.rounds_per_epoch, s.seed or 0, epoch)
        position = self.state.step_in_epoch
        while position < len(order) and not self._done():
            group = order[position : position + s.gradient_accumulation_steps]
            self._optimizer_step(group)
            position += len(group)
            self.state.step_in_epoch = position
            self.state.global_step += 1
            self.state.train_seconds = time.perf_counter() - started
            bar.update(1)
            self._after_step(epoch, bar)
        if position >= len(order):
            if s.eval_at_epoch_end:
                self._evaluate(epoch, -1)
            self.state.epoch, self.state.step_in_epoch = epoch + 1, 0
            if s.save_at_epoch_end:
                self._save_checkpoint()
            self._emit("on_epoch_end", self.state, self.model)

    def _optimizer_step(self, group: list[int]) -> None:
        for index in group:
            objective = self.objectives[index]
            inputs, labels = objective.stream.next_batch()
            device = self.model.device
            with self._autocast():
                raw = objective.loss(to_device(inputs, device), to_device(labels, device))
                value = scalar_loss(raw)
            if isinstance(raw, dict):
                for name, term in raw.items():
                    self._term_windows.setdefault(name, []).append(float(term.detach()))
            scaled = value / len(group)
            if self.scaler is not None:
                self.scaler.scale(scaled).backward()
            else:
                scaled.backward()
            self._window.append(float(value.detach()))
        parameters = [p for g in self.optimizer.param_groups for p in g["params"]]
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        if self.settings.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(parameters, self.settings.max_grad_norm)
        skipped = False
        if self.scaler is not None:
            scale = self.scaler.get_scale()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            skipped = self.scaler.get_scale() < scale  # inf/nan gradients: the step was skipped
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if not skipped:
            self.scheduler.step()

    def _after_step(self, epoch: int, bar: Any) -> None:
        s, state = self.settings, self.state
        if state.global_step % s.logging_steps == 0 or state.global_step == state.total_steps:
            self._log(epoch, bar)
        if s.eval_steps and state.global_step % s.eval_steps == 0:
            self._evaluate(epoch, state.global_step)
        if s.checkpoint_dir is not None and s.save_steps and state.global_step % s.save_steps == 0:
            self._save_checkpoint()
        self._emit("on_step_end", state, self.model)

    def _log(self, epoch: int, bar: Any) -> None:
        if not self._window:
            return
        loss = sum(self._window) / len(self._window)
        self._window = []
        terms = {name: sum(values) / len(values) for name, values in self._term_windows.items()}
        self._term_windows = {}
        lr = self.scheduler.get_last_lr()[0]
        logs = {"loss": loss, **terms, "learning_rate": lr, "epoch": epoch, "step": self.state.global_step}
        self.state.log_history.append(logs)
        bar.set_postfix(loss=f"{loss:.4f}")
        logger.info(
            "step %d/%d (epoch %d): loss %.4f%s, learning rate %.3g",
            self.state.global_step,
            self.state.total_steps,
            epoch,
            loss,
            "".join(f", {name} {value:.4g}" for name, value in terms.items()),
            lr,
        )
        self._emit("on_log", self.state, logs)

    # --- evaluation and saving ----------------------------------------------------------------------------

    def _evaluate(self, epoch: int, steps: int) -> None:
        if self.evaluation is None:
            return
        metrics = self.evaluation(self.model, epoch, steps)
        state = self.state
        state.metrics = metrics
        state.log_history.append({**metrics, "epoch": epoch, "step": state.global_step})
        logger.info("Evaluation at step %d: %s", state.global_step, metrics)
        key = self.evaluation.metric_key(metrics)
        if key is not None and self.evaluation.is_better(key, metrics[key], state.best_metric):
            state.best_metric, state.best_step = metrics[key], state.global_step
            if self.settings.best_model_dir is not None:
                self._update_record()
                self.model.save(self.settings.best_model_dir)
                logger.info(
                    "New best %s = %.4f: saved to %s", key, metrics[key], self.settings.best_model_dir
                )
        self._emit("on_evaluate", state, metrics)
        self._train_mode(True)

    def _save_checkpoint(self) -> None:
        folder = self.settings.checkpoint_dir
        if folder is None:
            return
        training_state = {
            "format": 1,
            "state": self.state.to_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "losses": [loss_extra_state(loss, self.model) for loss in self._losses],
            "streams": [o.stream.position() for o in self.objectives],
            "epoch_lengths": self._epoch_lengths,
            "rng": rng_state(),
        }
        self._update_record()
        summary = {k: v for k, v in self.state.to_dict().items() if k != "log_history"}
        summary["log_history"] = self.state.log_history[-20:]
        path = save_checkpoint(
            folder,
            self.state.global_step,
            self.model,
            training_state,
            summary,
            self.settings.save_total_limit,
        )
        self._emit("on_save", self.state, str(path))
        self._train_mode(True)

    def _resume(self, checkpoint: Path) -> bool:
        saved = read_training_state(checkpoint)
        load_model_weights(self.model, checkpoint)
        for loss, extra in zip(self._losses, saved["losses"], strict=True):
            if extra:
                loss.load_state_dict(extra, strict=False)
        self.optimizer.load_state_dict(saved["optimizer"])
        self.scheduler.load_state_dict(saved["scheduler"])
        if self.scaler is not None and saved["scaler"] is not None:
            self.scaler.load_state_dict(saved["scaler"])
        total = self.state.total_steps
        self.state = TrainingState.from_dict(saved["state"])
        self.state.total_steps = total
        if self.state.step_in_epoch:
            self._epoch_lengths = saved["epoch_lengths"]
            for objective, position in zip(self.objectives, saved["streams"], strict=True):
                objective.stream.restore(position)
        set_rng_state(saved["rng"])  # last: restoring the streams may have drawn numbers
        logger.info(
            "Resuming from %s: epoch %d, %d batches into it, global step %d",
            checkpoint,
            self.state.epoch,
            self.state.step_in_epoch,
            self.state.global_step,
        )
        return True

    def _update_record(self) -> None:
        if self.record is not None:
            self.record.update(self.state)

    def _train_mode(self, training: bool) -> None:
        self.model.train(training)
        for loss in self._losses:
            loss.train(training)

    def _emit(self, hook: str, *args: Any) -> None:
        for callback in self.callbacks:
            method = getattr(callback, hook, None)
            if method is not None:
                method(*args)
