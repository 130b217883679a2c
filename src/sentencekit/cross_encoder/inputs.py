"""Validation of what users pass to ``predict`` and ``rank``: text pairs in, clear errors otherwise."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sentencekit.encoding.inputs import _describe
from sentencekit.errors import InvalidInputError

__all__ = ["as_documents", "as_pair_list"]

_PAIR_HINT = "pass one pair (query, document) or a list of such pairs of strings"


def _is_pair_like(value: Any) -> bool:
    return isinstance(value, (list, tuple)) or (hasattr(value, "ndim") and hasattr(value, "tolist"))


def as_pair_list(inputs: Any) -> tuple[list[tuple[str, str]], bool]:
    """Return ``(pairs, was_single)`` for one text pair or an iterable of text pairs.

    A list or tuple whose first element is a string is read as one pair (as the reference does), so
    ``("query", "doc")`` gives one score. A 2-D numpy array of strings is a list of pairs, a 1-D one a single
    pair.

    Raises:
        InvalidInputError: For ``None``, a bare string, a pair that does not hold exactly two elements, or an
            element that is not a string; the message names the index and the type found.
    """
    if inputs is None:
        raise InvalidInputError(f"predict() got None; {_PAIR_HINT}.")
    if isinstance(inputs, (str, bytes, dict)) or not isinstance(inputs, Iterable):
        raise InvalidInputError(
            f"predict() got a {type(inputs).__name__} ({_describe(inputs)}); {_PAIR_HINT}."
        )
    items = inputs.tolist() if hasattr(inputs, "tolist") else list(inputs)
    if items and isinstance(items[0], str):
        return [_check_pair(items, None)], True
    return [_check_pair(item, index) for index, item in enumerate(items)], False


def _check_pair(item: Any, index: int | None) -> tuple[str, str]:
    where = "The pair" if index is None else f"The pair at index {index}"
    if not _is_pair_like(item):
        raise InvalidInputError(
            f"{where} is of type {type(item).__name__} ({_describe(item)}), not a (text, text) pair; "
            f"{_PAIR_HINT}."
        )
    pair = item.tolist() if hasattr(item, "tolist") else list(item)
    if len(pair) != 2:
        raise InvalidInputError(
            f"{where} has {len(pair)} elements ({_describe(item)}); a cross-encoder scores exactly two texts "
            "per pair. For one query against many documents use rank(query, documents)."
        )
    for position, text in enumerate(pair):
        if not isinstance(text, str):
            raise InvalidInputError(
                f"{where} has {type(text).__name__} ({_describe(text)}) at position {position}, not a "
                "string; convert or drop that pair (e.g. str(x), or filter out None)."
            )
    return pair[0], pair[1]


def as_documents(query: Any, documents: Any) -> list[str]:
    """Check ``rank``'s arguments: a string query and a list of string documents (possibly empty).

    Raises:
        InvalidInputError: For a non-string query, a bare string or ``None`` as documents, or a document that
            is not a string (naming its index and type).
    """
    if not isinstance(query, str):
        raise InvalidInputError(f"rank() needs the query as a string, got {type(query).__name__}.")
    if documents is None or isinstance(documents, (str, bytes, dict)) or not isinstance(documents, Iterable):
        raise InvalidInputError(
            f"rank() needs documents as a list of strings, got {type(documents).__name__}; wrap a single "
            "document in a list."
        )
    docs: Sequence[Any] = documents.tolist() if hasattr(documents, "tolist") else list(documents)
    for index, doc in enumerate(docs):
        if not isinstance(doc, str):
            raise InvalidInputError(
                f"The document at index {index} is of type {type(doc).__name__} ({_describe(doc)}), not a "
                "string; convert or drop it (e.g. str(x), or filter out None)."
            )
    return list(docs)
