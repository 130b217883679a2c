"""``sentence_transformers.cross_encoder.evaluation`` under sentencekit: the cross-encoder evaluators.

They live in :mod:`sentencekit.evaluation` with the bi-encoder ones; this module gives them the reference's
import path as well.
"""

from __future__ import annotations

from sentencekit.evaluation.cross_encoder_classification import CrossEncoderClassificationEvaluator
from sentencekit.evaluation.cross_encoder_correlation import CrossEncoderCorrelationEvaluator
from sentencekit.evaluation.cross_encoder_reranking import CrossEncoderRerankingEvaluator

__all__ = [
    "CrossEncoderClassificationEvaluator",
    "CrossEncoderCorrelationEvaluator",
    "CrossEncoderRerankingEvaluator",
]
