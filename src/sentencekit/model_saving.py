"""Saving :class:`~sentencekit.SentenceTransformer`: ``save`` / ``save_pretrained`` write the legacy layout.

:class:`SavingMethods` writes the modules, ``config_sentence_transformers.json`` and, when there is something
to say, a ``README.md`` model card; :mod:`sentencekit.loading` reads the folder back.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from sentencekit import __version__
from sentencekit.loading import ModelSettings, save_folder
from sentencekit.modules import Module
from sentencekit.training.model_card import write_model_card

__all__ = ["SavingMethods"]

logger = logging.getLogger("sentencekit.sentence_transformer")  # the facade's name, as before the move


class SavingMethods:
    """``save`` and ``save_pretrained`` of :class:`~sentencekit.SentenceTransformer` (and its subclasses)."""

    prompts: dict[str, str]
    default_prompt_name: str | None
    _similarity_fn_name: str | None
    truncate_dim: int | None

    if TYPE_CHECKING:  # nn.Sequential's, in the model class

        def __iter__(self) -> Iterator[nn.Module]: ...

        def __len__(self) -> int: ...

    def save(self, path: str | Path, safe_serialization: bool = True) -> None:
        """Write the model in the legacy sentence-transformers layout, which every reference version loads."""
        import transformers

        versions = {
            "sentencekit": __version__,
            "transformers": transformers.__version__,
            "pytorch": torch.__version__,
        }
        modules: list[Module] = [m for m in self if isinstance(m, Module)]
        if len(modules) != len(self):
            raise TypeError("Only sentencekit modules can be saved; this model holds other nn.Modules.")
        save_folder(Path(path), modules, self._settings(), versions)
        write_model_card(self, path)  # README.md, for a model trained here or with card data
        logger.info("Saved model to %s", path)

    def _settings(self) -> ModelSettings:
        """What ``config_sentence_transformers.json`` records about this model."""
        return ModelSettings(
            prompts=dict(self.prompts),
            default_prompt_name=self.default_prompt_name,
            similarity_fn_name=self._similarity_fn_name,
            truncate_dim=self.truncate_dim,
        )

    def save_pretrained(self, path: str | Path, safe_serialization: bool = True) -> None:
        """Alias of :meth:`save`."""
        self.save(path, safe_serialization=safe_serialization)
