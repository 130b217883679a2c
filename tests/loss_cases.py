"""Batches and loss recipes shared by the loss tests, built the same way in both libraries.

A recipe gets the losses namespace (ours or the reference's) and the model, so that a parity test builds the
same loss twice; ``columns`` says which text columns it takes and ``labels`` makes the batch's labels.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

# Eight rows per column: enough for in-batch negatives and for two examples of each of four classes.
ANCHORS = [
    "a man is eating food",
    "a woman plays guitar",
    "the dog runs on the street",
    "a red car",
    "hello world",
    "the quick brown fox jumps",
    "a child rides a horse",
    "search for a document",
]
POSITIVES = [
    "a man eats pasta",
    "a woman is playing the guitar",
    "a dog is running",
    "a small red car",
    "hello",
    "a brown fox jumps over the lazy dog",
    "a child is riding a horse",
    "a query to find a passage",
]
NEGATIVES = [
    "the green street",
    "a blue car",
    "a cat walks",
    "a woman eats",
    "embedding model test",
    "a large horse",
    "the man plays",
    "a lazy cat",
]
NEGATIVES_2 = [
    "red and blue",
    "a sentence",
    "the child",
    "a dog with a guitar",
    "the world",
    "running food",
    "a green document",
    "is was are",
]
COLUMNS = {"anchor": ANCHORS, "positive": POSITIVES, "negative": NEGATIVES, "negative_2": NEGATIVES_2}
# Similarity scores for (anchor, positive) in [0, 1], with ties, as STS-style labels.
SCORES = torch.tensor([0.9, 0.8, 0.7, 0.75, 0.3, 0.8, 0.9, 0.1])
BINARY = torch.tensor([1, 1, 0, 1, 0, 0, 1, 0])
CLASSES = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])


def teacher_margins(rows: int = 8, negatives: int = 1) -> torch.Tensor:
    """Fixed teacher score differences (positive minus negative), one per negative column."""
    generator = torch.Generator().manual_seed(5)
    return torch.rand(rows, negatives, generator=generator).squeeze(-1) * 2


def teacher_scores(rows: int = 8, candidates: int = 3) -> torch.Tensor:
    """Fixed teacher scores for (positive, negative, ...) candidates; the positive scores highest."""
    generator = torch.Generator().manual_seed(6)
    scores = torch.rand(rows, candidates, generator=generator) * 5
    scores[:, 0] += 5
    return scores


def teacher_embeddings(rows: int = 8, dim: int = 32) -> torch.Tensor:
    """Fixed target embeddings for MSELoss."""
    return torch.randn(rows, dim, generator=torch.Generator().manual_seed(7))


@dataclass(frozen=True)
class Case:
    """How to build one bi-encoder loss and its batch."""

    name: str
    build: Callable[[Any, Any], Any]
    columns: tuple[str, ...]
    labels: Callable[[], torch.Tensor | None] = field(default=lambda: None)
    id: str = ""
    # Copies parameters the loss itself holds (a classifier) from our loss into the reference's.
    sync: Callable[[Any, Any], None] | None = None

    @property
    def case_id(self) -> str:
        return self.id or self.name


def _plain(name: str, **kwargs: Any) -> Callable[[Any, Any], Any]:
    return lambda ns, model: getattr(ns, name)(model, **kwargs)


BI_CASES = [
    Case("MultipleNegativesRankingLoss", _plain("MultipleNegativesRankingLoss"), ("anchor", "positive")),
    Case(
        "MultipleNegativesRankingLoss",
        _plain("MultipleNegativesRankingLoss", scale=10.0),
        ("anchor", "positive", "negative", "negative_2"),
        id="MNRL-negatives",
    ),
    Case(
        "MultipleNegativesRankingLoss",
        _plain(
            "MultipleNegativesRankingLoss",
            directions=("query_to_doc", "query_to_query", "doc_to_query", "doc_to_doc"),
            hardness_mode="all_negatives",
            hardness_strength=5.0,
        ),
        ("anchor", "positive", "negative"),
        id="MNRL-gte-hardness",
    ),
    Case(
        "MultipleNegativesRankingLoss",
        _plain(
            "MultipleNegativesRankingLoss",
            directions=("query_to_doc", "doc_to_query"),
            partition_mode="per_direction",
            hardness_mode="hard_negatives",
            hardness_strength=3.0,
        ),
        ("anchor", "positive", "negative"),
        id="MNRL-per-direction",
    ),
    Case(
        "MultipleNegativesSymmetricRankingLoss",
        _plain("MultipleNegativesSymmetricRankingLoss"),
        ("anchor", "positive", "negative"),
    ),
    Case("CoSENTLoss", _plain("CoSENTLoss"), ("anchor", "positive"), lambda: SCORES * 5),
    Case("AnglELoss", _plain("AnglELoss"), ("anchor", "positive"), lambda: SCORES),
    Case(
        "AnglELoss",
        _plain("AnglELoss"),
        ("anchor", "positive", "negative"),
        lambda: None,
        id="AnglE-negatives",
    ),
    Case("CosineSimilarityLoss", _plain("CosineSimilarityLoss"), ("anchor", "positive"), lambda: SCORES),
    Case("ContrastiveLoss", _plain("ContrastiveLoss"), ("anchor", "positive"), lambda: BINARY),
    Case(
        "ContrastiveLoss",
        lambda ns, m: ns.ContrastiveLoss(m, distance_metric=ns.SiameseDistanceMetric.EUCLIDEAN, margin=2.0),
        ("anchor", "positive"),
        lambda: BINARY,
        id="Contrastive-euclidean",
    ),
    Case(
        "OnlineContrastiveLoss",
        _plain("OnlineContrastiveLoss", margin=1.5),
        ("anchor", "positive"),
        lambda: BINARY,
    ),
    Case(
        "SoftmaxLoss",
        _plain("SoftmaxLoss", embedding_dimension=32, num_labels=4, concatenation_sent_multiplication=True),
        ("anchor", "positive"),
        lambda: CLASSES,
        sync=lambda ours, ref: ref.classifier.load_state_dict(ours.classifier.state_dict()),
    ),
    Case("TripletLoss", _plain("TripletLoss"), ("anchor", "positive", "negative")),
    Case(
        "TripletLoss",
        lambda ns, m: ns.TripletLoss(m, distance_metric=ns.TripletDistanceMetric.COSINE, triplet_margin=0.3),
        ("anchor", "positive", "negative"),
        id="Triplet-cosine",
    ),
    Case("BatchAllTripletLoss", _plain("BatchAllTripletLoss"), ("anchor",), lambda: CLASSES),
    Case("BatchHardTripletLoss", _plain("BatchHardTripletLoss"), ("anchor",), lambda: CLASSES),
    Case(
        "BatchHardTripletLoss",
        lambda ns, m: ns.BatchHardTripletLoss(
            m, distance_metric=ns.BatchHardTripletLossDistanceFunction.cosine_distance, margin=0.5
        ),
        ("anchor",),
        lambda: CLASSES,
        id="BatchHard-cosine",
    ),
    Case(
        "BatchHardSoftMarginTripletLoss",
        _plain("BatchHardSoftMarginTripletLoss"),
        ("anchor",),
        lambda: CLASSES,
    ),
    Case("BatchSemiHardTripletLoss", _plain("BatchSemiHardTripletLoss"), ("anchor",), lambda: CLASSES),
    Case("MSELoss", _plain("MSELoss"), ("anchor", "positive"), teacher_embeddings),
    Case("MarginMSELoss", _plain("MarginMSELoss"), ("anchor", "positive", "negative"), teacher_margins),
    Case(
        "MarginMSELoss",
        _plain("MarginMSELoss"),
        ("anchor", "positive", "negative", "negative_2"),
        teacher_scores,
        id="MarginMSE-scores",
    ),
    Case(
        "DistillKLDivLoss",
        _plain("DistillKLDivLoss", temperature=2.0),
        ("anchor", "positive", "negative", "negative_2"),
        teacher_scores,
    ),
    Case("GISTEmbedLoss", lambda ns, m: ns.GISTEmbedLoss(m, copy.deepcopy(m)), ("anchor", "positive")),
    Case(
        "GISTEmbedLoss",
        lambda ns, m: ns.GISTEmbedLoss(
            m,
            copy.deepcopy(m),
            temperature=0.05,
            margin_strategy="relative",
            margin=0.05,
            contrast_anchors=False,
        ),
        ("anchor", "positive", "negative"),
        id="GIST-relative-negatives",
    ),
    Case(
        "CachedMultipleNegativesRankingLoss",
        _plain("CachedMultipleNegativesRankingLoss", mini_batch_size=3),
        ("anchor", "positive", "negative"),
    ),
    Case(
        "MatryoshkaLoss",
        lambda ns, m: ns.MatryoshkaLoss(m, ns.MultipleNegativesRankingLoss(m), [32, 16, 8], [1.0, 0.5, 0.25]),
        ("anchor", "positive", "negative"),
    ),
    Case(
        "MatryoshkaLoss",
        lambda ns, m: ns.MatryoshkaLoss(m, ns.CoSENTLoss(m), [8, 32, 16]),
        ("anchor", "positive"),
        lambda: SCORES,
        id="Matryoshka-CoSENT",
    ),
    Case(
        "MatryoshkaLoss",
        lambda ns, m: ns.MatryoshkaLoss(m, ns.MSELoss(m), [32, 16]),
        ("anchor", "positive"),
        teacher_embeddings,
        id="Matryoshka-MSE",
    ),
    Case(
        "MatryoshkaLoss",
        lambda ns, m: ns.MatryoshkaLoss(m, ns.GISTEmbedLoss(m, copy.deepcopy(m)), [32, 16]),
        ("anchor", "positive"),
        id="Matryoshka-GIST",
    ),
    Case(
        "MatryoshkaLoss",
        lambda ns, m: ns.MatryoshkaLoss(
            m, ns.CachedMultipleNegativesRankingLoss(m, mini_batch_size=3), [32, 16]
        ),
        ("anchor", "positive"),
        id="Matryoshka-CachedMNRL",
    ),
    Case(
        "AdaptiveLayerLoss",
        lambda ns, m: ns.AdaptiveLayerLoss(m, ns.MultipleNegativesRankingLoss(m), n_layers_per_step=-1),
        ("anchor", "positive", "negative"),
    ),
    Case(
        "AdaptiveLayerLoss",
        lambda ns, m: ns.AdaptiveLayerLoss(
            m,
            ns.CoSENTLoss(m),
            n_layers_per_step=-1,
            layer_weighting="log",
            kl_temperature=0.5,
            kl_div_weight=2.0,
        ),
        ("anchor", "positive"),
        lambda: SCORES,
        id="AdaptiveLayer-CoSENT-log",
    ),
    Case(
        "Matryoshka2dLoss",
        lambda ns, m: ns.Matryoshka2dLoss(
            m, ns.MultipleNegativesRankingLoss(m), [32, 16, 8], n_layers_per_step=-1, n_dims_per_step=-1
        ),
        ("anchor", "positive"),
    ),
]


# --- cross-encoder ---------------------------------------------------------------------------------------

LONG = " ".join(["quick brown fox jumps over the lazy dog"] * 12)  # past the tiny models' 64 tokens
QUERIES = [*ANCHORS[:6], LONG, ANCHORS[7]]
DOCS = [POSITIVES[0], LONG, *POSITIVES[2:]]


# Ranked lists of different lengths for the listwise losses, with graded labels (ties included).
LISTS = [
    ANCHORS[:4],
    [POSITIVES[:3], [POSITIVES[1], *NEGATIVES[:4]], [LONG, NEGATIVES[5]], NEGATIVES_2[:4]],
]


def list_labels() -> list[torch.Tensor]:
    """Graded labels of :data:`LISTS`, one tensor per query."""
    return [
        torch.tensor([3.0, 1.0, 0.0]),
        torch.tensor([2.0, 0, 1, 0, 2]),
        torch.tensor([0.0, 1]),
        torch.zeros(4),
    ]


def _lambda_with_scheme(scheme: str) -> Callable[[Any, Any], Any]:
    return lambda ns, m: ns.LambdaLoss(m, weighting_scheme=getattr(ns, scheme)(), k=3)


@dataclass(frozen=True)
class CeCase:
    """How to build one cross-encoder loss and its batch."""

    name: str
    build: Callable[[Any, Any], Any]
    inputs: Callable[[], list[list[str]]]
    labels: Callable[[], Any]
    num_labels: int = 1
    id: str = ""

    @property
    def case_id(self) -> str:
        return self.id or self.name


CE_CASES = [
    CeCase(
        "BinaryCrossEntropyLoss",
        _plain("BinaryCrossEntropyLoss"),
        lambda: [QUERIES, DOCS],
        lambda: BINARY.float(),
    ),
    CeCase(
        "BinaryCrossEntropyLoss",
        _plain("BinaryCrossEntropyLoss", pos_weight=torch.tensor(3.0)),
        lambda: [QUERIES, DOCS],
        lambda: SCORES,
        id="BCE-pos-weight-soft",
    ),
    CeCase("CrossEntropyLoss", _plain("CrossEntropyLoss"), lambda: [QUERIES, DOCS], lambda: CLASSES % 3, 3),
    CeCase("MSELoss", _plain("MSELoss"), lambda: [QUERIES, DOCS], lambda: SCORES * 4 - 2),
    CeCase(
        "MarginMSELoss",
        _plain("MarginMSELoss"),
        lambda: [QUERIES, DOCS, NEGATIVES],
        lambda: teacher_margins(),
    ),
    CeCase(
        "MarginMSELoss",
        _plain("MarginMSELoss"),
        lambda: [QUERIES, DOCS, NEGATIVES, NEGATIVES_2],
        lambda: teacher_scores(),
        id="CE-MarginMSE-scores",
    ),
    CeCase(
        "MultipleNegativesRankingLoss",
        _plain("MultipleNegativesRankingLoss", num_negatives=3),
        lambda: [QUERIES, DOCS],
        lambda: torch.zeros(8),
    ),
    CeCase(
        "MultipleNegativesRankingLoss",
        _plain("MultipleNegativesRankingLoss", num_negatives=None, scale=5.0),
        lambda: [QUERIES[:4], DOCS[:4], NEGATIVES[:4]],
        lambda: torch.zeros(4),
        id="CE-MNRL-all-negatives",
    ),
    CeCase("ListNetLoss", _plain("ListNetLoss"), lambda: LISTS, lambda: list_labels()),
    CeCase("LambdaLoss", _plain("LambdaLoss"), lambda: LISTS, lambda: list_labels()),
    *[
        CeCase(
            "LambdaLoss",
            _lambda_with_scheme(scheme),
            lambda: LISTS,
            lambda: list_labels(),
            id=f"LambdaLoss-{scheme}-k3",
        )
        for scheme in ("NoWeightingScheme", "NDCGLoss1Scheme", "NDCGLoss2Scheme", "LambdaRankScheme")
    ],
    CeCase(
        "LambdaLoss",
        _plain("LambdaLoss", weighting_scheme=None, sigma=2.0, reduction_log="natural", mini_batch_size=5),
        lambda: LISTS,
        lambda: list_labels(),
        id="LambdaLoss-none-natural",
    ),
]
