"""SparseStaticEmbedding and SparseAutoEncoder against the reference's modules: same vectors, same folders.

The reference builds each module with random weights; ours loads the folder the reference saved (and the
reference loads ours), so every comparison runs both implementations on the same weights and texts.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from conftest import _write_tiny_bert
from sentencekit import SparseEncoder
from sentencekit.errors import ModelFormatError
from sentencekit.modules import Pooling, SparseAutoEncoder, SparseStaticEmbedding, Transformer

st = pytest.importorskip("sentence_transformers")
from sentence_transformers.sentence_transformer.modules import Pooling as RefPooling  # noqa: E402
from sentence_transformers.sparse_encoder.modules import (  # noqa: E402
    SparseAutoEncoder as RefSparseAutoEncoder,
)
from sentence_transformers.sparse_encoder.modules import (  # noqa: E402
    SparseStaticEmbedding as RefSparseStaticEmbedding,
)
from sentence_transformers.sparse_encoder.modules import Transformer as RefTransformer  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# the names the reference's CSRLoss reads from a training forward pass
CSR_OUTPUTS = (
    "sentence_embedding",
    "sentence_embedding_backbone",
    "sentence_embedding_encoded",
    "sentence_embedding_encoded_4k",
    "auxiliary_embedding",
    "decoded_embedding_k",
    "decoded_embedding_4k",
    "decoded_embedding_aux",
    "decoded_embedding_k_pre_bias",
)


def _dense(x: torch.Tensor) -> torch.Tensor:
    return x.to_dense() if x.is_sparse else x


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((_dense(a).detach().cpu() - _dense(b).detach().cpu()).abs().max())


# --- SparseStaticEmbedding ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def idf_weights(tiny_mlm_folder: Path) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return torch.rand(193, generator=generator) * 5


@pytest.fixture(scope="module")
def static_pair(tiny_mlm_folder: Path, idf_weights: torch.Tensor, tmp_path_factory: pytest.TempPathFactory):
    """The reference's SparseEncoder over a SparseStaticEmbedding, and ours loaded from its folder."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_mlm_folder))
    theirs = st.SparseEncoder(
        modules=[RefSparseStaticEmbedding(tokenizer, weight=idf_weights.clone(), frozen=True)], device="cpu"
    )
    folder = tmp_path_factory.mktemp("static_ref")
    theirs.save(str(folder))
    return SparseEncoder(str(folder), device="cpu"), theirs


def test_static_vectors_equal_the_references(static_pair, sample_texts):
    ours, theirs = static_pair
    module = ours[0]
    assert isinstance(module, SparseStaticEmbedding) and module.frozen
    assert not module.weight.requires_grad, "frozen weights are not trained"
    a, b = ours.encode(sample_texts), theirs.encode(sample_texts)
    assert a.shape == b.shape == (len(sample_texts), 193)
    assert _max_diff(a, b) <= 1e-6
    # each token counts once, with its weight: "A man is eating food." has 6 distinct tokens
    first = _dense(a[0])
    ids = module.tokenizer("A man is eating food.", add_special_tokens=False)["input_ids"]
    assert set(torch.nonzero(first).flatten().tolist()) == set(ids)
    torch.testing.assert_close(first[ids], module.weight[ids].detach())
    assert _dense(a[9]).abs().sum() == 0, "the empty text has no tokens"
    # texts padded in one batch with longer ones get the same vectors as alone
    assert _max_diff(ours.encode(sample_texts, batch_size=1), b) <= 1e-6


def test_static_module_multiplies_an_earlier_embedding(tiny_mlm_folder, idf_weights):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_mlm_folder))
    ours = SparseStaticEmbedding(tokenizer, weight=idf_weights.clone())
    theirs = RefSparseStaticEmbedding(tokenizer, weight=idf_weights.clone())
    features = ours.tokenize(["a red car", "the dog and the cat"])
    scale = torch.rand(2, 193)
    a = ours({**features, "sentence_embedding": scale})["sentence_embedding"]
    b = theirs({**features, "sentence_embedding": scale})["sentence_embedding"]
    assert _max_diff(a, b) == 0
    assert ours.weight.requires_grad and SparseStaticEmbedding(tokenizer).weight.eq(1).all()


