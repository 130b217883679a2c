"""``sentencekit.models``: the module classes under the import path sentence-transformers users know."""

from __future__ import annotations

from sentencekit.modules import (
    Dense,
    LayerNorm,
    Module,
    Normalize,
    Pooling,
    Transformer,
    WeightedLayerPooling,
)

__all__ = ["Dense", "LayerNorm", "Module", "Normalize", "Pooling", "Transformer", "WeightedLayerPooling"]
