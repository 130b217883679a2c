"""``sentence_transformers.sparse_encoder`` under sentencekit: sparse (SPLADE) encoders.

:class:`SparseEncoder` maps texts to vocabulary-sized vectors with few non-zero weights, for inverted-index
search and for explaining matches token by token (:meth:`SparseEncoder.decode`).
"""

from __future__ import annotations

from sentencekit.model_card import SparseEncoderModelCardData
from sentencekit.sparse_encoder.model import SparseEncoder
from sentencekit.sparse_encoder.trainer import SparseEncoderTrainer
from sentencekit.sparse_encoder.training_args import SparseEncoderTrainingArguments

__all__ = [
    "SparseEncoder",
    "SparseEncoderModelCardData",
    "SparseEncoderTrainer",
    "SparseEncoderTrainingArguments",
]
