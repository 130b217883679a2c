"""The reference's small model methods (get_backend, get_embedding_dimension, truncate_embeddings, ...)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sentencekit import CrossEncoder, SentenceTransformer
from sentencekit.losses import MultipleNegativesRankingLoss
from training_support import tiny_bi_model

st = pytest.importorskip("sentence_transformers")
TEXTS = ["a man is eating food", "a woman plays the guitar", "the quick brown fox"]


@pytest.fixture(scope="module")
def pair(tiny_hf_folder):
    ours = SentenceTransformer(str(tiny_hf_folder), device="cpu", backend="torch", truncate_dim=24)
    ref = st.SentenceTransformer(str(tiny_hf_folder), device="cpu", truncate_dim=24)
    return ours, ref


def test_embedding_size_backend_dtype_and_model_match_the_reference(pair):
    ours, ref = pair
    assert ours.get_embedding_dimension() == ref.get_embedding_dimension() == 24
    assert ours.get_backend() == ref.get_backend() == "torch"
    assert ours.dtype == ref.dtype == torch.float32
    assert type(ours.transformers_model) is type(ref.transformers_model)
    assert ours.get_max_seq_length() == ref.get_max_seq_length()
    with ours.truncate_embeddings(8), ref.truncate_embeddings(8):
        np.testing.assert_allclose(ours.encode(TEXTS), ref.encode(TEXTS), atol=1e-6)
        assert ours.encode(TEXTS).shape == (3, 8)
    assert ours.truncate_dim == 24  # restored after the block


def test_pooling_without_the_prompt_matches_the_reference(pair):
    ours, ref = pair
    try:
        for model in pair:
            model.set_pooling_include_prompt(False)
        np.testing.assert_allclose(
            ours.encode(TEXTS, prompt="query: "), ref.encode(TEXTS, prompt="query: "), atol=1e-6
        )
        assert not np.allclose(ours.encode(TEXTS, prompt="query: "), ours.encode(TEXTS), atol=1e-3)
    finally:
        for model in pair:
            model.set_pooling_include_prompt(True)


def test_gradient_checkpointing_keeps_the_loss_and_gradients(tiny_hf_folder):
    results = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        model = tiny_bi_model(tiny_hf_folder, dropout=False)
        if checkpointing:
            model.gradient_checkpointing_enable()
            assert model.transformers_model.is_activation_checkpointing
        model.train()
        value = MultipleNegativesRankingLoss(model)(
            [model.tokenize(TEXTS), model.tokenize(TEXTS[::-1])], None
        )
        value.backward()
        results.append((value.item(), [p.grad.clone() for p in model.parameters() if p.grad is not None]))
    assert results[1][0] == pytest.approx(results[0][0], abs=1e-6)
    for with_checkpoints, without in zip(results[1][1], results[0][1], strict=True):
        torch.testing.assert_close(with_checkpoints, without, atol=1e-6, rtol=1e-5)
    with pytest.raises(ValueError, match="supports gradient"):
        SentenceTransformer(modules=[], device="cpu").gradient_checkpointing_enable()


def test_cross_encoder_methods(tiny_hf_folder, tmp_path):
    model = CrossEncoder(tiny_hf_folder, num_labels=1, device="cpu", backend="torch")
    assert model.get_backend() == "torch" and model.get_max_seq_length() == model.max_seq_length
    assert model.dtype == torch.float32

    def evaluator(scored, output_path=None):
        return {"score": float(scored.predict([("a", "b")])[0]), "path": output_path}

    result = model.evaluate(evaluator, output_path=str(tmp_path / "eval"))
    assert (tmp_path / "eval").is_dir() and result["path"] == str(tmp_path / "eval")


def test_the_trainer_argument_turns_checkpointing_on_and_trains_the_same(tiny_hf_folder, tmp_path):
    from sentencekit import SentenceTransformerTrainer
    from sentencekit.losses import CoSENTLoss
    from training_support import max_difference, toy_pairs, trainer_args, weights

    trained = []
    for checkpointing in (False, True):
        model = tiny_bi_model(tiny_hf_folder, dropout=False)
        args = trainer_args(
            tmp_path / str(checkpointing), max_steps=3, seed=1, gradient_checkpointing=checkpointing
        )
        SentenceTransformerTrainer(model, args, toy_pairs(12), loss=CoSENTLoss(model)).train()
        assert model.transformers_model.is_activation_checkpointing is checkpointing
        trained.append(weights(model))
    assert max_difference(trained[0], trained[1]) < 1e-5
    assert max_difference(trained[1], weights(tiny_bi_model(tiny_hf_folder))) > 1e-4  # it did train
