"""SparseEncoderTrainer: the bi-encoder trainer for SparseEncoder models, with SPLADE's defaults.

Example:
    >>> from sentencekit.sparse_encoder import SparseEncoder, losses
    >>> from sentencekit.sparse_encoder.trainer import SparseEncoderTrainer
    >>> from sentencekit.sparse_encoder.training_args import SparseEncoderTrainingArguments
    >>> model = SparseEncoder("distilbert/distilbert-base-uncased")  # doctest: +SKIP
    >>> data = {"query": ["what is splade", ...], "passage": ["SPLADE is a sparse retriever ...", ...]}
    >>> loss = losses.SpladeLoss(
    ...     model, losses.SparseMultipleNegativesRankingLoss(model),
    ...     document_regularizer_weight=3e-5, query_regularizer_weight=5e-5)  # doctest: +SKIP
    >>> args = SparseEncoderTrainingArguments("out", num_train_epochs=1, batch_sampler="no_duplicates")
    >>> SparseEncoderTrainer(model, args, train_dataset=data, loss=loss).train()  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from sentencekit.sparse_encoder.callbacks import SpladeRegularizerWeightSchedulerCallback
from sentencekit.sparse_encoder.losses.ranking import SparseMultipleNegativesRankingLoss
from sentencekit.sparse_encoder.losses.splade import SpladeLoss
from sentencekit.sparse_encoder.training_args import SparseEncoderTrainingArguments
from sentencekit.training.arguments import SentenceTransformerTrainingArguments
from sentencekit.training.trainer import SentenceTransformerTrainer

__all__ = ["SparseEncoderTrainer"]

logger = logging.getLogger(__name__)

# The reference's default regularization: sensitive values, worth tuning for each task.
DEFAULT_QUERY_REGULARIZER_WEIGHT = 5e-5
DEFAULT_DOCUMENT_REGULARIZER_WEIGHT = 3e-5


class SparseEncoderTrainer(SentenceTransformerTrainer):
    """Trains a :class:`~sentencekit.sparse_encoder.SparseEncoder` on column datasets.

    It is :class:`~sentencekit.training.SentenceTransformerTrainer` with what the reference's sparse trainer
    changes:

    * ``args`` must be :class:`~sentencekit.sparse_encoder.SparseEncoderTrainingArguments`;
    * without a ``loss`` it trains with ``SpladeLoss(SparseMultipleNegativesRankingLoss)`` and regularizer
      weights 5e-5 (query) and 3e-5 (document);
    * every :class:`~sentencekit.sparse_encoder.losses.SpladeLoss` gets a
      :class:`~sentencekit.sparse_encoder.callbacks.SpladeRegularizerWeightSchedulerCallback` (quadratic
      ramp over the first third of training; a warning says so) unless ``callbacks`` already holds one
      for it, which then runs first. Each log line carries the current regularizer weights.

    Args:
        model: The SparseEncoder to train (in place).
        args: Training arguments; default: ``SparseEncoderTrainingArguments("checkpoints")``.
        train_dataset: As in :class:`~sentencekit.training.SentenceTransformerTrainer`.
        eval_dataset: As in :class:`~sentencekit.training.SentenceTransformerTrainer`.
        loss: A loss built on ``model`` (usually a SpladeLoss or CSRLoss), or ``{dataset name: loss}``.
        evaluator: Evaluator run at each evaluation.
        callbacks: Objects with some of the :class:`~sentencekit.training.TrainerCallback` methods.

    Raises:
        ValueError: If ``args`` are not SparseEncoderTrainingArguments.
    """

    model_class = "SparseEncoder"

    def __init__(
        self,
        model: Any = None,
        args: SparseEncoderTrainingArguments | None = None,
        train_dataset: Any = None,
        eval_dataset: Any = None,
        loss: nn.Module | Mapping[str, nn.Module] | None = None,
        evaluator: Any = None,
        callbacks: Sequence[Any] | None = None,
    ) -> None:
        if args is not None and not isinstance(args, SparseEncoderTrainingArguments):
            raise ValueError(
                f"SparseEncoderTrainer takes SparseEncoderTrainingArguments, got {type(args).__name__}; "
                "build them with the same fields: "
                "sentencekit.sparse_encoder.SparseEncoderTrainingArguments(output_dir, ...)."
            )
        super().__init__(
            model,
            args,
            train_dataset=train_dataset,
            eval_dataset=eval_dataset,
            loss=loss,
            evaluator=evaluator,
            callbacks=callbacks,
        )
        self._schedule_regularizer_weights()

    def _default_args(self) -> SentenceTransformerTrainingArguments:
        return SparseEncoderTrainingArguments("checkpoints")

    def _losses_by_dataset(self, loss: Any) -> dict[str, nn.Module]:
        if loss is None:
            logger.info(
                "No loss given: training with SpladeLoss(SparseMultipleNegativesRankingLoss), "
                "query_regularizer_weight=%g and document_regularizer_weight=%g; these weights are "
                "sensitive, tune them for your task.",
                DEFAULT_QUERY_REGULARIZER_WEIGHT,
                DEFAULT_DOCUMENT_REGULARIZER_WEIGHT,
            )
            loss = SpladeLoss(
                self.model,
                SparseMultipleNegativesRankingLoss(self.model),
                document_regularizer_weight=DEFAULT_DOCUMENT_REGULARIZER_WEIGHT,
                query_regularizer_weight=DEFAULT_QUERY_REGULARIZER_WEIGHT,
            )
        return super()._losses_by_dataset(loss)

    def _schedule_regularizer_weights(self) -> None:
        """Put one weight scheduler per SpladeLoss at the front of the callbacks, adding missing ones."""
        splade_losses = {id(loss): loss for loss in self.losses.values() if isinstance(loss, SpladeLoss)}
        schedulers = []
        for loss in splade_losses.values():
            given = [
                c
                for c in self.callbacks
                if isinstance(c, SpladeRegularizerWeightSchedulerCallback) and c.loss is loss
            ]
            if given:
                schedulers.append(given[0])
                self.callbacks.remove(given[0])
            else:
                logger.warning(
                    "SpladeLoss without a SpladeRegularizerWeightSchedulerCallback: adding one, which raises "
                    "the regularizer weights from 0 to their values over the first third of training. Pass "
                    "your own in callbacks to change that."
                )
                schedulers.append(SpladeRegularizerWeightSchedulerCallback(loss))
        self.callbacks[:0] = schedulers
