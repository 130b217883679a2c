"""Normalize and LayerNorm: rescale the sentence embedding."""

from __future__ import annotations

from typing import Any, ClassVar

import torch.nn.functional as F
from torch import nn

from sentencekit.errors import ModelFormatError
from sentencekit.modules.base import Features, Module

__all__ = ["LayerNorm", "Normalize"]


class Normalize(Module):
    """Scales ``sentence_embedding`` to unit L2 length, so dot product equals cosine similarity."""

    reference_type: ClassVar[str] = "sentence_transformers.models.Normalize"

    def forward(self, features: Features) -> Features:
        """Normalize ``sentence_embedding`` in place of the features dict."""
        features["sentence_embedding"] = F.normalize(features["sentence_embedding"], p=2, dim=1)
        return features

    @classmethod
    def config_from_file(cls, config: dict[str, Any]) -> dict[str, Any]:
        """The v6 layout writes input/output names; only the sentence embedding is supported."""
        for key, value in config.items():
            if key not in ("module_input_name", "module_output_name") or value != "sentence_embedding":
                raise ModelFormatError(f"Normalize config key {key}={value!r} is not supported.")
        return {}

    def save(self, path: Any) -> None:
        """Normalize has no config and no weights: the reference writes an empty folder."""
        from pathlib import Path

        Path(path).mkdir(parents=True, exist_ok=True)


class LayerNorm(Module):
    """Layer normalization of ``sentence_embedding`` with learned scale and shift.

    Args:
        dimension: Width of the sentence embedding.
    """

    config_keys: ClassVar[tuple[str, ...]] = ("dimension",)
    reference_type: ClassVar[str] = "sentence_transformers.models.LayerNorm"

    def __init__(self, dimension: int) -> None:
        super().__init__()
        self.dimension = int(dimension)
        self.norm = nn.LayerNorm(self.dimension)

    def forward(self, features: Features) -> Features:
        """Normalize ``sentence_embedding``."""
        features["sentence_embedding"] = self.norm(features["sentence_embedding"])
        return features

    def get_sentence_embedding_dimension(self) -> int:
        """Width of the output (unchanged)."""
        return self.dimension
