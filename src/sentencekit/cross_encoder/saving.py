"""What :meth:`CrossEncoder.save <sentencekit.cross_encoder.CrossEncoder.save>` writes: weights, settings."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from sentencekit import __version__
from sentencekit.cross_encoder.activation import activation_path
from sentencekit.cross_encoder.folder import FolderSettings, write_settings
from sentencekit.training.model_card import write_model_card

if TYPE_CHECKING:  # pragma: no cover - the model module imports this one
    from sentencekit.cross_encoder.model import CrossEncoder

__all__ = ["save_model"]

# the model's logger, as before this code moved out of model.py
logger = logging.getLogger("sentencekit.cross_encoder.model")


def save_model(model: CrossEncoder, path: str | Path, safe_serialization: bool = True) -> None:
    """Write ``model`` to ``path`` in the v6 layout, recording its activation, prompts and versions.

    See :meth:`CrossEncoder.save` for what loads the folder and how the activation is restored.
    """
    import transformers

    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    model.model.save_pretrained(str(folder), safe_serialization=safe_serialization)
    model.tokenizer.save_pretrained(str(folder))
    fn = model.activation_fn
    if fn is not None and not isinstance(fn, nn.Module):
        logger.warning(
            "The activation %r is not a torch.nn.Module; it is saved by name but will not be restored on "
            "load. Use a module such as torch.nn.Sigmoid().",
            fn,
        )
    settings = FolderSettings(
        activation_fn=activation_path(fn) if fn is not None else activation_path(nn.Identity()),
        prompts=dict(model.prompts),
        default_prompt_name=model.default_prompt_name,
    )
    versions = {
        "sentencekit": __version__,
        "transformers": transformers.__version__,
        "pytorch": torch.__version__,
    }
    write_settings(folder, settings, versions)
    write_model_card(model, folder)  # README.md, for a model trained here or with card data
    logger.info("Saved cross-encoder to %s (scores: %s)", folder, model.score_description)
