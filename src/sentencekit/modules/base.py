"""The small base class every sentencekit module builds on.

A module is a ``torch.nn.Module`` whose ``forward`` takes and returns a *features* dict (``input_ids``,
``attention_mask``, ``token_embeddings``, ``sentence_embedding``, ...), so that a model is just modules in
sequence. Each module saves itself to one folder (a JSON config plus optional safetensors weights) and loads
from
one, symmetrically.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from sentencekit.errors import ModelFormatError

__all__ = ["Features", "Module", "read_json", "write_json"]

Features = dict[str, Any]


def read_json(path: Path) -> dict[str, Any]:
    """Read a JSON object from ``path``, raising :class:`ModelFormatError` on malformed content."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as exc:
        raise ModelFormatError(
            f"{path} is not valid JSON ({exc}); re-download or re-save the model."
        ) from exc
    if not isinstance(data, dict):
        raise ModelFormatError(f"{path} must hold a JSON object, found {type(data).__name__}.")
    return data


def write_json(path: Path, data: dict[str, Any] | list[Any]) -> None:
    """Write ``data`` as indented JSON (the layout the reference writes, so diffs stay readable)."""
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
        f.write("\n")


class Module(nn.Module):
    """A model stage: features dict in, features dict out, with symmetric ``save`` / ``load``.

    Subclasses list the constructor arguments that make up their configuration in ``config_keys``; those are
    written to ``config_file``. Parameters are written to ``model.safetensors`` when the module has any.
    """

    config_keys: ClassVar[tuple[str, ...]] = ()
    config_file: ClassVar[str] = "config.json"
    # Name of the reference class this module stands for, written to modules.json on save.
    reference_type: ClassVar[str] = ""

    def get_config(self) -> dict[str, Any]:
        """The configuration written on save; the constructor accepts it back as keyword arguments."""
        return {key: getattr(self, key) for key in self.config_keys}

    def forward(self, features: Features) -> Features:  # pragma: no cover - abstract
        """Transform the features dict; subclasses implement this."""
        raise NotImplementedError

    def save(self, path: str | Path) -> None:
        """Write the config (and weights, if any) into folder ``path``."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        write_json(path / self.config_file, self.get_config())
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        if state:
            save_file(state, str(path / "model.safetensors"))

    @classmethod
    def load(cls, path: str | Path) -> Module:
        """Build the module from folder ``path`` (config, then weights when present)."""
        path = Path(path)
        config_path = path / cls.config_file
        config = read_json(config_path) if config_path.is_file() else {}
        module = cls(**cls.config_from_file(config))
        module.load_weights(path)
        return module

    @classmethod
    def config_from_file(cls, config: dict[str, Any]) -> dict[str, Any]:
        """Map a config file's keys to constructor arguments; rejects keys it does not know."""
        unknown = sorted(set(config) - set(cls.config_keys))
        if unknown:
            raise ModelFormatError(
                f"{cls.__name__} config has unknown keys {unknown}; valid keys are {sorted(cls.config_keys)}."
            )
        return dict(config)

    def load_weights(self, path: Path) -> None:
        """Load ``model.safetensors`` (or a legacy ``pytorch_model.bin``) when the module has weights."""
        if not list(self.parameters()):
            return
        st_file, bin_file = path / "model.safetensors", path / "pytorch_model.bin"
        if st_file.is_file():
            state = load_file(str(st_file))
        elif bin_file.is_file():
            state = torch.load(bin_file, map_location="cpu", weights_only=True)
        else:
            raise ModelFormatError(
                f"{type(self).__name__} in {path} has no weights: "
                "expected model.safetensors or pytorch_model.bin."
            )
        missing, unexpected = self.load_state_dict(state, strict=True)
        if missing or unexpected:
            raise ModelFormatError(
                f"Weights in {path} do not fit {type(self).__name__}: missing {missing}, "
                f"unexpected {unexpected}."
            )
