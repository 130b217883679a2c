"""How a cross-encoder loads: its name -> a folder -> the Hugging Face parts and settings -> a backend."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import Tensor, nn

from sentencekit.cross_encoder.activation import default_activation, resolve_activation
from sentencekit.cross_encoder.folder import FolderSettings
from sentencekit.registry import expand_model_name

if TYPE_CHECKING:  # pragma: no cover - for type checkers only; the backends are imported when used
    from sentencekit.backends.onnx_scorer import OnnxScorer
    from sentencekit.backends.select import BackendPlan

__all__ = ["accepts_token_types", "attach_backend", "load_transformer", "resolve_folder", "settings_in_use"]

# Bare names are cross-encoders of this organisation on the Hub, as in the reference.
_DEFAULT_ORGANIZATION = "cross-encoder"


def resolve_folder(
    name: str | Path,
    cache_folder: str | None,
    revision: str | None,
    token: bool | str | None,
    local_only: bool,
) -> Path:
    """The local folder of ``name``: a path, or a Hub id (a bare name means ``cross-encoder/<name>``)."""
    from sentencekit.hub import resolve_model_path

    text = str(name)
    if not Path(text).expanduser().exists() and "/" not in text and "\\" not in text and text.strip():
        text = expand_model_name(text, organization=_DEFAULT_ORGANIZATION)
    return resolve_model_path(
        text, revision=revision, token=token, cache_folder=cache_folder, local_files_only=local_only
    )


def load_transformer(
    source: Path,
    *,
    trust_remote_code: bool,
    cache_folder: str | None,
    num_labels: int | None,
    max_length: int | None,
    model_kwargs: dict[str, Any] | None,
    tokenizer_kwargs: dict[str, Any] | None,
    config_kwargs: dict[str, Any] | None,
) -> tuple[Any, Any, Any]:
    """Load ``(config, model, tokenizer)`` of a sequence classifier from ``source``.

    Without ``max_length`` (or ``model_max_length`` in ``tokenizer_kwargs``) the tokenizer's limit is capped
    at the model's position embeddings.
    """
    import transformers

    common: dict[str, Any] = {"trust_remote_code": trust_remote_code, "cache_dir": cache_folder}
    config_args = dict(config_kwargs or {})
    if num_labels is not None:
        config_args["num_labels"] = num_labels
    config = transformers.AutoConfig.from_pretrained(str(source), **common, **config_args)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(
        str(source), config=config, **common, **(model_kwargs or {})
    )
    tokenizer_args = dict(tokenizer_kwargs or {})
    if max_length is not None:
        tokenizer_args["model_max_length"] = max_length
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(source), **common, **tokenizer_args)
    if "model_max_length" not in tokenizer_args:
        positions = getattr(config, "max_position_embeddings", None)
        if isinstance(positions, int) and positions > 0:
            tokenizer.model_max_length = min(tokenizer.model_max_length, positions)
    return config, model, tokenizer


def settings_in_use(
    saved: FolderSettings,
    *,
    prompts: dict[str, str] | None,
    default_prompt_name: str | None,
    activation_fn: Callable[[Tensor], Tensor] | None,
    num_labels: int,
    trust_remote_code: bool,
) -> tuple[dict[str, str], str | None, Callable[[Tensor], Tensor] | nn.Module]:
    """The ``(prompts, default_prompt_name, activation_fn)`` a model uses: the arguments given over ``saved``.

    Raises:
        ValueError: If the default prompt name is not among the prompts.
    """
    prompts = {**saved.prompts, **(prompts or {})}
    default_prompt_name = default_prompt_name or saved.default_prompt_name
    if default_prompt_name is not None and default_prompt_name not in prompts:
        raise ValueError(
            f"default_prompt_name {default_prompt_name!r} is not among the prompts {sorted(prompts)}."
        )
    if activation_fn is None and saved.activation_fn:
        activation_fn = resolve_activation(saved.activation_fn, trust_remote_code=trust_remote_code)
    return (
        prompts,
        default_prompt_name,
        activation_fn if activation_fn is not None else default_activation(num_labels),
    )


def accepts_token_types(model: Any, tokenizer: Any) -> bool:
    """Whether both the model's ``forward`` and the tokenizer use ``token_type_ids``."""
    forward_inputs = set(inspect.signature(model.forward).parameters)
    return "token_type_ids" in forward_inputs and "token_type_ids" in getattr(
        tokenizer, "model_input_names", ["token_type_ids"]
    )


def attach_backend(
    plan: BackendPlan,
    model: Any,
    tokenizer: Any,
    max_length: int,
    folder: Path,
    with_token_types: bool,
    device: str,
) -> tuple[str, str, OnnxScorer | None]:
    """Which backend and path run, e.g. ``("onnx", "onnx fp32")``, and the scorer (``None`` for torch).

    ``plan.backend == "auto"`` on the CPU then looks for a faster scorer that passes a check of its logits
    (:mod:`sentencekit.backends.fast_scorer`).
    """
    from sentencekit.backends.onnx_scorer import attach_scorer

    inputs = ["input_ids", "attention_mask"] + (["token_type_ids"] if with_token_types else [])
    backend, inference_path, scorer = attach_scorer(plan, model, inputs, folder, device)
    if plan.backend == "auto" and backend == "onnx":  # on the CPU, the exact graph in place
        from sentencekit.backends.fast_scorer import choose_fast_scorer

        fast = choose_fast_scorer(model, tokenizer, max_length, folder, inputs)
        if fast is not None:
            backend, inference_path, scorer = fast
    return backend, inference_path, scorer
