"""SparseEncoder against the reference's: the same sparse vectors, helpers, folders and errors.

Both models load one tiny random ``BertForMaskedLM`` (the ``tiny_mlm_folder`` fixture), so every difference
is a difference in the code around it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from sentencekit import SparseEncoder
from sentencekit.modules import MLMTransformer, SpladePooling

st = pytest.importorskip("sentence_transformers")
from sentence_transformers.base.modules import Transformer as RefTransformer  # noqa: E402
from sentence_transformers.sparse_encoder.modules import SpladePooling as RefSpladePooling  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _dense(x: torch.Tensor) -> torch.Tensor:
    return x.to_dense() if x.is_sparse else x


@pytest.fixture(scope="module")
def ours(tiny_mlm_folder: Path) -> SparseEncoder:
    return SparseEncoder(str(tiny_mlm_folder), device="cpu")


@pytest.fixture(scope="module")
def ref(tiny_mlm_folder: Path):
    return st.SparseEncoder(str(tiny_mlm_folder), device="cpu")


def _pair(folder: Path, **pooling):
    mine = SparseEncoder(modules=[MLMTransformer(str(folder)), SpladePooling(**pooling)], device="cpu")
    theirs = st.SparseEncoder(
        modules=[RefTransformer(str(folder), transformer_task="fill-mask"), RefSpladePooling(**pooling)],
        device="cpu",
    )
    return mine, theirs


def test_vectors_equal_the_references(ours, ref, sample_texts):
    a, b = ours.encode(sample_texts), ref.encode(sample_texts)
    assert a.is_sparse and a.is_coalesced() and a.shape == b.shape == (len(sample_texts), 193)
    assert torch.equal(a.to_dense() != 0, b.to_dense() != 0)
    assert (a.to_dense() - b.to_dense()).abs().max() <= 1e-6
    assert (a.values() > 0).all(), "only the non-zero weights are stored"
    small = ours.encode(sample_texts, batch_size=2)
    assert (small.to_dense() - b.to_dense()).abs().max() <= 1e-6


@pytest.mark.parametrize(
    "pooling",
    [
        {"pooling_strategy": "sum"},
        {"pooling_strategy": "max", "activation_function": "log1p_relu"},
        {"pooling_strategy": "sum", "activation_function": "log1p_relu", "chunk_size": 3},
        {"pooling_strategy": "max", "chunk_size": 2},
    ],
    ids=["sum", "max-log1p_relu", "sum-log1p_relu-chunks", "max-chunks"],
)
def test_pooling_options_equal_the_references(tiny_mlm_folder, sample_texts, pooling):
    mine, theirs = _pair(tiny_mlm_folder, **pooling)
    diff = (mine.encode(sample_texts).to_dense() - theirs.encode(sample_texts).to_dense()).abs().max()
    assert diff <= 1e-5


def test_pooling_gradients_equal_the_references():
    """In training, max pooling weighs the largest logit; the gradient reaches the same logits."""
    torch.manual_seed(0)
    logits = torch.randn(3, 7, 50)
    mask = torch.tensor([[1] * 7, [1] * 4 + [0] * 3, [1] + [0] * 6])
    for strategy in ("max", "sum"):
        grads = []
        for module in (SpladePooling(strategy), RefSpladePooling(strategy)):
            module.train()
            x = logits.clone().requires_grad_(True)
            out = module({"token_embeddings": x, "attention_mask": mask})["sentence_embedding"]
            (out * torch.linspace(0.5, 2.0, 50)).sum().backward()
            grads.append((out.detach(), x.grad))
        assert (grads[0][0] - grads[1][0]).abs().max() <= 1e-6
        assert (grads[0][1] - grads[1][1]).abs().max() <= 1e-6
        assert grads[0][1][2, 1:].abs().sum() == 0, "padding gets no gradient"


def test_output_forms(ours, ref, sample_texts):
    expected = ref.encode(sample_texts).to_dense()
    dense = ours.encode(sample_texts, convert_to_sparse_tensor=False)
    assert not dense.is_sparse and (dense - expected).abs().max() <= 1e-6
    rows = ours.encode(sample_texts, convert_to_tensor=False)
    assert isinstance(rows, list) and len(rows) == len(sample_texts)
    assert all(r.is_sparse and r.ndim == 1 for r in rows)
    assert (torch.stack([r.to_dense() for r in rows]) - expected).abs().max() <= 1e-6
    one = ours.encode(sample_texts[0])
    assert one.is_sparse and one.shape == (193,)
    assert (one.to_dense() - expected[0]).abs().max() <= 1e-6
    empty = ours.encode([])
    assert empty.shape == (0, 193) and empty.is_sparse


def test_repeated_texts_get_the_same_rows(ours):
    texts = ["a red car", "hello world", "a red car", "a red car"]
    out = ours.encode(texts).to_dense()
    assert torch.equal(out[0], out[2]) and torch.equal(out[0], out[3])
    assert not torch.equal(out[0], out[1])


@pytest.mark.parametrize("k", [1, 5, 40, 500])
def test_max_active_dims_keeps_the_largest(ours, ref, sample_texts, k):
    a = ours.encode(sample_texts, max_active_dims=k).to_dense()
    b = ref.encode(sample_texts, max_active_dims=k).to_dense()
    assert (a - b).abs().max() <= 1e-6
    assert ((a != 0).sum(dim=1) <= k).all()


def test_max_active_dims_from_the_constructor_and_the_folder(tiny_mlm_folder, tmp_path, sample_texts):
    model = SparseEncoder(str(tiny_mlm_folder), device="cpu", max_active_dims=4)
    assert ((model.encode(sample_texts).to_dense() != 0).sum(dim=1) <= 4).all()
    model.save(tmp_path / "m")
    settings = json.loads((tmp_path / "m" / "config_sentence_transformers.json").read_text())
    assert settings["max_active_dims"] == 4 and settings["model_type"] == "SparseEncoder"
    assert SparseEncoder(str(tmp_path / "m"), device="cpu").max_active_dims == 4
    assert st.SparseEncoder(str(tmp_path / "m"), device="cpu").max_active_dims == 4


def test_prompts_and_roles(tiny_mlm_folder, sample_texts):
    prompts = {"query": "query: ", "document": "passage: "}
    mine = SparseEncoder(str(tiny_mlm_folder), device="cpu", prompts=prompts)
    theirs = st.SparseEncoder(str(tiny_mlm_folder), device="cpu", prompts=prompts)
    for method in ("encode_query", "encode_document"):
        a = getattr(mine, method)(sample_texts).to_dense()
        b = getattr(theirs, method)(sample_texts).to_dense()
        assert (a - b).abs().max() <= 1e-6
    assert not torch.equal(mine.encode_query(["a red car"]).to_dense(), mine.encode(["a red car"]).to_dense())


def test_similarity_decode_sparsity_intersection(ours, ref, sample_texts):
    a, b = ours.encode(sample_texts), ref.encode(sample_texts)
    assert ours.similarity_fn_name == ref.similarity_fn_name == "dot"
    assert (ours.similarity(a, a) - ref.similarity(b, b)).abs().max() <= 1e-4
    for k in (None, 3):
        mine, theirs = ours.decode(a, top_k=k), ref.decode(b, top_k=k)
        assert [[t for t, _ in row] for row in mine] == [[t for t, _ in row] for row in theirs]
        pairs = [
            (x, y) for r, s in zip(mine, theirs, strict=True) for (_, x), (_, y) in zip(r, s, strict=True)
        ]
        assert all(abs(x - y) <= 1e-6 for x, y in pairs)
    # a dense row decodes as the sparse vector of the same text (encoded alone: equal up to float rounding,
    # which differs between batch shapes on some CPUs)
    dense_row = ours.decode(a.to_dense()[0], top_k=2)
    alone = ours.decode(ours.encode(sample_texts[0]), top_k=2)
    assert [t for t, _ in dense_row] == [t for t, _ in alone]
    assert all(abs(x - y) <= 1e-6 for (_, x), (_, y) in zip(dense_row, alone, strict=True))
    mine_s, theirs_s = ours.sparsity(a), ref.sparsity(b)
    assert abs(mine_s["active_dims"] - theirs_s["active_dims"]) <= 1e-4
    assert abs(mine_s["sparsity_ratio"] - theirs_s["sparsity_ratio"]) <= 1e-6
    assert ours.sparsity(a.to_dense()[0]) == ours.sparsity(ours.encode(sample_texts[0]))
    rows = torch.tensor([0, 1, 2])
    mine_i = ours.intersection(a.to_dense()[0], a.index_select(0, rows))
    theirs_i = ref.intersection(b.to_dense()[0].to_sparse(), b.index_select(0, rows))
    assert mine_i.is_sparse and (mine_i.to_dense() - theirs_i.to_dense()).abs().max() <= 1e-6


def test_dimension_and_chunk_size(ours):
    assert ours.get_sentence_embedding_dimension() == ours.get_embedding_dimension() == 193
    ours.splade_pooling_chunk_size = 4
    assert ours[1].chunk_size == ours.splade_pooling_chunk_size == 4
    ours.splade_pooling_chunk_size = None


def test_our_folder_loads_in_the_reference_and_back(ours, ref, sample_texts, tmp_path):
    ours.save(tmp_path / "ours")
    modules = json.loads((tmp_path / "ours" / "modules.json").read_text())
    assert [m["type"].rsplit(".", 1)[-1] for m in modules] == ["MLMTransformer", "SpladePooling"]
    expected = ref.encode(sample_texts).to_dense()
    for model in (
        st.SparseEncoder(str(tmp_path / "ours"), device="cpu"),
        SparseEncoder(str(tmp_path / "ours")),
    ):
        assert (model.encode(sample_texts).to_dense().cpu() - expected).abs().max() <= 1e-6


def test_reference_folders_load_v6_and_v5(ref, sample_texts, tmp_path):
    ref.save(str(tmp_path / "v6"))  # Transformer with transformer_task "fill-mask"
    model = SparseEncoder(str(tmp_path / "v6"), device="cpu")
    assert isinstance(model[0], MLMTransformer) and isinstance(model[1], SpladePooling)
    expected = ref.encode(sample_texts).to_dense()
    assert (model.encode(sample_texts).to_dense() - expected).abs().max() <= 1e-6
    # the 5.x layout: an MLMTransformer entry, a legacy transformer config, word_embedding_dimension
    v5 = tmp_path / "v5"
    shutil.copytree(tmp_path / "v6", v5)
    entries = json.loads((v5 / "modules.json").read_text())
    entries[0]["type"] = "sentence_transformers.sparse_encoder.models.MLMTransformer"
    entries[1]["type"] = "sentence_transformers.sparse_encoder.models.SpladePooling"
    (v5 / "modules.json").write_text(json.dumps(entries))
    (v5 / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 64, "do_lower_case": False}))
    pooling = {"pooling_strategy": "max", "activation_function": "relu", "word_embedding_dimension": 193}
    (v5 / "1_SpladePooling" / "config.json").write_text(json.dumps(pooling))
    model = SparseEncoder(str(v5), device="cpu")
    assert (model.encode(sample_texts).to_dense() - expected).abs().max() <= 1e-6


def test_plain_folders_become_splade_or_csr(tiny_mlm_folder, tiny_hf_folder, caplog):
    """As in the reference: a masked-language model becomes SPLADE, any other encoder CSR (untrained)."""
    from sentencekit.modules import Pooling, SparseAutoEncoder, Transformer

    splade = SparseEncoder(str(tiny_mlm_folder), device="cpu")
    assert [type(m) for m in splade] == [MLMTransformer, SpladePooling]
    with caplog.at_level("WARNING"):
        csr = SparseEncoder(str(tiny_hf_folder), device="cpu")
    assert [type(m) for m in csr] == [Transformer, Pooling, SparseAutoEncoder]
    assert "CSRLoss" in caplog.text
    reference = st.SparseEncoder(str(tiny_hf_folder), device="cpu")
    assert [type(m).__name__ for m in reference] == [type(m).__name__ for m in csr]
    assert csr.get_sentence_embedding_dimension() == reference.get_embedding_dimension() == 128


def test_bad_input_is_refused_clearly(ours, tiny_mlm_folder):
    with pytest.raises(ValueError, match="torch backend"):
        SparseEncoder(str(tiny_mlm_folder), backend="onnx")
    with pytest.raises(ValueError, match="max_active_dims"):
        ours.encode(["x"], max_active_dims=0)
    with pytest.raises(ValueError, match="max_active_dims"):
        SparseEncoder(str(tiny_mlm_folder), max_active_dims=-3)
    with pytest.raises(ValueError, match="start_multi_process_pool"):
        ours.encode(["x"], pool={"processes": []})
    with pytest.raises(ValueError, match="unknown keyword"):
        ours.encode(["x"], normalize_embeddings=True)
    with pytest.raises(ValueError, match="batch_size"):
        ours.encode(["x"], batch_size=0)
    with pytest.raises(ValueError, match="top_k"):
        ours.decode(ours.encode("x"), top_k=0)
    with pytest.raises(ValueError, match="1-D"):
        ours.intersection(ours.encode(["x", "y"]).to_dense(), ours.encode(["x"]))
    with pytest.raises(ValueError, match="pooling_strategy"):
        SpladePooling("mean")
    with pytest.raises(ValueError, match="activation_function"):
        SpladePooling("max", activation_function="gelu")


def _tiny_mlm(folder: Path, tiny_mlm_folder: Path, model_type: str) -> Path:
    """A tiny random masked-language model of another architecture, with the WordPiece tokenizer."""
    import transformers

    shutil.copytree(tiny_mlm_folder, folder)
    for name in ("config.json", "model.safetensors"):
        (folder / name).unlink()
    config = transformers.AutoConfig.for_model(
        model_type,
        vocab_size=193,
        hidden_size=32,
        dim=32,
        hidden_dim=64,
        n_layers=2,
        n_heads=4,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=80,
        type_vocab_size=1,
        pad_token_id=0,
    )
    torch.manual_seed(3)
    transformers.AutoModelForMaskedLM.from_config(config).save_pretrained(str(folder))
    return folder


@pytest.mark.parametrize("model_type", ["bert", "distilbert", "roberta", "mpnet"])
def test_fused_inference_equals_the_two_modules(
    tiny_mlm_folder, tmp_path, sample_texts, monkeypatch, model_type
):
    """FusedSplade (head on real tokens only, a few at a time) gives the modules' vectors, for every head."""
    from sentencekit.modules import fused_splade as fused

    folder = (
        tiny_mlm_folder
        if model_type == "bert"
        else _tiny_mlm(tmp_path / model_type, tiny_mlm_folder, model_type)
    )
    model = SparseEncoder(str(folder), device="cpu")
    assert isinstance(fused.fused_modules(list(model))[0], fused.FusedSplade)
    monkeypatch.setattr(fused, "CHUNK_TOKENS", 7)  # groups of texts, and texts longer than a chunk
    fast = model.encode(sample_texts, convert_to_sparse_tensor=False)
    with torch.inference_mode():
        features = model.tokenize(sample_texts)
        for module in model:
            features = module(features)
    assert (fast - features["sentence_embedding"]).abs().max() <= 1e-5
    reference = st.SparseEncoder(str(folder), device="cpu").encode(sample_texts).to_dense()
    assert (fast - reference).abs().max() <= 1e-5


