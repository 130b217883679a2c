"""Model building blocks; ``sentencekit.models`` re-exports them under the reference's names."""

from __future__ import annotations

from sentencekit.modules.base import Module
from sentencekit.modules.dense import Dense
from sentencekit.modules.input_module import InputModule
from sentencekit.modules.mlm_transformer import MLMTransformer
from sentencekit.modules.normalize import LayerNorm, Normalize
from sentencekit.modules.pooling import Pooling
from sentencekit.modules.router import Asym, Router
from sentencekit.modules.sparse_auto_encoder import SparseAutoEncoder
from sentencekit.modules.sparse_static_embedding import SparseStaticEmbedding
from sentencekit.modules.splade_pooling import SpladePooling
from sentencekit.modules.static_embedding import StaticEmbedding
from sentencekit.modules.transformer import Transformer
from sentencekit.modules.weighted_layer_pooling import WeightedLayerPooling

__all__ = [
    "Asym",
    "Dense",
    "InputModule",
    "LayerNorm",
    "MLMTransformer",
    "Module",
    "Normalize",
    "Pooling",
    "Router",
    "SparseAutoEncoder",
    "SparseStaticEmbedding",
    "SpladePooling",
    "StaticEmbedding",
    "Transformer",
    "WeightedLayerPooling",
]

# Class name (last part of a modules.json "type", whatever package prefix it carries) -> our class.
MODULE_TYPES: dict[str, type[Module]] = {
    cls.__name__: cls
    for cls in (
        Dense,
        LayerNorm,
        MLMTransformer,
        Normalize,
        Pooling,
        Router,
        SparseAutoEncoder,
        SparseStaticEmbedding,
        SpladePooling,
        StaticEmbedding,
        Transformer,
        WeightedLayerPooling,
    )
}
# the Router's older name, in folders written by sentence-transformers < 5
MODULE_TYPES["Asym"] = Router
