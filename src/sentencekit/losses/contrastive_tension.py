"""Contrastive Tension (CT): unsupervised training of two copies of the model on single sentences.

The model being trained and an independent copy of it (made when the loss is built, and trained too) embed
the two sides of each pair; identical sentences should score high across the copies, different ones low.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sentencekit.errors import InvalidInputError
from sentencekit.losses._common import (
    Features,
    check_columns,
    check_labels,
    features_to_device,
    function_name,
)
from sentencekit.losses.ranking import SimilarityFn
from sentencekit.similarity import cos_sim
from sentencekit.training.input_example import InputExample

__all__ = ["ContrastiveTensionDataLoader", "ContrastiveTensionLoss", "ContrastiveTensionLossInBatchNegatives"]


def _embed(model: nn.Module, features: Features) -> Tensor:
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    embedding: Tensor = model(features_to_device(features, device))["sentence_embedding"]
    return embedding


def _token_rows(features: Features) -> list[list[int]]:
    """Each text's token ids without padding: from the attention mask, or from a flat batch's offsets."""
    ids = features["input_ids"]
    offsets = features.get("offsets")
    if offsets is not None:  # a StaticEmbedding batch: every text's ids back to back
        bounds = [*offsets.tolist(), ids.shape[0]]
        return [ids[start:end].tolist() for start, end in itertools.pairwise(bounds)]
    mask = features.get("attention_mask")
    if mask is None:
        return ids.tolist()
    return [row[keep.bool()].tolist() for row, keep in zip(ids, mask, strict=True)]


def _same_text(first: Features, second: Features) -> Tensor:
    """1.0 where row ``i`` of the two tokenized batches holds the same tokens (padding ignored), else 0.0."""
    same = [a == b for a, b in zip(_token_rows(first), _token_rows(second), strict=True)]
    return torch.tensor(same, dtype=torch.float)


class ContrastiveTensionLoss(nn.Module):
    """Contrastive Tension: a binary classifier on dot products of two model copies' embeddings.

    ``model1`` (a copy of the model, made here) embeds the first text of each pair and ``model2`` (the model
    itself) the second; the logit of a pair is the dot product of the two embeddings, and the loss is the
    binary cross-entropy *summed* over the batch, with label 1 for identical texts and 0 for different ones.
    Without labels, a pair's label is whether its two texts tokenize to the same tokens.

    ==============================================  ==============================================
    Inputs (text columns, in order)                 Labels
    ==============================================  ==============================================
    (text_A, text_B), some rows with A == B         none (derived from the texts), or 1 / 0
    ==============================================  ==============================================

    When to use: unsupervised adaptation to a domain from plain sentences. Build the pairs with
    :class:`ContrastiveTensionDataLoader` (with ``model.fit``), or as a dataset where one row in
    ``pos_neg_ratio`` repeats a sentence. Both copies are trained (the copy is among the loss's parameters);
    ``model`` is the one to keep.

    Related: :class:`ContrastiveTensionLossInBatchNegatives` (a stronger signal from in-batch negatives).

    Args:
        model: The SentenceTransformer being trained (``model2``); ``model1`` is a deep copy of it.

    Example:
        >>> from torch.utils.data import DataLoader  # doctest: +SKIP
        >>> loader = losses.ContrastiveTensionDataLoader(sentences, 16, pos_neg_ratio=4)  # doctest: +SKIP
        >>> model.fit(train_objectives=[(loader, losses.ContrastiveTensionLoss(model))])  # doctest: +SKIP
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model2 = model
        self.model1 = copy.deepcopy(model)

    def forward(self, sentence_features: Iterable[Features], labels: Tensor | None = None) -> Tensor:
        """Embed the two columns with the two copies and return the summed binary cross-entropy."""
        features = list(sentence_features)
        check_columns(type(self).__name__, len(features), exactly=2)
        first = _embed(self.model1, features[0])
        second = _embed(self.model2, features[1])
        logits = (first * second).sum(dim=-1)
        if labels is None:
            targets = _same_text(features[0], features[1]).to(logits.device)
        else:
            targets = check_labels(type(self).__name__, labels, logits.shape[0])
        return F.binary_cross_entropy_with_logits(logits, targets.to(logits.dtype), reduction="sum")

    def get_config_dict(self) -> dict[str, Any]:
        """Hyper-parameters, for the model card (none)."""
        return {}


class ContrastiveTensionLossInBatchNegatives(nn.Module):
    """Contrastive Tension with in-batch negatives: each sentence must find itself in the other copy.

    ``model1`` (a copy of the model, made here) and ``model2`` (the model itself) embed the same sentences;
    the similarity matrix, scaled by a trainable temperature (initialized to ``scale``), is scored with a
    cross-entropy whose targets are the diagonal, in both directions (rows and columns), averaged.

    ==============================================  ======
    Inputs (text columns, in order)                 Labels
    ==============================================  ======
    (text,)                                         none
    ==============================================  ======

    Only the first text column is used. Both copies and the scale are trained; ``model`` is the one to keep.

    When to use: unsupervised adaptation to a domain from plain sentences; a stronger signal than
    :class:`ContrastiveTensionLoss`, and no special data loader is needed.

    Related: :class:`ContrastiveTensionLoss`, :class:`MultipleNegativesRankingLoss` (the supervised
    counterpart).

    Args:
        model: The SentenceTransformer being trained (``model2``); ``model1`` is a deep copy of it.
        scale: Initial multiplier of the similarities; its logarithm is the trainable ``logit_scale``.
        similarity_fct: Matrix similarity between the two copies' embeddings.

    Example:
        >>> loss = losses.ContrastiveTensionLossInBatchNegatives(model)  # doctest: +SKIP
        >>> loss([model.tokenize(sentences)], None).backward()  # doctest: +SKIP
    """

    def __init__(self, model: nn.Module, scale: float = 20.0, similarity_fct: SimilarityFn = cos_sim) -> None:
        super().__init__()
        if not scale > 0:
            raise ValueError(f"scale must be positive, got {scale}.")
        self.model2 = model
        self.model1 = copy.deepcopy(model)
        self.similarity_fct = similarity_fct
        self.logit_scale = nn.Parameter(torch.tensor(math.log(scale)))

    def forward(self, sentence_features: Iterable[Features], labels: Tensor | None = None) -> Tensor:
        """Embed the first column with both copies and return the symmetric cross-entropy."""
        features = list(sentence_features)
        check_columns(type(self).__name__, len(features), at_least=1)
        scores = self.similarity_fct(_embed(self.model1, features[0]), _embed(self.model2, features[0]))
        scores = scores * self.logit_scale.exp()
        targets = torch.arange(scores.shape[0], device=scores.device)
        return (F.cross_entropy(scores, targets) + F.cross_entropy(scores.t(), targets)) / 2

    def get_config_dict(self) -> dict[str, Any]:
        """Hyper-parameters, for the model card."""
        return {"scale": self.logit_scale.exp().item(), "similarity_fct": function_name(self.similarity_fct)}


class ContrastiveTensionDataLoader:
    """Batches of :class:`~sentencekit.InputExample` pairs for :class:`ContrastiveTensionLoss`.

    Each pass shuffles the sentences (with torch's global generator, so a seeded run repeats and a resumed
    ``fit`` replays it) and cuts them into batches of ``batch_size`` pairs: every ``pos_neg_ratio``-th pair
    is a sentence with itself (label 1), the others two consecutive sentences (label 0). Sentences left over
    at the end of a pass are not used. ``model.fit`` sets ``collate_fn`` to tokenize the batches; without one
    the loader yields lists of ``InputExample``.

    Args:
        sentences: The training sentences (not modified).
        batch_size: Pairs per batch; a multiple of ``pos_neg_ratio``.
        pos_neg_ratio: One pair in this many is positive.

    Example:
        >>> loader = ContrastiveTensionDataLoader(list("abcdef"), batch_size=2, pos_neg_ratio=2)
        >>> len(loader)
        2
    """

    def __init__(self, sentences: Sequence[str], batch_size: int, pos_neg_ratio: int = 8) -> None:
        for name, value in (("batch_size", batch_size), ("pos_neg_ratio", pos_neg_ratio)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        if batch_size % pos_neg_ratio != 0:
            raise ValueError(
                f"ContrastiveTensionDataLoader needs a batch_size divisible by pos_neg_ratio, got batch_size="
                f"{batch_size} and pos_neg_ratio={pos_neg_ratio}: every pos_neg_ratio-th pair of a batch is "
                "positive."
            )
        self.sentences = list(sentences)
        self.batch_size = batch_size
        self.pos_neg_ratio = pos_neg_ratio
        self.collate_fn: Callable[[list[InputExample]], Any] | None = None
        if len(self) == 0:
            raise InvalidInputError(
                f"ContrastiveTensionDataLoader needs at least {self._sentences_per_batch()} sentences for "
                f"one batch of {batch_size} pairs, got {len(self.sentences)}."
            )

    def _sentences_per_batch(self) -> int:
        # a positive pair uses one sentence, a negative pair two
        return 2 * self.batch_size - self.batch_size // self.pos_neg_ratio

    def __len__(self) -> int:
        return len(self.sentences) // self._sentences_per_batch()

    def __iter__(self) -> Iterator[Any]:
        order = torch.randperm(len(self.sentences)).tolist()  # drawn now, when the pass begins
        return self._batches([self.sentences[i] for i in order])

    def _batches(self, sentences: list[str]) -> Iterator[Any]:
        stream = iter(sentences)
        for _ in range(len(self)):
            batch = []
            for pair in range(self.batch_size):
                first = next(stream)
                positive = pair % self.pos_neg_ratio == 0
                second = first if positive else next(stream)
                batch.append(InputExample(texts=[first, second], label=int(positive)))
            yield self.collate_fn(batch) if self.collate_fn is not None else batch
