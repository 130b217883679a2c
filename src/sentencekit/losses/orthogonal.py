"""GlobalOrthogonalRegularizationLoss: a regularizer that spreads unrelated embeddings over the space."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sentencekit.losses._common import Features, check_columns, embed_columns, function_name
from sentencekit.losses.ranking import SimilarityFn
from sentencekit.similarity import cos_sim

__all__ = ["GlobalOrthogonalRegularizationLoss"]


class GlobalOrthogonalRegularizationLoss(nn.Module):
    """Global orthogonal regularization (GOR): unrelated texts should be close to orthogonal.

    For each text column, over the similarities ``s_ij`` of its different rows (``i != j``):

    - the mean term ``mean(s_ij) ** 2`` penalizes texts that are on average similar;
    - the second-moment term ``relu(mean(s_ij ** 2) - 1 / dim)`` penalizes a spread wider than that of
      random directions in ``dim`` dimensions (which have ``E[s**2] = 1 / dim``).

    Each term is aggregated over the columns (``aggregation``), weighted, and returned under its own name:
    the loss returns a dict ``{"gor_mean": ..., "gor_second_moment": ...}`` (a term with weight 0 or
    ``None`` is left out). The training loop trains on the sum of the values.

    ===============================  ======
    Inputs (text columns, in order)  Labels
    ===============================  ======
    any columns                      none
    ===============================  ======

    When to use: as a regularizer next to a main loss, e.g. with :class:`MultipleNegativesRankingLoss` on
    the same embeddings (add the terms of ``compute_loss_from_embeddings`` to the main loss in a small
    wrapper loss), or as a second objective on the same data. It keeps embeddings from collapsing into a
    narrow cone; alone it teaches nothing about meaning.

    Related: :class:`MultipleNegativesRankingLoss` (the usual main loss).

    Args:
        model: The SentenceTransformer being trained.
        similarity_fct: Matrix similarity between a column's rows, e.g. cosine.
        mean_weight: Weight of the mean term; ``0`` or ``None`` leaves it out.
        second_moment_weight: Weight of the second-moment term; ``0`` or ``None`` leaves it out.
        aggregation: ``"mean"`` or ``"sum"`` of each term over the columns (EmbeddingGemma uses ``"sum"``
            with ``mean_weight=0``).

    Example:
        >>> gor = losses.GlobalOrthogonalRegularizationLoss(model)  # doctest: +SKIP
        >>> mnrl = losses.MultipleNegativesRankingLoss(model)  # doctest: +SKIP
        >>> q, d = queries, documents  # doctest: +SKIP
        >>> embeddings = [model(model.tokenize(t))["sentence_embedding"] for t in (q, d)]  # doctest: +SKIP
        >>> total = mnrl.compute_loss_from_embeddings(embeddings) + sum(
        ...     gor.compute_loss_from_embeddings(embeddings).values())  # doctest: +SKIP
    """

    def __init__(
        self,
        model: nn.Module,
        similarity_fct: SimilarityFn = cos_sim,
        mean_weight: float | None = 1.0,
        second_moment_weight: float | None = 1.0,
        aggregation: str = "mean",
    ) -> None:
        super().__init__()
        if not mean_weight and not second_moment_weight:
            raise ValueError(
                "GlobalOrthogonalRegularizationLoss needs mean_weight or second_moment_weight to be "
                "non-zero; both are 0 or None, so the loss would always be empty."
            )
        if aggregation not in ("mean", "sum"):
            raise ValueError(f"aggregation must be 'mean' or 'sum', got {aggregation!r}.")
        self.model = model
        self.similarity_fct = similarity_fct
        self.mean_weight = mean_weight
        self.second_moment_weight = second_moment_weight
        self.aggregation = aggregation

    def forward(
        self, sentence_features: Iterable[Features], labels: Tensor | None = None
    ) -> dict[str, Tensor]:
        """Embed every column and return the weighted terms by name; ``labels`` are ignored."""
        return self.compute_loss_from_embeddings(embed_columns(self.model, sentence_features), labels)

    def compute_loss_from_embeddings(
        self, embeddings: list[Tensor], labels: Tensor | None = None
    ) -> dict[str, Tensor]:
        """The weighted terms, ``{"gor_mean": ..., "gor_second_moment": ...}``, from column embeddings."""
        check_columns(type(self).__name__, len(embeddings), at_least=1)
        means, second_moments = zip(*(self.compute_gor(e) for e in embeddings), strict=True)
        terms: dict[str, Tensor] = {}
        if self.mean_weight:
            terms["gor_mean"] = self.mean_weight * self._aggregate(means)
        if self.second_moment_weight:
            terms["gor_second_moment"] = self.second_moment_weight * self._aggregate(second_moments)
        return terms

    def compute_gor(self, embeddings: Tensor) -> tuple[Tensor, Tensor]:
        """The (mean term, second-moment term) of one column's ``(batch, dim)`` embeddings."""
        rows, dim = embeddings.shape
        off_diagonal = ~torch.eye(rows, dtype=torch.bool, device=embeddings.device)
        similarities = self.similarity_fct(embeddings, embeddings) * off_diagonal
        pairs = max(rows * (rows - 1), 1)
        mean_term = (similarities.sum() / pairs) ** 2
        second_moment_term = F.relu(similarities.pow(2).sum() / pairs - 1.0 / dim)
        return mean_term, second_moment_term

    def _aggregate(self, values: tuple[Tensor, ...]) -> Tensor:
        stacked = torch.stack(values)
        return stacked.sum() if self.aggregation == "sum" else stacked.mean()

    def get_config_dict(self) -> dict[str, Any]:
        """Hyper-parameters, for the model card."""
        return {
            "similarity_fct": function_name(self.similarity_fct),
            "mean_weight": self.mean_weight,
            "second_moment_weight": self.second_moment_weight,
            "aggregation": self.aggregation,
        }