def test_static_save_load_both_ways(static_pair, tmp_path, sample_texts):
    ours, theirs = static_pair
    ours.save(str(tmp_path))
    sub = tmp_path / "0_SparseStaticEmbedding"
    assert json.loads((sub / "config.json").read_text()) == {"frozen": True}
    reloaded = st.SparseEncoder(str(tmp_path), device="cpu")
    assert isinstance(reloaded[0], RefSparseStaticEmbedding) and reloaded[0].frozen
    assert _max_diff(reloaded.encode(sample_texts), theirs.encode(sample_texts)) <= 1e-6
    again = SparseStaticEmbedding.load(sub)
    assert torch.equal(again.weight, ours[0].weight) and again.frozen


def test_static_from_json_matches_the_reference(tiny_mlm_folder, tmp_path, sample_texts):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_mlm_folder))
    table = {"man": 2.5, "horse": 1.25, "##s": 0.5, "not-a-token": 9.0, "food": 3.0}
    (tmp_path / "idf.json").write_text(json.dumps(table))
    ours = SparseStaticEmbedding.from_json(str(tmp_path / "idf.json"), tokenizer, frozen=True)
    theirs = RefSparseStaticEmbedding.from_json(str(tmp_path / "idf.json"), tokenizer, frozen=True)
    assert torch.equal(ours.weight, theirs.weight) and ours.frozen
    assert ours.weight[tokenizer.unk_token_id] == 9.0, "an unknown token lands on the unknown-token id"
    # a folder holding idf.json works as well as the file
    assert torch.equal(SparseStaticEmbedding.from_json(str(tmp_path), tokenizer).weight, ours.weight)
    # a saved module whose config names the JSON file builds its weights from it, as the reference's does
    folder = tmp_path / "module"
    tokenizer.save_pretrained(str(folder))
    (folder / "idf.json").write_text(json.dumps(table))
    (folder / "config.json").write_text(json.dumps({"frozen": False, "path": "idf.json"}))
    loaded = SparseStaticEmbedding.load(folder)
    assert torch.equal(loaded.weight, ours.weight) and not loaded.frozen


def test_static_errors(tiny_mlm_folder, tmp_path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_mlm_folder))
    with pytest.raises(ValueError, match="one value per vocabulary token"):
        SparseStaticEmbedding(tokenizer, weight=torch.ones(3, 4))
    with pytest.raises(ModelFormatError, match="do not belong together"):
        SparseStaticEmbedding(tokenizer, weight=torch.ones(10)).tokenize(["the quick brown fox"])
    with pytest.raises(ModelFormatError, match=r"holds no idf\.json"):
        SparseStaticEmbedding.from_json(str(tmp_path), tokenizer)
    (tmp_path / "idf.json").write_text(json.dumps(["man", 1.0]))
    with pytest.raises(ModelFormatError, match="mapping tokens to numbers"):
        SparseStaticEmbedding.from_json(str(tmp_path / "idf.json"), tokenizer)


# --- SparseAutoEncoder (CSR) ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_tiny_bert(tmp_path_factory.mktemp("csr_bert"), seed=3)


def _reference_csr(folder: Path, normalize: bool = False):
    torch.manual_seed(7)
    transformer = RefTransformer(str(folder))
    autoencoder = RefSparseAutoEncoder(
        32, hidden_dim=64, k=8, k_aux=16, normalize=normalize, dead_threshold=1
    )
    with torch.no_grad():  # non-zero biases, so that a wrong sign or order shows
        autoencoder.pre_bias.normal_(0, 0.1)
        autoencoder.latent_bias.normal_(0, 0.1)
    return st.SparseEncoder(modules=[transformer, RefPooling(32, "mean"), autoencoder], device="cpu")


@pytest.fixture(scope="module", params=[False, True], ids=["plain", "normalize"])
def csr_pair(request, tiny_bert, tmp_path_factory):
    """The reference's CSR model, and ours loaded from the folder it saved."""
    theirs = _reference_csr(tiny_bert, normalize=request.param)
    folder = tmp_path_factory.mktemp("csr_ref")
    theirs.save(str(folder))
    return SparseEncoder(str(folder), device="cpu"), theirs


def test_csr_vectors_equal_the_references(csr_pair, sample_texts):
    ours, theirs = csr_pair
    assert isinstance(ours[2], SparseAutoEncoder) and ours.max_active_dims == theirs.max_active_dims == 8
    assert ours.get_sentence_embedding_dimension() == 64
    a, b = ours.encode(sample_texts), theirs.encode(sample_texts)
    assert a.shape == b.shape == (len(sample_texts), 64)
    assert _max_diff(a, b) <= 1e-5
    assert int((_dense(a) != 0).sum(dim=1).max()) <= 8
    # more codes than k per call: the reference asks the autoencoder for them, and so do we
    wide_a, wide_b = (
        ours.encode(sample_texts, max_active_dims=20),
        theirs.encode(sample_texts, max_active_dims=20),
    )
    assert int((_dense(wide_b) != 0).sum(dim=1).max()) > 8
    assert _max_diff(wide_a, wide_b) <= 1e-5
    assert (
        _max_diff(
            ours.encode(sample_texts, max_active_dims=3), theirs.encode(sample_texts, max_active_dims=3)
        )
        <= 1e-5
    )


