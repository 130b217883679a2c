"""Load one module from its folder, by the class name a ``modules.json`` or ``router_config.json`` gives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sentencekit.errors import ModelFormatError
from sentencekit.modules.base import Module

__all__ = ["load_module"]


def load_module(type_ref: Any, path: Path, config_path: Path, transformer_args: dict[str, Any]) -> Module:
    """Build the module of class ``type_ref`` (any package prefix) from folder ``path``.

    Modules that load Hugging Face models (Transformer and its kinds, Router) get ``transformer_args``
    (``model_kwargs``, ``tokenizer_kwargs``, ``config_kwargs``, ``trust_remote_code``, ``cache_dir``).

    Raises:
        ModelFormatError: When sentencekit has no module of that class (``config_path`` named it).
    """
    from sentencekit.modules import MODULE_TYPES, Router, Transformer

    cls = MODULE_TYPES.get(str(type_ref).rsplit(".", 1)[-1])
    if cls is None:
        raise ModelFormatError(
            f"{config_path} names module type {type_ref!r}, which sentencekit does not provide; "
            f"supported types: {sorted(MODULE_TYPES)}."
        )
    if issubclass(cls, (Transformer, Router)):
        return cls.load(path, **transformer_args)
    return cls.load(path)
