"""``sentencekit.models``: the module classes under the import path sentence-transformers users know."""

from __future__ import annotations

from sentencekit.modules import (
    Dense,
    InputModule,
    LayerNorm,
    Module,
    Normalize,
    Pooling,
    StaticEmbedding,
    Transformer,
    WeightedLayerPooling,
)

__all__ = [
    "Dense",
    "InputModule",
    "LayerNorm",
    "Module",
    "Normalize",
    "Pooling",
    "StaticEmbedding",
    "Transformer",
    "WeightedLayerPooling",
]
