"""The later bi-encoder losses give the reference's values and gradients on the same tiny model and batch.

CachedMultipleNegativesSymmetricRankingLoss, CachedGISTEmbedLoss, MegaBatchMarginLoss, EmbedDistillLoss go
through the shared parity check of test_losses_parity; GlobalOrthogonalRegularizationLoss (a dict of terms)
and the Contrastive Tension losses (a second, trained model copy) have their own.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch

from loss_cases import ANCHORS, COLUMNS, NEGATIVES, POSITIVES, Case, teacher_embeddings
from sentencekit import losses, similarity
from test_losses import _train, bi_model  # noqa: F401  (bi_model is a fixture)
from test_losses_parity import _assert_same_grads, _grads, bi_pair  # noqa: F401  (bi_pair is a fixture)
from test_losses_parity import test_bi_encoder_loss_matches_reference as check_against_reference

st = pytest.importorskip("sentence_transformers")
ref_losses = pytest.importorskip("sentence_transformers.sentence_transformer.losses")

TOLERANCE = 1e-5
# The reference deprecates the symmetric cached loss in favour of the cached MNRL's directions; we keep both.
pytestmark = pytest.mark.filterwarnings(
    "ignore:The CachedMultipleNegativesSymmetricRankingLoss is deprecated"
)


def _plain(name: str, **kwargs: Any):
    return lambda ns, model: getattr(ns, name)(model, **kwargs)


def _short_guide(model: Any) -> Any:
    """A copy of the model with a shorter maximum length: the guide must re-tokenize the texts."""
    guide = copy.deepcopy(model)
    guide.max_seq_length = 32
    return guide


def _per_column_targets() -> torch.Tensor:
    return torch.randn(8, 2, 32, generator=torch.Generator().manual_seed(8))


def _projected_targets() -> torch.Tensor:
    return torch.randn(8, 16, generator=torch.Generator().manual_seed(9))


def _sync_projection(ours: Any, ref: Any) -> None:
    ref.projection.load_state_dict(ours.projection.state_dict())


MORE_CASES = [
    Case(
        "CachedMultipleNegativesSymmetricRankingLoss",
        _plain("CachedMultipleNegativesSymmetricRankingLoss", mini_batch_size=3),
        ("anchor", "positive"),
    ),
    Case(
        "CachedMultipleNegativesSymmetricRankingLoss",
        _plain("CachedMultipleNegativesSymmetricRankingLoss", scale=10.0, mini_batch_size=5),
        ("anchor", "positive", "negative"),
        id="CMNSRL-negatives",
    ),
    Case(
        "CachedGISTEmbedLoss",
        lambda ns, m: ns.CachedGISTEmbedLoss(m, copy.deepcopy(m), mini_batch_size=3),
        ("anchor", "positive"),
    ),
    Case(
        "CachedGISTEmbedLoss",
        lambda ns, m: ns.CachedGISTEmbedLoss(
            m,
            copy.deepcopy(m),
            temperature=0.05,
            mini_batch_size=5,
            margin_strategy="relative",
            margin=0.05,
            contrast_anchors=False,
        ),
        ("anchor", "positive", "negative", "negative_2"),
        id="CachedGIST-relative-two-negatives",
    ),
    Case(
        "CachedGISTEmbedLoss",
        lambda ns, m: ns.CachedGISTEmbedLoss(
            m, _short_guide(m), temperature=0.02, mini_batch_size=4, contrast_positives=False
        ),
        ("anchor", "positive", "negative"),
        id="CachedGIST-retokenized-guide",
    ),
    Case("MegaBatchMarginLoss", _plain("MegaBatchMarginLoss", mini_batch_size=3), ("anchor", "positive")),
    Case(
        "MegaBatchMarginLoss",
        _plain(
            "MegaBatchMarginLoss", positive_margin=0.95, negative_margin=0.5, use_mini_batched_version=False
        ),
        ("anchor", "positive"),
        id="MegaBatch-not-mini-batched",
    ),
    Case("EmbedDistillLoss", _plain("EmbedDistillLoss"), ("anchor",), teacher_embeddings),
    Case(
        "EmbedDistillLoss",
        _plain("EmbedDistillLoss", distance_metric="l2"),
        ("anchor", "positive"),
        _per_column_targets,
        id="EmbedDistill-l2-per-column",
    ),
    Case(
        "EmbedDistillLoss",
        _plain("EmbedDistillLoss", distance_metric="mse", projection_dim=16),
        ("anchor", "positive"),
        _projected_targets,
        id="EmbedDistill-mse-projection",
        sync=_sync_projection,
    ),
    Case(
        "MatryoshkaLoss",
        lambda ns, m: ns.MatryoshkaLoss(
            m, ns.CachedGISTEmbedLoss(m, copy.deepcopy(m), mini_batch_size=3), [32, 16], [1.0, 0.5]
        ),
        ("anchor", "positive", "negative"),
        id="Matryoshka-CachedGIST",
    ),
    Case(
        "MatryoshkaLoss",
        lambda ns, m: ns.MatryoshkaLoss(m, ns.MegaBatchMarginLoss(m, mini_batch_size=3), [32, 8]),
        ("anchor", "positive"),
        id="Matryoshka-MegaBatch",
    ),
]


@pytest.mark.parametrize("case", MORE_CASES, ids=lambda c: c.case_id)
def test_loss_matches_reference(bi_pair, case: Case):  # noqa: F811
    """Same value (1e-5) and the same gradients on every encoder parameter (and the projection's)."""
    check_against_reference(bi_pair, case)
    if case.sync is not None:  # the projection of EmbedDistillLoss is trained too
        ours, ref = bi_pair
        ours_loss, ref_loss = case.build(losses, ours), case.build(ref_losses, ref)
        case.sync(ours_loss, ref_loss)
        features = [ours.tokenize(COLUMNS[c]) for c in case.columns]
        ours_loss(features, case.labels()).backward()
        ref_loss(features, case.labels()).backward()
        _assert_same_grads(_grads(ours_loss.projection), _grads(ref_loss.projection))


@pytest.mark.parametrize("case", MORE_CASES, ids=lambda c: c.case_id)
def test_loss_learns(bi_model, case: Case):  # noqa: F811
    """A few AdamW steps on one batch lower the loss."""
    model = copy.deepcopy(bi_model)
    loss = case.build(losses, model)
    features = [model.tokenize(COLUMNS[c]) for c in case.columns]
    values = _train(loss, model, lambda: loss(features, case.labels()))
    assert values[-1] < values[0], values


# --- GlobalOrthogonalRegularizationLoss: a dict of named terms ----------------------------------------------

GOR_SETTINGS = [
    ({}, ("anchor",)),
    ({"mean_weight": 0.0, "aggregation": "sum"}, ("anchor", "positive", "negative")),
    (
        {"mean_weight": 2.0, "second_moment_weight": None, "similarity_fct": "dot_score"},
        ("anchor", "positive"),
    ),
]


@pytest.mark.parametrize(
    ("settings", "columns"), GOR_SETTINGS, ids=["default", "sum-no-mean", "dot-mean-only"]
)
def test_global_orthogonal_regularization_matches_reference(bi_pair, settings, columns):  # noqa: F811
    ours, ref = bi_pair
    ours_settings, ref_settings = dict(settings), dict(settings)
    if "similarity_fct" in settings:
        ours_settings["similarity_fct"] = getattr(similarity, settings["similarity_fct"])
        ref_settings["similarity_fct"] = getattr(st.util, settings["similarity_fct"])
    features = [ours.tokenize(COLUMNS[c]) for c in columns]
    results = []
    for model, namespace, kwargs in ((ours, losses, ours_settings), (ref, ref_losses, ref_settings)):
        model.zero_grad(set_to_none=True)
        terms = namespace.GlobalOrthogonalRegularizationLoss(model, **kwargs)(features, None)
        torch.stack(list(terms.values())).sum().backward()
        results.append(({k: v.item() for k, v in terms.items()}, _grads(model)))
    (ours_terms, ours_grads), (ref_terms, ref_grads) = results
    assert ours_terms == pytest.approx(ref_terms, abs=TOLERANCE, rel=TOLERANCE)
    assert all(value > 0 for value in ours_terms.values())  # the test exercises every term it checks
    _assert_same_grads(ours_grads, ref_grads)


# --- Contrastive Tension: a second copy of the model, trained too -------------------------------------------

# every third pair repeats the sentence (a positive pair), as ContrastiveTensionDataLoader builds them
CT_FIRST = ANCHORS
CT_SECOND = [ANCHORS[i] if i % 3 == 0 else (POSITIVES + NEGATIVES)[i + 3] for i in range(8)]


def _ct_run(namespace: Any, model: Any, build: Any, features: list, labels: Any) -> tuple[Any, float]:
    model.zero_grad(set_to_none=True)
    loss = build(namespace, model)
    loss.zero_grad(set_to_none=True)
    value = loss(features, labels)
    value.backward()
    return loss, value.item()


@pytest.mark.parametrize("given_labels", [False, True], ids=["labels-from-texts", "labels-given"])
def test_contrastive_tension_matches_reference(bi_pair, given_labels):  # noqa: F811
    ours, ref = bi_pair
    features = [ours.tokenize(CT_FIRST), ours.tokenize(CT_SECOND)]
    labels = torch.tensor([1, 1, 0, 1, 0, 0, 1, 0]) if given_labels else None
    build = _plain("ContrastiveTensionLoss")
    ours_loss, a = _ct_run(losses, ours, build, features, labels)
    ref_loss, b = _ct_run(ref_losses, ref, build, features, labels)
    assert a == pytest.approx(b, abs=TOLERANCE, rel=TOLERANCE)
    _assert_same_grads(_grads(ours), _grads(ref))
    _assert_same_grads(_grads(ours_loss.model1), _grads(ref_loss.model1))
    assert ours_loss.model2 is ours and ours_loss.model1 is not ours


@pytest.mark.parametrize("scale", [20.0, 5.0])
def test_contrastive_tension_in_batch_negatives_matches_reference(bi_pair, scale):  # noqa: F811
    ours, ref = bi_pair
    features = [ours.tokenize(ANCHORS)]
    build = _plain("ContrastiveTensionLossInBatchNegatives", scale=scale)
    ours_loss, a = _ct_run(losses, ours, build, features, None)
    ref_loss, b = _ct_run(ref_losses, ref, build, features, None)
    assert a == pytest.approx(b, abs=TOLERANCE, rel=TOLERANCE)
    _assert_same_grads(_grads(ours), _grads(ref))
    _assert_same_grads(_grads(ours_loss.model1), _grads(ref_loss.model1))
    torch.testing.assert_close(
        ours_loss.logit_scale.grad, ref_loss.logit_scale.grad, atol=TOLERANCE, rtol=1e-4
    )
    assert ours_loss.get_config_dict()["scale"] == pytest.approx(scale)


@pytest.mark.parametrize(("size", "batch_size", "ratio"), [(100, 8, 4), (45, 16, 8), (24, 4, 1)])
def test_contrastive_tension_data_loader_builds_the_references_batches(size, batch_size, ratio):
    sentences = [f"sentence {i}" for i in range(size)]
    loader = losses.ContrastiveTensionDataLoader(sentences, batch_size, pos_neg_ratio=ratio)
    assert len(loader) == len(ref_losses.ContrastiveTensionDataLoader(list(sentences), batch_size, ratio))
    torch.manual_seed(3)
    batches = list(loader)
    assert len(batches) == len(loader)
    used = []
    for batch in batches:
        assert len(batch) == batch_size
        for i, example in enumerate(batch):
            positive = i % ratio == 0
            assert example.label == int(positive)
            assert (example.texts[0] == example.texts[1]) == positive
            used.extend(example.texts[:1] if positive else example.texts)
    assert len(used) == len(set(used))  # each sentence at most once per pass
    assert sentences == [f"sentence {i}" for i in range(size)]  # the caller's list is not shuffled
    torch.manual_seed(3)
    assert [[e.texts for e in b] for b in loader] == [[e.texts for e in b] for b in batches]


@pytest.mark.parametrize("name", ["CachedGISTEmbedLoss", "GISTEmbedLoss"])
def test_gist_with_anchors_equal_to_their_positives_matches_reference(bi_pair, name):  # noqa: F811
    """Such a row ties the guide's threshold with the anchor itself, which must still leave the softmax."""
    ours, ref = bi_pair
    features = [ours.tokenize(ANCHORS), ours.tokenize(ANCHORS[:3] + POSITIVES[3:])]
    extra = {"mini_batch_size": 3} if name.startswith("Cached") else {}
    values = []
    for model, namespace in ((ours, losses), (ref, ref_losses)):
        model.zero_grad(set_to_none=True)
        value = getattr(namespace, name)(model, copy.deepcopy(model), **extra)(features, None)
        value.backward()
        values.append(value.item())
    assert values[0] == pytest.approx(values[1], abs=TOLERANCE, rel=TOLERANCE)
    _assert_same_grads(_grads(ours), _grads(ref))
