"""Batches that waste little: sort by token length, cut by count and by a token budget, restore order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

__all__ = [
    "IdRows",
    "batch_rows",
    "length_sorted_batches",
    "pad_token_ids",
    "padding_ratio",
    "slice_flat",
    "split_for_workers",
]

# Token id rows: lists of ints, or NumPy arrays (rows of :class:`~sentencekit.encoding.tokens.RaggedIds`).
IdRows = Sequence[Sequence[int] | np.ndarray]


def pad_token_ids(
    input_ids: IdRows,
    token_type_ids: IdRows | None,
    pad_id: int,
    left: bool,
) -> dict[str, torch.Tensor]:
    """Pad token id rows into ``input_ids``, ``attention_mask`` (and ``token_type_ids``) tensors.

    Args:
        input_ids: One row of token ids per input (lists or NumPy arrays), of any lengths.
        token_type_ids: The segment ids, parallel to ``input_ids``, or ``None`` when the model takes none.
        pad_id: The tokenizer's padding id.
        left: Pad on the left (decoder-style tokenizers) instead of the right.

    """
    width = max((len(ids) for ids in input_ids), default=0)
    ids = np.full((len(input_ids), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(input_ids), width), dtype=np.int64)
    types = np.zeros_like(mask) if token_type_ids is not None else None
    for row, seq in enumerate(input_ids):
        span = slice(width - len(seq), width) if left else slice(0, len(seq))
        ids[row, span] = seq
        mask[row, span] = 1
        if types is not None and token_type_ids is not None:
            types[row, span] = token_type_ids[row]
    features = {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask)}
    if types is not None:
        features["token_type_ids"] = torch.from_numpy(types)
    return features


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


def split_for_workers(batches: Sequence[np.ndarray], workers: int) -> list[np.ndarray]:
    """Halve the largest batches until there are at least ``workers`` of them, so that none stands idle.

    Inputs are never split: a plan with fewer inputs than ``workers`` keeps one input per batch.
    """
    out = list(batches)
    while len(out) < workers:
        largest = max(range(len(out)), key=lambda k: len(out[k]), default=None)
        if largest is None or len(out[largest]) < 2:
            break
        half = (len(out[largest]) + 1) // 2
        out[largest : largest + 1] = [out[largest][:half], out[largest][half:]]
    return out


def batch_rows(features: dict[str, Any]) -> int:
    """How many texts a batch of features holds.

    A StaticEmbedding batch keeps all token ids flat, with one ``offsets`` entry per text; a padded batch
    has one ``input_ids`` (or ``attention_mask``) row per text.

    Raises:
        ValueError: When the features hold no batched tensor.
    """
    for key in ("offsets", "input_ids", "attention_mask"):
        value = features.get(key)
        if isinstance(value, torch.Tensor):
            return int(value.shape[0])
    for value in features.values():
        if isinstance(value, torch.Tensor) and value.dim() > 0:
            return int(value.shape[0])
    raise ValueError("Cannot tell the batch size: the features hold no batched tensor.")


def slice_flat(features: dict[str, Any], start: int, end: int) -> dict[str, Any]:
    """Texts ``start:end`` of a flat (StaticEmbedding) batch: its ids, and offsets counted from its first."""
    ids, offsets = features["input_ids"], features["offsets"]
    first = int(offsets[start]) if start < len(offsets) else len(ids)
    last = int(offsets[end]) if end < len(offsets) else len(ids)
    return {**features, "input_ids": ids[first:last], "offsets": offsets[start:end] - first}
