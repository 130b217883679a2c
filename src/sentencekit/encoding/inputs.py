"""Validation of what users pass to ``encode``: strings in, clear errors for anything else."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sentencekit.errors import InvalidInputError
from sentencekit.types import OutputValue, Precision

__all__ = ["as_text_list", "check_encode_options", "reject_unknown_kwargs"]


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def as_text_list(inputs: Any, caller: str = "encode()") -> tuple[list[str], bool]:
    """Return ``(texts, was_single)`` for a string or an iterable of strings.

    ``caller`` names the function in the error messages (e.g. ``"retrieve_and_rerank(queries=...)"``).

    Raises:
        InvalidInputError: For ``None``, a non-iterable, or any element that is not a string, naming the
            index and the type found.
    """
    if isinstance(inputs, str):
        return [inputs], True
    if inputs is None:
        raise InvalidInputError(f"{caller} got None; pass a string or a list of strings.")
    if isinstance(inputs, (bytes, dict)) or not isinstance(inputs, Iterable):
        raise InvalidInputError(
            f"{caller} got a {type(inputs).__name__}; pass a string or a list of strings."
        )
    texts = list(inputs.tolist() if hasattr(inputs, "tolist") else inputs)
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            kind = "a nested list" if isinstance(text, (list, tuple)) else f"of type {type(text).__name__}"
            raise InvalidInputError(
                f"Input at index {index} is {kind} ({_describe(text)}), not a string. "
                f"{caller} takes a string "
                "or a flat list of strings; convert or drop that element (e.g. str(x), or filter out None)."
            )
    return texts, False


def reject_unknown_kwargs(kwargs: dict[str, Any], encode: Callable[..., Any]) -> None:
    """Raise for any keyword argument left in ``kwargs``, listing the parameters of ``encode`` as valid ones.

    Raises:
        ValueError: When ``kwargs`` is not empty.
    """
    if kwargs:
        import inspect

        valid = sorted(p for p in inspect.signature(encode).parameters if p != "kwargs")
        raise ValueError(f"encode() got unknown keyword arguments {sorted(kwargs)}; valid ones: {valid}.")


def check_encode_options(
    batch_size: int | None, precision: str, output_value: str | None, truncate_dim: int | None
) -> tuple[str, str | None]:
    """Check ``encode``'s numeric options and return ``(precision, output_value)`` as their canonical names.

    Raises:
        ValueError: For a ``batch_size`` or ``truncate_dim`` that is not a positive integer, or an unknown
            ``precision`` or ``output_value``.
    """
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size <= 0):
        raise ValueError(f"batch_size must be a positive integer or None, got {batch_size!r}.")
    precision = str(Precision.parse(precision))
    if output_value is not None:
        output_value = str(OutputValue.parse(output_value))
    if truncate_dim is not None and truncate_dim <= 0:
        raise ValueError(f"truncate_dim must be a positive integer, got {truncate_dim}.")
    return precision, output_value
