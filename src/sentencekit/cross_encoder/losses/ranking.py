"""Cross-encoder losses that compare a query's positive with its negatives: MarginMSE and in-batch ranking."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sentencekit.cross_encoder.losses._pairs import check_ce_model, pair_logits, text_columns
from sentencekit.errors import InvalidInputError
from sentencekit.losses._common import function_name
from sentencekit.losses.distillation import teacher_margins

if TYPE_CHECKING:
    from sentencekit.cross_encoder.model import CrossEncoder

__all__ = ["MarginMSELoss", "MultipleNegativesRankingLoss"]

# Default activation of MultipleNegativesRankingLoss (stateless, so one instance can be shared); None = none.
_SIGMOID = nn.Sigmoid()


class MarginMSELoss(nn.Module):
    """The margins ``score(q, pos) - score(q, neg_k)`` regress a teacher's margins (mean squared error).

    ==================================================  ==============================================
    Inputs (text columns, in order)                     Labels
    ==================================================  ==============================================
    (query, positive, negative)                         teacher margin, or (pos, neg) teacher scores
    (query, positive, negative_1, ..., negative_n)      n margins, or n + 1 teacher scores
    ==================================================  ==============================================

    When to use: distilling a stronger cross-encoder (or an ensemble) into this one on mined hard
    negatives; only score differences are matched, so the two models' scales may differ.

    Related: :class:`MSELoss` (matches the scores themselves),
    :class:`sentencekit.losses.MarginMSELoss` (the bi-encoder version).

    Args:
        model: A CrossEncoder with ``num_labels=1``.
        activation_fn: Applied to the logits before the margins (identity by default).

    Example:
        >>> loss = losses.MarginMSELoss(model)  # doctest: +SKIP
        >>> loss([["what is a cat"], ["A cat is a pet."], ["Paris is a city."]], torch.tensor([[8.1, -3.2]]))
        ... # doctest: +SKIP
    """

    def __init__(self, model: CrossEncoder, activation_fn: nn.Module | None = None) -> None:
        super().__init__()
        check_ce_model(type(self).__name__, model, num_labels=1)
        self.model = model
        self.activation_fn = activation_fn if activation_fn is not None else nn.Identity()
        self.loss_fct = nn.MSELoss()

    def forward(self, inputs: Sequence[Sequence[str]], labels: Tensor, prompt: str | None = None) -> Tensor:
        """Score (query, positive) and every (query, negative_k) and return the MSE of the margins."""
        columns = text_columns(type(self).__name__, inputs)
        queries, candidates = columns[0], columns[1:]
        rows, negatives = len(queries), len(candidates) - 1
        if negatives < 1:
            raise InvalidInputError("MarginMSELoss takes (query, positive, negative[, negative...]) columns.")
        target = teacher_margins(type(self).__name__, labels, rows, negatives)
        logits = pair_logits(
            self.model, queries * len(candidates), [d for c in candidates for d in c], prompt
        )
        scores = self.activation_fn(logits.view(len(candidates), rows).t())  # [query, candidate]
        margins = scores[:, :1] - scores[:, 1:]
        result: Tensor = self.loss_fct(margins, target.to(margins.device))
        return result

    def get_config_dict(self) -> dict[str, Any]:
        """Hyper-parameters, for the model card."""
        return {"activation_fn": function_name(self.activation_fn)}


class MultipleNegativesRankingLoss(nn.Module):
    """In-batch negatives for a cross-encoder: each query's positive must outscore other batch documents.

    For query ``i`` the candidates are its positive, ``num_negatives`` documents drawn at random from the
    other queries' columns, and every document in its own negative columns. Their scores (after
    ``activation_fn``, times ``scale``) go through a softmax cross-entropy with the positive as the target.

    ==================================================  ======
    Inputs (text columns, in order)                     Labels
    ==================================================  ======
    (query, positive)                                   none
    (query, positive, negative_1, ..., negative_n)      none
    ==================================================  ======

    When to use: training a reranker from positive pairs only (question/answer, query/clicked passage).
    Every candidate is a full forward pass, so cost grows with ``num_negatives``.

    Related: :class:`BinaryCrossEntropyLoss` (needs labelled negatives), :class:`ListNetLoss` and
    :class:`LambdaLoss` (graded lists), :class:`sentencekit.losses.MultipleNegativesRankingLoss`.

    Args:
        model: A CrossEncoder with ``num_labels=1``.
        num_negatives: In-batch negatives drawn per query; ``None`` uses every other document of the batch.
        scale: Multiplies the (activated) scores before the softmax (0: no scaling).
        activation_fn: Applied to the logits first (sigmoid by default, so scores lie in [0, scale]);
            ``None`` for raw logits.

    Example:
        >>> loss = losses.MultipleNegativesRankingLoss(model, num_negatives=4)  # doctest: +SKIP
        >>> loss([queries, passages], None).backward()  # doctest: +SKIP
    """

    def __init__(
        self,
        model: CrossEncoder,
        num_negatives: int | None = 4,
        scale: float = 10.0,
        activation_fn: nn.Module | None = _SIGMOID,
    ) -> None:
        super().__init__()
        check_ce_model(type(self).__name__, model, num_labels=1)
        if num_negatives is not None and num_negatives < 0:
            raise ValueError(f"num_negatives must be None or non-negative, got {num_negatives}.")
        self.model = model
        self.num_negatives = num_negatives
        self.scale = float(scale)
        self.activation_fn = activation_fn if activation_fn is not None else nn.Identity()

    def _sampled_negatives(self, candidates: list[list[str]]) -> list[list[str]]:
        """Per rank ``k``, the k-th in-batch negative of every query (documents of other queries only)."""
        rows = len(candidates[0])
        flat = [
            doc for column in candidates for doc in column
        ]  # column-major: doc j belongs to query j % rows
        others = ~torch.eye(rows, dtype=torch.bool).repeat(1, len(candidates))
        available = len(flat) - len(candidates)
        if self.num_negatives is not None and self.num_negatives < available:
            picks = torch.multinomial(others.float(), self.num_negatives)  # without replacement, per query
        else:
            picks = torch.arange(len(flat)).repeat(rows, 1)[others].view(rows, -1)
        return [[flat[j] for j in column.tolist()] for column in picks.t()]

    def _ranked_pairs(self, inputs: Sequence[Sequence[str]]) -> tuple[int, list[str], list[str]]:
        """The batch's row count and its (query, candidate) pairs, one candidate rank after another.

        The ranks are each query's positive, its sampled in-batch negatives, then its hard negatives.
        """
        columns = text_columns(type(self).__name__, inputs)
        queries, candidates = columns[0], columns[1:]
        ranked = [candidates[0], *self._sampled_negatives(candidates), *candidates[1:]]
        return len(queries), queries * len(ranked), [d for column in ranked for d in column]

    def _loss_from_logits(self, logits: Tensor, rows: int) -> Tensor:
        """Cross-entropy with the positive as target; flat ``logits``, one candidate rank after another."""
        scores = self.activation_fn(logits.view(-1, rows).t())
        if self.scale:  # 0 means unscaled, as in the reference
            scores = scores * self.scale
        return F.cross_entropy(scores, torch.zeros(rows, dtype=torch.long, device=scores.device))

    def forward(
        self, inputs: Sequence[Sequence[str]], labels: Tensor | None = None, prompt: str | None = None
    ) -> Tensor:
        """Score each query against its candidates and return the cross-entropy (``labels`` are ignored)."""
        rows, firsts, seconds = self._ranked_pairs(inputs)
        return self._loss_from_logits(pair_logits(self.model, firsts, seconds, prompt), rows)

    def get_config_dict(self) -> dict[str, Any]:
        """Hyper-parameters, for the model card."""
        return {
            "scale": self.scale,
            "num_negatives": self.num_negatives,
            "activation_fn": function_name(self.activation_fn),
        }
