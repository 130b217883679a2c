"""The trainers: train a model on column datasets with one or more losses.

Example:
    >>> from sentencekit import SentenceTransformer
    >>> from sentencekit.losses import CoSENTLoss
    >>> from sentencekit.training import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    >>> model = SentenceTransformer("all-MiniLM-L6-v2")
    >>> data = {"sentence1": ["A man eats.", ...], "sentence2": ["Someone eats.", ...], "score": [0.9, ...]}
    >>> args = SentenceTransformerTrainingArguments("out", num_train_epochs=1, warmup_ratio=0.1)
    >>> trainer = SentenceTransformerTrainer(model, args, train_dataset=data, loss=CoSENTLoss(model))
    >>> trainer.train()  # doctest: +SKIP
    >>> model.save("out/final")  # writes README.md, the model card
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from torch import nn

from sentencekit.errors import InvalidInputError
from sentencekit.training.arguments import SentenceTransformerTrainingArguments
from sentencekit.training.checkpoints import latest_checkpoint
from sentencekit.training.collate import BiEncoderCollator, CrossEncoderCollator
from sentencekit.training.columns import ColumnData, as_datasets, resolve_per_column
from sentencekit.training.evaluation import EvalLoss, EvaluationRunner
from sentencekit.training.loop import Objective, TrainingLoop
from sentencekit.training.model_card import DatasetInfo, TrainingRecord, loss_config
from sentencekit.training.samplers import label_grouped_batches, no_duplicate_batches, shuffled_batches
from sentencekit.training.settings import LoopSettings
from sentencekit.training.state import TrainingState
from sentencekit.training.streams import PlanStream, seeded_generator

__all__ = ["CrossEncoderTrainer", "SentenceTransformerTrainer"]

logger = logging.getLogger(__name__)


class SentenceTransformerTrainer:
    """Trains a :class:`~sentencekit.SentenceTransformer` on column datasets.

    Args:
        model: The model to train (in place).
        args: Training arguments; default: ``SentenceTransformerTrainingArguments("checkpoints")``.
        train_dataset: A ``datasets.Dataset``, a dict of column lists or a list of row dicts, or a dict of
            these for several datasets. Text columns go to the loss in order; a ``label``/``score`` column is
            the label.
        eval_dataset: Held-out data in the same forms; its loss is reported as ``eval_loss``.
        loss: A loss built on ``model``, or ``{dataset name: loss}``; default ``CoSENTLoss`` (bi-encoder)
            or ``BinaryCrossEntropyLoss`` (cross-encoder).
        evaluator: Evaluator run at each evaluation (its metrics are reported with an ``eval_`` prefix).
        callbacks: Objects with some of the :class:`~sentencekit.training.TrainerCallback` methods.
    """

    model_class = "SentenceTransformer"
    _default_loss = ("sentencekit.losses", "CoSENTLoss")

    def __init__(
        self,
        model: Any = None,
        args: SentenceTransformerTrainingArguments | None = None,
        train_dataset: Any = None,
        eval_dataset: Any = None,
        loss: nn.Module | Mapping[str, nn.Module] | None = None,
        evaluator: Any = None,
        callbacks: Sequence[Any] | None = None,
    ) -> None:
        if model is None:
            raise ValueError(f"{type(self).__name__} needs a model.")
        if train_dataset is None:
            raise ValueError(f"{type(self).__name__} needs a train_dataset.")
        self.model = model
        self.args = args if args is not None else self._default_args()
        self.train_datasets = as_datasets(train_dataset, "train")
        self.eval_datasets = as_datasets(eval_dataset, "eval") if eval_dataset is not None else {}
        self._check_list_columns()
        self.losses = self._losses_by_dataset(loss)
        self.evaluator = evaluator
        self.callbacks = list(callbacks or [])
        self.state: TrainingState | None = None

    def _default_args(self) -> SentenceTransformerTrainingArguments:
        return SentenceTransformerTrainingArguments("checkpoints")

    def _check_list_columns(self) -> None:
        """Columns of document lists feed the cross-encoder's listwise losses only."""
        if self.model_class == "CrossEncoder":
            return
        for data in [*self.train_datasets.values(), *self.eval_datasets.values()]:
            if data.list_columns:
                raise InvalidInputError(
                    f"Dataset {data.name!r}: column {data.list_columns[0]!r} holds lists of texts, which "
                    "only the cross-encoder's listwise losses read (CrossEncoderTrainer); a bi-encoder takes "
                    "one text per cell."
                )

    def _losses_by_dataset(self, loss: Any) -> dict[str, nn.Module]:
        names = list(self.train_datasets)
        if loss is None:
            module, name = self._default_loss
            try:
                loss = getattr(importlib.import_module(module), name)(self.model)
            except (ImportError, AttributeError):
                raise ValueError(f"Pass a loss: the default {module}.{name} is not available.") from None
            logger.info("No loss given: training with %s.", name)
        if isinstance(loss, Mapping):
            if set(loss) != set(names):
                raise ValueError(
                    f"The losses are keyed {sorted(loss)} but the datasets are {sorted(names)}; give one "
                    "loss per dataset name, or a single loss for all."
                )
            return {name: loss[name] for name in names}
        if not isinstance(loss, nn.Module):
            raise ValueError(f"loss must be a torch.nn.Module built on the model, got {type(loss).__name__}.")
        return dict.fromkeys(names, loss)

    # --- batches ------------------------------------------------------------------------------------------

    def _collator(self, data: ColumnData, datasets: Sequence[str]) -> Callable[..., Any]:
        prompts = resolve_per_column(self.args.prompts, data.name, data.columns, datasets)
        if self.model_class == "CrossEncoder":
            return CrossEncoderCollator(prompts, label_lists=bool(data.list_columns))
        routes = resolve_per_column(self.args.router_mapping, data.name, data.columns, datasets)
        return BiEncoderCollator(self.model, prompts, routes)

    def _stream(self, index: int, data: ColumnData) -> PlanStream:
        args = self.args
        collate = self._collator(data, list(self.train_datasets))
        kind, size, drop = args.batch_sampler, args.per_device_train_batch_size, args.dataloader_drop_last
        row_texts = data.row_texts() if kind == "no_duplicates" else []
        if kind == "group_by_label" and data.labels is None:
            raise ValueError(f"batch_sampler='group_by_label' needs a label column in dataset {data.name!r}.")

        def plan(epoch: int, pass_index: int) -> list[list[int]]:
            generator = seeded_generator(args.seed, index, epoch, pass_index)
            if kind == "no_duplicates":
                return no_duplicate_batches(row_texts, size, generator, drop)
            if kind == "group_by_label":
                assert data.labels is not None
                return label_grouped_batches(data.labels, size, generator, drop)
            return shuffled_batches(len(data), size, generator, drop)

        return PlanStream(plan, lambda rows: collate(*data.take(rows)))

    def _eval_losses(self) -> list[EvalLoss]:
        items = []
        names = list(self.eval_datasets)
        for name, data in self.eval_datasets.items():
            loss = self.losses[name] if name in self.losses else next(iter(self.losses.values()))
            collate = self._collator(data, names)
            batches = shuffled_batches(len(data), self.args.per_device_eval_batch_size, None)

            def produce(data: ColumnData = data, collate: Any = collate, batches: Any = batches) -> Any:
                return (collate(*data.take(rows)) for rows in batches)

            items.append(EvalLoss(name if len(names) > 1 else "", produce, loss))
        return items

    # --- training -----------------------------------------------------------------------------------------

    def settings(self) -> LoopSettings:
        """The loop settings these arguments translate to."""
        a, out = self.args, Path(self.args.output_dir)
        evaluating = a.eval_strategy != "no" and (self.evaluator is not None or bool(self.eval_datasets))
        return LoopSettings(
            epochs=a.num_train_epochs,
            max_steps=a.max_steps if a.max_steps > 0 else None,
            scheduler=a.lr_scheduler_type,
            warmup_steps=a.warmup_steps,
            warmup_ratio=a.warmup_ratio,
            optimizer_params={"lr": a.learning_rate},
            learning_rate_mapping=dict(a.learning_rate_mapping or {}),
            weight_decay=a.weight_decay,
            max_grad_norm=a.max_grad_norm or None,
            gradient_accumulation_steps=a.gradient_accumulation_steps,
            precision=a.precision,
            seed=a.seed,
            eval_steps=(a.eval_steps or a.logging_steps) if evaluating and a.eval_strategy == "steps" else 0,
            eval_at_epoch_end=evaluating and a.eval_strategy == "epoch",
            best_model_dir=out / "best-model" if a.load_best_model_at_end else None,
            load_best_model_at_end=a.load_best_model_at_end,
            metric_for_best_model=a.metric_for_best_model,
            greater_is_better=a.greater_is_better,
            checkpoint_dir=out if a.save_strategy != "no" else None,
            save_steps=a.save_steps if a.save_strategy == "steps" else 0,
            save_at_epoch_end=a.save_strategy == "epoch",
            save_total_limit=a.save_total_limit or 0,
            multi_dataset=a.multi_dataset_batch_sampler,
            eval_output_dir=out / "eval",
            show_progress_bar=not a.disable_tqdm,
            logging_steps=a.logging_steps,
        )

    def _record(self) -> TrainingRecord:
        datasets = [
            DatasetInfo(
                name=name,
                rows=len(data),
                columns=list(data.columns),
                label_column=data.label_column,
                loss=type(self.losses[name]).__name__,
                loss_config=loss_config(self.losses[name]),
            )
            for name, data in self.train_datasets.items()
        ]
        hyper = {k: v for k, v in self.args.to_dict().items() if v is not None and k != "output_dir"}
        base = getattr(self.model, "model_id", None)
        return TrainingRecord(self.model_class, base, datasets, hyper)

    def train(self, resume_from_checkpoint: bool | str | Path | None = None) -> TrainingState:
        """Train the model in place and return the final :class:`~sentencekit.training.TrainingState`.

        Args:
            resume_from_checkpoint: A ``checkpoint-<step>`` folder to continue from, or ``True`` for the
                latest one in ``args.output_dir``. The run then ends exactly as an uninterrupted one would.

        Raises:
            FileNotFoundError: If ``True`` is given and ``output_dir`` holds no checkpoint.
        """
        resume: Path | None = None
        if resume_from_checkpoint is True:
            resume = latest_checkpoint(self.args.output_dir)
            if resume is None:
                raise FileNotFoundError(
                    f"No checkpoint-<step> folder to resume from in {self.args.output_dir}."
                )
        elif resume_from_checkpoint:
            resume = Path(resume_from_checkpoint)
        if self.args.gradient_checkpointing:
            self.model.activation_checkpointing_enable()
        objectives = [
            Objective(name, self._stream(index, data), self.losses[name])
            for index, (name, data) in enumerate(self.train_datasets.items())
        ]
        settings = self.settings()
        evaluation = EvaluationRunner(
            evaluator=self.evaluator,
            output_path=settings.eval_output_dir,
            prefix="eval_",
            eval_losses=self._eval_losses(),
            metric_for_best_model=self.args.metric_for_best_model,
            greater_is_better=self.args.greater_is_better,
        )
        record = self._record()
        self.model.training_record = record
        loop = TrainingLoop(self.model, objectives, settings, evaluation, self.callbacks, record)
        self.state = loop.run(resume)
        return self.state

    def evaluate(self) -> dict[str, float]:
        """Run the evaluator and the held-out losses once, now; returns the metrics."""
        evaluation = EvaluationRunner(
            evaluator=self.evaluator,
            output_path=Path(self.args.output_dir) / "eval",
            prefix="eval_",
            eval_losses=self._eval_losses(),
        )
        metrics = evaluation(self.model, -1, -1)
        record = getattr(self.model, "training_record", None)
        if isinstance(record, TrainingRecord):
            record.metrics = dict(metrics)
        return metrics

    def save_model(self, output_dir: str | Path | None = None) -> None:
        """Save the model (with its model card) to ``output_dir`` (default: ``args.output_dir``)."""
        self.model.save(str(output_dir if output_dir is not None else self.args.output_dir))


class CrossEncoderTrainer(SentenceTransformerTrainer):
    """Trains a :class:`~sentencekit.cross_encoder.CrossEncoder` on column datasets.

    The arguments are those of :class:`SentenceTransformerTrainer`. The loss receives the text columns as
    strings and tokenizes the pairs with the cross-encoder (e.g. ``BinaryCrossEntropyLoss(model)`` on
    ``(query, passage, label)`` rows).
    """

    model_class = "CrossEncoder"
    _default_loss = ("sentencekit.cross_encoder.losses", "BinaryCrossEntropyLoss")

    def _default_args(self) -> SentenceTransformerTrainingArguments:
        from sentencekit.training.arguments import CrossEncoderTrainingArguments

        return CrossEncoderTrainingArguments("checkpoints")
