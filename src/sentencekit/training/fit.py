"""``SentenceTransformer.fit`` and ``CrossEncoder.fit``: the reference's classic training API.

Both take ``DataLoader`` objects over :class:`~sentencekit.InputExample` rows and run the shared
:class:`~sentencekit.training.loop.TrainingLoop`. The loaders' own order is kept (a ``DataLoader`` with
``shuffle=True`` and a seeded ``generator`` gives a reproducible run), and their ``collate_fn`` is replaced
by the model's tokenizing collator, as in the reference.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from sentencekit.training.checkpoints import latest_checkpoint
from sentencekit.training.collate import BiEncoderCollator, CrossEncoderCollator, ExampleCollator
from sentencekit.training.evaluation import EvaluationRunner
from sentencekit.training.loop import Objective, TrainingLoop
from sentencekit.training.model_card import DatasetInfo, TrainingRecord, loss_config
from sentencekit.training.settings import LoopSettings
from sentencekit.training.streams import LoaderStream

__all__ = ["LogitsLoss", "fit_cross_encoder", "fit_sentence_transformer"]

logger = logging.getLogger(__name__)


class _ScoreCallback:
    """Calls the reference-style ``callback(score, epoch, steps)`` after each evaluation."""

    def __init__(self, callback: Callable[[float, int, int], None], evaluation: EvaluationRunner) -> None:
        self.callback = callback
        self.evaluation = evaluation

    def on_evaluate(self, state: Any, metrics: dict[str, float]) -> None:
        key = self.evaluation.metric_key(metrics)
        if key is not None:
            self.callback(metrics[key], state.epoch, state.global_step)


def _dataset_info(index: int, loader: Any, loss: nn.Module) -> DatasetInfo:
    dataset: Any = getattr(loader, "dataset", None)
    rows = len(dataset) if hasattr(dataset, "__len__") else None
    first = dataset[0] if rows else None
    width = len(getattr(first, "texts", None) or [])
    return DatasetInfo(
        name=f"objective {index}",
        rows=rows,
        columns=[f"texts[{i}]" for i in range(width)],
        label_column="label",
        loss=type(loss).__name__,
        loss_config=loss_config(loss),
    )


def _settings(
    precision_on: bool,
    device: torch.device,
    output_path: str | None,
    save_best: bool,
    **values: Any,
) -> LoopSettings:
    precision = ("fp16" if device.type == "cuda" else "bf16") if precision_on else "fp32"
    folder = Path(output_path) if output_path else None
    return LoopSettings(
        precision=precision,
        best_model_dir=folder if save_best else None,
        eval_output_dir=folder / "eval" if folder is not None else None,
        **values,
    )


def fit_sentence_transformer(
    model: Any,
    train_objectives: Iterable[tuple[Any, nn.Module]],
    evaluator: Any = None,
    epochs: int = 1,
    steps_per_epoch: int | None = None,
    scheduler: str = "WarmupLinear",
    warmup_steps: int = 10000,
    optimizer_class: type[torch.optim.Optimizer] = torch.optim.AdamW,
    optimizer_params: Mapping[str, Any] | None = None,
    weight_decay: float = 0.01,
    evaluation_steps: int = 0,
    output_path: str | None = None,
    save_best_model: bool = True,
    max_grad_norm: float = 1,
    use_amp: bool = False,
    callback: Callable[[float, int, int], None] | None = None,
    show_progress_bar: bool = True,
    checkpoint_path: str | None = None,
    checkpoint_save_steps: int = 500,
    checkpoint_save_total_limit: int = 0,
    resume_from_checkpoint: bool = False,
) -> None:
    """Train a SentenceTransformer with the reference's ``fit`` arguments (see ``SentenceTransformer.fit``).

    Args:
        model: The model, trained in place.
        train_objectives: ``(DataLoader, loss)`` pairs; several are trained round-robin, one batch of each in
            turn, as many rounds per epoch as the smallest loader has batches.
        evaluator: Run after every epoch (and every ``evaluation_steps``); the best model by its primary
            metric is saved to ``output_path``.
        epochs: Passes over the data.
        steps_per_epoch: Rounds per epoch (default: the smallest loader's length).
        scheduler: ``constantlr``, ``warmupconstant``, ``warmuplinear``, ``warmupcosine`` or
            ``warmupcosinewithhardrestarts`` (any case).
        warmup_steps: Optimizer steps of linear warm-up.
        optimizer_class: The optimizer class.
        optimizer_params: Its arguments (default ``{"lr": 2e-5}``).
        weight_decay: Decay of weights other than biases and LayerNorm parameters.
        evaluation_steps: Also evaluate every this many optimizer steps (0: only after each epoch).
        output_path: Where the model is saved: the best one when an evaluator is given, else the final one.
        save_best_model: Save the best model to ``output_path`` during training.
        max_grad_norm: Gradient clipping norm (0 disables clipping).
        use_amp: Mixed precision: fp16 with loss scaling on CUDA, bf16 autocast on CPU.
        callback: ``callback(score, epoch, steps)`` after each evaluation.
        show_progress_bar: Show a tqdm bar.
        checkpoint_path: Folder for ``checkpoint-<step>`` folders.
        checkpoint_save_steps: Optimizer steps between checkpoints.
        checkpoint_save_total_limit: Checkpoints to keep (0: all).
        resume_from_checkpoint: Continue from the latest checkpoint in ``checkpoint_path``.
    """
    objectives_in = list(train_objectives)
    if not objectives_in:
        raise ValueError("fit() needs at least one (DataLoader, loss) training objective.")
    objectives = []
    for index, (loader, loss) in enumerate(objectives_in):
        loader.collate_fn = ExampleCollator(BiEncoderCollator(model))
        objectives.append(Objective(f"objective {index}", LoaderStream(loader), loss))
    settings = _settings(
        use_amp,
        model.device,
        output_path,
        save_best_model and evaluator is not None and output_path is not None,
        epochs=epochs,
        rounds_per_epoch=steps_per_epoch or None,
        scheduler=scheduler,
        warmup_steps=warmup_steps,
        optimizer_class=optimizer_class,
        optimizer_params=dict(optimizer_params or {"lr": 2e-5}),
        weight_decay=weight_decay,
        max_grad_norm=max_grad_norm or None,
        eval_steps=evaluation_steps if evaluator is not None else 0,
        eval_at_epoch_end=evaluator is not None,
        checkpoint_dir=Path(checkpoint_path) if checkpoint_path else None,
        save_steps=checkpoint_save_steps if checkpoint_path else 0,
        save_total_limit=checkpoint_save_total_limit or 0,
        show_progress_bar=show_progress_bar,
    )
    hyper = {
        "epochs": epochs,
        "steps_per_epoch": steps_per_epoch,
        "scheduler": scheduler,
        "warmup_steps": warmup_steps,
        "optimizer_class": optimizer_class.__name__,
        "optimizer_params": dict(settings.optimizer_params),
        "weight_decay": weight_decay,
        "max_grad_norm": max_grad_norm,
        "batch_size": [getattr(loader, "batch_size", None) for loader, _ in objectives_in],
        "use_amp": use_amp,
    }
    infos = [_dataset_info(i, loader, loss) for i, (loader, loss) in enumerate(objectives_in)]
    _run(
        model,
        objectives,
        settings,
        evaluator,
        callback,
        output_path,
        hyper,
        infos,
        checkpoint_path,
        resume_from_checkpoint,
    )


def _run(
    model: Any,
    objectives: list[Objective],
    settings: LoopSettings,
    evaluator: Any,
    callback: Callable[[float, int, int], None] | None,
    output_path: str | None,
    hyper: dict[str, Any],
    infos: list[DatasetInfo],
    checkpoint_path: str | None,
    resume: bool,
) -> None:
    evaluation = EvaluationRunner(evaluator=evaluator, output_path=settings.eval_output_dir)
    callbacks = (
        [_ScoreCallback(callback, evaluation)] if callback is not None and evaluator is not None else []
    )
    record = TrainingRecord(type(model).__name__, getattr(model, "model_id", None), infos, hyper)
    model.training_record = record
    resume_from = None
    if resume and checkpoint_path:
        resume_from = latest_checkpoint(checkpoint_path)
        if resume_from is None:
            logger.warning("No checkpoint found in %s: training from the start.", checkpoint_path)
    loop = TrainingLoop(model, objectives, settings, evaluation, callbacks, record)
    state = loop.run(resume_from)
    if output_path is not None and (settings.best_model_dir is None or state.best_step is None):
        model.save(output_path)  # no evaluator (or best-model saving off): the final model


class LogitsLoss(nn.Module):
    """A criterion on a cross-encoder's logits, as ``CrossEncoder.fit``'s ``loss_fct`` is used.

    Args:
        model: The :class:`~sentencekit.cross_encoder.CrossEncoder` being trained.
        loss_fct: A criterion ``loss_fct(logits, labels)``, e.g. ``nn.BCEWithLogitsLoss()``.
        activation_fct: Applied to the logits first (``nn.Identity()`` for the usual logits losses).
    """

    def __init__(self, model: Any, loss_fct: nn.Module, activation_fct: nn.Module | None = None) -> None:
        super().__init__()
        self.model = model
        self.loss_fct = loss_fct
        self.activation_fct = activation_fct if activation_fct is not None else nn.Identity()

    def forward(self, inputs: list[list[str]], labels: Tensor) -> Tensor:
        """Score the ``(inputs[0][i], inputs[1][i])`` pairs and compare them with ``labels``."""
        from sentencekit.cross_encoder.losses._pairs import pair_logits  # not at import: a cycle

        if len(inputs) != 2:
            raise ValueError(
                f"CrossEncoder.fit trains on text pairs; these examples have {len(inputs)} texts."
            )
        logits = self.activation_fct(pair_logits(self.model, inputs[0], inputs[1]))
        if self.model.num_labels == 1:
            return self.loss_fct(logits.view(-1), labels.float())
        return self.loss_fct(logits, labels.long())

    def get_config_dict(self) -> dict[str, Any]:
        """Settings shown in the model card."""
        return {
            "loss_fct": type(self.loss_fct).__name__,
            "activation_fct": type(self.activation_fct).__name__,
        }


def fit_cross_encoder(
    model: Any,
    train_dataloader: Any,
    evaluator: Any = None,
    epochs: int = 1,
    loss_fct: nn.Module | None = None,
    activation_fct: nn.Module | None = None,
    scheduler: str = "WarmupLinear",
    warmup_steps: int = 10000,
    optimizer_class: type[torch.optim.Optimizer] = torch.optim.AdamW,
    optimizer_params: Mapping[str, Any] | None = None,
    weight_decay: float = 0.01,
    evaluation_steps: int = 0,
    output_path: str | None = None,
    save_best_model: bool = True,
    max_grad_norm: float = 1,
    use_amp: bool = False,
    callback: Callable[[float, int, int], None] | None = None,
    show_progress_bar: bool = True,
) -> None:
    """Train a CrossEncoder with the reference's ``fit`` arguments (see ``CrossEncoder.fit``).

    Args:
        model: The cross-encoder, trained in place.
        train_dataloader: A ``DataLoader`` over ``InputExample(texts=[first, second], label=...)``.
        evaluator: Run after every epoch (and every ``evaluation_steps``); the best model is saved.
        epochs: Passes over the data.
        loss_fct: ``loss_fct(logits, labels)``; default ``BCEWithLogitsLoss`` for one label, else
            ``CrossEntropyLoss``. A sentencekit cross-encoder loss built on ``model`` is used as it is.
        activation_fct: Applied to the logits before ``loss_fct`` (default: none).
        scheduler: Learning-rate schedule (see :func:`fit_sentence_transformer`).
        warmup_steps: Optimizer steps of linear warm-up.
        optimizer_class: The optimizer class.
        optimizer_params: Its arguments (default ``{"lr": 2e-5}``).
        weight_decay: Decay of weights other than biases and LayerNorm parameters.
        evaluation_steps: Also evaluate every this many optimizer steps.
        output_path: Where the best (or, without an evaluator, the final) model is saved.
        save_best_model: Save the best model to ``output_path`` during training.
        max_grad_norm: Gradient clipping norm (0 disables clipping).
        use_amp: Mixed precision: fp16 with loss scaling on CUDA, bf16 autocast on CPU.
        callback: ``callback(score, epoch, steps)`` after each evaluation.
        show_progress_bar: Show a tqdm bar.
    """
    if loss_fct is not None and getattr(loss_fct, "model", None) is model:
        loss: nn.Module = loss_fct
    else:
        default = nn.BCEWithLogitsLoss() if model.num_labels == 1 else nn.CrossEntropyLoss()
        loss = LogitsLoss(model, loss_fct if loss_fct is not None else default, activation_fct)
    train_dataloader.collate_fn = ExampleCollator(CrossEncoderCollator())
    settings = _settings(
        use_amp,
        model.device,
        output_path,
        save_best_model and evaluator is not None and output_path is not None,
        epochs=epochs,
        scheduler=scheduler,
        warmup_steps=warmup_steps,
        optimizer_class=optimizer_class,
        optimizer_params=dict(optimizer_params or {"lr": 2e-5}),
        weight_decay=weight_decay,
        max_grad_norm=max_grad_norm or None,
        eval_steps=evaluation_steps if evaluator is not None else 0,
        eval_at_epoch_end=evaluator is not None,
        show_progress_bar=show_progress_bar,
    )
    hyper = {
        "epochs": epochs,
        "scheduler": scheduler,
        "warmup_steps": warmup_steps,
        "optimizer_class": optimizer_class.__name__,
        "optimizer_params": dict(settings.optimizer_params),
        "weight_decay": weight_decay,
        "max_grad_norm": max_grad_norm,
        "batch_size": getattr(train_dataloader, "batch_size", None),
        "use_amp": use_amp,
    }
    infos = [_dataset_info(0, train_dataloader, loss)]
    objective = Objective("objective 0", LoaderStream(train_dataloader), loss)
    _run(model, [objective], settings, evaluator, callback, output_path, hyper, infos, None, False)
