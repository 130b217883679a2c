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


# fit() arguments that are not hyper-parameters, left out of the model card
_NOT_HYPERPARAMETERS = (
    "model",
    "train_objectives",
    "train_dataloader",
    "evaluator",
    "callback",
    "loss_fct",
    "output_path",
    "show_progress_bar",
    "checkpoint_path",
    "resume_from_checkpoint",
)


def _train_classic(
    model: Any, objectives: list[Objective], infos: list[DatasetInfo], arguments: dict[str, Any]
) -> None:
    """Run the loop with the settings of a ``fit`` call, given that call's arguments (its ``locals()``)."""
    a = arguments
    evaluator, output_path = a["evaluator"], a["output_path"]
    folder = Path(output_path) if output_path else None
    amp_precision = "fp16" if model.device.type == "cuda" else "bf16"
    checkpoints = Path(a["checkpoint_path"]) if a.get("checkpoint_path") else None
    settings = LoopSettings(
        epochs=a["epochs"],
        rounds_per_epoch=a.get("steps_per_epoch") or None,
        scheduler=a["scheduler"],
        warmup_steps=a["warmup_steps"],
        optimizer_class=a["optimizer_class"],
        optimizer_params=dict(a["optimizer_params"] or {"lr": 2e-5}),
        weight_decay=a["weight_decay"],
        max_grad_norm=a["max_grad_norm"] or None,
        precision=amp_precision if a["use_amp"] else "fp32",
        eval_steps=a["evaluation_steps"] if evaluator is not None else 0,
        eval_at_epoch_end=evaluator is not None,
        best_model_dir=folder if a["save_best_model"] and evaluator is not None else None,
        eval_output_dir=folder / "eval" if folder is not None else None,
        checkpoint_dir=checkpoints,
        save_steps=a.get("checkpoint_save_steps", 0) if checkpoints is not None else 0,
        save_total_limit=a.get("checkpoint_save_total_limit") or 0,
        show_progress_bar=a["show_progress_bar"],
    )
    hyper = {k: _plain_value(v) for k, v in a.items() if k not in _NOT_HYPERPARAMETERS}
    hyper["optimizer_params"] = dict(settings.optimizer_params)
    record = TrainingRecord(type(model).__name__, getattr(model, "model_id", None), infos, hyper)
    model.training_record = record
    evaluation = EvaluationRunner(evaluator=evaluator, output_path=settings.eval_output_dir)
    callback = a["callback"]
    callbacks = (
        [_ScoreCallback(callback, evaluation)] if callback is not None and evaluator is not None else []
    )
    resume_from = None
    if a.get("resume_from_checkpoint") and checkpoints is not None:
        resume_from = latest_checkpoint(checkpoints)
        if resume_from is None:
            logger.warning("No checkpoint found in %s: training from the start.", checkpoints)
    state = TrainingLoop(model, objectives, settings, evaluation, callbacks, record).run(resume_from)
    if output_path is not None and (settings.best_model_dir is None or state.best_step is None):
        model.save(output_path)  # no evaluator (or best-model saving off): the final model


def _plain_value(value: Any) -> Any:
    if isinstance(value, type):
        return value.__name__
    if isinstance(value, nn.Module):
        return type(value).__name__
    return value


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
    """Train ``model`` in place with the reference's ``fit`` arguments; this is ``SentenceTransformer.fit``.

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
    arguments = dict(locals())
    pairs = list(train_objectives)
    if not pairs:
        raise ValueError("fit() needs at least one (DataLoader, loss) training objective.")
    objectives = []
    for index, (loader, loss) in enumerate(pairs):
        loader.collate_fn = ExampleCollator(BiEncoderCollator(model))
        objectives.append(Objective(f"objective {index}", LoaderStream(loader), loss))
    arguments["batch_size"] = [getattr(loader, "batch_size", None) for loader, _ in pairs]
    infos = [_dataset_info(i, loader, loss) for i, (loader, loss) in enumerate(pairs)]
    _train_classic(model, objectives, infos, arguments)


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
    """Train ``model`` in place with the reference's ``fit`` arguments; this is ``CrossEncoder.fit``.

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
    arguments = dict(locals())
    if loss_fct is not None and getattr(loss_fct, "model", None) is model:
        loss: nn.Module = loss_fct
    else:
        default = nn.BCEWithLogitsLoss() if model.num_labels == 1 else nn.CrossEntropyLoss()
        loss = LogitsLoss(model, loss_fct if loss_fct is not None else default, activation_fct)
    train_dataloader.collate_fn = ExampleCollator(CrossEncoderCollator())
    arguments["batch_size"] = getattr(train_dataloader, "batch_size", None)
    objective = Objective("objective 0", LoaderStream(train_dataloader), loss)
    _train_classic(model, [objective], [_dataset_info(0, train_dataloader, loss)], arguments)
