"""Every loss on tiny random models: a finite scalar, gradients reach the model, it learns a toy batch."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from conftest import _write_tiny_bert
from loss_cases import BI_CASES, CE_CASES, COLUMNS, Case, CeCase
from sentencekit import InvalidInputError, SentenceTransformer, losses
from sentencekit.cross_encoder import CrossEncoder
from sentencekit.cross_encoder import losses as ce_losses
from sentencekit.models import Pooling, Transformer

STEPS = 4


@pytest.fixture(scope="module")
def bi_model(tmp_path_factory, one_torch_thread) -> SentenceTransformer:
    base = _write_tiny_bert(tmp_path_factory.mktemp("train_bert"), seed=4)
    return SentenceTransformer(modules=[Transformer(base), Pooling(32)], device="cpu").eval()


@pytest.fixture(scope="module")
def ce_models(tmp_path_factory, one_torch_thread) -> dict[int, CrossEncoder]:
    from test_cross_encoder import write_tiny_cross_encoder

    return {
        n: CrossEncoder(write_tiny_cross_encoder(Path(tmp_path_factory.mktemp(f"train_ce{n}")), n, seed=n))
        for n in (1, 3)
    }


def _encoder_params(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    return [p for name, p in model.named_parameters() if "embeddings" in name or "encoder" in name]


def _train(loss: torch.nn.Module, model: torch.nn.Module, step) -> list[float]:
    """A few AdamW steps on one fixed batch (dropout off); returns the loss before each step."""
    optimizer = torch.optim.AdamW(loss.parameters(), lr=3e-3)
    values = []
    for i in range(STEPS):
        optimizer.zero_grad()
        value = step()
        assert value.shape == ()
        assert torch.isfinite(value)
        value.backward()
        if i == 0:
            grads = [p.grad for p in _encoder_params(model)]
            assert any(g is not None and g.abs().sum() > 0 for g in grads), "no gradient reached the model"
        optimizer.step()
        values.append(value.item())
    return values


@pytest.mark.parametrize("case", BI_CASES, ids=lambda c: c.case_id)
def test_bi_encoder_loss_learns(bi_model, case: Case):
    model = copy.deepcopy(bi_model)
    loss = case.build(losses, model)
    labels = case.labels()
    values = _train(loss, model, lambda: loss([model.tokenize(COLUMNS[c]) for c in case.columns], labels))
    assert values[-1] < values[0], values


@pytest.mark.parametrize("case", CE_CASES, ids=lambda c: c.case_id)
def test_cross_encoder_loss_learns(ce_models, case: CeCase):
    model = copy.deepcopy(ce_models[case.num_labels])
    loss = case.build(ce_losses, model)
    values = _train(loss, model, lambda: loss(case.inputs(), case.labels()))
    assert values[-1] < values[0], values


# --- wrong input --------------------------------------------------------------------------------------


def test_wrong_column_count_and_labels_are_explained(bi_model):
    features = [bi_model.tokenize(COLUMNS["anchor"]), bi_model.tokenize(COLUMNS["positive"])]
    with pytest.raises(InvalidInputError, match="at least 2 text columns"):
        losses.MultipleNegativesRankingLoss(bi_model)(features[:1], None)
    with pytest.raises(InvalidInputError, match="takes 2 text column"):
        losses.CoSENTLoss(bi_model)([*features, features[0]], torch.ones(8))
    with pytest.raises(InvalidInputError, match="one label per example"):
        losses.CoSENTLoss(bi_model)(features, torch.ones(3))
    with pytest.raises(InvalidInputError, match="needs a label"):
        losses.CosineSimilarityLoss(bi_model)(features, None)


def test_cross_encoder_losses_check_model_and_inputs(ce_models, bi_model):
    with pytest.raises(ValueError, match="num_labels=1"):
        ce_losses.BinaryCrossEntropyLoss(ce_models[3])
    with pytest.raises(ValueError, match="CrossEncoder"):
        ce_losses.MSELoss(bi_model)
    loss = ce_losses.BinaryCrossEntropyLoss(ce_models[1])
    with pytest.raises(InvalidInputError, match="takes 2 text columns"):
        loss([["a"], ["b"], ["c"]], torch.ones(1))
    with pytest.raises(InvalidInputError, match="one label per pair"):
        loss([["a", "b"], ["c", "d"]], torch.ones(3))


def test_cross_encoder_loss_respects_max_length(ce_models):
    model = copy.deepcopy(ce_models[1])
    model.max_length = 8
    seen = []
    model.register_forward_pre_hook(
        lambda m, args, kwargs: seen.append(kwargs["input_ids"].shape), with_kwargs=True
    )
    ce_losses.BinaryCrossEntropyLoss(model)([[" ".join(["dog"] * 50)], ["cat cat"]], torch.ones(1))
    assert seen == [torch.Size([1, 8])]
