"""``sentence_transformers.cross_encoder.training_args`` under sentencekit: the cross-encoder's arguments."""

from __future__ import annotations

from sentencekit.training.arguments import CrossEncoderTrainingArguments

__all__ = ["CrossEncoderTrainingArguments"]
