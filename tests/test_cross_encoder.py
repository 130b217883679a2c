"""CrossEncoder on tiny random classifiers: parity with the reference, folders both ways, bad input."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import _write_tiny_bert
from sentencekit import CrossEncoder, InvalidInputError, ModelNotFoundError
from sentencekit.cross_encoder.first_token import first_token_view

st_ce = pytest.importorskip("sentence_transformers.cross_encoder")

LONG = " ".join(["quick brown fox jumps over the lazy dog"] * 12)  # well past the tiny models' 64 tokens
PAIRS = [
    ("A man is eating food.", "A man is eating a piece of bread."),
    ("hello world", ""),
    ("", ""),
    ("The girl is carrying a baby.", LONG),
    (LONG, "A man is riding a horse."),
    (LONG, LONG),
    ("A man is eating food.", "A man is eating a piece of bread."),  # a duplicate
    ("a", "b"),
    ("Two men pushed carts through the woods.", "A monkey is playing drums."),
]
QUERY = "A man is eating food."
DOCS = [
    "A man is eating pasta.",
    "",
    "The girl is carrying a baby.",
    LONG,
    "A man is riding a horse.",
    "A man is eating food.",
    "hello world",
]


def write_tiny_cross_encoder(
    folder: Path, num_labels: int, *, seed: int = 0, id2label: dict[int, str] | None = None
) -> Path:
    """A tiny random BertForSequenceClassification (plain Hugging Face folder) whose logits are O(1)."""
    from transformers import BertForSequenceClassification

    _write_tiny_bert(folder, seed=seed)
    torch.manual_seed(seed + 100)
    kwargs = {"id2label": id2label, "label2id": {v: k for k, v in id2label.items()}} if id2label else {}
    model = BertForSequenceClassification.from_pretrained(str(folder), num_labels=num_labels, **kwargs)
    # with the default std 0.02 every pair gets nearly the same score: widen the layers, pooler and head
    for module in model.bert.encoder.modules():
        if isinstance(module, torch.nn.Linear):
            torch.nn.init.normal_(module.weight, std=0.2)
    torch.nn.init.normal_(model.bert.pooler.dense.weight, std=0.5)
    torch.nn.init.normal_(model.classifier.weight, std=1.0)
    torch.nn.init.normal_(model.classifier.bias, std=0.5)
    model.save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    return {n: write_tiny_cross_encoder(tmp_path_factory.mktemp(f"ce{n}"), n, seed=n) for n in (1, 3)}


@pytest.fixture(scope="module")
def models(folders, one_torch_thread):
    return {
        n: (CrossEncoder(folders[n], device="cpu"), st_ce.CrossEncoder(str(folders[n]), device="cpu"))
        for n in folders
    }


@pytest.mark.parametrize("num_labels", [1, 3])
@pytest.mark.parametrize("apply_softmax", [False, True])
def test_predict_matches_reference(models, num_labels, apply_softmax):
    ours, ref = models[num_labels]
    a = ours.predict(PAIRS, batch_size=4, apply_softmax=apply_softmax)
    b = ref.predict(PAIRS, batch_size=4, apply_softmax=apply_softmax)
    assert a.shape == b.shape == ((len(PAIRS),) if num_labels == 1 else (len(PAIRS), 3))
    assert a.dtype == np.float32
    np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)
    assert np.ptp(a) > 0.1  # the scores really differ from pair to pair
    logits_a = ours.predict(PAIRS, activation_fn=torch.nn.Identity())
    logits_b = ref.predict(PAIRS, activation_fn=torch.nn.Identity())
    np.testing.assert_allclose(logits_a, logits_b, atol=1e-5, rtol=0)


def test_default_activation_is_the_references(models):
    for n, activation in ((1, torch.nn.Sigmoid), (3, torch.nn.Identity)):
        ours, ref = models[n]
        assert isinstance(ours.activation_fn, activation) and isinstance(ref.activation_fn, activation)
    assert "probabilities" in models[1][0].score_description
    assert "logits" in models[3][0].score_description
    assert "Sigmoid" in repr(models[1][0])


def test_single_pair_and_output_types(models):
    ours, ref = models[1]
    one = ours.predict(PAIRS[0])
    np.testing.assert_allclose(one, ref.predict(PAIRS[0]), atol=1e-5)
    assert np.ndim(one) == 0
    tensor = ours.predict(PAIRS, convert_to_tensor=True)
    assert isinstance(tensor, torch.Tensor) and tensor.shape == (len(PAIRS),)
    as_list = ours.predict(PAIRS, convert_to_numpy=False)
    assert isinstance(as_list, list) and len(as_list) == len(PAIRS) and isinstance(as_list[0], torch.Tensor)
    np.testing.assert_allclose(ours.predict(inputs=PAIRS), tensor.numpy(), atol=1e-6)
    ours3 = models[3][0]
    assert ours3.predict(PAIRS[0]).shape == (3,)
    assert ours.predict([]).shape == (0,) and ours3.predict([]).shape == (0, 3)


def test_order_is_restored_whatever_the_batching(models):
    ours, _ = models[3]
    expected = ours.predict(PAIRS, batch_size=len(PAIRS))
    perm = np.random.default_rng(0).permutation(len(PAIRS))
    shuffled = ours.predict([PAIRS[i] for i in perm], batch_size=2)
    np.testing.assert_allclose(shuffled, expected[perm], atol=1e-5)
    budget = ours.predict(PAIRS, batch_size=8, max_batch_tokens=70)  # every long pair alone in its batch
    np.testing.assert_allclose(budget, expected, atol=1e-5)


@pytest.mark.parametrize("num_labels", [1])
def test_rank_matches_reference(models, num_labels):
    ours, ref = models[num_labels]
    a = ours.rank(QUERY, DOCS, return_documents=True)
    b = ref.rank(QUERY, DOCS, return_documents=True)
    assert [h["corpus_id"] for h in a] == [h["corpus_id"] for h in b]
    assert [h["text"] for h in a] == [DOCS[h["corpus_id"]] for h in b]
    np.testing.assert_allclose([h["score"] for h in a], [h["score"] for h in b], atol=1e-5)
    assert [h["score"] for h in a] == sorted((h["score"] for h in a), reverse=True)
    top = ours.rank(QUERY, DOCS, top_k=2)
    assert [h["corpus_id"] for h in top] == [h["corpus_id"] for h in b[:2]] and "text" not in top[0]
    assert ours.rank(QUERY, []) == [] == ref.rank(QUERY, [])


def test_rank_needs_one_label(models):
    with pytest.raises(ValueError, match="one label"):
        models[3][0].rank(QUERY, DOCS)


def test_max_length_truncates_like_reference(folders):
    ours = CrossEncoder(folders[3], max_length=12, device="cpu")
    ref = st_ce.CrossEncoder(str(folders[3]), max_length=12, device="cpu")
    assert ours.max_length == 12
    np.testing.assert_allclose(ours.predict(PAIRS), ref.predict(PAIRS), atol=1e-5, rtol=0)
    assert not np.allclose(ours.predict(PAIRS), CrossEncoder(folders[3], device="cpu").predict(PAIRS))


def test_eager_attention_matches_reference(folders):
    kwargs = {"attn_implementation": "eager"}
    ours = CrossEncoder(folders[1], device="cpu", model_kwargs=kwargs)
    ref = st_ce.CrossEncoder(str(folders[1]), device="cpu", model_kwargs=kwargs)
    np.testing.assert_allclose(ours.predict(PAIRS, batch_size=3), ref.predict(PAIRS), atol=1e-5, rtol=0)


def test_first_token_shortcut_equals_the_full_model(folders):
    ours = CrossEncoder(folders[3], device="cpu", backend="torch")  # the shortcut belongs to the torch path
    ours.predict(PAIRS[:1])
    view = first_token_view(ours.model)
    assert view is not None and ours._first_token_ok is True
    assert view.bert.encoder.layer[-1] is not ours.model.bert.encoder.layer[-1]
    assert view.bert.embeddings is ours.model.bert.embeddings  # shared, not copied
    fast = ours.predict(PAIRS, batch_size=4)
    ours._first_token_ok = False  # force the full model
    try:
        full = ours.predict(PAIRS, batch_size=4)
    finally:
        ours._first_token_ok = True
    np.testing.assert_allclose(fast, full, atol=1e-5, rtol=0)
    assert set(ours.state_dict()) == {f"model.{k}" for k in ours.model.state_dict()}


# --- folders ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("num_labels", [1, 3])
def test_our_folder_loads_in_reference_and_back(models, tmp_path, num_labels):
    ours, _ = models[num_labels]
    ours.save(tmp_path / "ours")
    settings = json.loads((tmp_path / "ours" / "config_sentence_transformers.json").read_text())
    assert settings["model_type"] == "CrossEncoder"
    assert settings["activation_fn"] == (
        "torch.nn.modules.activation.Sigmoid" if num_labels == 1 else "torch.nn.modules.linear.Identity"
    )
    ref = st_ce.CrossEncoder(str(tmp_path / "ours"), device="cpu")
    assert type(ref.activation_fn) is type(ours.activation_fn)
    expected = ours.predict(PAIRS)
    np.testing.assert_allclose(ref.predict(PAIRS), expected, atol=1e-5, rtol=0)
    again = CrossEncoder(tmp_path / "ours", device="cpu")
    np.testing.assert_allclose(again.predict(PAIRS), expected, atol=1e-6, rtol=0)
    ref.save(str(tmp_path / "ref"))
    from_ref = CrossEncoder(tmp_path / "ref", device="cpu")
    assert type(from_ref.activation_fn) is type(ours.activation_fn)
    np.testing.assert_allclose(from_ref.predict(PAIRS), expected, atol=1e-5, rtol=0)


def test_saved_activation_is_restored_on_both_sides(folders, tmp_path):
    logits_model = CrossEncoder(folders[1], activation_fn=torch.nn.Identity(), max_length=20, device="cpu")
    logits_model.save(tmp_path / "logits")
    ours = CrossEncoder(tmp_path / "logits", device="cpu")
    ref = st_ce.CrossEncoder(str(tmp_path / "logits"), device="cpu")
    assert isinstance(ours.activation_fn, torch.nn.Identity) and isinstance(
        ref.activation_fn, torch.nn.Identity
    )
    assert ours.max_length == 20 == ref.max_seq_length
    scores = ours.predict(PAIRS)
    assert scores.min() < 0 or scores.max() > 1  # logits, not probabilities
    np.testing.assert_allclose(scores, ref.predict(PAIRS), atol=1e-5, rtol=0)
    # reference v4/v5 folders record the activation in config.json only
    config = json.loads((tmp_path / "logits" / "config.json").read_text())
    assert config["sentence_transformers"]["activation_fn"] == "torch.nn.modules.linear.Identity"
    for name in ("modules.json", "config_sentence_transformers.json", "sentence_bert_config.json"):
        (tmp_path / "logits" / name).unlink()
    assert isinstance(CrossEncoder(tmp_path / "logits", device="cpu").activation_fn, torch.nn.Identity)


def test_untrusted_activation_path_falls_back_to_the_default(folders, tmp_path, caplog):
    model = CrossEncoder(folders[1], device="cpu")
    model.save(tmp_path / "m")
    config_path = tmp_path / "m" / "config_sentence_transformers.json"
    config = json.loads(config_path.read_text())
    config["activation_fn"] = "somepackage.activations.Custom"
    config_path.write_text(json.dumps(config))
    with caplog.at_level(logging.WARNING):
        loaded = CrossEncoder(tmp_path / "m", device="cpu")
    assert isinstance(loaded.activation_fn, torch.nn.Sigmoid)
    assert "trust_remote_code" in caplog.text


def test_base_model_gets_a_new_head(tiny_hf_folder):
    model = CrossEncoder(tiny_hf_folder, num_labels=2, device="cpu")
    assert model.num_labels == 2 and isinstance(model.activation_fn, torch.nn.Identity)
    assert model.predict(PAIRS[:3]).shape == (3, 2)


def test_bare_names_are_cross_encoder_hub_ids(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError, match="cross-encoder/no-such-reranker-xyz"):
        CrossEncoder("no-such-reranker-xyz", cache_folder=str(tmp_path), local_files_only=True)


# --- bad input ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (None, "got None"),
        ("just one string", "got a str"),
        ([("a", "b"), ("a", "b", "c")], "index 1 has 3 elements"),
        ([("a", "b"), ("only one",)], "index 1 has 1 elements"),
        (["a", "b", "c"], "has 3 elements"),
        ([("a", "b"), ("a", None)], "index 1 has NoneType .* at position 1"),
        ([("a", "b"), (3, "b")], "index 1 has int .* at position 0"),
        ([("a", "b"), "ab"], "index 1 is of type str"),
        ([("a", "b"), None], "index 1 is of type NoneType"),
        (42, "got a int"),
    ],
)
def test_bad_pairs_raise_invalid_input(models, inputs, message):
    with pytest.raises(InvalidInputError, match=message):
        models[1][0].predict(inputs)


def test_bad_rank_arguments(models):
    ours = models[1][0]
    with pytest.raises(InvalidInputError, match="index 2 is of type NoneType"):
        ours.rank(QUERY, ["a", "b", None])
    with pytest.raises(InvalidInputError, match="query as a string"):
        ours.rank(None, DOCS)
    with pytest.raises(InvalidInputError, match="list of strings"):
        ours.rank(QUERY, "not a list")
    with pytest.raises(InvalidInputError, match="top_k"):
        ours.rank(QUERY, DOCS, top_k=-1)
    with pytest.raises(ValueError, match=r"valid: .*'batch_size'"):
        ours.predict(PAIRS, batch=4)
    assert isinstance(InvalidInputError("x"), ValueError)
