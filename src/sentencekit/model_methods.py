"""Small methods of the two model classes, under the reference's names, kept out of the facades.

:class:`SharedMethods` serves :class:`~sentencekit.SentenceTransformer` and
:class:`~sentencekit.cross_encoder.CrossEncoder`; :class:`EmbedderMethods` the first only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

__all__ = ["EmbedderMethods", "SharedMethods"]


class SharedMethods:
    """Methods both model classes have in the reference."""

    backend: str
    max_seq_length: Any
    modules: Any
    parameters: Any

    def get_backend(self) -> str:
        """What runs inference: ``"torch"``, ``"onnx"`` or ``"openvino"`` (``inference_path`` says more)."""
        return self.backend

    def get_max_seq_length(self) -> Any:
        """Same as :attr:`max_seq_length` (the reference's method form)."""
        return self.max_seq_length

    @property
    def dtype(self) -> torch.dtype | None:
        """The dtype of the model's parameters (of the first one; ``None`` without parameters)."""
        first = next(iter(self.parameters()), None)
        return None if first is None else first.dtype

    def evaluate(self, evaluator: Any, output_path: str | None = None) -> Any:
        """Run an evaluator on this model and return its results (``output_path`` is created if missing)."""
        if output_path is not None:
            Path(output_path).mkdir(parents=True, exist_ok=True)
        return evaluator(self, output_path=output_path)

    def activation_checkpointing_enable(
        self, activation_checkpointing_kwargs: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        """Recompute activations in the backward pass instead of keeping them: less memory, more compute.

        Applies to every Hugging Face model inside (their ``activation_checkpointing_enable``, with
        ``kwargs`` such as ``every_n_layers``); the loss and gradients are unchanged.

        Raises:
            ValueError: When no module inside supports it.
        """
        found = False
        for module in self.modules():
            if module is self or not getattr(module, "supports_gradient_checkpointing", False):
                continue
            enable = getattr(module, "activation_checkpointing_enable", None)
            if enable is not None:
                enable(activation_checkpointing_kwargs, **kwargs)
            else:  # transformers before the rename
                module.gradient_checkpointing_enable(
                    gradient_checkpointing_kwargs=activation_checkpointing_kwargs
                )
            found = True
        if not found:
            raise ValueError("No module of this model supports gradient (activation) checkpointing.")

    def gradient_checkpointing_enable(
        self, gradient_checkpointing_kwargs: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        """The older name of :meth:`activation_checkpointing_enable`."""
        self.activation_checkpointing_enable(gradient_checkpointing_kwargs, **kwargs)


class EmbedderMethods:
    """Methods of :class:`~sentencekit.SentenceTransformer` in the reference, beyond the shared ones."""

    truncate_dim: int | None
    modules: Any

    if TYPE_CHECKING:  # nn.Sequential's, in the model class

        def __iter__(self) -> Iterator[nn.Module]: ...

    def get_sentence_embedding_dimension(self) -> int | None:
        """Width of the vectors ``encode`` returns (after ``truncate_dim``)."""
        from sentencekit.modules import Transformer

        dim = None
        for module in reversed(list(self)):
            get_dim = getattr(module, "get_sentence_embedding_dimension", None)
            if get_dim is not None:
                dim = int(get_dim())
                break
            if isinstance(module, Transformer):
                dim = module.get_word_embedding_dimension()
                break
        if dim is not None and self.truncate_dim is not None:
            return min(dim, self.truncate_dim)
        return dim

    def get_embedding_dimension(self) -> int | None:
        """Width of the vectors ``encode`` returns (v6 name of :meth:`get_sentence_embedding_dimension`)."""
        return self.get_sentence_embedding_dimension()

    @contextlib.contextmanager
    def truncate_sentence_embeddings(self, truncate_dim: int | None) -> Iterator[None]:
        """Within the block, ``encode`` returns embeddings cut to ``truncate_dim`` dimensions."""
        previous, self.truncate_dim = self.truncate_dim, truncate_dim
        try:
            yield
        finally:
            self.truncate_dim = previous

    truncate_embeddings = truncate_sentence_embeddings  # the reference v6 name

    @property
    def transformers_model(self) -> nn.Module | None:
        """The Hugging Face model of the first Transformer module (``None`` for a StaticEmbedding model)."""
        from sentencekit.modules import Transformer

        for module in self.modules():
            if isinstance(module, Transformer):
                model: nn.Module = module.auto_model
                return model
        return None

    def set_pooling_include_prompt(self, include_prompt: bool) -> None:
        """Whether the first Pooling module averages the prompt's tokens too (``False``: INSTRUCTOR-style)."""
        from sentencekit.modules import Pooling

        for module in self.modules():
            if isinstance(module, Pooling):
                module.include_prompt = include_prompt
                return
