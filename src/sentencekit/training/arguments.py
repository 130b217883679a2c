"""Training arguments of the trainers: the reference's names, in a small frozen dataclass of our own.

Only the arguments the loop honours exist; an unknown name is an error that lists the valid ones (rather
than being accepted and silently ignored).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from sentencekit.training.samplers import BATCH_SAMPLERS
from sentencekit.training.schedules import schedule_name
from sentencekit.training.settings import MULTI_DATASET_MODES

__all__ = ["CrossEncoderTrainingArguments", "SentenceTransformerTrainingArguments"]

_STRATEGIES = ("no", "steps", "epoch")
# the reference's hashed duplicate check; ours already compares texts through a set
_SAMPLER_ALIASES = {"no_duplicates_hashed": "no_duplicates"}


@dataclass(frozen=True)
class SentenceTransformerTrainingArguments:
    r"""How :class:`~sentencekit.training.SentenceTransformerTrainer` trains.

    Attributes:
        output_dir: Folder of checkpoints (``checkpoint-<step>``), evaluation CSVs and the best model.
        num_train_epochs: Passes over the training data.
        max_steps: Stop after this many optimizer steps (overrides ``num_train_epochs``); -1: no limit.
        per_device_train_batch_size: Rows per training batch.
        per_device_eval_batch_size: Rows per batch when computing the loss on ``eval_dataset``.
        learning_rate: Peak learning rate of AdamW.
        weight_decay: AdamW weight decay (not applied to biases and LayerNorm weights).
        warmup_ratio: Share of all optimizer steps spent warming up linearly from 0.
        warmup_steps: Warm-up in optimizer steps; when positive it wins over ``warmup_ratio``.
        lr_scheduler_type: ``"linear"``, ``"cosine"``, ``"cosine_with_restarts"``, ``"constant"``,
            ``"constant_with_warmup"`` (or the ``fit`` names such as ``"warmuplinear"``).
        seed: Seeds the random generators and every shuffle; the same seed gives the same run.
        eval_strategy: ``"no"``, ``"steps"`` (every ``eval_steps``) or ``"epoch"``.
        eval_steps: Optimizer steps between evaluations; defaults to ``logging_steps``.
        save_strategy: ``"no"``, ``"steps"`` (every ``save_steps``) or ``"epoch"``: when to write checkpoints.
        save_steps: Optimizer steps between checkpoints.
        save_total_limit: Checkpoints to keep (the oldest are deleted); ``None`` keeps all.
        load_best_model_at_end: Keep the best evaluated model in ``output_dir/best-model`` and load it
            back when training ends.
        metric_for_best_model: Metric deciding "best" (e.g. ``"eval_sts-dev_spearman_cosine"``); default: the
            evaluator's primary metric, else ``eval_loss``.
        greater_is_better: Direction of that metric; default: the evaluator's, lower for losses.
        gradient_accumulation_steps: Batches per optimizer step.
        max_grad_norm: Clip the gradient norm to this (0 disables clipping).
        bf16: bf16 autocast (CUDA, or CPUs with bf16 support).
        fp16: fp16 autocast with loss scaling (CUDA only).
        batch_sampler: ``"batch_sampler"``, ``"no_duplicates"`` or ``"group_by_label"``, or a member of
            :class:`~sentencekit.training_args.BatchSamplers` (``"no_duplicates_hashed"`` is read as
            ``"no_duplicates"``).
        multi_dataset_batch_sampler: ``"proportional"`` or ``"round_robin"`` for several datasets, or a
            member of :class:`~sentencekit.training_args.MultiDatasetBatchSamplers`.
        prompts: A prompt for every text column, ``{column: prompt}``, ``{dataset: prompt}`` or
            ``{dataset: {column: prompt}}``; prepended before tokenizing.
        router_mapping: The :class:`~sentencekit.modules.Router` route (task) of each text column, in the
            shapes ``prompts`` takes, e.g. ``{"question": "query", "answer": "document"}``; columns without
            one take the Router's default route. Models without a Router ignore it.
        learning_rate_mapping: ``{regex: learning_rate}``: parameters whose name matches a pattern
            (``re.search``, first match wins) train at that rate instead of ``learning_rate``. Names are as
            the reference's trainer sees them, ``model.`` and the model's parameter name, e.g.
            ``{r"sub_modules\.query\.0\.weight": 1e-3}`` for an inference-free SPLADE model's query table.
        dataloader_drop_last: Drop each pass's last, smaller batch.
        logging_steps: Optimizer steps between loss log lines.
        disable_tqdm: Hide the progress bar.
        gradient_checkpointing: Recompute the encoder's activations in the backward pass (less memory, more
            compute; the loss and gradients are unchanged).

    Raises:
        TypeError: For an argument name that does not exist (the message lists the valid ones).
        ValueError: For a value out of range.
    """

    output_dir: str
    num_train_epochs: int = 3
    max_steps: int = -1
    per_device_train_batch_size: int = 8
    per_device_eval_batch_size: int = 8
    # The Hugging Face Trainer's defaults, so that a run ported from the reference behaves the same.
    learning_rate: float = 5e-5
    weight_decay: float = 0.0
    warmup_ratio: float = 0.0
    warmup_steps: int = 0
    lr_scheduler_type: str = "linear"
    seed: int = 42
    eval_strategy: str = "no"
    eval_steps: int | None = None
    save_strategy: str = "steps"
    save_steps: int = 500
    save_total_limit: int | None = None
    load_best_model_at_end: bool = False
    metric_for_best_model: str | None = None
    greater_is_better: bool | None = None
    gradient_accumulation_steps: int = 1
    max_grad_norm: float = 1.0
    bf16: bool = False
    fp16: bool = False
    batch_sampler: str = "batch_sampler"
    multi_dataset_batch_sampler: str = "proportional"
    prompts: str | Mapping[str, Any] | None = None
    router_mapping: str | Mapping[str, Any] | None = None
    learning_rate_mapping: Mapping[str, float] | None = None
    dataloader_drop_last: bool = False
    # Frequent enough to follow a short fine-tuning run (the Trainer's 500 often logs nothing at all).
    logging_steps: int = 50
    disable_tqdm: bool = False
    gradient_checkpointing: bool = False

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        """Reject unknown argument names before the dataclass ``__init__`` sees them."""
        valid = [f.name for f in fields(cls)]
        unknown = sorted(set(kwargs) - set(valid))
        if unknown:
            raise TypeError(
                f"{cls.__name__} got unknown argument(s) {unknown}; valid arguments: {', '.join(valid)}."
            )
        return super().__new__(cls)

    def __post_init__(self) -> None:
        if not str(self.output_dir):
            raise ValueError("output_dir must name a folder.")
        epochs: Any = self.num_train_epochs
        if isinstance(epochs, float) and epochs.is_integer():
            object.__setattr__(self, "num_train_epochs", int(epochs))  # the reference's 1.0
        for name in ("num_train_epochs", "per_device_train_batch_size", "per_device_eval_batch_size"):
            _require(name, getattr(self, name), minimum=1)
        for name in ("gradient_accumulation_steps", "save_steps", "logging_steps"):
            _require(name, getattr(self, name), minimum=1)
        _require("warmup_steps", self.warmup_steps, minimum=0)
        if self.max_steps != -1:
            _require("max_steps", self.max_steps, minimum=1)
        if self.eval_steps is not None:
            _require("eval_steps", self.eval_steps, minimum=1)
        if self.save_total_limit is not None:
            _require("save_total_limit", self.save_total_limit, minimum=1)
        schedule_name(self.lr_scheduler_type)
        _choice("eval_strategy", self.eval_strategy, _STRATEGIES)
        _choice("save_strategy", self.save_strategy, _STRATEGIES)
        # the reference's enums (str subclasses) are kept as their plain values, which the model card writes
        sampler = str(self.batch_sampler) if isinstance(self.batch_sampler, str) else self.batch_sampler
        object.__setattr__(self, "batch_sampler", _SAMPLER_ALIASES.get(sampler, sampler))
        if isinstance(self.multi_dataset_batch_sampler, str):
            object.__setattr__(self, "multi_dataset_batch_sampler", str(self.multi_dataset_batch_sampler))
        _choice("batch_sampler", self.batch_sampler, BATCH_SAMPLERS)
        _choice("multi_dataset_batch_sampler", self.multi_dataset_batch_sampler, MULTI_DATASET_MODES)
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ValueError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}.")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}.")
        if self.max_grad_norm < 0:
            raise ValueError(f"max_grad_norm must be >= 0 (0 disables clipping), got {self.max_grad_norm}.")
        if self.bf16 and self.fp16:
            raise ValueError("Choose one of bf16 and fp16, not both.")
        if self.load_best_model_at_end and self.eval_strategy == "no":
            raise ValueError(
                'load_best_model_at_end needs evaluations: set eval_strategy to "steps" or "epoch".'
            )

    @property
    def precision(self) -> str:
        """``"fp16"``, ``"bf16"`` or ``"fp32"``."""
        return "fp16" if self.fp16 else "bf16" if self.bf16 else "fp32"

    def to_dict(self) -> dict[str, Any]:
        """The arguments as a plain dict (for the model card)."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class CrossEncoderTrainingArguments(SentenceTransformerTrainingArguments):
    """How :class:`~sentencekit.training.CrossEncoderTrainer` trains: the bi-encoder's arguments."""


def _require(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")


def _choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}.")
