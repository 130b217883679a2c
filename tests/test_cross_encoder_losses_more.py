"""RankNet, (P)ListMLE, ADR-MSE and the cached in-batch ranking loss: the reference's values and gradients.

The parity check is ``test_losses_parity``'s, run on these cases with its fixtures: the same loss is built in
both libraries on the same tiny cross-encoder and batch, and value (1e-5) and gradients (atol 1e-5, rtol
1e-4) must match.
"""

from __future__ import annotations

import copy
import inspect

import pytest
import torch
import torch.nn.functional as F

import test_losses_parity as parity
from loss_cases import DOCS, LISTS, NEGATIVES, QUERIES, CeCase, list_labels
from sentencekit.cross_encoder import losses as ce_losses
from sentencekit.cross_encoder.losses._pairs import pair_logits
from sentencekit.errors import InvalidInputError

ref_ce_losses = pytest.importorskip("sentence_transformers.cross_encoder.losses")

ce_pairs = parity.ce_pairs  # the tiny cross-encoders with 1 and 3 labels, in both libraries

NEW_LOSSES = [
    "ADRMSELoss",
    "CachedMultipleNegativesRankingLoss",
    "ListMLELoss",
    "PListMLELambdaWeight",
    "PListMLELoss",
    "RankNetLoss",
]


def _build(name: str, **kwargs):
    return lambda ns, model: getattr(ns, name)(model, **kwargs)


def _log_discount(mask: torch.Tensor) -> torch.Tensor:
    """A custom position weighting: 1 / log2(1 + rank) for real documents, 0 for padding."""
    return (1.0 / torch.log2(1.0 + mask.cumsum(dim=1))) * mask


def _lists(name: str, build, case_id: str = "") -> CeCase:
    """A case on the shared ranked lists: four queries, lists of 2 to 5 documents, ties in the labels."""
    return CeCase(name, build, lambda: LISTS, lambda: list_labels(), id=case_id)


def _hard_lists() -> list[torch.Tensor]:
    """Labels of LISTS without ties, so every sort order is unique."""
    return [
        torch.tensor([0.5, 2.0, 1.0]),
        torch.tensor([3.0, 0.0, 1.0, -1.0, 2.0]),
        torch.tensor([0.0, 1.0]),
        torch.tensor([4.0, 1.0, 3.0, 2.0]),
    ]


