"""CachedGISTEmbedLoss: guided in-batch negatives ranking (GISTEmbed) with gradient caching (GradCache)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sentencekit.losses._common import Features, check_columns, features_to_device
from sentencekit.losses.cached import EmbeddingLoss, GradCacheLoss, slice_rows
from sentencekit.similarity import cos_sim

__all__ = ["CachedGISTEmbedLoss", "GuidedRanking", "guided_ranking_loss", "needs_retokenizing"]

MARGIN_STRATEGIES = ("absolute", "relative")


def needs_retokenizing(model: nn.Module, guide: nn.Module) -> bool:
    """Whether the guide must re-tokenize the texts: another vocabulary, or a shorter maximum length.

    Raises:
        ValueError: When the model or the guide has no tokenizer.
    """
    model_tokenizer, guide_tokenizer = getattr(model, "tokenizer", None), getattr(guide, "tokenizer", None)
    if model_tokenizer is None or guide_tokenizer is None:
        raise ValueError(
            "A guided loss needs a model and a guide that both have a tokenizer (SentenceTransformer models)."
        )
    return bool(
        model_tokenizer.get_vocab() != guide_tokenizer.get_vocab()
        or getattr(guide, "max_seq_length", 0) < getattr(model, "max_seq_length", 0)
    )


def guided_ranking_loss(
    embeddings: list[Tensor],
    guide_embeddings: list[Tensor],
    *,
    temperature: float,
    margin_strategy: str = "absolute",
    margin: float = 0.0,
    contrast_anchors: bool = True,
    contrast_positives: bool = True,
) -> Tensor:
    """GISTEmbed's loss: in-batch ranking without the candidates the guide scores like the positive.

    Anchor ``i`` is contrasted with every positive, with every negative of every negative column and,
    optionally, with the other anchors (and positive ``i`` with the other positives). A candidate whose guide
    similarity to the row's text exceeds the guide's anchor-positive similarity (less the margin) is a
    likely false negative and leaves the softmax; the row's own positive always stays.

    Args:
        embeddings: The model's (anchor, positive, negative_1, ...) embeddings, each ``(batch, dim)``.
        guide_embeddings: The guide's embeddings of the same columns.
        temperature: Cosine similarities are divided by it before the softmax.
        margin_strategy: ``"absolute"`` (threshold ``s - margin``) or ``"relative"`` (``s - |s| * margin``),
            ``s`` being the guide's anchor-positive similarity.
        margin: The slack of that threshold.
        contrast_anchors: Add the anchor-anchor block (without each anchor itself).
        contrast_positives: Add the positive-positive block (without each positive itself).

    Returns:
        The mean cross-entropy over anchors, a scalar tensor.
    """
    rows = embeddings[0].shape[0]
    device = embeddings[0].device
    own = torch.eye(rows, dtype=torch.bool, device=device)
    guide_positive = cos_sim(guide_embeddings[0], guide_embeddings[1]).diagonal().unsqueeze(1)
    slack = margin if margin_strategy == "absolute" else guide_positive.abs() * margin
    threshold = guide_positive - slack

    def block(query: int, candidate: int) -> tuple[Tensor, Tensor]:
        scores = cos_sim(embeddings[query], embeddings[candidate])
        suspects = cos_sim(guide_embeddings[query], guide_embeddings[candidate]) > threshold
        return scores, suspects

    scores, suspects = block(0, 1)
    blocks = [scores.masked_fill(suspects & ~own, -torch.inf)]
    for column, wanted in ((0, contrast_anchors), (1, contrast_positives)):
        if wanted:
            scores, suspects = block(column, column)
            blocks.append(scores.masked_fill(suspects | own, -torch.inf))
    for column in range(2, len(embeddings)):
        scores, suspects = block(0, column)
        blocks.append(scores.masked_fill(suspects, -torch.inf))
    logits = torch.cat(blocks, dim=1) / temperature
    return F.cross_entropy(logits, torch.arange(rows, device=device))


class GuidedRanking:
    """The guide, its settings and the loss they give: what the two GIST losses share.

    Used by :class:`~sentencekit.losses.GISTEmbedLoss` and :class:`CachedGISTEmbedLoss`.
    """

    model: nn.Module
    temperature: float
    margin_strategy: str
    margin: float
    contrast_anchors: bool
    contrast_positives: bool
    must_retokenize: bool
    _guide: list[nn.Module]

    def _set_guide(
        self,
        guide: nn.Module,
        temperature: float,
        margin_strategy: str,
        margin: float,
        contrast_anchors: bool,
        contrast_positives: bool,
    ) -> None:
        if margin_strategy not in MARGIN_STRATEGIES:
            raise ValueError(f"margin_strategy must be 'absolute' or 'relative', got {margin_strategy!r}.")
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature}.")
        self.must_retokenize = needs_retokenizing(self.model, guide)
        # Kept out of the module tree: the guide is not trained, so it is not among the loss's parameters or
        # in its state dict (nor, therefore, in training checkpoints).
        self._guide = [guide]
        self.temperature = float(temperature)
        self.margin_strategy = margin_strategy
        self.margin = float(margin)
        self.contrast_anchors = contrast_anchors
        self.contrast_positives = contrast_positives

    @property
    def guide(self) -> nn.Module:
        """The frozen guide model."""
        return self._guide[0]

    def _guided_loss(self, embeddings: list[Tensor], guide_embeddings: list[Tensor]) -> Tensor:
        return guided_ranking_loss(
            embeddings,
            guide_embeddings,
            temperature=self.temperature,
            margin_strategy=self.margin_strategy,
            margin=self.margin,
            contrast_anchors=self.contrast_anchors,
            contrast_positives=self.contrast_positives,
        )

    def _guide_config(self) -> dict[str, Any]:
        return {
            "guide": getattr(self.guide, "model_id", None) or type(self.guide).__name__,
            "temperature": self.temperature,
            "margin_strategy": self.margin_strategy,
            "margin": self.margin,
            "contrast_anchors": self.contrast_anchors,
            "contrast_positives": self.contrast_positives,
        }


class CachedGISTEmbedLoss(GuidedRanking, GradCacheLoss):
    """:class:`GISTEmbedLoss` with gradient caching: guided in-batch negatives over a large batch.

    A frozen *guide* model removes the in-batch candidates it scores at least as close to the anchor as the
    anchor's own positive (less ``margin``): they are likely false negatives. The rest is a cross-entropy
    over cosine similarities divided by ``temperature``. The batch is embedded ``mini_batch_size`` rows at a
    time (the guide too, without gradient) and re-embedded inside ``loss.backward()``, so the loss and
    gradients are those of the uncached loss on the whole batch while only one mini-batch holds activations.

    ==================================================  ======
    Inputs (text columns, in order)                     Labels
    ==================================================  ======
    (anchor, positive)                                  none
    (anchor, positive, negative)                        none
    (anchor, positive, negative_1, ..., negative_n)     none
    ==================================================  ======

    When to use: like :class:`GISTEmbedLoss` (data with near-duplicates that would be punished as
    negatives), when a larger batch helps but does not fit in memory. The guide runs in eval mode and is not
    among the loss's parameters or state: it is never trained or checkpointed.

    Related: :class:`GISTEmbedLoss` (same loss without caching; two or three columns),
    :class:`CachedMultipleNegativesRankingLoss` (no guide), :class:`MatryoshkaLoss` (can wrap this loss: the
    model's embeddings are truncated, the guide's are not).

    Args:
        model: The SentenceTransformer being trained.
        guide: A trained SentenceTransformer (any tokenizer: texts are re-tokenized for it when needed).
        temperature: Softmax temperature of the cosine similarities (0.01 means scale 100).
        mini_batch_size: Rows embedded at once; memory, not the result, depends on it.
        show_progress_bar: Show progress over the mini-batches.
        margin_strategy: ``"absolute"`` drops candidates with guide score > positive score - margin;
            ``"relative"`` drops those with > positive score - |positive score| * margin.
        margin: The slack of that comparison (0: drop only candidates the guide likes better).
        contrast_anchors: Also contrast each anchor with the other anchors.
        contrast_positives: Also contrast each positive with the other positives.

    Example:
        >>> guide = SentenceTransformer("all-MiniLM-L6-v2")  # doctest: +SKIP
        >>> loss = losses.CachedGISTEmbedLoss(model, guide, mini_batch_size=32)  # doctest: +SKIP
        >>> value = loss([model.tokenize(queries), model.tokenize(passages)], None)  # doctest: +SKIP
        >>> value.backward()  # doctest: +SKIP
    """

    def __init__(
        self,
        model: nn.Module,
        guide: nn.Module,
        temperature: float = 0.01,
        mini_batch_size: int = 32,
        show_progress_bar: bool = False,
        margin_strategy: str = "absolute",
        margin: float = 0.0,
        contrast_anchors: bool = True,
        contrast_positives: bool = True,
    ) -> None:
        super().__init__(model, mini_batch_size=mini_batch_size, show_progress_bar=show_progress_bar)
        self._set_guide(guide, temperature, margin_strategy, margin, contrast_anchors, contrast_positives)
        # The guide's embeddings of the batch being computed, for compute_loss_from_embeddings.
        self._batch_guide: list[Tensor] | None = None

    def forward_with(
        self, sentence_features: Iterable[Features], labels: Tensor | None, compute_loss: EmbeddingLoss
    ) -> Tensor:
        """Embed the batch with the guide (no gradient), then run the cached forward with ``compute_loss``."""
        features = list(sentence_features)
        check_columns(type(self).__name__, len(features), at_least=2)
        with self._guided_by(self._embed_guide(features)):
            return super().forward_with(features, labels, compute_loss)

    def compute_loss_from_embeddings(
        self,
        embeddings: list[Tensor],
        labels: Tensor | None = None,
        guide_embeddings: list[Tensor] | None = None,
    ) -> Tensor:
        """The loss from the model's and the guide's column embeddings (default: the current batch's)."""
        guide = guide_embeddings if guide_embeddings is not None else self._batch_guide
        if guide is None:
            raise ValueError(
                "CachedGISTEmbedLoss needs the guide's embeddings: call the loss on tokenized features, or "
                "pass guide_embeddings."
            )
        check_columns(type(self).__name__, len(embeddings), at_least=2)
        if len(guide) != len(embeddings):
            raise ValueError(
                f"Got {len(embeddings)} columns of model embeddings but {len(guide)} of guide embeddings."
            )
        return self._guided_loss(embeddings, guide)

    @contextlib.contextmanager
    def _guided_by(self, guide_embeddings: list[Tensor]) -> Iterator[None]:
        self._batch_guide = guide_embeddings
        try:
            yield
        finally:
            self._batch_guide = None

    def _embed_guide(self, features: list[Features]) -> list[Tensor]:
        """The guide's embeddings of every column, a mini-batch at a time, on the model's device."""
        guide, device = self.guide, self._device()
        guide_device = next((p.device for p in guide.parameters()), torch.device("cpu"))
        was_training = guide.training
        guide.eval()
        try:
            with torch.no_grad():
                return [
                    torch.cat(
                        [
                            self._guide_rows(slice_rows(column, start, end), guide_device)
                            for start, end in self._ranges(column)
                        ]
                    ).to(device)
                    for column in features
                ]
        finally:
            guide.train(was_training)

    def _guide_rows(self, features: Features, guide_device: torch.device) -> Tensor:
        guide: Any = self.guide
        if self.must_retokenize:
            tokenizer: Any = self.model.tokenizer
            features = guide.tokenize(tokenizer.batch_decode(features["input_ids"], skip_special_tokens=True))
        embedding: Tensor = guide(features_to_device(features, guide_device))["sentence_embedding"]
        return embedding

    def get_config_dict(self) -> dict[str, Any]:
        """Hyper-parameters, for the model card."""
        return {**self._guide_config(), "mini_batch_size": self.mini_batch_size}
