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
    optimizer = torch.optim.AdamW(loss.parameters(), lr=5e-4)
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


# --- loss-specific behaviour -----------------------------------------------------------------------------


def test_gist_retokenizes_for_a_guide_with_a_shorter_limit(bi_model):
    """A guide that needs its own tokenization gets the decoded texts; here that changes nothing."""
    features = [bi_model.tokenize(COLUMNS[c]) for c in ("anchor", "positive")]
    same = losses.GISTEmbedLoss(bi_model, copy.deepcopy(bi_model))
    guide = copy.deepcopy(bi_model)
    guide.max_seq_length = 32  # shorter than the model's 64: the loss must re-tokenize for the guide
    retokenized = losses.GISTEmbedLoss(bi_model, guide)
    assert retokenized.must_retokenize and not same.must_retokenize
    with torch.no_grad():
        assert retokenized(features, None).item() == pytest.approx(same(features, None).item(), abs=1e-6)


def test_gist_guide_stays_out_of_training(bi_model):
    model, guide = copy.deepcopy(bi_model).train(), copy.deepcopy(bi_model).train()
    loss = losses.GISTEmbedLoss(model, guide)
    loss([model.tokenize(COLUMNS["anchor"]), model.tokenize(COLUMNS["positive"])], None).backward()
    assert guide.training  # restored after running it in eval mode
    assert all(p.grad is None for p in guide.parameters())
    # not the loss's parameters: an optimizer or checkpoint built from the loss leaves the guide alone
    assert {id(p) for p in loss.parameters()} == {id(p) for p in model.parameters()}
    assert len(loss.state_dict()) == len(model.state_dict())


def test_matryoshka_validates_dims_and_samples_them(bi_model):
    inner = losses.CoSENTLoss(bi_model)
    with pytest.raises(ValueError, match="exceed"):
        losses.MatryoshkaLoss(bi_model, inner, [64, 32])
    with pytest.raises(ValueError, match="matryoshka_weights"):
        losses.MatryoshkaLoss(bi_model, inner, [32, 16], [1.0])
    loss = losses.MatryoshkaLoss(bi_model, inner, [8, 32, 16], n_dims_per_step=2)
    assert loss.matryoshka_dims == (32, 16, 8)
    seen = set()
    for _ in range(20):
        chosen = loss._chosen()
        assert len(chosen) == 2 and chosen == sorted(chosen)
        seen.update(chosen)
    assert seen == {0, 1, 2}


def test_adaptive_layer_embeds_each_layer_like_a_truncated_encoder(bi_model):
    """Layer i's embedding is what the model gives with only its first i transformer layers."""
    from sentencekit.losses.adaptive_layer import LayerEmbeddings

    features = bi_model.tokenize(COLUMNS["anchor"])
    with torch.no_grad():
        layers = LayerEmbeddings(bi_model, features)
        assert layers.num_layers == 3  # embedding output + 2 transformer layers
        torch.testing.assert_close(layers.final(), bi_model(dict(features))["sentence_embedding"])
        short = copy.deepcopy(bi_model)
        short[0].auto_model.encoder.layer = short[0].auto_model.encoder.layer[:1]
        torch.testing.assert_close(
            layers.layer(1), short(dict(features))["sentence_embedding"], atol=1e-5, rtol=0
        )


def test_softmax_loss_without_labels_returns_embeddings_and_logits(bi_model):
    loss = losses.SoftmaxLoss(bi_model, embedding_dimension=32, num_labels=3)
    embeddings, logits = loss([bi_model.tokenize(["a", "b"]), bi_model.tokenize(["c", "d"])], None)
    assert [e.shape for e in embeddings] == [(2, 32), (2, 32)] and logits.shape == (2, 3)
    assert loss.classifier.in_features == 3 * 32


def test_distillation_label_shapes_are_explained(bi_model):
    three = [bi_model.tokenize(COLUMNS[c][:2]) for c in ("anchor", "positive", "negative")]
    with pytest.raises(InvalidInputError, match=r"\(2, 1\)"):
        losses.MarginMSELoss(bi_model)(three, torch.ones(2, 5))
    with pytest.raises(InvalidInputError, match="teacher's scores of shape"):
        losses.DistillKLDivLoss(bi_model)(three, torch.ones(2))
    with pytest.raises(InvalidInputError, match="projection_dim"):
        losses.MSELoss(bi_model)(three[:1], torch.ones(2, 16))
    projected = losses.MSELoss(bi_model, projection_dim=16)
    assert projected(three[:1], torch.ones(2, 16)).shape == ()


def test_listwise_losses_check_their_lists(ce_models):
    loss = ce_losses.LambdaLoss(ce_models[1])
    with pytest.raises(InvalidInputError, match="list of labels"):
        loss([["q"], [["a", "b"]]], torch.ones(2))
    with pytest.raises(InvalidInputError, match="must match"):
        ce_losses.ListNetLoss(ce_models[1])([["q"], [["a", "b"]]], [torch.ones(3)])
