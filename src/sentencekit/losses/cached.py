"""Gradient caching (GradCache): a contrastive loss over a large batch, in the memory of a small one.

The batch is embedded in mini-batches without an autograd graph; the loss and its gradient with respect to
the embeddings are computed on the full batch; then, when the caller runs ``loss.backward()``, every
mini-batch is embedded again with a graph and back-propagated with its slice of that gradient. The random
state of each mini-batch is recorded in the first pass and restored in the second, so dropout draws the same
masks and the gradients are exactly those of the loss that was returned.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import partial
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from sentencekit.encoding.batching import batch_rows, slice_flat
from sentencekit.losses._common import Features, check_columns, features_to_device
from sentencekit.losses.ranking import (
    RankingSettings,
    RankingSettingsView,
    SimilarityFn,
    in_batch_ranking_loss,
)
from sentencekit.similarity import cos_sim

__all__ = ["CachedMultipleNegativesRankingLoss", "GradCacheLoss", "RandomState", "slice_rows"]

EmbeddingLoss = Callable[[list[Tensor], "Tensor | None"], Tensor]


class RandomState:
    """The CPU and CUDA random generator states at one moment, to run a later computation from them again."""

    def __init__(self, device: torch.device) -> None:
        self.cpu = torch.get_rng_state()
        self.cuda_devices = [device.index or 0] if device.type == "cuda" else []
        self.cuda = [torch.cuda.get_rng_state(d) for d in self.cuda_devices]

    @contextlib.contextmanager
    def replay(self) -> Iterator[None]:
        """Inside the block the generators start from the recorded states; outside nothing changes."""
        with torch.random.fork_rng(devices=self.cuda_devices):
            torch.set_rng_state(self.cpu)
            for device, state in zip(self.cuda_devices, self.cuda, strict=True):
                torch.cuda.set_rng_state(state, device)
            yield


def slice_rows(features: Features, start: int, end: int) -> Features:
    """Rows ``start:end`` of a tokenized batch, with padding columns no kept row uses cut off the end."""
    if isinstance(features.get("offsets"), Tensor):
        return slice_flat(features, start, end)
    rows = batch_rows(features)
    mask = features.get("attention_mask")
    width = None
    if isinstance(mask, Tensor) and mask.dim() == 2:
        used = mask[start:end].bool().any(dim=0).nonzero()
        if used.numel():
            width = int(used.max()) + 1
    out: Features = {}
    for key, value in features.items():
        if not isinstance(value, Tensor) or value.dim() == 0 or value.shape[0] != rows:
            out[key] = value
        elif (
            width is not None
            and isinstance(mask, Tensor)
            and value.dim() >= 2
            and value.shape[1] == mask.shape[1]
        ):
            out[key] = value[start:end, :width]
        else:
            out[key] = value[start:end]
    return out


class GradCacheLoss(nn.Module):
    """Base class of the cached losses: subclasses define :meth:`compute_loss_from_embeddings`.

    Args:
        model: The SentenceTransformer being trained.
        mini_batch_size: Rows embedded at once; bounds activation memory. It does not change the loss.
        show_progress_bar: Show progress over the mini-batches.
    """

    uses_gradient_cache = True

    def __init__(self, model: nn.Module, mini_batch_size: int = 32, show_progress_bar: bool = False) -> None:
        super().__init__()
        if isinstance(mini_batch_size, bool) or not isinstance(mini_batch_size, int) or mini_batch_size <= 0:
            raise ValueError(f"mini_batch_size must be a positive integer, got {mini_batch_size!r}.")
        self.model = model
        self.mini_batch_size = mini_batch_size
        self.show_progress_bar = show_progress_bar

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None) -> Tensor:
        """The loss from the full batch's column embeddings."""
        raise NotImplementedError  # pragma: no cover - abstract

    def _device(self) -> torch.device:
        return next((p.device for p in self.model.parameters()), torch.device("cpu"))

    def _ranges(self, features: Features) -> list[tuple[int, int]]:
        rows = batch_rows(features)
        return [(s, min(s + self.mini_batch_size, rows)) for s in range(0, rows, self.mini_batch_size)]

    def _embed(self, features: Features, start: int, end: int) -> Tensor:
        embedding: Tensor = self.model(slice_rows(features, start, end))["sentence_embedding"]
        return embedding

    def forward(self, sentence_features: Iterable[Features], labels: Tensor | None = None) -> Tensor:
        """The loss of the whole batch; its ``backward()`` re-embeds the mini-batches to reach the model."""
        return self.forward_with(sentence_features, labels, self.compute_loss_from_embeddings)

    def forward_with(
        self, sentence_features: Iterable[Features], labels: Tensor | None, compute_loss: EmbeddingLoss
    ) -> Tensor:
        """Like :meth:`forward`, with another function from embeddings to loss (used by MatryoshkaLoss)."""
        device = self._device()
        features = [features_to_device(f, device) for f in sentence_features]
        check_columns(type(self).__name__, len(features), at_least=1)
        ranges = [self._ranges(f) for f in features]
        record = torch.is_grad_enabled()
        columns: list[Tensor] = []
        states: list[list[RandomState | None]] = []
        steps = tqdm(
            total=sum(map(len, ranges)), desc="Embed mini-batches", disable=not self.show_progress_bar
        )
        with torch.no_grad():
            for column, column_ranges in zip(features, ranges, strict=True):
                parts, column_states = [], []
                for start, end in column_ranges:
                    column_states.append(RandomState(device) if record else None)
                    parts.append(self._embed(column, start, end))
                    steps.update()
                columns.append(torch.cat(parts))
                states.append(column_states)
        steps.close()
        if not record:
            return compute_loss(columns, labels)
        leaves = [c.detach().requires_grad_() for c in columns]
        loss = compute_loss(leaves, labels)
        grads = torch.autograd.grad(loss, leaves, allow_unused=True)
        result = loss.detach().requires_grad_()
        result.register_hook(partial(self._backward_minibatches, features, ranges, states, grads))
        return result

    def _backward_minibatches(
        self,
        features: Sequence[Features],
        ranges: Sequence[Sequence[tuple[int, int]]],
        states: Sequence[Sequence[RandomState | None]],
        grads: Sequence[Tensor | None],
        grad_output: Tensor,
    ) -> None:
        """Autograd calls this with d(outer)/d(loss): re-embed each mini-batch with a graph; backward."""
        with torch.enable_grad():
            for column, column_ranges, column_states, grad in zip(
                features, ranges, states, grads, strict=True
            ):
                if grad is None:  # the loss did not use this column
                    continue
                for (start, end), state in zip(column_ranges, column_states, strict=True):
                    with state.replay() if state is not None else contextlib.nullcontext():
                        embedding = self._embed(column, start, end)
                    if embedding.requires_grad:
                        embedding.backward(grad[start:end].to(embedding.dtype) * grad_output)


