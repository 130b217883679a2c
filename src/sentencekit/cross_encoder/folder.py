"""Read and write cross-encoder folders in the layouts sentence-transformers uses.

Folders we read:

* a plain Hugging Face sequence-classification folder (``config.json``, weights, tokenizer), as every
  reference version before v6 saved it; the activation, if any, is in ``config.json`` under
  ``sentence_transformers.activation_fn`` (v4, v5) or ``sbert_ce_default_activation_function`` (v2, v3);
* a v6 folder: the same files plus ``modules.json`` (one Transformer module whose
  ``sentence_bert_config.json`` says ``"transformer_task": "sequence-classification"``) and
  ``config_sentence_transformers.json`` (``"model_type": "CrossEncoder"``, ``activation_fn``, prompts);
* any other model folder (a base model, an embedding model): its encoder gets a new, randomly initialised
  classification head, as in the reference (transformers warns about the new weights).

We write the v6 layout and also record the activation in ``config.json``, so that reference v4, v5 and v6
all load the folder with the same activation, and therefore the same kind of scores.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sentencekit.errors import ModelFormatError

__all__ = ["FolderSettings", "model_source", "read_settings", "write_settings"]

logger = logging.getLogger(__name__)

SETTINGS_FILE = "config_sentence_transformers.json"
MODULE_CONFIG_FILE = "sentence_bert_config.json"
# What reference v6 writes to modules.json and sentence_bert_config.json for a sequence-classification model.
_REFERENCE_TRANSFORMER_TYPE = "sentence_transformers.base.modules.transformer.Transformer"
_REFERENCE_MODULE_CONFIG = {
    "transformer_task": "sequence-classification",
    "modality_config": {"text": {"method": "forward", "method_output_name": "logits"}},
    "module_output_name": "scores",
}


@dataclass(frozen=True)
class FolderSettings:
    """What a saved folder says about using the model, beyond the Hugging Face files.

    Attributes:
        activation_fn: Dotted path of the activation applied to the logits, or ``None`` when the folder
            records none (then the default for the number of labels applies).
        prompts: Named prompts; a prompt is prepended to the first text of each pair.
        default_prompt_name: The prompt used when ``predict`` gets none.
    """

    activation_fn: str | None = None
    prompts: dict[str, str] = field(default_factory=dict)
    default_prompt_name: str | None = None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ModelFormatError(
            f"{path} is not valid JSON ({exc}); re-save or re-download the model."
        ) from exc
    if not isinstance(data, (dict, list)):
        raise ModelFormatError(f"{path} should hold a JSON object, found {type(data).__name__}.")
    return data  # type: ignore[return-value]


def _is_cross_encoder_folder(folder: Path) -> bool:
    settings = folder / SETTINGS_FILE
    return settings.is_file() and _read_json(settings).get("model_type") == "CrossEncoder"


def model_source(folder: Path) -> Path:
    """The folder that holds the Hugging Face files (``config.json``, weights, tokenizer) of a model folder.

    Raises:
        ModelFormatError: If the folder has no ``config.json``, or describes a cross-encoder this package
            cannot run (e.g. a causal-LM reranker scored by token logits).
    """
    modules_file = folder / "modules.json"
    if modules_file.is_file() and _is_cross_encoder_folder(folder):
        entries = _read_json(modules_file)
        if not isinstance(entries, list) or len(entries) != 1:
            kinds = [str(e.get("type")) for e in entries] if isinstance(entries, list) else entries
            raise ModelFormatError(
                f"{modules_file} lists the modules {kinds}; sentencekit's CrossEncoder runs models made of "
                "one sequence-classification Transformer. Load this model with sentence-transformers instead."
            )
        source = folder / str(entries[0].get("path", ""))
        module_config = source / MODULE_CONFIG_FILE
        task = _read_json(module_config).get("transformer_task") if module_config.is_file() else None
        if task not in (None, "sequence-classification"):
            raise ModelFormatError(
                f"{module_config} describes a {task!r} transformer; sentencekit's CrossEncoder runs "
                "sequence-classification models only."
            )
    else:
        if modules_file.is_file():
            logger.warning(
                "%s is not a cross-encoder folder; its encoder gets a new, untrained classification head.",
                folder,
            )
        source = folder
    if not (source / "config.json").is_file():
        raise ModelFormatError(
            f"{source} has no config.json; point to a Hugging Face model folder or a cross-encoder saved by "
            "sentence-transformers or sentencekit."
        )
    return source


def read_settings(folder: Path, hf_config: Any) -> FolderSettings:
    """Collect the activation and prompts a folder records, newest layout first.

    Args:
        folder: The model folder.
        hf_config: Its loaded ``transformers`` config, which may carry the activation of older layouts.
    """
    activation: str | None = None
    prompts: dict[str, str] = {}
    default_prompt_name = None
    if _is_cross_encoder_folder(folder):
        data = _read_json(folder / SETTINGS_FILE)
        activation = data.get("activation_fn")
        prompts = dict(data.get("prompts") or {})
        default_prompt_name = data.get("default_prompt_name")
    if activation is None:
        saved = getattr(hf_config, "sentence_transformers", None)
        if isinstance(saved, dict):
            activation = saved.get("activation_fn")
        else:
            activation = getattr(hf_config, "sbert_ce_default_activation_function", None)
    return FolderSettings(activation, prompts, default_prompt_name)


def write_settings(folder: Path, settings: FolderSettings, versions: dict[str, str]) -> None:
    """Write the v6 files next to the Hugging Face files already saved in ``folder``.

    The activation goes into ``config_sentence_transformers.json`` (read by reference v6) and into
    ``config.json`` (read by v4 and v5).
    """
    config_path = folder / "config.json"
    config = _read_json(config_path)
    config["sentence_transformers"] = {"activation_fn": settings.activation_fn}
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    _write(folder / MODULE_CONFIG_FILE, _REFERENCE_MODULE_CONFIG)
    _write(
        folder / "modules.json", [{"idx": 0, "name": "0", "path": "", "type": _REFERENCE_TRANSFORMER_TYPE}]
    )
    _write(
        folder / SETTINGS_FILE,
        {
            "__version__": versions,
            "activation_fn": settings.activation_fn,
            "default_prompt_name": settings.default_prompt_name,
            "model_type": "CrossEncoder",
            "prompts": settings.prompts,
        },
    )


def _write(path: Path, data: dict[str, Any] | list[Any]) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
