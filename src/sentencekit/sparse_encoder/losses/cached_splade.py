"""CachedSpladeLoss: SpladeLoss with gradient caching, for large batches in the memory of small ones."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn

from sentencekit.losses._common import Features
from sentencekit.losses.cached import GradCacheLoss
from sentencekit.sparse_encoder.losses.splade import SpladeLoss

__all__ = ["CachedSpladeLoss", "TokenBudgetGradCache"]


class TokenBudgetGradCache(GradCacheLoss):
    """The gradient-caching machinery, with mini-batches cut by rows or by a budget of real tokens.

    Args:
        model: The model being trained.
        mini_batch_size: Rows embedded at once (when ``mini_batch_num_tokens`` is ``None``).
        mini_batch_num_tokens: Pack consecutive rows while their non-padding tokens stay within this
            budget; a row longer than the budget is embedded alone.
        show_progress_bar: Show progress over the mini-batches.
    """

    def __init__(
        self,
        model: nn.Module,
        mini_batch_size: int,
        mini_batch_num_tokens: int | None,
        show_progress_bar: bool,
    ) -> None:
        super().__init__(model, mini_batch_size=mini_batch_size, show_progress_bar=show_progress_bar)
        if mini_batch_num_tokens is not None and (
            isinstance(mini_batch_num_tokens, bool)
            or not isinstance(mini_batch_num_tokens, int)
            or mini_batch_num_tokens <= 0
        ):
            raise ValueError(
                f"mini_batch_num_tokens must be a positive integer or None, got {mini_batch_num_tokens!r}."
            )
        self.mini_batch_num_tokens = mini_batch_num_tokens

    def _ranges(self, features: Features) -> list[tuple[int, int]]:
        if self.mini_batch_num_tokens is None:
            return super()._ranges(features)
        mask = features.get("attention_mask")
        if not isinstance(mask, Tensor) or mask.dim() != 2:
            raise ValueError(
                "mini_batch_num_tokens needs each row's token count from a 2-d attention_mask, which these "
                "features lack; use mini_batch_size instead."
            )
        lengths = mask.sum(dim=1).tolist()
        ranges: list[tuple[int, int]] = []
        start, used = 0, 0
        for row, length in enumerate(lengths):
            if row > start and used + length > self.mini_batch_num_tokens:
                ranges.append((start, row))
                start, used = row, 0
            used += length
        ranges.append((start, len(lengths)))
        return ranges


class CachedSpladeLoss(SpladeLoss):
    """:class:`SpladeLoss` with gradient caching (GradCache): the same loss and gradients, less memory.

    Every column is embedded in mini-batches without an autograd graph; the inner loss and the regularizers
    run on the full batch; their gradient with respect to the embeddings is kept; and during
    ``backward()`` each mini-batch is embedded again (with its recorded random state, so dropout repeats) and
    back-propagated with its slice of that gradient. Only the embedding passes are chunked: the inner loss's
    score matrix is still computed for the whole batch.

    The result is a dict of the same terms as :class:`SpladeLoss`; the gradient flows through their sum
    (the first term carries it), so training, which sums them, gets exactly SpladeLoss's gradients.

    ======================================  ======================================
    Inputs (text columns, in order)         Labels
    ======================================  ======================================
    whatever the inner loss takes           whatever the inner loss takes
    ======================================  ======================================

    When to use: in-batch negatives training of a SPLADE model where a larger batch helps but does not
    fit in memory; each row is embedded twice, so a step costs about a third more compute.

    Related: :class:`SpladeLoss`, :class:`~sentencekit.losses.CachedMultipleNegativesRankingLoss`.

    Args:
        model: The SparseEncoder being trained.
        loss: The inner loss (with ``compute_loss_from_embeddings``).
        document_regularizer_weight: As in :class:`SpladeLoss`.
        query_regularizer_weight: As in :class:`SpladeLoss`.
        document_regularizer: As in :class:`SpladeLoss`.
        query_regularizer: As in :class:`SpladeLoss`.
        document_regularizer_threshold: As in :class:`SpladeLoss`.
        query_regularizer_threshold: As in :class:`SpladeLoss`.
        use_document_regularizer_only: As in :class:`SpladeLoss`.
        mini_batch_size: Rows embedded at once; memory, not the result, depends on it.
        mini_batch_num_tokens: Instead of a row count, pack each mini-batch up to this many real (non-padding)
            tokens: faster on texts of mixed length.
        show_progress_bar: Show progress over the mini-batches.

    Example:
        >>> loss = losses.CachedSpladeLoss(model, losses.SparseMultipleNegativesRankingLoss(model),
        ...     document_regularizer_weight=3e-5, query_regularizer_weight=5e-5,
        ...     mini_batch_size=16)  # doctest: +SKIP
    """

    def __init__(
        self,
        model: nn.Module,
        loss: nn.Module,
        document_regularizer_weight: float,
        query_regularizer_weight: float | None = None,
        document_regularizer: nn.Module | None = None,
        query_regularizer: nn.Module | None = None,
        document_regularizer_threshold: int | None = None,
        query_regularizer_threshold: int | None = None,
        use_document_regularizer_only: bool = False,
        mini_batch_size: int = 32,
        mini_batch_num_tokens: int | None = None,
        show_progress_bar: bool = False,
    ) -> None:
        super().__init__(
            model,
            loss,
            document_regularizer_weight,
            query_regularizer_weight=query_regularizer_weight,
            document_regularizer=document_regularizer,
            query_regularizer=query_regularizer,
            document_regularizer_threshold=document_regularizer_threshold,
            query_regularizer_threshold=query_regularizer_threshold,
            use_document_regularizer_only=use_document_regularizer_only,
        )
        self.gradient_cache = TokenBudgetGradCache(
            model, mini_batch_size, mini_batch_num_tokens, show_progress_bar
        )

    @property
    def mini_batch_size(self) -> int:
        """Rows embedded at once."""
        return self.gradient_cache.mini_batch_size

    @property
    def mini_batch_num_tokens(self) -> int | None:
        """Token budget of a mini-batch, or ``None`` for ``mini_batch_size`` rows."""
        return self.gradient_cache.mini_batch_num_tokens

    @property
    def show_progress_bar(self) -> bool:
        """Whether progress over the mini-batches is shown."""
        return self.gradient_cache.show_progress_bar

    def forward(
        self, sentence_features: Iterable[Features], labels: Tensor | None = None
    ) -> dict[str, Tensor]:
        """The terms of :class:`SpladeLoss`; ``backward()`` on their sum re-embeds the mini-batches."""
        terms: dict[str, Tensor] = {}

        def total(embeddings: list[Tensor], batch_labels: Tensor | None) -> Tensor:
            computed = self.compute_loss_from_embeddings(embeddings, batch_labels)
            terms.update({name: value.detach() for name, value in computed.items()})
            return torch.stack(list(computed.values())).sum()

        value = self.gradient_cache.forward_with(sentence_features, labels, total)
        first, *others = terms
        rest = sum((terms[name] for name in others), torch.zeros_like(value))
        return {first: value - rest, **{name: terms[name] for name in others}}

    def get_config_dict(self) -> dict[str, Any]:
        """Hyper-parameters, for the model card."""
        return {
            **super().get_config_dict(),
            "mini_batch_size": self.mini_batch_size,
            "mini_batch_num_tokens": self.mini_batch_num_tokens,
        }
