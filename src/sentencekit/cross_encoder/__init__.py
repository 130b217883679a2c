"""Cross-encoders: score text pairs jointly, rerank retrieved candidates, classify zero-shot with NLI models.

Switch from sentence-transformers by changing one import::

    from sentencekit.cross_encoder import CrossEncoder

    model = CrossEncoder("cross-encoder/ms-marco-MiniLM-L6-v2")
    scores = model.predict([("How many people live in Berlin?", "Berlin has 3.5 million people.")])
    ranked = model.rank("How many people live in Berlin?", ["Berlin is green.", "Berlin has 3.5M people."])

=============================================  ===============================================================
name                                           what it does
=============================================  ===============================================================
:class:`CrossEncoder`                          ``predict`` scores pairs, ``rank`` orders documents for a query
:func:`retrieve_and_rerank`                    bi-encoder top-k (over embeddings or a
                                               :class:`~sentencekit.Index`), then cross-encoder rescoring
:func:`zero_shot_classify`                     labels -> hypotheses scored by an NLI cross-encoder
:mod:`~sentencekit.cross_encoder.losses`       training losses (imported on first use)
:class:`CrossEncoderTrainer`                   fine-tuning, with :class:`CrossEncoderTrainingArguments`
                                               (both imported on first use)
:mod:`~sentencekit.cross_encoder.evaluation`   the cross-encoder evaluators, at the reference's import path
=============================================  ===============================================================
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from sentencekit.cross_encoder.model import CrossEncoder
from sentencekit.cross_encoder.rerank import retrieve_and_rerank
from sentencekit.cross_encoder.zero_shot import zero_shot_classify

__all__ = [
    "CrossEncoder",
    "CrossEncoderModelCardData",
    "CrossEncoderTrainer",
    "CrossEncoderTrainingArguments",
    "evaluation",
    "losses",
    "retrieve_and_rerank",
    "zero_shot_classify",
]

# names loaded only when asked for: training pulls in the loop, the losses and the evaluators
_LAZY = {
    "CrossEncoderModelCardData": "sentencekit.model_card",
    "CrossEncoderTrainer": "sentencekit.training.trainer",
    "CrossEncoderTrainingArguments": "sentencekit.training.arguments",
}
_SUBMODULES = ("evaluation", "losses")

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from sentencekit.cross_encoder import evaluation, losses
    from sentencekit.model_card import CrossEncoderModelCardData
    from sentencekit.training.arguments import CrossEncoderTrainingArguments
    from sentencekit.training.trainer import CrossEncoderTrainer


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"sentencekit.cross_encoder.{name}")
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'sentencekit.cross_encoder' has no attribute {name!r}")
