"""Metadata filters for :meth:`Index.search <sentencekit.index.Index.search>`: a predicate or equal fields.

A filter is either a callable given an item's metadata dict (``{}`` for items without metadata) or a
mapping of fields that must all be present and equal. :func:`matches` turns either into one predicate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sentencekit.errors import InvalidInputError

__all__ = ["MetadataFilter", "matches"]

# a predicate over an item's metadata, or fields that must all be equal
MetadataFilter = Callable[[Mapping[str, Any]], bool] | Mapping[str, Any]


def matches(filter_: MetadataFilter) -> Callable[[Mapping[str, Any] | None], bool]:
    """Return a predicate telling whether an item's metadata (or None) satisfies ``filter_``.

    Raises:
        InvalidInputError: If ``filter_`` is neither a callable nor a mapping.

    """
    if callable(filter_):
        return lambda meta: bool(filter_(meta or {}))
    if isinstance(filter_, Mapping):
        wanted = dict(filter_)
        return lambda meta: meta is not None and all(k in meta and meta[k] == v for k, v in wanted.items())
    raise InvalidInputError(
        f"filter must be a callable taking the metadata dict or a dict of fields to match, got {filter_!r}."
    )
