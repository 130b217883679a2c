"""In-batch negatives ranking losses: each anchor must pick its own positive out of the batch's texts."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from sentencekit.losses._common import Features, check_columns, embed_columns, function_name
from sentencekit.similarity import cos_sim

__all__ = [
    "MultipleNegativesRankingLoss",
    "MultipleNegativesSymmetricRankingLoss",
    "RankingSettings",
    "RankingSettingsView",
    "in_batch_ranking_loss",
]

SimilarityFn = Callable[[Tensor, Tensor], Tensor]

# The four kinds of comparison a row of the softmax can include; "query_to_doc" holds the positive.
DIRECTIONS = ("query_to_doc", "query_to_query", "doc_to_query", "doc_to_doc")
HARDNESS_MODES = (None, "in_batch_negatives", "hard_negatives", "all_negatives")


class RankingSettings:
    """Validated settings of an in-batch ranking loss (shared by the plain and the cached variant).

    Args:
        scale: Similarities are multiplied by this before the softmax (``1 / temperature``).
        similarity_fct: Matrix similarity, e.g. :func:`~sentencekit.similarity.cos_sim`.
        directions: Which comparisons compete with the positive; ``"query_to_doc"`` is required.
        partition_mode: ``"joint"`` (one softmax over every direction) or ``"per_direction"`` (one per
            direction, their log-normalizers averaged).
        hardness_mode: Add ``hardness_strength * similarity`` (without gradient) to some negatives' logits:
            ``"in_batch_negatives"`` (other examples' texts), ``"hard_negatives"`` (the anchor's own extra
            negative columns) or ``"all_negatives"``; ``None`` for none.
        hardness_strength: The weight of that penalty; 0 switches it off.
    """

    def __init__(
        self,
        scale: float,
        similarity_fct: SimilarityFn,
        directions: Sequence[str],
        partition_mode: str,
        hardness_mode: str | None,
        hardness_strength: float,
    ) -> None:
        if not scale > 0:
            raise ValueError(f"scale must be positive, got {scale}.")
        unknown = sorted(set(directions) - set(DIRECTIONS))
        if unknown or "query_to_doc" not in directions:
            raise ValueError(
                f"directions must include 'query_to_doc' and only use {list(DIRECTIONS)}; "
                f"got {list(directions)}."
            )
        if partition_mode not in ("joint", "per_direction"):
            raise ValueError(f"partition_mode must be 'joint' or 'per_direction', got {partition_mode!r}.")
        if partition_mode == "per_direction" and {"query_to_query", "doc_to_doc"} & set(directions):
            raise ValueError(
                "partition_mode='per_direction' needs every direction to contain the positive pair, which "
                "'query_to_query' and 'doc_to_doc' do not; use partition_mode='joint' with them."
            )
        if hardness_mode not in HARDNESS_MODES:
            raise ValueError(f"hardness_mode must be one of {list(HARDNESS_MODES)}, got {hardness_mode!r}.")
        if hardness_strength < 0:
            raise ValueError(f"hardness_strength must be non-negative, got {hardness_strength}.")
        self.scale = float(scale)
        self.similarity_fct = similarity_fct
        self.directions = tuple(dict.fromkeys(directions))
        self.partition_mode = partition_mode
        self.hardness_mode = hardness_mode
        self.hardness_strength = float(hardness_strength)

    def config(self) -> dict[str, Any]:
        """The settings as plain values, for ``get_config_dict`` and model cards."""
        return {
            "scale": self.scale,
            "similarity_fct": function_name(self.similarity_fct),
            "directions": self.directions,
            "partition_mode": self.partition_mode,
            "hardness_mode": self.hardness_mode,
            "hardness_strength": self.hardness_strength,
        }


class RankingSettingsView:
    """``scale`` and ``similarity_fct`` of a loss that keeps its :class:`RankingSettings` in ``settings``."""

    settings: RankingSettings

    @property
    def scale(self) -> float:
        """``1 / temperature``."""
        return self.settings.scale

    @property
    def similarity_fct(self) -> SimilarityFn:
        """The matrix similarity function."""
        return self.settings.similarity_fct


def in_batch_ranking_loss(queries: Tensor, docs: Sequence[Tensor], settings: RankingSettings) -> Tensor:
    """Mean over anchors of ``log Z_i - score(query_i, positive_i)``, from embeddings.

    Args:
        queries: Anchor embeddings, ``(batch, dim)``.
        docs: The positive column, then any hard-negative columns, each ``(batch, dim)``.
        settings: Scale, similarity, directions, partition mode and hardness penalty.

    Returns:
        A scalar tensor.
    """
    rows = queries.shape[0]
    sim, scale = settings.similarity_fct, settings.scale
    all_docs = torch.cat(list(docs), dim=0)  # column-major: doc j belongs to anchor j % rows
    positives = docs[0]
    arange = torch.arange(rows, device=queries.device)
    own = arange.unsqueeze(1) == (torch.arange(all_docs.shape[0], device=queries.device) % rows).unsqueeze(0)

    raw_q2d = sim(queries, all_docs)
    blocks: list[Tensor] = [raw_q2d * scale + _hardness_penalty(raw_q2d, own, rows, settings)]
    if "query_to_query" in settings.directions:
        blocks.append(
            (sim(queries, queries) * scale).masked_fill(
                torch.eye(rows, dtype=torch.bool, device=queries.device), -torch.inf
            )
        )
    if "doc_to_query" in settings.directions:
        blocks.append(sim(positives, queries) * scale)
    if "doc_to_doc" in settings.directions:
        blocks.append((sim(positives, all_docs) * scale).masked_fill(own, -torch.inf))

    positive_scores = raw_q2d[arange, arange] * scale
    if settings.partition_mode == "joint":
        log_z = torch.logsumexp(torch.cat(blocks, dim=1), dim=1)
    else:
        log_z = torch.stack([torch.logsumexp(b, dim=1) for b in blocks]).mean(dim=0)
    return (log_z - positive_scores).mean()


def _hardness_penalty(raw_q2d: Tensor, own: Tensor, rows: int, settings: RankingSettings) -> Tensor | float:
    """``strength * similarity`` (no gradient) on the negatives the hardness mode names, else 0."""
    if settings.hardness_mode is None or settings.hardness_strength == 0:
        return 0.0
    cols = torch.arange(raw_q2d.shape[1], device=raw_q2d.device).unsqueeze(0)
    if settings.hardness_mode == "in_batch_negatives":
        penalized = ~own
    elif settings.hardness_mode == "hard_negatives":
        penalized = own & (cols >= rows)
    else:  # all_negatives: everything but the positive itself
        penalized = ~(own & (cols < rows))
    return settings.hardness_strength * raw_q2d.detach() * penalized


class MultipleNegativesRankingLoss(RankingSettingsView, nn.Module):
    """InfoNCE with in-batch negatives: each anchor must rank its positive above the batch's other texts.

    For anchor ``i`` the candidates are the positives of all anchors plus every hard-negative column; the
    loss is the cross-entropy of ``scale * similarity`` with the anchor's own positive as the target. Larger
    batches give more (and harder) negatives, so this loss improves with batch size.

    ==================================================  ======
    Inputs (text columns, in order)                     Labels
    ==================================================  ======
    (anchor, positive)                                  none
    (anchor, positive, negative)                        none
    (anchor, positive, negative_1, ..., negative_n)     none
    ==================================================  ======

    When to use: retrieval and semantic search training from positive pairs (question/answer, query/passage,
    title/body), optionally with mined hard negatives (:func:`sentencekit.util.mine_hard_negatives`). Batch
    without duplicates, or a duplicate text becomes a false negative.

    Related: :class:`MultipleNegativesSymmetricRankingLoss` (also ranks anchors for each positive),
    :class:`CachedMultipleNegativesRankingLoss` (same loss and gradients, large batches in small memory),
    :class:`GISTEmbedLoss` (drops in-batch negatives a guide model judges to be positives).

    Args:
        model: The SentenceTransformer being trained.
        scale: ``1 / temperature``; 20 is usual for cosine similarity (use about 1 with dot product).
        similarity_fct: Matrix similarity between anchors and candidates.
        directions: Comparisons in the softmax: ``"query_to_doc"`` (always), ``"query_to_query"``,
            ``"doc_to_query"``, ``"doc_to_doc"``.
        partition_mode: ``"joint"`` (one softmax over all directions) or ``"per_direction"``.
        hardness_mode: ``None``, ``"in_batch_negatives"``, ``"hard_negatives"`` or ``"all_negatives"``: adds
            ``hardness_strength * similarity`` (without gradient) to those negatives' logits.
        hardness_strength: Weight of the hardness penalty.

    Example:
        >>> from sentencekit import SentenceTransformer, losses
        >>> model = SentenceTransformer("all-MiniLM-L6-v2")  # doctest: +SKIP
        >>> loss = losses.MultipleNegativesRankingLoss(model)  # doctest: +SKIP
        >>> batch = [model.tokenize(["What is the capital of France?", "Who wrote Hamlet?"]),
        ...          model.tokenize(["Paris is France's capital.", "Shakespeare wrote Hamlet."])]
        >>> loss(batch, None).backward()  # doctest: +SKIP
    """

    def __init__(
        self,
        model: nn.Module,
        scale: float = 20.0,
        similarity_fct: SimilarityFn = cos_sim,
        directions: Sequence[str] = ("query_to_doc",),
        partition_mode: str = "joint",
        hardness_mode: str | None = None,
        hardness_strength: float = 0.0,
    ) -> None:
        super().__init__()
        self.model = model
        self.settings = RankingSettings(
            scale, similarity_fct, directions, partition_mode, hardness_mode, hardness_strength
        )

    def forward(self, sentence_features: Iterable[Features], labels: Tensor | None = None) -> Tensor:
        """Embed every column and return the scalar loss (``labels`` are ignored)."""
        return self.compute_loss_from_embeddings(embed_columns(self.model, sentence_features), labels)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None = None) -> Tensor:
        """The loss from already computed column embeddings (anchor, positive, negatives...)."""
        check_columns(type(self).__name__, len(embeddings), at_least=2)
        return in_batch_ranking_loss(embeddings[0], embeddings[1:], self.settings)

    def get_config_dict(self) -> dict[str, Any]:
        """Hyper-parameters, for the model card."""
        return self.settings.config()


class MultipleNegativesSymmetricRankingLoss(MultipleNegativesRankingLoss):
    """In-batch ranking in both directions: anchors pick their positive, and positives pick their anchor.

    The two cross-entropies (anchor -> candidates, positive -> anchors) are averaged. Equal to
    :class:`MultipleNegativesRankingLoss` with ``directions=("query_to_doc", "doc_to_query")`` and
    ``partition_mode="per_direction"``.

    ==================================================  ======
    Inputs (text columns, in order)                     Labels
    ==================================================  ======
    (anchor, positive)                                  none
    (anchor, positive, negative_1, ..., negative_n)     none
    ==================================================  ======

    When to use: symmetric tasks where either side may be the query (paraphrases, duplicate questions,
    parallel sentences), or as a slightly stronger signal than the one-directional loss.

    Related: :class:`MultipleNegativesRankingLoss`, :class:`CachedMultipleNegativesRankingLoss`.

    Args:
        model: The SentenceTransformer being trained.
        scale: ``1 / temperature``.
        similarity_fct: Matrix similarity between anchors and candidates.

    Example:
        >>> loss = losses.MultipleNegativesSymmetricRankingLoss(model)  # doctest: +SKIP
        >>> batch = [model.tokenize(["a cat", "a dog"]), model.tokenize(["the cat", "the dog"])]
        >>> loss(batch, None)  # doctest: +SKIP
    """

    def __init__(self, model: nn.Module, scale: float = 20.0, similarity_fct: SimilarityFn = cos_sim) -> None:
        super().__init__(
            model,
            scale=scale,
            similarity_fct=similarity_fct,
            directions=("query_to_doc", "doc_to_query"),
            partition_mode="per_direction",
        )

    def get_config_dict(self) -> dict[str, Any]:
        """Hyper-parameters, for the model card."""
        return {"scale": self.scale, "similarity_fct": function_name(self.similarity_fct)}
