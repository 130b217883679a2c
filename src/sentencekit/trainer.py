"""``sentence_transformers.trainer`` under sentencekit: the bi-encoder trainer (see ``docs/training.md``)."""

from __future__ import annotations

from sentencekit.training.trainer import SentenceTransformerTrainer

__all__ = ["SentenceTransformerTrainer"]
