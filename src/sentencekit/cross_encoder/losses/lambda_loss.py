"""LambdaLoss: a listwise ranking loss whose pair weights are what swapping two documents does to nDCG."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sentencekit.cross_encoder.losses._pairs import check_ce_model
from sentencekit.cross_encoder.losses.listwise import score_lists
from sentencekit.losses._common import function_name

if TYPE_CHECKING:
    from sentencekit.cross_encoder.model import CrossEncoder

__all__ = [
    "BaseWeightingScheme",
    "LambdaLoss",
    "LambdaRankScheme",
    "NDCGLoss1Scheme",
    "NDCGLoss2PPScheme",
    "NDCGLoss2Scheme",
    "NoWeightingScheme",
]


class BaseWeightingScheme(nn.Module):
    """Weight of each document pair ``(i, j)`` (positions in the predicted order) in :class:`LambdaLoss`.

    ``forward(gain, discount, true_sorted)`` gets, per query, the normalized gain ``(2**label - 1) / maxDCG``
    of the document at each predicted position ``(queries, n)``, the position discounts
    ``log2(1 + position)`` ``(1, n)``, and the labels in predicted order; it returns weights broadcastable to
    ``(queries, n, n)``.
    """

    # Whether every pair of real documents counts (NDCGLoss1), or only pairs with label_i > label_j.
    uses_all_pairs = False

    def forward(self, gain: Tensor, discount: Tensor, true_sorted: Tensor) -> Tensor:
        """Pair weights; subclasses implement this."""
        raise NotImplementedError  # pragma: no cover - abstract


class NoWeightingScheme(BaseWeightingScheme):
    """Every pair weighs 1: a RankNet-style pairwise logistic loss."""

    def forward(self, gain: Tensor, discount: Tensor, true_sorted: Tensor) -> Tensor:
        """A constant 1."""
        return torch.ones((), device=gain.device)


class NDCGLoss1Scheme(BaseWeightingScheme):
    """``gain_i / discount_i``: NDCG-Loss1 of the LambdaLoss paper; every pair of real documents counts."""

    uses_all_pairs = True

    def forward(self, gain: Tensor, discount: Tensor, true_sorted: Tensor) -> Tensor:
        """``(queries, n, 1)`` weights."""
        return (gain / discount).unsqueeze(2)


def _position_gap_weights(n: int, device: torch.device) -> Tensor:
    """``|1 / log2(1 + d) - 1 / log2(2 + d)|`` for ``d = |i - j|``, 0 on the diagonal; ``(n, n)``."""
    positions = torch.arange(n, device=device)
    gap = (positions.unsqueeze(0) - positions.unsqueeze(1)).abs().float()
    safe = gap.clamp(min=1)
    weights = (1 / torch.log2(1 + safe) - 1 / torch.log2(2 + safe)).abs()
    return torch.where(gap > 0, weights, torch.zeros_like(weights))


class NDCGLoss2Scheme(BaseWeightingScheme):
    """NDCG-Loss2: the discount step between positions ``|i - j|`` apart, times the gain difference.

    A tighter bound on nDCG than NDCG-Loss1.
    """

    def forward(self, gain: Tensor, discount: Tensor, true_sorted: Tensor) -> Tensor:
        """``(queries, n, n)`` weights."""
        gaps = _position_gap_weights(gain.shape[1], gain.device)
        return gaps.unsqueeze(0) * (gain.unsqueeze(2) - gain.unsqueeze(1)).abs()


class LambdaRankScheme(BaseWeightingScheme):
    """LambdaRank's ``|1/D_i - 1/D_j| * |G_i - G_j|``: the nDCG change of swapping documents i and j."""

    def forward(self, gain: Tensor, discount: Tensor, true_sorted: Tensor) -> Tensor:
        """``(queries, n, n)`` weights."""
        inverse = 1.0 / discount
        return (inverse.unsqueeze(2) - inverse.unsqueeze(1)).abs() * (
            gain.unsqueeze(2) - gain.unsqueeze(1)
        ).abs()


class NDCGLoss2PPScheme(BaseWeightingScheme):
    """NDCG-Loss2++: ``mu * NDCGLoss2 + LambdaRank``, the paper's best-performing weighting (the default).

    Args:
        mu: Weight of the NDCG-Loss2 part.
    """

    def __init__(self, mu: float = 10.0) -> None:
        super().__init__()
        self.mu = float(mu)
        self.ndcg_loss2 = NDCGLoss2Scheme()
        self.lambda_rank = LambdaRankScheme()

    def forward(self, gain: Tensor, discount: Tensor, true_sorted: Tensor) -> Tensor:
        """``(queries, n, n)`` weights."""
        return self.mu * self.ndcg_loss2(gain, discount, true_sorted) + self.lambda_rank(
            gain, discount, true_sorted
        )


# Marks "no weighting_scheme given" (a fresh NDCGLoss2PPScheme is made); None means NoWeightingScheme.
_DEFAULT_SCHEME = NDCGLoss2PPScheme()


