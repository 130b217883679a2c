"""Building blocks shared by the chunked searches of ``search.py`` and ``paraphrases.py``.

Input checks (positive sizes; finite 2-D embeddings of one dimension), score blocks from a ``ScoreFunction``,
and a running top-``k`` per row that breaks ties by the smaller id, so results never depend on chunk sizes.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from sentencekit.errors import InvalidInputError
from sentencekit.similarity import ArrayLike, as_batch

__all__ = [
    "ScoreFunction",
    "_check_same_dim",
    "_embeddings",
    "_merge_top_k",
    "_require_positive",
    "_scores",
    "_top_k",
]

ScoreFunction = Callable[[Tensor, Tensor], Tensor]


def _require_positive(**values: int) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
            raise InvalidInputError(f"{name} must be a positive integer, got {value!r}.")


def _embeddings(x: ArrayLike, name: str) -> Tensor:
    """``x`` as a 2-D tensor whose values are all finite."""
    t = as_batch(x, name)
    values = t.coalesce().values() if t.is_sparse else t
    # a NaN or infinity makes the sum non-finite: one cheap reduction, and the full check only if it fires
    if not values.is_floating_point() or bool(torch.isfinite(values.sum())):
        return t
    finite = torch.isfinite(values).reshape(len(values), -1).all(dim=-1)
    if bool(finite.all()):  # the sum merely overflowed
        return t
    bad_rows = t.coalesce().indices()[0][~finite] if t.is_sparse else (~finite).nonzero().flatten()
    shown = sorted(set(bad_rows.tolist()))
    raise InvalidInputError(
        f"{name} contains NaN or infinite values in rows {shown[:10]}{' ...' if len(shown) > 10 else ''}. "
        "Such embeddings cannot be ranked: drop those rows or re-encode their texts."
    )


def _check_same_dim(a: Tensor, b: Tensor, a_name: str, b_name: str) -> None:
    if a.shape[1] != b.shape[1]:
        raise InvalidInputError(
            f"{a_name} have dimension {a.shape[1]} but {b_name} have dimension {b.shape[1]}; encode "
            "both with the same model (and the same truncate_dim)."
        )


def _scores(fn: ScoreFunction, a: Tensor, b: Tensor) -> Tensor:
    scores = fn(a, b).detach()
    if scores.shape != (a.shape[0], b.shape[0]):
        raise ValueError(
            f"score_function must return a ({a.shape[0]}, {b.shape[0]}) matrix of scores, got shape "
            f"{tuple(scores.shape)}. Pass a matrix function such as cos_sim, not a pairwise one."
        )
    return scores if scores.is_floating_point() else scores.double()


def _top_k(scores: Tensor, ids: Tensor | int, k: int) -> tuple[Tensor, Tensor]:
    """Return the ``k`` best scores per row and their ids; on equal scores the smaller id wins.

    ``ids`` holds the id of every score, or is the id of column 0 when the columns are consecutive ids (a
    block of the corpus), which spares building a ``(rows, cols)`` id matrix.

    ``torch.topk`` picks arbitrarily among scores tied at the cut-off; only the (rare) rows where that
    happened are redone with a stable sort, so the result does not depend on chunk sizes or hardware.
    """
    k = min(k, scores.shape[1])
    # one extra place shows whether the k-th score is tied with one that did not make the cut
    top, pos = torch.topk(scores, min(k + 1, scores.shape[1]), dim=1)
    cut = (top[:, k] == top[:, k - 1]).nonzero().flatten() if top.shape[1] > k else top.new_empty(0)
    top, pos = top[:, :k], pos[:, :k]
    top_ids = pos + ids if isinstance(ids, int) else ids.gather(1, pos)
    if len(cut):
        row_scores = scores[cut]
        if isinstance(ids, int):  # consecutive ids are already in ascending order
            row_ids = torch.arange(ids, ids + scores.shape[1], device=scores.device).expand_as(row_scores)
        else:
            by_id = torch.argsort(ids[cut], dim=1, stable=True)
            row_scores, row_ids = row_scores.gather(1, by_id), ids[cut].gather(1, by_id)
        by_score = torch.argsort(row_scores, dim=1, descending=True, stable=True)[:, :k]
        top[cut], top_ids[cut] = row_scores.gather(1, by_score), row_ids.gather(1, by_score)
    return top, top_ids


def _merge_top_k(
    best: tuple[Tensor, Tensor] | None, scores: Tensor, first_id: int, k: int
) -> tuple[Tensor, Tensor]:
    """Fold a block of scores (columns ``first_id, first_id + 1, ...``) into the running top ``k`` per row."""
    # reduce the block first, so that only (rows, 2k) values are ever concatenated
    top, top_ids = _top_k(scores, first_id, k)
    if best is None:
        return top, top_ids
    return _top_k(torch.cat([best[0], top], dim=1), torch.cat([best[1], top_ids], dim=1), k)
