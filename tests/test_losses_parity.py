"""Every loss that the reference also has gives the reference's value on the same tiny model and batch."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from conftest import _write_tiny_bert
from loss_cases import BI_CASES, CE_CASES, COLUMNS, Case, CeCase
from sentencekit import SentenceTransformer, losses
from sentencekit.cross_encoder import CrossEncoder
from sentencekit.cross_encoder import losses as ce_losses
from sentencekit.models import Pooling, Transformer

st = pytest.importorskip("sentence_transformers")
ref_losses = pytest.importorskip("sentence_transformers.sentence_transformer.losses")
ref_ce_losses = pytest.importorskip("sentence_transformers.cross_encoder.losses")

TOLERANCE = 1e-5
# The reference deprecates MultipleNegativesSymmetricRankingLoss in favour of MNRL's directions; we keep both.
pytestmark = pytest.mark.filterwarnings("ignore:The MultipleNegativesSymmetricRankingLoss is deprecated")


@pytest.fixture(scope="module")
def bi_pair(tmp_path_factory, one_torch_thread) -> tuple[SentenceTransformer, object]:
    """The same tiny bi-encoder in both libraries, dropout off."""
    base = _write_tiny_bert(tmp_path_factory.mktemp("loss_bert"), seed=3)
    folder = tmp_path_factory.mktemp("loss_bi")
    SentenceTransformer(modules=[Transformer(base), Pooling(32)], device="cpu").save(folder)
    ours = SentenceTransformer(str(folder), device="cpu").eval()
    ref = st.SentenceTransformer(str(folder), device="cpu").eval()
    return ours, ref


@pytest.fixture(scope="module")
def ce_pairs(tmp_path_factory, one_torch_thread) -> dict[int, tuple[CrossEncoder, object]]:
    """Tiny cross-encoders with 1 and 3 labels in both libraries."""
    from test_cross_encoder import write_tiny_cross_encoder

    pairs = {}
    for n in (1, 3):
        folder = write_tiny_cross_encoder(Path(tmp_path_factory.mktemp(f"loss_ce{n}")), n, seed=n)
        pairs[n] = (
            CrossEncoder(folder, device="cpu").eval(),
            st.CrossEncoder(str(folder), device="cpu").eval(),
        )
    return pairs


def _features(model: SentenceTransformer, case: Case) -> list[dict[str, torch.Tensor]]:
    return [model.tokenize(COLUMNS[c]) for c in case.columns]


def _grads(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Gradients by the Hugging Face parameter name (the two libraries nest the model differently)."""
    return {
        name.removeprefix("0.").replace("auto_model.", "model."): p.grad.clone()
        for name, p in model.named_parameters()
        if p.grad is not None
    }


def _assert_same_grads(ours: dict[str, torch.Tensor], ref: dict[str, torch.Tensor]) -> None:
    assert ours, "no gradient reached the model"
    assert set(ours) == set(ref)
    for name, grad in ours.items():
        torch.testing.assert_close(grad, ref[name], atol=TOLERANCE, rtol=1e-4, msg=name)


@pytest.mark.parametrize("case", BI_CASES, ids=lambda c: c.case_id)
def test_bi_encoder_loss_matches_reference(bi_pair, case: Case):
    """Same value (1e-5) and the same gradients on every encoder parameter."""
    ours, ref = bi_pair
    ours_loss = case.build(losses, ours)
    ref_loss = case.build(ref_losses, ref)
    if case.sync is not None:
        case.sync(ours_loss, ref_loss)
    labels = case.labels()
    ours.zero_grad(set_to_none=True)
    ref.zero_grad(set_to_none=True)
    torch.manual_seed(0)
    a = ours_loss(_features(ours, case), None if labels is None else labels.clone())
    a.backward()
    torch.manual_seed(0)
    b = ref_loss(_features(ours, case), None if labels is None else labels.clone())
    b.backward()
    assert a.shape == b.shape == ()
    assert a.item() == pytest.approx(b.item(), abs=TOLERANCE, rel=TOLERANCE)
    _assert_same_grads(_grads(ours), _grads(ref))


@pytest.mark.parametrize("case", CE_CASES, ids=lambda c: c.case_id)
def test_cross_encoder_loss_matches_reference(ce_pairs, case: CeCase):
    """Same value (1e-5) and the same gradients on every model parameter."""
    ours, ref = ce_pairs[case.num_labels]
    inputs, labels = case.inputs(), case.labels()
    ours.zero_grad(set_to_none=True)
    ref.zero_grad(set_to_none=True)
    torch.manual_seed(0)
    a = case.build(ce_losses, ours)(copy.deepcopy(inputs), copy.deepcopy(labels))
    a.backward()
    torch.manual_seed(0)
    b = case.build(ref_ce_losses, ref)(copy.deepcopy(inputs), copy.deepcopy(labels))
    b.backward()
    assert a.shape == b.shape == ()
    assert a.item() == pytest.approx(b.item(), abs=TOLERANCE, rel=TOLERANCE)
    _assert_same_grads(_grads(ours), _grads(ref))
