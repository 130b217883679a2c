"""Tiny random models: every pooling mode, Dense, Normalize and a plain HF folder against the reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sentencekit import SentenceTransformer
from sentencekit.models import Dense, LayerNorm, Normalize, Pooling, Transformer, WeightedLayerPooling

st = pytest.importorskip("sentence_transformers")

MODES = ["cls", "mean", "max", "mean_sqrt_len_tokens", "weightedmean", "lasttoken", ("cls", "mean", "max")]


def _ours(folder: Path, modules_after: list[torch.nn.Module]) -> SentenceTransformer:
    return SentenceTransformer(modules=[Transformer(folder), *modules_after], device="cpu")


@pytest.mark.parametrize("mode", MODES, ids=str)
def test_pooling_modes_match_reference_both_ways(tiny_hf_folder, sample_texts, tmp_path, mode):
    ours = _ours(tiny_hf_folder, [Pooling(32, pooling_mode=mode)])
    ours.save(tmp_path / "ours")
    ref = st.SentenceTransformer(str(tmp_path / "ours"), device="cpu")
    a = ours.encode(sample_texts, batch_size=5)
    b = ref.encode(sample_texts, batch_size=5)
    assert a.shape == b.shape == (len(sample_texts), 32 * (len(mode) if isinstance(mode, tuple) else 1))
    np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)
    # and back: the reference saves (v6 layout), we load
    ref.save(str(tmp_path / "ref"))
    again = SentenceTransformer(str(tmp_path / "ref"), device="cpu")
    np.testing.assert_allclose(again.encode(sample_texts), b, atol=1e-5, rtol=0)


def test_dense_layernorm_normalize_stack(tiny_hf_folder, sample_texts, tmp_path):
    torch.manual_seed(1)
    modules = [
        Pooling(32),
        Dense(32, 16),
        Dense(16, 8, bias=False, activation_function=torch.nn.GELU()),
        LayerNorm(8),
        Normalize(),
    ]
    ours = _ours(tiny_hf_folder, modules)
    ours.save(tmp_path / "m")
    ref = st.SentenceTransformer(str(tmp_path / "m"), device="cpu")
    a, b = ours.encode(sample_texts), ref.encode(sample_texts)
    assert a.shape == (len(sample_texts), 8)
    np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    loaded = SentenceTransformer(str(tmp_path / "m"), device="cpu")
    np.testing.assert_allclose(loaded.encode(sample_texts), a, atol=1e-6, rtol=0)


def test_weighted_layer_pooling(tiny_hf_folder, sample_texts, tmp_path):
    torch.manual_seed(2)
    wlp = WeightedLayerPooling(32, num_hidden_layers=2, layer_start=1, layer_weights=torch.tensor([0.3, 0.7]))
    ours = _ours(tiny_hf_folder, [wlp, Pooling(32)])
    ours[0].output_hidden_states = True
    ours.save(tmp_path / "w")
    loaded = SentenceTransformer(str(tmp_path / "w"), device="cpu")
    expected = ours.encode(sample_texts)
    np.testing.assert_allclose(loaded.encode(sample_texts), expected, atol=1e-6, rtol=0)
    # by hand: weighted mean of hidden layers 1 and 2, then mean pooling
    tr = loaded[0]
    feats = tr.tokenize(sample_texts[:3])
    with torch.no_grad():
        out = tr.auto_model(**feats, output_hidden_states=True)
    layers = 0.3 * out.hidden_states[1] + 0.7 * out.hidden_states[2]
    mask = feats["attention_mask"].unsqueeze(-1).float()
    manual = (layers * mask).sum(1) / mask.sum(1)
    np.testing.assert_allclose(expected[:3], manual.numpy(), atol=1e-5, rtol=0)


def test_plain_hf_folder_is_mean_pooled_like_reference(tiny_hf_folder, sample_texts):
    ours = SentenceTransformer(str(tiny_hf_folder), device="cpu")
    ref = st.SentenceTransformer(str(tiny_hf_folder), device="cpu")
    assert isinstance(ours[1], Pooling) and ours[1].pooling_mode == "mean"
    np.testing.assert_allclose(ours.encode(sample_texts), ref.encode(sample_texts), atol=1e-5, rtol=0)
    assert ours.max_seq_length == ref.max_seq_length == 64


@pytest.mark.parametrize("include_prompt", [True, False])
def test_prompts_and_include_prompt(tiny_hf_folder, sample_texts, tmp_path, include_prompt):
    ours = _ours(tiny_hf_folder, [Pooling(32, "mean", include_prompt=include_prompt)])
    ours.prompts = {"query": "search query: ", "document": ""}
    ours.save(tmp_path / "p")
    ref = st.SentenceTransformer(str(tmp_path / "p"), device="cpu")
    for kwargs in ({"prompt_name": "query"}, {"prompt": "passage: "}):
        np.testing.assert_allclose(
            ours.encode(sample_texts, **kwargs), ref.encode(sample_texts, **kwargs), atol=1e-5, rtol=0
        )
    with_prompt = ours.encode(sample_texts, prompt="search query: ")
    without = ours.encode(sample_texts)
    assert not np.allclose(with_prompt, without)


def test_token_embeddings_and_batch_sizes(tiny_hf_folder, sample_texts):
    ours = SentenceTransformer(str(tiny_hf_folder), device="cpu")
    ref = st.SentenceTransformer(str(tiny_hf_folder), device="cpu")
    a = ours.encode(sample_texts, output_value="token_embeddings")
    b = ref.encode(sample_texts, output_value="token_embeddings")
    assert len(a) == len(b) == len(sample_texts)
    for x, y in zip(a, b, strict=True):
        assert x.shape == y.shape
        torch.testing.assert_close(x, y, atol=1e-5, rtol=0)
    for bs in (1, 3, 7, 64):
        np.testing.assert_allclose(
            ours.encode(sample_texts, batch_size=bs), ref.encode(sample_texts), atol=1e-5
        )


def test_tokenizer_arguments_under_both_names_reach_the_tokenizer(tiny_hf_folder):
    # processor_kwargs is the reference v6 name of tokenizer_kwargs: both reach AutoTokenizer, as there
    for name in ("tokenizer_kwargs", "processor_kwargs"):
        ours = SentenceTransformer(
            str(tiny_hf_folder), device="cpu", backend="torch", **{name: {"model_max_length": 9}}
        )
        ref = st.SentenceTransformer(str(tiny_hf_folder), device="cpu", **{name: {"model_max_length": 9}})
        assert ours.tokenizer.model_max_length == ref.tokenizer.model_max_length == 9
    with pytest.raises(ValueError, match="not both"):
        SentenceTransformer(str(tiny_hf_folder), tokenizer_kwargs={}, processor_kwargs={})