def test_unbind_rows_keeps_every_row_including_empty_ones():
    from sentencekit.encoding.sparse_rows import split_rows, unbind_rows

    dense = torch.tensor([[0.0, 1.5, 0.0], [0.0, 0.0, 0.0], [2.0, 0.0, -1.0], [0.0, 0.0, 0.0]])
    rows = unbind_rows(dense.to_sparse())
    assert len(rows) == 4 and all(r.is_sparse and r.shape == (3,) for r in rows)
    assert torch.equal(torch.stack([r.to_dense() for r in rows]), dense)
    assert [r._nnz() for r in rows] == [1, 0, 2, 0]
    pieces = split_rows(dense.to_sparse(), [1, 3])
    assert [p.shape for p in pieces] == [(1, 3), (3, 3)]
    assert torch.equal(torch.cat([p.to_dense() for p in pieces]), dense)


def test_fused_gives_a_text_without_tokens_no_weight(ours):
    """A row whose attention mask is all zeros gets a zero vector, even where the head's bias is positive."""
    from sentencekit.modules import fused_splade as fused

    step = fused.FusedSplade(ours[0], ours[1])
    projection = ours[0].auto_model.get_output_embeddings()
    with torch.no_grad():
        saved = projection.bias.clone()
        projection.bias.fill_(5.0)
        features = ours.tokenize(["a red car", "hello world"])
        features["attention_mask"][1] = 0
        try:
            out = step(features)["sentence_embedding"]
        finally:
            projection.bias.copy_(saved)
    assert (out[1] == 0).all() and (out[0] > 0).all()