class LambdaLoss(nn.Module):
    """LambdaLoss: pairwise logistic losses within each list, weighted by their effect on nDCG.

    Documents are ordered by the model's scores; for every pair ``(i, j)`` with ``label_i > label_j`` the loss
    adds ``-weight_ij * log(sigmoid(sigma * (s_i - s_j)))``, where the weighting scheme measures how much
    nDCG the pair's order is worth. With ``k``, only pairs touching the top ``k`` positions count. The result
    is averaged over the counted pairs.

    ==========================================  =========================================================
    Inputs (columns)                            Labels
    ==========================================  =========================================================
    (query, [doc_1, ..., doc_n])                ``[label_1, ..., label_n]`` (graded relevance, e.g. 0-3)
    ==========================================  =========================================================

    When to use: training a reranker on graded relevance lists when nDCG is the metric that matters; one of
    the strongest listwise losses.

    Related: :class:`ListNetLoss` (simpler), :class:`MultipleNegativesRankingLoss` (binary relevance).
    Weighting schemes: :class:`NDCGLoss2PPScheme` (default), :class:`NDCGLoss2Scheme`,
    :class:`NDCGLoss1Scheme`, :class:`LambdaRankScheme`, :class:`NoWeightingScheme`.

    Args:
        model: A CrossEncoder with ``num_labels=1``.
        weighting_scheme: Pair weights; ``None`` means :class:`NoWeightingScheme`.
        k: Only pairs with a document in the top ``k`` predicted positions count (``None``: all); nDCG@k.
        sigma: Steepness of the pairwise logistic.
        eps: Floor of the ideal DCG (lists without relevant documents).
        reduction_log: ``"binary"`` (log base 2) or ``"natural"``.
        activation_fn: Applied to the logits (identity by default).
        mini_batch_size: Pairs per forward pass (``None``: as many as queries in the batch; ``<= 0``: all).

    Example:
        >>> loss = losses.LambdaLoss(model)  # doctest: +SKIP
        >>> loss([["what is a cat"], [["A cat is a pet.", "Cats purr.", "Paris"]]],
        ...      [torch.tensor([2.0, 1.0, 0.0])]).backward()  # doctest: +SKIP
    """

    def __init__(
        self,
        model: CrossEncoder,
        weighting_scheme: nn.Module | None = _DEFAULT_SCHEME,
        k: int | None = None,
        sigma: float = 1.0,
        eps: float = 1e-10,
        reduction_log: str = "binary",
        activation_fn: nn.Module | None = None,
        mini_batch_size: int | None = None,
    ) -> None:
        super().__init__()
        check_ce_model(type(self).__name__, model, num_labels=1)
        if reduction_log not in ("binary", "natural"):
            raise ValueError(f"reduction_log must be 'binary' or 'natural', got {reduction_log!r}.")
        if weighting_scheme is _DEFAULT_SCHEME:
            weighting_scheme = NDCGLoss2PPScheme()
        self.model = model
        self.weighting_scheme = weighting_scheme if weighting_scheme is not None else NoWeightingScheme()
        self.k = k
        self.sigma = float(sigma)
        self.eps = float(eps)
        self.reduction_log = reduction_log
        self.activation_fn = activation_fn if activation_fn is not None else nn.Identity()
        self.mini_batch_size = mini_batch_size

    def _uses_all_pairs(self) -> bool:
        scheme = self.weighting_scheme
        return bool(getattr(scheme, "uses_all_pairs", type(scheme).__name__ == "NDCGLoss1Scheme"))

    def forward(self, inputs: Sequence[Any], labels: Any, prompt: str | None = None) -> Tensor:
        """Score every list and return the weighted pairwise loss."""
        lists = score_lists(
            type(self).__name__, self.model, inputs, labels, self.activation_fn, self.mini_batch_size, prompt
        )
        n = lists.scores.shape[1]
        device = lists.scores.device
        scores, order = lists.scores.sort(descending=True, dim=1)
        gold = lists.labels.gather(1, order)  # gold labels in predicted order; -inf for padding
        gold_diffs = gold.unsqueeze(2) - gold.unsqueeze(1)
        counted = torch.isfinite(gold_diffs)
        if not self._uses_all_pairs():
            counted &= gold_diffs > 0
        k = self.k or n
        in_top_k = torch.zeros((n, n), dtype=torch.bool, device=device)
        in_top_k[:k, :] = True
        in_top_k[:, :k] = True

        gold = gold.clamp(min=0.0)
        ideal = lists.labels.sort(descending=True, dim=1).values.clamp(min=0.0)
        discount = torch.log2(1.0 + torch.arange(1, n + 1, device=device).float()).unsqueeze(0)
        max_dcg = ((2**ideal - 1) / discount)[:, :k].sum(dim=1).clamp(min=self.eps)
        gain = (2**gold - 1) / max_dcg.unsqueeze(1)
        weights = self.weighting_scheme(gain, discount, gold)

        score_diffs = (scores.unsqueeze(2) - scores.unsqueeze(1)).clamp(min=-1e8, max=1e8).nan_to_num(0.0)
        pair_losses = weights * F.logsigmoid(self.sigma * score_diffs)
        if self.reduction_log == "binary":
            pair_losses = pair_losses / math.log(2)
        selected = pair_losses[counted & in_top_k]
        return -selected.sum() / max(selected.numel(), 1)

    def get_config_dict(self) -> dict[str, Any]:
        """Hyper-parameters, for the model card."""
        return {
            "weighting_scheme": function_name(self.weighting_scheme),
            "k": self.k,
            "sigma": self.sigma,
            "eps": self.eps,
            "reduction_log": self.reduction_log,
            "activation_fn": function_name(self.activation_fn),
            "mini_batch_size": self.mini_batch_size,
        }
