"""Model building blocks; ``sentencekit.models`` re-exports them under the reference's names."""

from __future__ import annotations

from sentencekit.modules.base import Module
from sentencekit.modules.dense import Dense
from sentencekit.modules.input_module import InputModule
from sentencekit.modules.normalize import LayerNorm, Normalize
from sentencekit.modules.pooling import Pooling
from sentencekit.modules.static_embedding import StaticEmbedding
from sentencekit.modules.transformer import Transformer
from sentencekit.modules.weighted_layer_pooling import WeightedLayerPooling

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

# Class name (last part of a modules.json "type", whatever package prefix it carries) -> our class.
MODULE_TYPES: dict[str, type[Module]] = {
    cls.__name__: cls
    for cls in (Dense, LayerNorm, Normalize, Pooling, StaticEmbedding, Transformer, WeightedLayerPooling)
}