def test_a_process_pool_gives_the_same_sparse_vectors(ours, sample_texts):
    """encode(pool=...) and encode(device=[...]) spread the texts over processes; the vectors are the same."""
    texts = [*sample_texts, *(f"{t} number {i}" for i, t in enumerate(sample_texts * 3))]
    expected = ours.encode(texts).to_dense()
    pool = ours.start_multi_process_pool(["cpu", "cpu"])
    try:
        pooled = ours.encode(texts, pool=pool, chunk_size=5)
        limited = ours.encode(texts, pool=pool, max_active_dims=3, convert_to_sparse_tensor=False)
    finally:
        ours.stop_multi_process_pool(pool)
    assert pooled.is_sparse and pooled.is_coalesced() and pooled.shape == expected.shape
    assert (pooled.to_dense() - expected).abs().max() <= 1e-6
    assert not limited.is_sparse and ((limited != 0).sum(dim=1) <= 3).all()
    assert (
        limited - ours.encode(texts, max_active_dims=3, convert_to_sparse_tensor=False)
    ).abs().max() <= 1e-6
    single = ours.encode(texts[:4], device=["cpu"], convert_to_tensor=False)
    assert len(single) == 4 and all(r.is_sparse for r in single)
    assert (torch.stack([r.to_dense() for r in single]) - expected[:4]).abs().max() <= 1e-6


