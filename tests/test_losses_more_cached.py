"""The later cached losses give their uncached counterparts' loss and gradients on a 64-row batch."""

from __future__ import annotations

import copy
import itertools

import pytest
import torch

from conftest import WORDS
from sentencekit import losses
from test_losses_cached import MINI, ROWS, TOLERANCE, _assert_close, _loss_and_grads, model  # noqa: F401


def _batch(model, columns: int) -> list[dict[str, torch.Tensor]]:  # noqa: F811
    """64 rows of texts of varied length, every text distinct across all columns.

    (test_losses_cached's batch repeats texts across columns, e.g. an anchor equal to its positive; GIST's
    false-negative filter treats such rows specially, which is checked against the reference elsewhere.)
    """
    combos = itertools.islice(itertools.combinations(WORDS, 3), 0, None, 5)
    texts = [
        " ".join(c) + f" {WORDS[i % len(WORDS)]}" * (i % 4)
        for i, c in zip(range(ROWS * columns), combos, strict=False)
    ]
    assert len(set(texts)) == len(texts)
    return [model.tokenize(texts[c * ROWS : (c + 1) * ROWS]) for c in range(columns)]


def _assert_same(plain_loss, cached_loss, model, batch) -> None:  # noqa: F811
    plain, plain_grads = _loss_and_grads(plain_loss, model, batch)
    cached, cached_grads = _loss_and_grads(cached_loss, model, batch)
    assert cached.item() == pytest.approx(plain.item(), abs=TOLERANCE)
    _assert_close(cached_grads, plain_grads)
    with torch.no_grad():  # evaluation: no random states kept, no hook
        assert cached_loss(batch, None).item() == pytest.approx(plain.item(), abs=TOLERANCE)


def test_cached_symmetric_equals_symmetric(model):  # noqa: F811
    model.eval()
    _assert_same(
        losses.MultipleNegativesSymmetricRankingLoss(model, scale=15.0),
        losses.CachedMultipleNegativesSymmetricRankingLoss(model, scale=15.0, mini_batch_size=MINI),
        model,
        _batch(model, columns=3),
    )


@pytest.mark.parametrize(
    ("columns", "settings"),
    [
        (2, {}),
        (3, {"temperature": 0.05, "margin_strategy": "relative", "margin": 0.02, "contrast_anchors": False}),
        (3, {"margin": 0.01, "contrast_positives": False}),
    ],
    ids=["pairs", "relative-negatives", "absolute-no-positives"],
)
def test_cached_gist_equals_gist(model, columns, settings):  # noqa: F811
    model.eval()
    guide = copy.deepcopy(model)
    _assert_same(
        losses.GISTEmbedLoss(model, guide, **settings),
        losses.CachedGISTEmbedLoss(model, guide, mini_batch_size=MINI, **settings),
        model,
        _batch(model, columns=columns),
    )


def test_mega_batch_mini_batched_equals_whole_batch(model):  # noqa: F811
    model.eval()
    plain = losses.MegaBatchMarginLoss(model, positive_margin=0.95, use_mini_batched_version=False)
    cached = losses.MegaBatchMarginLoss(model, positive_margin=0.95, mini_batch_size=MINI)
    assert cached.uses_gradient_cache and not plain.uses_gradient_cache
    _assert_same(plain, cached, model, _batch(model, columns=2))


def test_matryoshka_keeps_gradient_caching_of_cached_gist(model):  # noqa: F811
    model.eval()
    guide = copy.deepcopy(model)
    dims, weights = [32, 16, 8], [1.0, 0.5, 0.5]
    _assert_same(
        losses.MatryoshkaLoss(model, losses.GISTEmbedLoss(model, guide), dims, weights),
        losses.MatryoshkaLoss(
            model, losses.CachedGISTEmbedLoss(model, guide, mini_batch_size=MINI), dims, weights
        ),
        model,
        _batch(model, columns=2),
    )


def test_cached_gist_retokenizes_for_a_shorter_guide_and_keeps_it_out_of_its_state(model):  # noqa: F811
    model.eval()
    batch = _batch(model, columns=2)
    same = losses.CachedGISTEmbedLoss(model, copy.deepcopy(model), mini_batch_size=MINI)
    short_guide = copy.deepcopy(model)
    short_guide.max_seq_length = 32  # longer than any text here: re-tokenizing changes nothing
    short = losses.CachedGISTEmbedLoss(model, short_guide, mini_batch_size=MINI)
    assert not same.must_retokenize and short.must_retokenize
    with torch.no_grad():
        assert short(batch, None).item() == pytest.approx(same(batch, None).item(), abs=TOLERANCE)
    guide_params = {id(p) for p in short_guide.parameters()}
    assert not guide_params & {id(p) for p in short.parameters()}
    assert all(not key.startswith(("guide", "_guide")) for key in short.state_dict())
    assert short.get_config_dict()["mini_batch_size"] == MINI


def test_cached_gist_needs_the_guide_embeddings_outside_forward(model):  # noqa: F811
    loss = losses.CachedGISTEmbedLoss(model, copy.deepcopy(model))
    embeddings = [torch.randn(4, 32), torch.randn(4, 32)]
    with pytest.raises(ValueError, match="guide's embeddings"):
        loss.compute_loss_from_embeddings(embeddings)
    value = loss.compute_loss_from_embeddings(embeddings, None, [e + 0.1 for e in embeddings])
    assert torch.isfinite(value)
    with pytest.raises(ValueError, match="3 of guide embeddings"):
        loss.compute_loss_from_embeddings(embeddings, None, [*embeddings, embeddings[0]])
