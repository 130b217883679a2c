"""Batches that waste little: sort by token length, cut by count and by a token budget, restore order."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["length_sorted_batches", "padding_ratio"]


def length_sorted_batches(
    lengths: Sequence[int], batch_size: int, max_batch_tokens: int | None = None
) -> list[np.ndarray]:
    """Group indices into batches of similar token length, longest first.

    Args:
        lengths: Token count of each input.
        batch_size: Most inputs in one batch.
        max_batch_tokens: Most padded tokens (rows x longest row) in one batch, or ``None`` for no budget.
            A single input longer than the budget still forms a batch of its own.

    Returns:
        Index arrays into ``lengths``; together they cover every index exactly once.
    """
    if batch_size <= 0:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size}.")
    if max_batch_tokens is not None and max_batch_tokens <= 0:
        raise ValueError(f"max_batch_tokens must be a positive integer or None, got {max_batch_tokens}.")
    lens = np.asarray(lengths, dtype=np.int64)
    order = np.argsort(-lens, kind="stable")
    if max_batch_tokens is None:
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    batches: list[np.ndarray] = []
    start = 0
    while start < len(order):
        longest = max(int(lens[order[start]]), 1)  # sorted: the first row is the widest
        rows = max(1, min(batch_size, max_batch_tokens // longest))
        batches.append(order[start : start + rows])
        start += rows
    return batches


def padding_ratio(lengths: Sequence[int], batches: Sequence[np.ndarray]) -> float:
    """Share of processed token slots that are padding, for a batching plan."""
    lens = np.asarray(lengths, dtype=np.int64)
    real = int(lens.sum())
    slots = sum(int(lens[b].max()) * len(b) for b in batches if len(b))
    return 0.0 if slots == 0 else 1.0 - real / slots
