"""ADR-MSE: the squared error between each document's gold rank and a differentiable estimate of its rank."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from sentencekit.cross_encoder.losses._pairs import check_ce_model
from sentencekit.cross_encoder.losses.listwise import score_lists
from sentencekit.losses._common import function_name

if TYPE_CHECKING:
    from sentencekit.cross_encoder.model import CrossEncoder

__all__ = ["ADRMSELoss", "average_ranks"]


def average_ranks(labels: Tensor, mask: Tensor) -> Tensor:
    """Rank of every document by label, best = 1, with tied documents sharing the mean of their ranks.

    Args:
        labels: ``(queries, n)`` labels.
        mask: ``(queries, n)``, true for real documents; the others are not counted.

    Returns:
        ``(queries, n)`` float ranks; e.g. labels ``[3, 1, 1, 0]`` give ``[1, 2.5, 2.5, 4]``.
    """
    other, own = labels.unsqueeze(1), labels.unsqueeze(2)  # [query, document, other document]
    counted = mask.unsqueeze(1)
    better = ((other > own) & counted).sum(dim=2)
    tied = ((other == own) & counted).sum(dim=2)  # the document itself included
    return better + (tied + 1) / 2


class ADRMSELoss(nn.Module):
    """ADR-MSE (Approx Discounted Rank MSE): each document's estimated rank should equal its gold rank.

    The rank of document ``i`` is estimated smoothly from the scores as
    ``1 + sum_{j != i} sigmoid(alpha * (s_j - s_i))`` (ApproxRank). The gold rank comes from the labels,
    tied documents sharing the mean of their ranks. The loss is the squared difference of the two, times
    ``1 / log2(1 + gold rank)`` so that the top of the list counts most, averaged over all documents.

    ==========================================  =========================================================
    Inputs (columns)                            Labels
    ==========================================  =========================================================
    (query, [doc_1, ..., doc_n])                ``[label_1, ..., label_n]`` (binary or graded relevance)
    ==========================================  =========================================================

    Lists may differ in length; shorter ones are padded and the padding is ignored.

    When to use: distilling a teacher's ranking (e.g. an LLM's) into a reranker, as in Rank-DistiLLM;
    only the order of the labels matters, not their scale.

    Related: :class:`RankNetLoss` (pairwise; about as good in the Rank-DistiLLM paper), :class:`LambdaLoss`,
    :class:`ListNetLoss`, :class:`PListMLELoss`.

    Args:
        model: A CrossEncoder with ``num_labels=1``.
        alpha: Sharpness of the rank estimate's sigmoid: higher follows the hard rank more closely but gives
            weaker gradients to well-separated pairs.
        activation_fn: Applied to the logits (identity by default).
        mini_batch_size: Pairs per forward pass (``None``: as many as queries in the batch; ``<= 0``: all).

    Example:
        >>> loss = losses.ADRMSELoss(model)  # doctest: +SKIP
        >>> loss([["what is a cat"], [["A cat is a pet.", "Cats purr.", "Paris"]]],
        ...      [torch.tensor([0.95, 0.9, 0.1])]).backward()  # doctest: +SKIP
    """

    def __init__(
        self,
        model: CrossEncoder,
        alpha: float = 1.0,
        activation_fn: nn.Module | None = None,
        mini_batch_size: int | None = None,
    ) -> None:
        super().__init__()
        check_ce_model(type(self).__name__, model, num_labels=1)
        if not alpha > 0:
            raise ValueError(f"alpha must be positive (the sigmoid's sharpness), got {alpha}.")
        self.model = model
        self.alpha = alpha
        self.activation_fn = activation_fn if activation_fn is not None else nn.Identity()
        self.mini_batch_size = mini_batch_size

    def approximate_ranks(self, scores: Tensor, mask: Tensor) -> Tensor:
        """ApproxRank of every document: 1 plus the soft count of real documents scored above it."""
        above = torch.sigmoid(self.alpha * (scores.unsqueeze(1) - scores.unsqueeze(2)))  # [q, i, j]: j > i
        others = mask.unsqueeze(1) & ~torch.eye(scores.shape[1], dtype=torch.bool, device=scores.device)
        return 1.0 + (above * others).sum(dim=2)

    def forward(self, inputs: Sequence[Any], labels: Any, prompt: str | None = None) -> Tensor:
        """Score every list and return the mean discounted squared rank error."""
        lists = score_lists(
            type(self).__name__, self.model, inputs, labels, self.activation_fn, self.mini_batch_size, prompt
        )
        real = ~torch.isneginf(lists.labels)  # score_lists gives the empty slots a label of -inf
        gold = average_ranks(lists.labels, real)
        errors = (gold - self.approximate_ranks(lists.scores, real)) ** 2 / torch.log2(gold + 1.0)
        return errors[real].mean()

    def get_config_dict(self) -> dict[str, Any]:
        """Hyper-parameters, for the model card."""
        return {
            "alpha": self.alpha,
            "activation_fn": function_name(self.activation_fn),
            "mini_batch_size": self.mini_batch_size,
        }