class CachedMultipleNegativesRankingLoss(RankingSettingsView, GradCacheLoss):
    """:class:`MultipleNegativesRankingLoss` with gradient caching: large batches at small-batch memory.

    Returns the same loss and, after ``loss.backward()``, the same gradients as
    :class:`MultipleNegativesRankingLoss` on the same batch (dropout included: each mini-batch's random
    state is replayed), but only ``mini_batch_size`` rows are ever held with activations. Each row is
    embedded twice, so a step costs about a third more compute.

    ==================================================  ======
    Inputs (text columns, in order)                     Labels
    ==================================================  ======
    (anchor, positive)                                  none
    (anchor, positive, negative_1, ..., negative_n)     none
    ==================================================  ======

    When to use: in-batch negatives training where a larger batch (hundreds to thousands of pairs) helps but
    does not fit in memory. Any training loop works: the re-embedding runs inside ``loss.backward()``.

    Related: :class:`MultipleNegativesRankingLoss` (same loss without caching), :class:`GISTEmbedLoss`,
    :class:`MatryoshkaLoss` (can wrap this loss; the caching is kept).

    Args:
        model: The SentenceTransformer being trained.
        scale: ``1 / temperature``.
        similarity_fct: Matrix similarity between anchors and candidates.
        mini_batch_size: Rows embedded at once; memory, not the result, depends on it.
        directions: As in :class:`MultipleNegativesRankingLoss`.
        partition_mode: As in :class:`MultipleNegativesRankingLoss`.
        hardness_mode: As in :class:`MultipleNegativesRankingLoss`.
        hardness_strength: As in :class:`MultipleNegativesRankingLoss`.
        show_progress_bar: Show progress over the mini-batches.

    Example:
        >>> loss = losses.CachedMultipleNegativesRankingLoss(model, mini_batch_size=16)  # doctest: +SKIP
        >>> value = loss([model.tokenize(queries), model.tokenize(passages)], None)  # doctest: +SKIP
        >>> value.backward()  # re-embeds 16 rows at a time  # doctest: +SKIP
    """

    def __init__(
        self,
        model: nn.Module,
        scale: float = 20.0,
        similarity_fct: SimilarityFn = cos_sim,
        mini_batch_size: int = 32,
        directions: Sequence[str] = ("query_to_doc",),
        partition_mode: str = "joint",
        hardness_mode: str | None = None,
        hardness_strength: float = 0.0,
        show_progress_bar: bool = False,
    ) -> None:
        super().__init__(model, mini_batch_size=mini_batch_size, show_progress_bar=show_progress_bar)
        self.settings = RankingSettings(
            scale, similarity_fct, directions, partition_mode, hardness_mode, hardness_strength
        )

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None = None) -> Tensor:
        """The in-batch ranking loss of (anchor, positive, negatives...) embeddings."""
        check_columns(type(self).__name__, len(embeddings), at_least=2)
        return in_batch_ranking_loss(embeddings[0], embeddings[1:], self.settings)

    def get_config_dict(self) -> dict[str, Any]:
        """Hyper-parameters, for the model card."""
        return {**self.settings.config(), "mini_batch_size": self.mini_batch_size}
