"""Batch samplers: how the rows of one dataset are grouped into the batches of one pass.

=====================  =================================================================================
``batch_sampler``      shuffle, then cut into batches (the default)
``no_duplicates``      shuffle, then fill each batch with rows sharing no text with the rows already in it;
                       for in-batch-negative losses (``MultipleNegativesRankingLoss``), where a duplicate
                       text would count as a false negative
``group_by_label``     every batch holds two or more labels with at least two rows each; for the batch
                       triplet losses (``BatchHardTripletLoss`` ...), which need a positive and a negative
                       for every anchor inside the batch
=====================  =================================================================================

Every sampler is a pure function of its data and a ``torch.Generator``, so a pass is reproduced exactly from
its seed (which is how training resumes mid-epoch). Rows are indices into the dataset.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Sequence

import torch

__all__ = ["BATCH_SAMPLERS", "label_grouped_batches", "no_duplicate_batches", "shuffled_batches"]

BATCH_SAMPLERS = ("batch_sampler", "no_duplicates", "group_by_label")


def _permutation(n: int, generator: torch.Generator | None) -> list[int]:
    if generator is None:
        return list(range(n))
    return torch.randperm(n, generator=generator).tolist()


def shuffled_batches(
    num_rows: int, batch_size: int, generator: torch.Generator | None, drop_last: bool = False
) -> list[list[int]]:
    """Cut the rows, shuffled by ``generator`` (kept in order when it is ``None``), into batches.

    Args:
        num_rows: Rows in the dataset.
        batch_size: Rows per batch.
        generator: Source of the shuffle; ``None`` keeps the dataset order.
        drop_last: Drop a last batch smaller than ``batch_size``.
    """
    order = _permutation(num_rows, generator)
    batches = [order[i : i + batch_size] for i in range(0, num_rows, batch_size)]
    if drop_last and batches and len(batches[-1]) < batch_size:
        batches.pop()
    return batches


def no_duplicate_batches(
    row_texts: Sequence[Sequence[str]],
    batch_size: int,
    generator: torch.Generator | None,
    drop_last: bool = False,
) -> list[list[int]]:
    """Batches in which no text occurs twice (across all text columns).

    Rows are taken in shuffled order; a row that would repeat a text already in the batch waits for a later
    batch, so every row is used once and batches stay full until the end of the pass.

    Args:
        row_texts: The texts of each row (one entry per text column).
        batch_size: Rows per batch.
        generator: Source of the shuffle; ``None`` keeps the dataset order.
        drop_last: Drop a last batch smaller than ``batch_size``.
    """
    waiting = dict.fromkeys(_permutation(len(row_texts), generator))  # an ordered set of rows left
    batches: list[list[int]] = []
    while waiting:
        batch: list[int] = []
        seen: set[str] = set()
        for row in waiting:
            texts = set(row_texts[row])
            if seen.isdisjoint(texts):
                batch.append(row)
                seen |= texts
                if len(batch) == batch_size:
                    break
        for row in batch:
            del waiting[row]
        batches.append(batch)
    if drop_last and batches and len(batches[-1]) < batch_size:
        batches.pop()
    return batches


def label_grouped_batches(
    labels: Sequence[Hashable],
    batch_size: int,
    generator: torch.Generator | None,
    drop_last: bool = False,
) -> list[list[int]]:
    """Batches made of same-label pairs, with at least two labels in every batch.

    Each label's rows are shuffled and paired (an odd row out is left for the next pass); the pairs of all
    labels are shuffled together and cut into batches of ``batch_size // 2`` pairs. When a batch would end
    up holding a single label, its last pair is swapped with the next pair of another label. Labels with one
    row cannot form a pair and are never used.

    Args:
        labels: The label of each row.
        batch_size: Rows per batch; an even number of at least 4.
        generator: Source of the shuffles; ``None`` keeps the dataset order.
        drop_last: Drop a last batch smaller than ``batch_size``.

    Raises:
        ValueError: For an odd or too small batch size, or fewer than two labels with two rows each.
    """
    if batch_size < 4 or batch_size % 2:
        raise ValueError(f"group_by_label needs an even batch size of at least 4, got {batch_size}.")
    groups: dict[Hashable, list[int]] = defaultdict(list)
    for row, label in enumerate(labels):
        groups[label].append(row)
    usable = {label: rows for label, rows in groups.items() if len(rows) >= 2}
    if len(usable) < 2:
        raise ValueError(
            f"group_by_label needs at least 2 labels with 2 or more rows each; the dataset has {len(usable)}."
        )
    pairs: list[tuple[Hashable, list[int]]] = []
    for label, rows in usable.items():
        order = [rows[i] for i in _permutation(len(rows), generator)]
        pairs.extend((label, order[i : i + 2]) for i in range(0, len(order) - 1, 2))
    pairs = [pairs[i] for i in _permutation(len(pairs), generator)]

    per_batch = batch_size // 2
    batches: list[list[int]] = []
    current: list[int] = []
    current_labels: set[Hashable] = set()
    for k in range(len(pairs)):
        label = pairs[k][0]
        if len(current) // 2 == per_batch - 1 and current_labels == {label}:
            swap = next((m for m in range(k + 1, len(pairs)) if pairs[m][0] != label), None)
            if swap is None:
                break  # only this label is left: no further batch can mix labels
            pairs[k], pairs[swap] = pairs[swap], pairs[k]
            label = pairs[k][0]
        current.extend(pairs[k][1])
        current_labels.add(label)
        if len(current) == batch_size:
            batches.append(current)
            current, current_labels = [], set()
    if current and not drop_last and len(current_labels) >= 2:
        batches.append(current)
    return batches
