"""WeightedLayerPooling: a learned weighted average of the encoder's hidden layers, per token."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from sentencekit.modules.base import Features, Module

__all__ = ["WeightedLayerPooling"]


class WeightedLayerPooling(Module):
    """Replaces ``token_embeddings`` by a weighted mean of layers ``layer_start..num_hidden_layers``.

    Needs every layer's output: a model that contains this module asks its Transformer for hidden states.

    Args:
        embedding_dimension: Width of the token embeddings.
        num_hidden_layers: Number of encoder layers (the embedding layer is layer 0).
        layer_start: First layer included in the average.
        layer_weights: Initial weights, one per included layer (default all ones).
    """

    config_keys: ClassVar[tuple[str, ...]] = ("embedding_dimension", "num_hidden_layers", "layer_start")
    reference_type: ClassVar[str] = "sentence_transformers.models.WeightedLayerPooling"
    needs_hidden_states: ClassVar[bool] = True

    def __init__(
        self,
        embedding_dimension: int,
        num_hidden_layers: int = 12,
        layer_start: int = 4,
        layer_weights: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        self.embedding_dimension = int(embedding_dimension)
        self.num_hidden_layers = int(num_hidden_layers)
        self.layer_start = int(layer_start)
        count = self.num_hidden_layers + 1 - self.layer_start
        if count <= 0:
            raise ValueError(f"layer_start={layer_start} leaves no layer out of {num_hidden_layers}.")
        init = layer_weights if layer_weights is not None else torch.ones(count, dtype=torch.float)
        self.layer_weights = nn.Parameter(init)

    def forward(self, features: Features) -> Features:
        """Average the selected layers into ``token_embeddings``."""
        layers = torch.stack(tuple(features["all_layer_embeddings"]))[self.layer_start :]
        weights = self.layer_weights.view(-1, 1, 1, 1)
        features["token_embeddings"] = (weights * layers).sum(dim=0) / self.layer_weights.sum()
        return features

    def get_config(self) -> dict[str, Any]:
        """Legacy key name for the width, which every reference version reads."""
        return {
            "word_embedding_dimension": self.embedding_dimension,
            "num_hidden_layers": self.num_hidden_layers,
            "layer_start": self.layer_start,
        }

    @classmethod
    def config_from_file(cls, config: dict[str, Any]) -> dict[str, Any]:
        """Accept both ``word_embedding_dimension`` (legacy) and ``embedding_dimension`` (v6)."""
        config = dict(config)
        if "word_embedding_dimension" in config:
            config["embedding_dimension"] = config.pop("word_embedding_dimension")
        return super().config_from_file(config)
