"""Validation of what users pass to ``encode``: strings in, clear errors for anything else."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sentencekit.errors import InvalidInputError

__all__ = ["as_text_list"]


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
