"""ListMLE and Position-Aware ListMLE: the likelihood of the gold ranking under a Plackett-Luce model.

The model's scores define a Plackett-Luce distribution over orderings: the first document is drawn with
probability ``softmax(scores)``, the next from the softmax of the remaining ones, and so on. These losses
maximize the log-probability of the gold ordering, optionally weighting each draw by its position.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from sentencekit.cross_encoder.losses._pairs import check_ce_model
from sentencekit.cross_encoder.losses.listwise import score_lists
from sentencekit.losses._common import function_name

if TYPE_CHECKING:
    from sentencekit.cross_encoder.model import CrossEncoder

__all__ = ["ListMLELoss", "PListMLELambdaWeight", "PListMLELoss"]

# Lists longer than this have their default weights divided by a common power of two, so that the largest,
# 2 ** (n - 1), stays below float32's maximum (2 ** 128); the weights are normalized, so nothing else changes.
_MAX_EXPONENT = 127


class PListMLELambdaWeight(nn.Module):
    """Position weights of :class:`PListMLELoss`: how much getting each rank right counts.

    Called with the ``(queries, n)`` boolean mask of real documents (in gold order), it returns weights of the
    same shape, 0 for the padding. The loss normalizes each row to sum to 1.

    Args:
        rank_discount_fn: Maps the mask to weights; ``None`` uses ``2 ** (n - rank) - 1`` for ranks
            ``1..n`` of a list of ``n`` documents, so the top of the list dominates.

    Example:
        >>> def discount(mask):  # doctest: +SKIP
        ...     return (1.0 / torch.log2(1.0 + mask.cumsum(dim=1))) * mask
        >>> losses.PListMLELoss(model, lambda_weight=losses.PListMLELambdaWeight(discount))  # doctest: +SKIP
    """

    def __init__(self, rank_discount_fn: Callable[[Tensor], Tensor] | None = None) -> None:
        super().__init__()
        if rank_discount_fn is not None and not callable(rank_discount_fn):
            raise ValueError(
                "rank_discount_fn must map the (queries, documents) mask to weights, got "
                f"{type(rank_discount_fn).__name__}."
            )
        self.rank_discount_fn = rank_discount_fn

    def forward(self, mask: Tensor) -> Tensor:
        """Weights of every position, ``(queries, n)``, zero where ``mask`` is false."""
        if self.rank_discount_fn is not None:
            return self.rank_discount_fn(mask)
        lengths = mask.sum(dim=1, keepdim=True)
        ranks = torch.arange(1, mask.shape[1] + 1, device=mask.device)
        shift = (lengths - _MAX_EXPONENT).clamp(min=0).float()
        weights = torch.exp2((lengths - ranks).float() - shift) - torch.exp2(-shift)
        return weights * mask


# The default position weighting; it holds no state, so the losses may share it.
_POSITION_WEIGHTS = PListMLELambdaWeight()


class PListMLELoss(nn.Module):
    """Position-Aware ListMLE: minus the position-weighted log-likelihood of the gold ordering.

    For each list in gold order (``respect_input_order=True``: the order given; otherwise sorted by label,
    highest first), the loss at position ``p`` is ``-w_p * log softmax(scores[p:])[0]``: the log-probability
    that the document ranked ``p`` outscores every document ranked below it. The positions' losses are
    summed per list, and the lists averaged. Weights come from ``lambda_weight``, normalized per list;
    without it every position weighs 1 (that is :class:`ListMLELoss`).

    ==========================================  =========================================================
    Inputs (columns)                            Labels
    ==========================================  =========================================================
    (query, [doc_1, ..., doc_n])                ``[label_1, ..., label_n]`` (binary or graded relevance)
    ==========================================  =========================================================

    Lists may differ in length; shorter ones are padded and the padding is ignored.

    When to use: training a reranker on lists whose full order matters (teacher rankings, graded labels);
    the position weights make the top of the list count most, as nDCG does.

    Related: :class:`ListMLELoss` (no position weights), :class:`LambdaLoss` (usually stronger on the same
    data), :class:`ListNetLoss`, :class:`RankNetLoss`.

    Args:
        model: A CrossEncoder with ``num_labels=1``.
        lambda_weight: Position weights (:class:`PListMLELambdaWeight`); ``None`` weighs every position 1.
        activation_fn: Applied to the logits (identity by default).
        mini_batch_size: Pairs per forward pass (``None``: as many as queries in the batch; ``<= 0``: all).
        respect_input_order: The documents are given best first; ``False`` sorts each list by its labels
            (the order among equal labels is then arbitrary).

    Example:
        >>> loss = losses.PListMLELoss(model)  # doctest: +SKIP
        >>> loss([["what is a cat"], [["A cat is a pet.", "Cats purr.", "Paris"]]],
        ...      [torch.tensor([2.0, 1.0, 0.0])]).backward()  # doctest: +SKIP
    """

    # Keeps the weight normalization finite when a list's weights sum to 0.
    eps = 1e-10

    def __init__(
        self,
        model: CrossEncoder,
        lambda_weight: PListMLELambdaWeight | None = _POSITION_WEIGHTS,
        activation_fn: nn.Module | None = None,
        mini_batch_size: int | None = None,
        respect_input_order: bool = True,
    ) -> None:
        super().__init__()
        check_ce_model(type(self).__name__, model, num_labels=1)
        if lambda_weight is not None and not callable(lambda_weight):
            raise ValueError(
                "lambda_weight must be a PListMLELambdaWeight (or a callable from the document mask to "
                f"position weights) or None, got {type(lambda_weight).__name__}."
            )
        self.model = model
        self.lambda_weight = lambda_weight
        self.activation_fn = activation_fn if activation_fn is not None else nn.Identity()
        self.mini_batch_size = mini_batch_size
        self.respect_input_order = bool(respect_input_order)

    def forward(self, inputs: Sequence[Any], labels: Any, prompt: str | None = None) -> Tensor:
        """Score every list and return the mean negative (weighted) log-likelihood of the gold orders."""
        lists = score_lists(
            type(self).__name__, self.model, inputs, labels, self.activation_fn, self.mini_batch_size, prompt
        )
        scores = lists.scores
        real = ~torch.isneginf(lists.labels)  # score_lists gives the empty slots a label of -inf
        if not self.respect_input_order:
            order = lists.labels.sort(descending=True, dim=1).indices
            scores, real = scores.gather(1, order), real.gather(1, order)
        scores = scores.masked_fill(~real, torch.finfo(scores.dtype).min)
        # log of the sum of exp(score) over each position and every position after it
        remaining = scores.flip(1).logcumsumexp(dim=1).flip(1)
        log_likelihoods = scores - remaining
        if self.lambda_weight is not None:
            weights = self.lambda_weight(real)
            log_likelihoods = log_likelihoods * (weights / (weights.sum(dim=1, keepdim=True) + self.eps))
        per_list = -torch.where(real, log_likelihoods, 0.0).sum(dim=1)
        return per_list.mean()

    def get_config_dict(self) -> dict[str, Any]:
        """Hyper-parameters, for the model card."""
        return {
            "lambda_weight": None if self.lambda_weight is None else function_name(self.lambda_weight),
            "activation_fn": function_name(self.activation_fn),
            "mini_batch_size": self.mini_batch_size,
            "respect_input_order": self.respect_input_order,
        }


class ListMLELoss(PListMLELoss):
    """ListMLE: minus the log-likelihood of the gold ordering under the model's Plackett-Luce distribution.

    :class:`PListMLELoss` with every position weighing the same.

    ==========================================  =========================================================
    Inputs (columns)                            Labels
    ==========================================  =========================================================
    (query, [doc_1, ..., doc_n])                ``[label_1, ..., label_n]`` (binary or graded relevance)
    ==========================================  =========================================================

    When to use: lists in a meaningful full order; prefer :class:`PListMLELoss`, which usually does better
    by stressing the top positions.

    Related: :class:`PListMLELoss`, :class:`LambdaLoss`, :class:`ListNetLoss`.

    Args:
        model: A CrossEncoder with ``num_labels=1``.
        activation_fn: Applied to the logits (identity by default).
        mini_batch_size: Pairs per forward pass (``None``: as many as queries in the batch; ``<= 0``: all).
        respect_input_order: The documents are given best first; ``False`` sorts each list by its labels.

    Example:
        >>> loss = losses.ListMLELoss(model, respect_input_order=False)  # doctest: +SKIP
        >>> loss([["what is a cat"], [["Paris", "A cat is a pet.", "Cats purr."]]],
        ...      [torch.tensor([0.0, 2.0, 1.0])]).backward()  # doctest: +SKIP
    """

    def __init__(
        self,
        model: CrossEncoder,
        activation_fn: nn.Module | None = None,
        mini_batch_size: int | None = None,
        respect_input_order: bool = True,
    ) -> None:
        super().__init__(
            model,
            lambda_weight=None,
            activation_fn=activation_fn,
            mini_batch_size=mini_batch_size,
            respect_input_order=respect_input_order,
        )

    def get_config_dict(self) -> dict[str, Any]:
        """Hyper-parameters, for the model card (there are no position weights to list)."""
        config = super().get_config_dict()
        del config["lambda_weight"]
        return config
