"""Checks on what :meth:`Index.add <sentencekit.index.Index.add>` and ``search`` are given.

:func:`as_matrix` turns vectors (arrays, lists, torch tensors) into a finite float32 ``(n, dim)`` matrix and
:func:`check_metadata` turns metadata into one JSON-round-tripped dict (or None) per item, raising
:class:`~sentencekit.errors.InvalidInputError` with what to fix otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from sentencekit.errors import InvalidInputError

__all__ = ["as_matrix", "check_metadata"]


def as_matrix(x: Any, name: str) -> np.ndarray:
    """Return ``x`` as a C-contiguous float32 ``(n, dim)`` matrix; a single ``(dim,)`` vector becomes one row.

    Raises:
        InvalidInputError: If ``x`` is not numeric, not one- or two-dimensional, or holds NaN or infinities.

    """
    if hasattr(x, "detach"):  # a torch tensor
        x = x.detach().float().cpu().numpy()
    try:
        array = np.asarray(x, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{name} must be texts or a (n, dim) array of numbers ({exc}).") from exc
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2:
        raise InvalidInputError(
            f"{name} must be a (n, dim) array or a single (dim,) vector, got {array.shape}."
        )
    if not np.isfinite(array).all():
        raise InvalidInputError(f"{name} contains NaN or infinite values; drop those rows or re-encode them.")
    return np.ascontiguousarray(array)


def check_metadata(
    metadata: Sequence[Mapping[str, Any] | None] | None, n: int
) -> list[dict[str, Any] | None]:
    """Return one JSON-serializable dict (a deep copy) or None per item; ``None`` gives ``n`` Nones.

    Raises:
        InvalidInputError: If the count is not ``n``, an entry is not a dict or None, or it is not
            JSON-serializable.

    """
    if metadata is None:
        return [None] * n
    metadata = list(metadata)
    if len(metadata) != n:
        raise InvalidInputError(f"Got {len(metadata)} metadata entries for {n} items; pass one per item.")
    out: list[dict[str, Any] | None] = []
    for entry in metadata:
        if entry is not None and not isinstance(entry, Mapping):
            raise InvalidInputError(f"Metadata entries must be dicts or None, got {entry!r}.")
        try:
            out.append(None if entry is None else json.loads(json.dumps(dict(entry))))
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"Metadata must be JSON-serializable: {exc}.") from exc
    return out
