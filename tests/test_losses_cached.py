"""CachedMultipleNegativesRankingLoss (GradCache) gives MultipleNegativesRankingLoss's loss and gradients."""

from __future__ import annotations

import copy
import itertools

import pytest
import torch

from conftest import WORDS, _write_tiny_bert
from sentencekit import SentenceTransformer, losses
from sentencekit.losses.cached import slice_rows
from sentencekit.models import Pooling, Transformer

ROWS, MINI = 64, 8
TOLERANCE = 1e-5


def _texts(offset: int) -> list[str]:
    """64 distinct short texts of varied length (so mini-batches have their own padding)."""
    combos = itertools.islice(itertools.combinations(WORDS, 3), offset, None, 7)
    return [
        " ".join(c[: 1 + i % 3]) + f" {WORDS[i % len(WORDS)]}" * (i % 5)
        for i, c in zip(range(ROWS), combos, strict=False)
    ]


@pytest.fixture(scope="module")
def model(tmp_path_factory, one_torch_thread) -> SentenceTransformer:
    base = _write_tiny_bert(tmp_path_factory.mktemp("cached_bert"), seed=5)
    return SentenceTransformer(modules=[Transformer(base), Pooling(32)], device="cpu")


def _batch(model: SentenceTransformer, columns: int = 3) -> list[dict[str, torch.Tensor]]:
    return [model.tokenize(_texts(17 * c)) for c in range(columns)]


def _loss_and_grads(loss: torch.nn.Module, model: SentenceTransformer, batch, scale: float = 1.0):
    model.zero_grad(set_to_none=True)
    value = loss(batch, None)
    (value * scale).backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return value.detach(), grads


def _assert_close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a and set(a) == set(b)
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=TOLERANCE, rtol=1e-4, msg=name)


def test_cached_equals_plain_loss_and_gradients_in_eval_mode(model):
    model.eval()
    batch = _batch(model)
    plain, plain_grads = _loss_and_grads(losses.MultipleNegativesRankingLoss(model), model, batch)
    cached_loss = losses.CachedMultipleNegativesRankingLoss(model, mini_batch_size=MINI)
    cached, cached_grads = _loss_and_grads(cached_loss, model, batch)
    assert cached.item() == pytest.approx(plain.item(), abs=TOLERANCE)
    _assert_close(cached_grads, plain_grads)
    # a scaled backward (gradient accumulation, AMP loss scaling) scales the replayed gradients too
    _, half_grads = _loss_and_grads(cached_loss, model, batch, scale=0.5)
    _assert_close(half_grads, {n: g * 0.5 for n, g in plain_grads.items()})
    with torch.no_grad():
        assert cached_loss(batch, None).item() == pytest.approx(plain.item(), abs=TOLERANCE)


def test_cached_replays_dropout_masks(model):
    """With dropout on, the gradients are those of the returned loss: each mini-batch sees the same masks."""
    train_model = copy.deepcopy(model).train()
    batch = _batch(train_model, columns=2)
    cached_loss = losses.CachedMultipleNegativesRankingLoss(train_model, mini_batch_size=MINI)
    torch.manual_seed(11)
    cached, cached_grads = _loss_and_grads(cached_loss, train_model, batch)

    # the same mini-batches, in the same order, embedded with a graph from the same seed
    train_model.zero_grad(set_to_none=True)
    torch.manual_seed(11)
    columns = [
        torch.cat(
            [train_model(slice_rows(f, s, s + MINI))["sentence_embedding"] for s in range(0, ROWS, MINI)]
        )
        for f in batch
    ]
    direct = losses.MultipleNegativesRankingLoss(train_model).compute_loss_from_embeddings(columns)
    direct.backward()
    direct_grads = {n: p.grad.clone() for n, p in train_model.named_parameters() if p.grad is not None}
    assert cached.item() == pytest.approx(direct.item(), abs=TOLERANCE)
    _assert_close(cached_grads, direct_grads)

    # and dropout really was on: another seed gives another loss
    torch.manual_seed(12)
    with torch.no_grad():
        assert cached_loss(batch, None).item() != pytest.approx(cached.item(), abs=1e-4)


def test_matryoshka_keeps_gradient_caching(model):
    model.eval()
    batch = _batch(model, columns=2)
    dims = [32, 16, 8]
    plain = losses.MatryoshkaLoss(model, losses.MultipleNegativesRankingLoss(model), dims, [1.0, 0.5, 0.5])
    cached = losses.MatryoshkaLoss(
        model, losses.CachedMultipleNegativesRankingLoss(model, mini_batch_size=MINI), dims, [1.0, 0.5, 0.5]
    )
    a, a_grads = _loss_and_grads(plain, model, batch)
    b, b_grads = _loss_and_grads(cached, model, batch)
    assert b.item() == pytest.approx(a.item(), abs=TOLERANCE)
    _assert_close(b_grads, a_grads)


def test_slice_rows_trims_padding_and_keeps_values(model):
    batch = model.tokenize(["a", "the quick brown fox jumps over the lazy dog", "b c"])
    part = slice_rows(batch, 0, 1)
    assert part["input_ids"].shape == (1, 3)  # [CLS] a [SEP], not the longest row's width
    assert torch.equal(part["input_ids"], batch["input_ids"][:1, :3])
    assert slice_rows(batch, 1, 3)["input_ids"].shape == batch["input_ids"][1:].shape


def test_cached_rejects_bad_mini_batch_size_and_adaptive_wrapping(model):
    with pytest.raises(ValueError, match="mini_batch_size"):
        losses.CachedMultipleNegativesRankingLoss(model, mini_batch_size=0)
    with pytest.raises(ValueError, match="cannot wrap"):
        losses.AdaptiveLayerLoss(model, losses.CachedMultipleNegativesRankingLoss(model))