CASES = [
    _lists("RankNetLoss", _build("RankNetLoss")),
    _lists(
        "RankNetLoss",
        _build("RankNetLoss", k=2, sigma=2.0, reduction_log="natural", mini_batch_size=4),
        "RankNet-k2-natural",
    ),
    _lists("ListMLELoss", _build("ListMLELoss")),
    CeCase(
        "ListMLELoss",
        _build(
            "ListMLELoss", respect_input_order=False, activation_fn=torch.nn.Sigmoid(), mini_batch_size=-1
        ),
        lambda: LISTS,
        _hard_lists,
        id="ListMLE-sorted-sigmoid",
    ),
    _lists("PListMLELoss", _build("PListMLELoss")),
    CeCase(
        "PListMLELoss",
        _build("PListMLELoss", respect_input_order=False),
        lambda: LISTS,
        _hard_lists,
        id="PListMLE-sorted",
    ),
    _lists(
        "PListMLELoss",
        lambda ns, m: ns.PListMLELoss(
            m, lambda_weight=ns.PListMLELambdaWeight(rank_discount_fn=_log_discount), mini_batch_size=5
        ),
        "PListMLE-custom-weights",
    ),
    _lists("PListMLELoss", _build("PListMLELoss", lambda_weight=None), "PListMLE-no-weights"),
    _lists("ADRMSELoss", _build("ADRMSELoss")),
    _lists(
        "ADRMSELoss",
        _build("ADRMSELoss", alpha=3.0, activation_fn=torch.nn.Sigmoid(), mini_batch_size=5),
        "ADRMSE-alpha3-sigmoid",
    ),
    CeCase(
        "CachedMultipleNegativesRankingLoss",
        _build("CachedMultipleNegativesRankingLoss", num_negatives=3, mini_batch_size=5),
        lambda: [QUERIES, DOCS],
        lambda: torch.zeros(8),
    ),
    CeCase(
        "CachedMultipleNegativesRankingLoss",
        _build(
            "CachedMultipleNegativesRankingLoss",
            num_negatives=None,
            scale=5.0,
            activation_fn=None,
            mini_batch_size=4,
        ),
        lambda: [QUERIES[:4], DOCS[:4], NEGATIVES[:4]],
        lambda: torch.zeros(4),
        id="CachedMNRL-all-negatives-raw",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.case_id)
def test_loss_matches_reference(ce_pairs, case: CeCase):
    """Same value and gradients as the reference (test_losses_parity's check), and the same config keys."""
    parity.test_cross_encoder_loss_matches_reference(ce_pairs, case)
    ours, ref = ce_pairs[case.num_labels]
    assert set(case.build(ce_losses, ours).get_config_dict()) == set(
        case.build(ref_ce_losses, ref).get_config_dict()
    )


@pytest.mark.parametrize("name", NEW_LOSSES)
def test_constructor_arguments_match_the_reference(name):
    """Same argument names and order; same plain defaults (ours say None where the reference has a module)."""
    ours = inspect.signature(getattr(ce_losses, name)).parameters
    ref = inspect.signature(getattr(ref_ce_losses, name)).parameters
    assert list(ours) == list(ref)
    for key, parameter in ours.items():
        default = ref[key].default
        if isinstance(default, (int, float, str, bool)) or default is None:
            assert parameter.default == default, key


def _grads(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


def _loss_and_grads(model, loss_fn, inputs, seed: int = 0) -> tuple[float, dict[str, torch.Tensor]]:
    model.zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    value = loss_fn(copy.deepcopy(inputs), None)
    value.backward()
    return value.item(), _grads(model)


def _assert_same(a: tuple[float, dict], b: tuple[float, dict]) -> None:
    assert a[0] == pytest.approx(b[0], abs=parity.TOLERANCE)
    assert a[1] and set(a[1]) == set(b[1])
    for name, grad in a[1].items():
        torch.testing.assert_close(grad, b[1][name], atol=parity.TOLERANCE, rtol=1e-4, msg=name)


def test_cached_ranking_loss_equals_the_plain_one(ce_pairs):
    """Same seed, same sampled negatives: the cached loss gives MNRL's value and gradients."""
    model = ce_pairs[1][0]
    inputs = [QUERIES, DOCS, NEGATIVES]
    plain = ce_losses.MultipleNegativesRankingLoss(model, num_negatives=2)
    cached = ce_losses.CachedMultipleNegativesRankingLoss(model, num_negatives=2, mini_batch_size=3)
    expected = _loss_and_grads(model, plain, inputs)
    _assert_same(_loss_and_grads(model, cached, inputs), expected)
    with torch.no_grad():  # evaluation: no gradient cache, the same value
        torch.manual_seed(0)
        assert cached(inputs).item() == pytest.approx(expected[0], abs=1e-6)


def test_cached_ranking_loss_replays_dropout(ce_pairs):
    """In training mode each mini-batch's second pass draws the first pass's dropout masks."""
    model = ce_pairs[1][0]
    inputs = [QUERIES[:4], DOCS[:4]]
    cached = ce_losses.CachedMultipleNegativesRankingLoss(model, num_negatives=2, mini_batch_size=5)

    def by_mini_batches(batch, labels):
        """The same loss with a graph, scoring the same mini-batches in the same order (same RNG draws)."""
        queries, docs = batch
        negatives = cached._sampled_negatives([docs])
        firsts = queries * 3
        seconds = [*docs, *[d for column in negatives for d in column]]
        logits = torch.cat(
            [pair_logits(model, firsts[i : i + 5], seconds[i : i + 5]).view(-1) for i in range(0, 12, 5)]
        )
        scores = torch.sigmoid(logits.view(3, 4).t()) * 10
        return F.cross_entropy(scores, torch.zeros(4, dtype=torch.long))

    model.train()
    try:
        cached_result = _loss_and_grads(model, cached, inputs)
        _assert_same(cached_result, _loss_and_grads(model, by_mini_batches, inputs))
        other_seed = _loss_and_grads(model, cached, inputs, seed=1)
    finally:
        model.eval()
    assert other_seed[0] != pytest.approx(cached_result[0], abs=1e-6)  # dropout (and sampling) did act


def test_plistmle_default_weights_and_long_lists():
    """2**(n - rank) - 1 per real position, 0 for padding; long lists stay finite with the same ratios."""
    mask = torch.tensor([[True, True, True], [True, True, False]])
    weights = ce_losses.PListMLELambdaWeight()(mask)
    torch.testing.assert_close(weights, torch.tensor([[3.0, 1.0, 0.0], [1.0, 0.0, 0.0]]))
    long = ce_losses.PListMLELambdaWeight()(torch.ones(1, 300, dtype=torch.bool))
    assert torch.isfinite(long).all() and torch.isfinite(long.sum())
    assert long[0, 0] / long[0, 1] == pytest.approx(2.0)


def test_average_ranks_share_ties_and_skip_padding():
    from sentencekit.cross_encoder.losses.adr_mse import average_ranks

    labels = torch.tensor([[3.0, 1.0, 1.0, 0.0], [0.0, 2.0, -torch.inf, -torch.inf]])
    mask = torch.isfinite(labels)
    ranks = average_ranks(labels, mask)
    torch.testing.assert_close(ranks[0], torch.tensor([1.0, 2.5, 2.5, 4.0]))
    torch.testing.assert_close(ranks[1, :2], torch.tensor([2.0, 1.0]))


def test_bad_arguments_raise_clear_errors(ce_pairs):
    one, three = ce_pairs[1][0], ce_pairs[3][0]
    for name in (
        "RankNetLoss",
        "ListMLELoss",
        "PListMLELoss",
        "ADRMSELoss",
        "CachedMultipleNegativesRankingLoss",
    ):
        with pytest.raises(ValueError, match="num_labels=1"):
            getattr(ce_losses, name)(three)
    with pytest.raises(ValueError, match="reduction_log"):
        ce_losses.RankNetLoss(one, reduction_log="log10")
    with pytest.raises(ValueError, match="lambda_weight must be"):
        ce_losses.PListMLELoss(one, lambda_weight="ndcg")
    with pytest.raises(ValueError, match="rank_discount_fn"):
        ce_losses.PListMLELambdaWeight(rank_discount_fn=2.0)
    with pytest.raises(ValueError, match="alpha must be positive"):
        ce_losses.ADRMSELoss(one, alpha=0.0)
    for size in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="mini_batch_size must be a positive integer"):
            ce_losses.CachedMultipleNegativesRankingLoss(one, mini_batch_size=size)
    with pytest.raises(ValueError, match="num_negatives"):
        ce_losses.CachedMultipleNegativesRankingLoss(one, num_negatives=-1)


@pytest.mark.parametrize("name", ["RankNetLoss", "ListMLELoss", "PListMLELoss", "ADRMSELoss"])
def test_listwise_losses_check_their_inputs(ce_pairs, name):
    loss = getattr(ce_losses, name)(ce_pairs[1][0])
    with pytest.raises(InvalidInputError, match="list of labels"):
        loss([["q"], [["a", "b"]]], torch.ones(2))
    with pytest.raises(InvalidInputError, match="must match"):
        loss([["q"], [["a", "b"]]], [torch.ones(3)])
    with pytest.raises(InvalidInputError, match="two columns"):
        loss([["q"], ["a"], ["b"]], [torch.ones(1)])
    with pytest.raises(InvalidInputError, match="at least one document"):
        loss([["q", "r"], [["a"], []]], [torch.ones(1), torch.ones(0)])


def test_cached_ranking_loss_checks_its_columns(ce_pairs):
    loss = ce_losses.CachedMultipleNegativesRankingLoss(ce_pairs[1][0])
    with pytest.raises(InvalidInputError, match="at least 2 text columns"):
        loss([QUERIES])
    with pytest.raises(InvalidInputError, match="differ in length"):
        loss([QUERIES, DOCS[:3]])
