"""``sentence_transformers.training_args`` under sentencekit: the training arguments and the sampler names.

Example:
    >>> from sentencekit.training_args import BatchSamplers, SentenceTransformerTrainingArguments
    >>> args = SentenceTransformerTrainingArguments("out", batch_sampler=BatchSamplers.NO_DUPLICATES)
"""

from __future__ import annotations

from sentencekit.training.arguments import SentenceTransformerTrainingArguments
from sentencekit.types import BatchSamplers, MultiDatasetBatchSamplers

__all__ = ["BatchSamplers", "MultiDatasetBatchSamplers", "SentenceTransformerTrainingArguments"]
