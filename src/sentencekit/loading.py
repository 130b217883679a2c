"""Read and write sentence-transformers model folders (legacy v2-v5 and v6 layouts).

A folder holds ``modules.json`` (the module sequence), one sub-folder per module, and
``config_sentence_transformers.json`` (prompts, similarity function, versions). A plain Hugging Face model
folder
(no ``modules.json``) becomes Transformer + mean Pooling, as in the reference.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sentencekit.errors import ModelFormatError
from sentencekit.modules import Module, Pooling, Router, Transformer
from sentencekit.modules.base import read_json, write_json
from sentencekit.modules.loader import load_module

__all__ = ["ModelSettings", "load_modules", "load_settings", "mean_pooled_modules", "save_folder"]

logger = logging.getLogger(__name__)

SETTINGS_FILE = "config_sentence_transformers.json"


@dataclass(frozen=True)
class ModelSettings:
    """What ``config_sentence_transformers.json`` says about how to use the model."""

    prompts: dict[str, str] = field(default_factory=dict)
    default_prompt_name: str | None = None
    similarity_fn_name: str | None = None
    truncate_dim: int | None = None
    # the model class that wrote the folder ("SparseEncoder"); None for SentenceTransformer folders
    model_type: str | None = None
    # sparse encoders: non-zero dimensions kept per vector (None: all)
    max_active_dims: int | None = None

    def __post_init__(self) -> None:
        if self.default_prompt_name is not None and self.default_prompt_name not in self.prompts:
            raise ModelFormatError(
                f"default_prompt_name {self.default_prompt_name!r} is not one of the prompts "
                f"{sorted(self.prompts)}; add it to 'prompts' or remove it."
            )


def load_settings(folder: Path) -> ModelSettings:
    """Read ``config_sentence_transformers.json`` if present (unknown keys such as versions are ignored)."""
    path = folder / SETTINGS_FILE
    if not path.is_file():
        return ModelSettings()
    data = read_json(path)
    return ModelSettings(
        prompts=dict(data.get("prompts") or {}),
        default_prompt_name=data.get("default_prompt_name"),
        similarity_fn_name=data.get("similarity_fn_name"),
        truncate_dim=data.get("truncate_dim"),
        model_type=data.get("model_type"),
        max_active_dims=data.get("max_active_dims"),
    )


def load_modules(
    folder: Path,
    *,
    model_kwargs: dict[str, Any] | None = None,
    tokenizer_kwargs: dict[str, Any] | None = None,
    config_kwargs: dict[str, Any] | None = None,
    trust_remote_code: bool = False,
    cache_dir: str | None = None,
    plain_folder_modules: Callable[..., list[Module]] | None = None,
) -> list[Module]:
    """Build the module sequence a folder describes.

    ``plain_folder_modules(folder, **transformer_args)`` builds the modules for a plain Hugging Face folder
    (no ``modules.json``); by default a :class:`Transformer` and mean :class:`Pooling`, as in the reference.
    """
    transformer_args: dict[str, Any] = {
        "model_kwargs": model_kwargs,
        "tokenizer_kwargs": tokenizer_kwargs,
        "config_kwargs": config_kwargs,
        "trust_remote_code": trust_remote_code,
        "cache_dir": cache_dir,
    }
    modules_file = folder / "modules.json"
    if not modules_file.is_file():
        if not (folder / "config.json").is_file():
            raise ModelFormatError(
                f"{folder} is neither a sentence-transformers folder (no modules.json) nor a Hugging Face "
                "model folder (no config.json). Point to the folder that holds these files."
            )
        return (plain_folder_modules or mean_pooled_modules)(folder, **transformer_args)

    try:
        import json

        entries = json.loads(modules_file.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ModelFormatError(f"{modules_file} is not valid JSON ({exc}).") from exc
    modules: list[Module] = []
    for entry in sorted(entries, key=lambda e: e.get("idx", 0)):
        path = folder / entry.get("path", "")
        modules.append(load_module(entry.get("type", ""), path, modules_file, transformer_args))
    _wire_hidden_states(modules)
    return modules


def mean_pooled_modules(folder: Path, **transformer_args: Any) -> list[Module]:
    """A plain Hugging Face folder as a sentence encoder: its Transformer, then mean pooling."""
    logger.warning("%s has no modules.json: using it as a plain model with mean pooling.", folder)
    transformer = Transformer.load(folder, **transformer_args)
    return [transformer, Pooling(transformer.get_word_embedding_dimension(), "mean")]


def _wire_hidden_states(modules: list[Module]) -> None:
    """Ask the Transformer for every layer's output when a later module needs it."""
    if any(getattr(m, "needs_hidden_states", False) for m in modules):
        for m in modules:
            if isinstance(m, Transformer):
                m.output_hidden_states = True


def save_folder(
    folder: Path,
    modules: list[Module],
    settings: ModelSettings,
    versions: dict[str, str],
) -> None:
    """Write ``modules`` and ``settings`` in the legacy layout every reference version loads."""
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for idx, module in enumerate(modules):
        # a leading Transformer or Router goes in the folder itself, as the reference puts them
        in_root = idx == 0 and isinstance(module, (Transformer, Router))
        sub = "" if in_root else f"{idx}_{type(module).__name__}"
        module.save(folder / sub)
        entries.append({"idx": idx, "name": str(idx), "path": sub, "type": module.reference_type})
    write_json(folder / "modules.json", entries)
    settings_data: dict[str, Any] = {
        "__version__": versions,
        "prompts": settings.prompts,
        "default_prompt_name": settings.default_prompt_name,
        "similarity_fn_name": settings.similarity_fn_name or "cosine",
    }
    if settings.truncate_dim is not None:
        settings_data["truncate_dim"] = settings.truncate_dim
    if settings.model_type is not None:
        settings_data["model_type"] = settings.model_type
    if settings.max_active_dims is not None:
        settings_data["max_active_dims"] = settings.max_active_dims
    write_json(folder / SETTINGS_FILE, settings_data)
