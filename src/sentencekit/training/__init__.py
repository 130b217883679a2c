"""Fine-tuning: one training loop behind ``fit``, the trainers and ``sentencekit train``.

======================================  ==============================================================
name                                    what it is
======================================  ==============================================================
:class:`SentenceTransformerTrainer`     trains a bi-encoder on column datasets (one or several)
:class:`CrossEncoderTrainer`            the same for a cross-encoder
:class:`SentenceTransformerTrainingArguments` / :class:`CrossEncoderTrainingArguments`
                                        the trainers' settings (the reference's names)
:class:`InputExample`                   a row for ``SentenceTransformer.fit`` / ``CrossEncoder.fit``
:class:`TrainerCallback`                hooks into the loop (log, evaluate, save, stop early)
:class:`TrainingState`                  where a run stands
======================================  ==============================================================

See ``docs/training.md``. Importing this package is cheap; torch loads with the first name used from it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "CrossEncoderTrainer",
    "CrossEncoderTrainingArguments",
    "InputExample",
    "SentenceTransformerTrainer",
    "SentenceTransformerTrainingArguments",
    "TrainerCallback",
    "TrainingState",
]

_LAZY = {
    "CrossEncoderTrainer": "sentencekit.training.trainer",
    "CrossEncoderTrainingArguments": "sentencekit.training.arguments",
    "InputExample": "sentencekit.training.input_example",
    "SentenceTransformerTrainer": "sentencekit.training.trainer",
    "SentenceTransformerTrainingArguments": "sentencekit.training.arguments",
    "TrainerCallback": "sentencekit.training.state",
    "TrainingState": "sentencekit.training.state",
}

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from sentencekit.training.arguments import (
        CrossEncoderTrainingArguments,
        SentenceTransformerTrainingArguments,
    )
    from sentencekit.training.input_example import InputExample
    from sentencekit.training.state import TrainerCallback, TrainingState
    from sentencekit.training.trainer import CrossEncoderTrainer, SentenceTransformerTrainer


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'sentencekit.training' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