def test_csr_training_outputs_match_the_references(csr_pair):
    """A training forward pass adds the features CSRLoss reads, with the reference's names and values."""
    ours, theirs = csr_pair
    ours_sae, ref_sae = ours[2], theirs[2]
    ours_sae.train()
    ref_sae.train()
    try:
        for step in range(3):  # dead_threshold=1: from the second step on, the auxiliary codes are non-zero
            dense = torch.randn(5, 32, generator=torch.Generator().manual_seed(step))
            a = ours_sae({"sentence_embedding": dense.clone()})
            b = ref_sae({"sentence_embedding": dense.clone()})
            for name in CSR_OUTPUTS:
                assert (a[name] is None) == (b[name] is None), name
                if a[name] is not None:
                    assert _max_diff(a[name], b[name]) <= 1e-5, name
            assert torch.equal(ours_sae.stats_last_nonzero, ref_sae.stats_last_nonzero)
        assert a["auxiliary_embedding"].abs().sum() > 0
        loss = a["decoded_embedding_k"].pow(2).mean()
        loss.backward()
        assert ours_sae.encoder.weight.grad is not None
    finally:
        ours_sae.eval()
        ref_sae.eval()
        ours_sae.zero_grad()


def test_csr_save_load_both_ways(csr_pair, tmp_path, sample_texts):
    ours, theirs = csr_pair
    ours.save(str(tmp_path))
    config = json.loads((tmp_path / "2_SparseAutoEncoder" / "config.json").read_text())
    assert config == {
        "input_dim": 32,
        "hidden_dim": 64,
        "k": 8,
        "k_aux": 16,
        "normalize": theirs[2].normalize,
        "dead_threshold": 1,
    }
    reloaded = st.SparseEncoder(str(tmp_path), device="cpu")
    assert isinstance(reloaded[2], RefSparseAutoEncoder)
    assert _max_diff(reloaded.encode(sample_texts), theirs.encode(sample_texts)) <= 1e-5
    again = SparseEncoder(str(tmp_path), device="cpu")
    assert _max_diff(again.encode(sample_texts), ours.encode(sample_texts)) == 0


def test_csr_built_from_modules(tiny_bert, sample_texts):
    transformer = Transformer(str(tiny_bert))
    model = SparseEncoder(
        modules=[transformer, Pooling(32, "mean"), SparseAutoEncoder(32, hidden_dim=48, k=4, k_aux=0)],
        device="cpu",
    )
    out = _dense(model.encode(sample_texts))
    assert out.shape == (len(sample_texts), 48) and (out >= 0).all()
    assert int((out != 0).sum(dim=1).max()) <= 4 and model.max_active_dims == 4
    model[2].train()
    features = model[2]({"sentence_embedding": torch.randn(2, 32)})
    assert features["auxiliary_embedding"] is None and features["decoded_embedding_aux"] is None


def test_csr_errors(tmp_path):
    with pytest.raises(ValueError, match="k must be a positive number"):
        SparseAutoEncoder(8, hidden_dim=16, k=0)
    wide = SparseAutoEncoder(8, hidden_dim=16, k=32, k_aux=64)  # more than there are: keeps them all
    wide.train()
    out = wide({"sentence_embedding": torch.randn(3, 8)})
    assert torch.equal(out["sentence_embedding"], torch.relu(out["sentence_embedding_encoded"]))
    with pytest.raises(ValueError, match="k_aux must be 0"):
        SparseAutoEncoder(8, hidden_dim=16, k=2, k_aux=-1)
    SparseAutoEncoder(8, hidden_dim=16, k=2).save(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"input_dim": 8, "hidden_dim": 24, "k": 2}))
    with pytest.raises(ModelFormatError, match="do not fit SparseAutoEncoder"):
        SparseAutoEncoder.load(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"input_dim": 8, "hidden": 16}))
    with pytest.raises(ModelFormatError, match="unknown keys"):
        SparseAutoEncoder.load(tmp_path)
