"""MultipleNegativesRankingLoss for cross-encoders with gradient caching: many pairs, little memory.

The pairs are scored in mini-batches without an autograd graph; the loss and its gradient with respect to
the logits are computed on the whole batch; then, inside ``loss.backward()``, each mini-batch is scored
again with a graph and back-propagated with its slice of that gradient. The random state of each
mini-batch is replayed, so dropout draws the same masks in both passes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from sentencekit.cross_encoder.losses._pairs import pair_logits
from sentencekit.cross_encoder.losses.ranking import _SIGMOID, MultipleNegativesRankingLoss
from sentencekit.losses.cached import RandomState

if TYPE_CHECKING:
    from sentencekit.cross_encoder.model import CrossEncoder

__all__ = ["CachedMultipleNegativesRankingLoss"]


class _Pairs:
    """One batch's (query, document) pairs, cut into mini-batches, and the prompt they are scored with."""

    def __init__(self, firsts: list[str], seconds: list[str], size: int, prompt: str | None) -> None:
        self.firsts, self.seconds, self.prompt = firsts, seconds, prompt
        self.ranges = [(start, min(start + size, len(firsts))) for start in range(0, len(firsts), size)]

    def logits(self, model: CrossEncoder, start: int, end: int) -> Tensor:
        """Flat logits of pairs ``start:end``."""
        return pair_logits(model, self.firsts[start:end], self.seconds[start:end], self.prompt).view(-1)


class CachedMultipleNegativesRankingLoss(MultipleNegativesRankingLoss):
    """:class:`MultipleNegativesRankingLoss` with gradient caching: large batches at small-batch memory.

    Gives the same loss and, after ``loss.backward()``, the same gradients as
    :class:`MultipleNegativesRankingLoss` on the same batch, but only ``mini_batch_size`` pairs are ever
    held with activations. Every pair is scored twice, so a step costs about a third more compute.

    ==================================================  ======
    Inputs (text columns, in order)                     Labels
    ==================================================  ======
    (query, positive)                                   none
    (query, positive, negative_1, ..., negative_n)      none
    ==================================================  ======

    When to use: in-batch negatives training of a reranker with more pairs per batch
    (``batch size * (1 + num_negatives + hard negatives)``) than fit in memory at once. Any training loop
    works: the second scoring pass runs inside ``loss.backward()``.

    Related: :class:`MultipleNegativesRankingLoss` (the same loss without caching),
    :class:`sentencekit.losses.CachedMultipleNegativesRankingLoss` (the bi-encoder version).

    Args:
        model: A CrossEncoder with ``num_labels=1``.
        num_negatives: In-batch negatives drawn per query; ``None`` uses every other document of the batch.
        scale: Multiplies the (activated) scores before the softmax (0: no scaling).
        activation_fn: Applied to the logits first (sigmoid by default); ``None`` for raw logits.
        mini_batch_size: Pairs scored at once; memory, not the result, depends on it.
        show_progress_bar: Show progress over the mini-batches.

    Example:
        >>> loss = losses.CachedMultipleNegativesRankingLoss(model, num_negatives=8, mini_batch_size=16)
        ... # doctest: +SKIP
        >>> loss([queries, passages], None).backward()  # scores 16 pairs at a time  # doctest: +SKIP
    """

    # Back-propagates from a hook on the returned loss; wrapper losses look for this flag.
    uses_gradient_cache = True

    def __init__(
        self,
        model: CrossEncoder,
        num_negatives: int | None = 4,
        scale: float = 10.0,
        activation_fn: nn.Module | None = _SIGMOID,
        mini_batch_size: int = 32,
        show_progress_bar: bool = False,
    ) -> None:
        super().__init__(model, num_negatives=num_negatives, scale=scale, activation_fn=activation_fn)
        if isinstance(mini_batch_size, bool) or not isinstance(mini_batch_size, int) or mini_batch_size <= 0:
            raise ValueError(f"mini_batch_size must be a positive integer, got {mini_batch_size!r}.")
        self.mini_batch_size = mini_batch_size
        self.show_progress_bar = show_progress_bar

    def forward(
        self, inputs: Sequence[Sequence[str]], labels: Tensor | None = None, prompt: str | None = None
    ) -> Tensor:
        """The loss of the whole batch; its ``backward()`` scores the mini-batches again, with a graph."""
        rows, firsts, seconds = self._ranked_pairs(inputs)
        pairs = _Pairs(firsts, seconds, self.mini_batch_size, prompt)
        record = torch.is_grad_enabled()
        device = next(self.model.parameters()).device
        states: list[RandomState | None] = []
        parts = []
        with torch.no_grad():
            for start, end in tqdm(
                pairs.ranges, desc="Score mini-batches", disable=not self.show_progress_bar
            ):
                states.append(RandomState(device) if record else None)
                parts.append(pairs.logits(self.model, start, end))
        logits = torch.cat(parts)
        if not record:
            return self._loss_from_logits(logits, rows)
        leaf = logits.requires_grad_()
        loss = self._loss_from_logits(leaf, rows)
        (grad,) = torch.autograd.grad(loss, leaf)
        result = loss.detach().requires_grad_()
        result.register_hook(partial(self._backward_minibatches, pairs, states, grad))
        return result

    def _backward_minibatches(
        self, pairs: _Pairs, states: Sequence[RandomState | None], grad: Tensor, grad_output: Tensor
    ) -> None:
        """Autograd calls this with d(outer)/d(loss): score each mini-batch again with a graph; backward."""
        with torch.enable_grad():
            for (start, end), state in zip(pairs.ranges, states, strict=True):
                with state.replay() if state is not None else contextlib.nullcontext():
                    logits = pairs.logits(self.model, start, end)
                if logits.requires_grad:  # a fully frozen model has nothing to update
                    logits.backward((grad[start:end] * grad_output).to(logits.dtype))

    def get_config_dict(self) -> dict[str, Any]:
        """Hyper-parameters, for the model card."""
        return {**super().get_config_dict(), "mini_batch_size": self.mini_batch_size}
