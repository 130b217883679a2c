"""``sentence_transformers.sparse_encoder.models`` under sentencekit: the modules sparse models use."""

from __future__ import annotations

from sentencekit.modules import (
    Asym,
    Dense,
    InputModule,
    MLMTransformer,
    Module,
    Router,
    SparseAutoEncoder,
    SparseStaticEmbedding,
    SpladePooling,
    Transformer,
)

__all__ = [
    "Asym",
    "Dense",
    "InputModule",
    "MLMTransformer",
    "Module",
    "Router",
    "SparseAutoEncoder",
    "SparseStaticEmbedding",
    "SpladePooling",
    "Transformer",
]
