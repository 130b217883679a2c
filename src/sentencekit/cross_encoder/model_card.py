"""``sentence_transformers.cross_encoder.model_card`` under sentencekit: the cross-encoder's card data."""

from __future__ import annotations

from sentencekit.model_card import CrossEncoderModelCardData

__all__ = ["CrossEncoderModelCardData"]
