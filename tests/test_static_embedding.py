"""StaticEmbedding: the reference's static models (averaged token rows): load, encode, save, train."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from sentencekit import SentenceTransformer, SentenceTransformerTrainer
from sentencekit.errors import ModelFormatError
from sentencekit.losses import MultipleNegativesRankingLoss
from sentencekit.models import Normalize, StaticEmbedding
from training_support import trainer_args

TEXTS = [
    "a man is eating food",
    "A woman plays the guitar!",
    "",  # no tokens: the zero vector
    "the quick brown fox jumps over the lazy dog",
    "a man is eating food",  # repeated
    "zzz qqq 123",
]


@pytest.fixture(scope="module")
def tokenizer(tiny_hf_folder):
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(tiny_hf_folder / "tokenizer.json"))


@pytest.fixture(scope="module")
def table(tokenizer) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return torch.randn(tokenizer.get_vocab_size(), 24, generator=generator)


def _reference_static(tokenizer, table):
    st_models = pytest.importorskip("sentence_transformers.models")
    return st_models.StaticEmbedding(tokenizer, embedding_weights=table.clone())


def test_encodes_like_the_reference(tokenizer, table):
    st = pytest.importorskip("sentence_transformers")
    ours = SentenceTransformer(modules=[StaticEmbedding(tokenizer, embedding_weights=table)], device="cpu")
    ref = st.SentenceTransformer(modules=[_reference_static(tokenizer, table)], device="cpu")
    for kwargs in ({}, {"normalize_embeddings": True}, {"batch_size": 2}, {"prompt": "query: "}):
        expected = ref.encode(TEXTS, **kwargs)
        got = ours.encode(TEXTS, **kwargs)
        assert got.shape == (len(TEXTS), 24)
        np.testing.assert_allclose(got, expected, atol=1e-6, rtol=0)
    # a text without tokens averages nothing, also alone in its batch (torch's EmbeddingBag leaves that
    # output uninitialized; the reference's character-sorted batches rarely isolate it)
    for _ in range(3):
        assert not ours.encode(["", "", "a man"], batch_size=2)[:2].any()
    assert ours.get_sentence_embedding_dimension() == 24 and ours.max_seq_length == float("inf")
    tokenizer.enable_truncation(3)  # a tokenizer.json may set truncation: both libraries follow it
    try:
        assert ours.max_seq_length == 3
        np.testing.assert_allclose(ours.encode(TEXTS), ref.encode(TEXTS), atol=1e-6, rtol=0)
    finally:
        tokenizer.no_truncation()
    assert ours.inference_path == "torch" and ours.tokenizer is ours[0].tokenizer


def test_a_folder_round_trips_with_the_reference(tokenizer, table, tmp_path):
    st = pytest.importorskip("sentence_transformers")
    ours = SentenceTransformer(
        modules=[StaticEmbedding(tokenizer, embedding_weights=table), Normalize()], device="cpu"
    )
    ours.save(tmp_path / "ours")
    saved = tmp_path / "ours" / "0_StaticEmbedding"
    assert sorted(p.name for p in saved.iterdir()) == ["model.safetensors", "tokenizer.json"]
    in_reference = st.SentenceTransformer(str(tmp_path / "ours"), device="cpu")
    np.testing.assert_allclose(in_reference.encode(TEXTS), ours.encode(TEXTS), atol=1e-6, rtol=0)

    ref = st.SentenceTransformer(modules=[_reference_static(tokenizer, table)], device="cpu")
    ref.save(str(tmp_path / "theirs"))
    loaded = SentenceTransformer(str(tmp_path / "theirs"), device="cpu")  # the default backend: torch here
    assert isinstance(loaded[0], StaticEmbedding) and loaded.inference_path == "torch"
    np.testing.assert_allclose(loaded.encode(TEXTS), ref.encode(TEXTS), atol=1e-6, rtol=0)


def test_a_model2vec_folder_is_folded_as_the_reference_does(tokenizer, table, tmp_path):
    st_models = pytest.importorskip("sentence_transformers.models")
    folder = tmp_path / "m2v"
    folder.mkdir()
    tokenizer.save(str(folder / "tokenizer.json"))
    vocab = tokenizer.get_vocab_size()
    generator = torch.Generator().manual_seed(1)
    save_file(
        {
            "embeddings": table[: vocab // 2].half(),  # fewer rows than tokens: the mapping picks them
            "mapping": torch.randint(0, vocab // 2, (vocab,), generator=generator),
            "weights": torch.rand(vocab, generator=generator),
        },
        str(folder / "model.safetensors"),
    )
    (folder / "config.json").write_text(json.dumps({"model_type": "model2vec"}))
    ours, ref = StaticEmbedding.from_model2vec(str(folder)), st_models.StaticEmbedding.load(str(folder))
    assert ours.embedding.weight.dtype == ref.embedding.weight.dtype == torch.float32
    torch.testing.assert_close(ours.embedding.weight, ref.embedding.weight, atol=0, rtol=0)


def test_training_moves_the_table(tokenizer, table, tmp_path):
    static = StaticEmbedding(tokenizer, embedding_weights=table)
    model = SentenceTransformer(modules=[static], device="cpu")
    before = static.embedding.weight.detach().clone()
    pairs = {
        "anchor": ["a man is eating food", "a woman plays guitar", "the fox jumps", "a dog runs"],
        "positive": ["a man eats", "a woman is playing guitar", "a brown fox jumps", "the dog is running"],
    }
    args = trainer_args(tmp_path / "run", max_steps=3, per_device_train_batch_size=4)
    SentenceTransformerTrainer(model, args, pairs, loss=MultipleNegativesRankingLoss(model)).train()
    assert not torch.equal(static.embedding.weight.detach(), before)


def test_bad_inputs_are_refused(tokenizer, table, tiny_hf_folder, tmp_path):
    from transformers import AutoTokenizer

    fast = AutoTokenizer.from_pretrained(str(tiny_hf_folder))
    assert StaticEmbedding(fast, embedding_dim=8).num_embeddings == tokenizer.get_vocab_size()
    with pytest.raises(ValueError, match="needs a fast tokenizer"):
        StaticEmbedding(object(), embedding_dim=8)
    with pytest.raises(ValueError, match="Pass embedding_weights"):
        StaticEmbedding(tokenizer)
    with pytest.raises(ValueError, match="must be 2-D"):
        StaticEmbedding(tokenizer, embedding_weights=table[0])
    short = SentenceTransformer(
        modules=[StaticEmbedding(tokenizer, embedding_weights=table[:10])], device="cpu"
    )
    with pytest.raises(ModelFormatError, match="do not belong together"):
        short.encode(["the quick brown fox"])
    full = SentenceTransformer(modules=[StaticEmbedding(tokenizer, embedding_weights=table)], device="cpu")
    with pytest.raises(ValueError, match="gives no token embeddings"):
        full.encode(["a dog"], output_value="token_embeddings")
    rows = full.encode(["a dog", ""], output_value=None)  # every output, row by row
    assert [tuple(r["sentence_embedding"].shape) for r in rows] == [(24,), (24,)]
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelFormatError, match=r"no tokenizer\.json"):
        StaticEmbedding.load(tmp_path / "empty")
    tokenizer.save(str(tmp_path / "empty" / "tokenizer.json"))
    with pytest.raises(ModelFormatError, match=r"neither model\.safetensors nor pytorch_model\.bin"):
        StaticEmbedding.load(tmp_path / "empty")


def test_cached_losses_cut_static_batches_by_text(tokenizer, table):
    from sentencekit.losses import CachedMultipleNegativesRankingLoss

    anchors = ["a man is eating food", "", "a woman plays guitar", "the fox jumps", "a dog runs", "hello"]
    positives = ["a man eats", "nothing", "a woman plays", "a brown fox", "the dog is running", "hi"]
    results = []
    for make_loss in (
        MultipleNegativesRankingLoss,
        lambda m: CachedMultipleNegativesRankingLoss(m, mini_batch_size=4),
    ):
        model = SentenceTransformer(modules=[StaticEmbedding(tokenizer, embedding_weights=table.clone())])
        value = make_loss(model)([model.tokenize(anchors), model.tokenize(positives)], None)
        value.backward()
        results.append((value.item(), model[0].embedding.weight.grad))
    assert results[1][0] == pytest.approx(results[0][0], abs=1e-6)
    torch.testing.assert_close(results[1][1], results[0][1], atol=1e-6, rtol=1e-5)


def test_an_out_of_memory_split_cuts_static_batches_by_text(tokenizer, table):
    from sentencekit.encoding.gpu import split_rows

    static = StaticEmbedding(tokenizer, embedding_weights=table)
    features = static.tokenize(TEXTS)
    head, tail = split_rows(features, 2)
    assert len(head["offsets"]) == 2 and len(tail["offsets"]) == len(TEXTS) - 2
    with torch.inference_mode():
        whole = static(dict(features))["sentence_embedding"]
        pieces = torch.cat([static(head)["sentence_embedding"], static(tail)["sentence_embedding"]])
    torch.testing.assert_close(pieces, whole, atol=1e-6, rtol=0)
