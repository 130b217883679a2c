"""Dense: a linear layer (with activation) on the sentence embedding, e.g. to change its width."""

from __future__ import annotations

import importlib
from typing import Any, ClassVar

from torch import nn

from sentencekit.errors import ModelFormatError
from sentencekit.modules.base import Features, Module

__all__ = ["Dense"]


def _activation_name(activation: nn.Module) -> str:
    cls = type(activation)
    return f"{cls.__module__}.{cls.__qualname__}"


def _activation_from_name(name: str | None) -> nn.Module:
    """Instantiate a torch activation from its dotted class name; only ``torch.*`` classes are allowed."""
    if not name:
        return nn.Identity()
    if not name.startswith("torch."):
        raise ModelFormatError(
            f"Dense activation {name!r} is not a torch class; only 'torch.*' activations are loaded, "
            "since importing arbitrary names from a model folder would run untrusted code."
        )
    module_name, _, class_name = name.rpartition(".")
    try:
        activation_cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise ModelFormatError(f"Dense activation {name!r} does not exist in this torch version.") from exc
    return activation_cls()


class Dense(Module):
    """``sentence_embedding -> activation(linear(sentence_embedding))``.

    Args:
        in_features: Width of the incoming embedding.
        out_features: Width of the output embedding.
        bias: Whether the linear layer has a bias.
        activation_function: A torch module (default ``nn.Tanh()``); ``None`` means identity.
    """

    config_keys: ClassVar[tuple[str, ...]] = ("in_features", "out_features", "bias", "activation_function")
    reference_type: ClassVar[str] = "sentence_transformers.models.Dense"

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        activation_function: nn.Module | None = nn.Tanh(),  # noqa: B008 - the reference's default
    ) -> None:
        super().__init__()
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.bias = bias
        self.activation_function = activation_function if activation_function is not None else nn.Identity()
        self.linear = nn.Linear(self.in_features, self.out_features, bias=bias)

    def forward(self, features: Features) -> Features:
        """Apply the layer to ``sentence_embedding``."""
        features["sentence_embedding"] = self.activation_function(self.linear(features["sentence_embedding"]))
        return features

    def get_sentence_embedding_dimension(self) -> int:
        """Width of the output."""
        return self.out_features

    def get_config(self) -> dict[str, Any]:
        """Config with the activation written as its dotted class name."""
        return {
            "in_features": self.in_features,
            "out_features": self.out_features,
            "bias": self.bias,
            "activation_function": _activation_name(self.activation_function),
        }

    @classmethod
    def config_from_file(cls, config: dict[str, Any]) -> dict[str, Any]:
        """Turn the activation name back into a module; the v6 input/output name keys must be the defaults."""
        config = dict(config)
        for key in ("module_input_name", "module_output_name"):
            if config.pop(key, "sentence_embedding") not in (None, "sentence_embedding"):
                raise ModelFormatError(f"Dense with a custom {key} is not supported yet.")
        config["activation_function"] = _activation_from_name(config.get("activation_function"))
        return super().config_from_file(config)

    def __repr__(self) -> str:
        return f"Dense({self.get_config()})"
