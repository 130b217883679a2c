"""``sentencekit.models``: the module classes under the import path sentence-transformers users know."""

from __future__ import annotations

from sentencekit.modules import (
    Asym,
    Dense,
    InputModule,
    LayerNorm,
    Module,
    Normalize,
    Pooling,
    Router,
    StaticEmbedding,
    Transformer,
    WeightedLayerPooling,
)

__all__ = [
    "Asym",
    "Dense",
    "InputModule",
    "LayerNorm",
    "Module",
    "Normalize",
    "Pooling",
    "Router",
    "StaticEmbedding",
    "Transformer",
    "WeightedLayerPooling",
]
