"""``sentence_transformers.cross_encoder.trainer`` under sentencekit: the cross-encoder trainer."""

from __future__ import annotations

from sentencekit.training.trainer import CrossEncoderTrainer

__all__ = ["CrossEncoderTrainer"]
