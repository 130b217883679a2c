"""SparseEncoderTrainingArguments: the settings of the sparse encoder trainer."""

from __future__ import annotations

from dataclasses import dataclass

from sentencekit.training.arguments import SentenceTransformerTrainingArguments

__all__ = ["SparseEncoderTrainingArguments"]


@dataclass(frozen=True)
class SparseEncoderTrainingArguments(SentenceTransformerTrainingArguments):
    """How :class:`~sentencekit.sparse_encoder.SparseEncoderTrainer` trains: the bi-encoder's arguments.

    The fields, their defaults and their checks are those of
    :class:`~sentencekit.training.SentenceTransformerTrainingArguments`; a separate class because the sparse
    trainer, like the reference's, takes only these. For SPLADE models ``batch_sampler="no_duplicates"``
    helps in-batch negatives losses as it does for dense ones.

    Example:
        >>> from sentencekit.sparse_encoder import SparseEncoderTrainingArguments
        >>> args = SparseEncoderTrainingArguments("out", num_train_epochs=1, learning_rate=2e-5)
    """