def test_cli_encode_writes_a_sparse_models_weights_as_json_lines(ours, tmp_path, sample_texts, capsys):
    """``sentencekit encode`` on a folder SparseEncoder saved: one line of non-zero weights per text."""
    from sentencekit.cli.main import main

    ours.save(tmp_path / "splade")
    texts = [t for t in sample_texts if t.strip()]
    source = tmp_path / "docs.txt"
    source.write_text("\n".join(texts) + "\n", encoding="utf-8")
    assert main(["encode", str(source), "--model", str(tmp_path / "splade")]) == 0
    assert "sparse embeddings" in capsys.readouterr().out
    lines = [json.loads(line) for line in (tmp_path / "docs.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [line["text"] for line in lines] == texts
    expected = ours.encode(texts).to_dense()
    for row, line in zip(expected, lines, strict=True):
        weights = line["embedding"]["values"]
        assert weights == sorted(weights, reverse=True) and len(weights) == int((row != 0).sum())
        got = torch.zeros_like(row)
        got[line["embedding"]["indices"]] = torch.tensor(weights)
        assert (got - row).abs().max() <= 1e-6
        assert line["embedding"]["tokens"] == ours.tokenizer.convert_ids_to_tokens(
            line["embedding"]["indices"]
        )
    for extra, message in (
        (["--output", str(tmp_path / "x.npy")], "jsonl"),
        (["--normalize"], "--normalize"),
    ):
        assert main(["encode", str(source), "--model", str(tmp_path / "splade"), *extra]) != 0
        assert message in capsys.readouterr().err


def test_cli_encode_recognizes_a_sparse_model_fetched_during_the_call(ours, tmp_path, monkeypatch, capsys):
    """A sparse model not on disk before the call is recognized once loading has fetched it."""
    from sentencekit.cli import encode as encode_command
    from sentencekit.cli.main import main

    ours.save(tmp_path / "splade")
    source = tmp_path / "docs.txt"
    source.write_text("a red car\nhello world\n", encoding="utf-8")
    monkeypatch.setattr(encode_command, "_is_sparse_model", lambda name: False)  # as if it were not on disk
    assert main(["encode", str(source), "--model", str(tmp_path / "splade")]) == 0
    assert "sparse embeddings" in capsys.readouterr().out
    assert len((tmp_path / "docs.jsonl").read_text(encoding="utf-8").splitlines()) == 2
