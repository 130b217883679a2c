"""From candidates to negatives: drop each anchor's positives and filtered ones, window, sample."""

from __future__ import annotations

import random

import numpy as np
import torch
from torch import Tensor


def _select(
    ids: Tensor,
    scores: Tensor,
    pos_scores: Tensor,
    rows: list[tuple[int, int]],
    exclude: list[set[int]] | None,
    filters: dict[str, float | None],
    range_min: int,
    range_max: int,
) -> tuple[list[list[tuple[int, float]]], dict[str, int]]:
    """Apply the filters and the range window: per query, the ranked (id, score) candidates left.

    Also returns how many candidates each filter dropped (that no earlier rule had dropped already).
    """
    dropped = torch.zeros_like(scores, dtype=torch.bool)
    if exclude is not None:  # an anchor's own positives are never its negatives
        own = [[c in exclude[qi] for c in row] for qi, row in enumerate(ids.tolist())]
        dropped |= torch.tensor(own, dtype=torch.bool).reshape(scores.shape)
    # the margins are measured from each anchor's hardest (lowest-scoring) positive
    hardest = torch.full((len(ids),), torch.inf, dtype=scores.dtype).scatter_reduce(
        0, torch.tensor([qi for qi, _ in rows]), pos_scores.to(scores.dtype), reduce="amin"
    )[:, None]
    fails = {
        "absolute_margin": lambda m: scores + m > hardest,
        "relative_margin": lambda m: scores > hardest - hardest.abs() * m,
        "max_score": lambda m: scores > m,
        "min_score": lambda m: scores < m,
    }
    skipped: dict[str, int] = {}
    for name, value in filters.items():
        if value is not None:
            failed = fails[name](value)
            skipped[name] = int((failed & ~dropped).sum())
            dropped |= failed
    # survivors best first (a stable sort: equal scores keep their retrieval order), cut to the window
    masked = scores.masked_fill(dropped, -torch.inf)
    order = torch.sort(masked, dim=1, descending=True, stable=True).indices[:, range_min:range_max]
    windows = zip(ids.gather(1, order).tolist(), masked.gather(1, order).tolist(), strict=True)
    survivors = [[(c, s) for c, s in zip(*window, strict=True) if s != -np.inf] for window in windows]
    return survivors, skipped


def _sample(window: list[tuple[int, float]], n: int, strategy: str) -> list[tuple[int, float]]:
    """Pick ``n`` of the ranked ``window`` (fewer when it is shorter), keeping the ranking order."""
    if strategy == "top":
        return window[:n]
    # n places drawn among max(len(window), n) as the reference draws them, so a seeded run matches it;
    # places past the end of a short window stay empty and the anchor gets fewer negatives
    places = random.sample(range(max(len(window), n)), k=n)
    return [window[p] for p in sorted(places) if p < len(window)]
