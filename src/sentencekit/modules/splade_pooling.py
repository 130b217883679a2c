"""SpladePooling: vocabulary logits per token -> one sparse, vocabulary-sized vector per text."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from sentencekit.modules.base import Features, Module

__all__ = ["SpladePooling"]

POOLING_STRATEGIES = ("max", "sum")
ACTIVATIONS = ("relu", "log1p_relu")


class SpladePooling(Module):
    """Weigh each vocabulary entry by ``log(1 + relu(logit))`` and pool over the text's tokens.

    A term's weight is how strongly the masked-language head predicts it anywhere in the text: positive logits
    only, log-damped, then the largest (``"max"``, SPLADE v2 and later) or the sum (``"sum"``, the first
    SPLADE) over the tokens. Padding tokens count as zero. ``activation_function="log1p_relu"`` damps once
    more, ``log(1 + log(1 + relu(x)))``, as OpenSearch's SPLADE models do.

    Args:
        pooling_strategy: ``"max"`` or ``"sum"`` over the tokens.
        activation_function: ``"relu"`` or ``"log1p_relu"``.
        embedding_dimension: The vocabulary size (filled in by the first forward pass when ``None``).
        chunk_size: Pool this many tokens at a time (``None``: all at once). Only ``"sum"`` materializes a
            transformed copy of the logits, so only it needs chunks to bound memory.

    Example:
        >>> pooling = SpladePooling("max")
        >>> logits = torch.tensor([[[1.0, -2.0], [3.0, 0.5], [9.0, 9.0]]])  # 1 text, 3 tokens, vocab of 2
        >>> out = pooling({"token_embeddings": logits, "attention_mask": torch.tensor([[1, 1, 0]])})
        >>> out["sentence_embedding"]  # log1p(3.0), log1p(0.5): the padded third token is ignored
        tensor([[1.3863, 0.4055]])
    """

    config_keys: ClassVar[tuple[str, ...]] = (
        "pooling_strategy",
        "activation_function",
        "word_embedding_dimension",
    )
    reference_type: ClassVar[str] = "sentence_transformers.sparse_encoder.models.SpladePooling"

    def __init__(
        self,
        pooling_strategy: str = "max",
        activation_function: str = "relu",
        embedding_dimension: int | None = None,
        chunk_size: int | None = None,
        word_embedding_dimension: int | None = None,
    ) -> None:
        super().__init__()
        if pooling_strategy not in POOLING_STRATEGIES:
            raise ValueError(
                f"pooling_strategy must be one of {POOLING_STRATEGIES}, got {pooling_strategy!r}."
            )
        if activation_function not in ACTIVATIONS:
            raise ValueError(
                f"activation_function must be one of {ACTIVATIONS}, got {activation_function!r}."
            )
        if chunk_size is not None and chunk_size <= 0:
            raise ValueError(f"chunk_size must be a positive number of tokens or None, got {chunk_size}.")
        self.pooling_strategy = pooling_strategy
        self.activation_function = activation_function
        # word_embedding_dimension: the name reference 5.x reads and writes; embedding_dimension: 6.x's
        self.embedding_dimension = (
            embedding_dimension if embedding_dimension is not None else word_embedding_dimension
        )
        self.chunk_size = chunk_size

    @property
    def word_embedding_dimension(self) -> int | None:
        """The vocabulary size, under the config name every reference version reads."""
        return self.embedding_dimension

    @classmethod
    def config_from_file(cls, config: dict[str, Any]) -> dict[str, Any]:
        """Accept the reference 6.x's ``embedding_dimension`` and 5.x's ``word_embedding_dimension``."""
        config = dict(config)
        if "embedding_dimension" in config:
            config["word_embedding_dimension"] = config.pop("embedding_dimension")
        return super().config_from_file(config)

    def get_sentence_embedding_dimension(self) -> int | None:
        """Width of the output vectors: the vocabulary size (``None`` until known)."""
        return self.embedding_dimension

    def forward(self, features: Features) -> Features:
        """Add ``sentence_embedding`` from ``token_embeddings`` (the logits) and ``attention_mask``."""
        logits: Tensor = features["token_embeddings"]
        padding = (features["attention_mask"] == 0).unsqueeze(-1)
        step = self.chunk_size or logits.shape[1]
        pooled: Tensor | None = None
        for start in range(0, logits.shape[1], step):
            chunk = logits[:, start : start + step].masked_fill(padding[:, start : start + step], 0.0)
            if self.pooling_strategy == "max":
                # weights grow with the logit: take the largest logit, then weigh one row per text
                part = chunk.amax(dim=1)
                pooled = part if pooled is None else torch.maximum(pooled, part)
            else:
                part = self.weigh(chunk).sum(dim=1)
                pooled = part if pooled is None else pooled + part
        assert pooled is not None, "a batch has at least one token"
        embedding = self.weigh(pooled) if self.pooling_strategy == "max" else pooled
        if self.embedding_dimension is None:
            self.embedding_dimension = int(embedding.shape[-1])
        features["sentence_embedding"] = embedding
        return features

    def weigh(self, logits: Tensor) -> Tensor:
        """Term weights from logits: ``log(1 + relu(x))``, damped once more for ``"log1p_relu"``."""
        weights = torch.log1p(torch.relu(logits))
        return torch.log1p(weights) if self.activation_function == "log1p_relu" else weights

    def __repr__(self) -> str:
        return f"SpladePooling({self.get_config()})"
