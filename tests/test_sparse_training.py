"""SparseEncoderTrainer: a few steps on real data lower the loss; the model saves and loads in both libraries.

The runs train tiny random models on real text: the SPLADE model (``tiny_mlm_folder``) on SciFact claims with
the abstracts that support them (SpladeLoss over SparseMultipleNegativesRankingLoss) and on STSb pairs with
their scores (SpladeLoss over SparseCoSENTLoss, all columns documents), and a CSR model (``tiny_hf_folder``
with a SparseAutoEncoder) on the SciFact pairs (CSRLoss).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import torch

from conftest import DATA_DIR, read_sts
from sentencekit import SentenceTransformerTrainingArguments
from sentencekit.modules import MLMTransformer, SpladePooling
from sentencekit.readers import read_beir
from sentencekit.sparse_encoder import SparseEncoder, losses
from sentencekit.sparse_encoder.callbacks import SpladeRegularizerWeightSchedulerCallback
from sentencekit.sparse_encoder.trainer import SparseEncoderTrainer
from sentencekit.sparse_encoder.training_args import SparseEncoderTrainingArguments
from test_sparse_losses import without_dropout

st = pytest.importorskip("sentence_transformers")

ROWS = 32
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _tiny_splade(folder: Path) -> SparseEncoder:
    model = SparseEncoder(modules=[MLMTransformer(str(folder)), SpladePooling("max")], device="cpu")
    return without_dropout(model)


def _tiny_csr(folder: Path) -> SparseEncoder:
    """BERT, mean pooling and a SparseAutoEncoder keeping 8 of 128 latents."""
    from sentencekit.modules import Pooling, SparseAutoEncoder, Transformer

    autoencoder = SparseAutoEncoder(input_dim=32, hidden_dim=128, k=8, k_aux=16)
    model = SparseEncoder(modules=[Transformer(str(folder)), Pooling(32, "mean"), autoencoder], device="cpu")
    return without_dropout(model)


def scifact_pairs(rows: int = ROWS) -> dict[str, list[str]]:
    """(claim, supporting abstract) pairs from SciFact's training judgments, one per claim."""
    folder = DATA_DIR / "scifact" / "beir"
    if not folder.is_dir():
        pytest.skip(f"{folder} is missing (the shared benchmark data is not checked out beside the project)")
    corpus, queries, relevant = read_beir(folder, split="train")
    query_ids = sorted(relevant, key=int)[:rows]
    return {
        "query": [queries[q] for q in query_ids],
        "passage": [corpus[sorted(relevant[q])[0]] for q in query_ids],
    }


def sts_pairs(rows: int = ROWS) -> dict[str, list[Any]]:
    """STSb training pairs with their 0-5 scores scaled to [0, 1]."""
    data = read_sts("train")[:rows]
    return {
        "sentence1": [a for a, _, _ in data],
        "sentence2": [b for _, b, _ in data],
        "score": [s / 5 for _, _, s in data],
    }


def _args(tmp_path: Path, **overrides: Any) -> SparseEncoderTrainingArguments:
    values = {
        "output_dir": str(tmp_path / "out"),
        "num_train_epochs": 2,
        "per_device_train_batch_size": 8,
        "learning_rate": 2e-3,
        "save_strategy": "no",
        "logging_steps": 1,
        "disable_tqdm": True,
    }
    return SparseEncoderTrainingArguments(**{**values, **overrides})


def _total(loss: Any, data: dict[str, list[Any]], model: SparseEncoder) -> float:
    """The loss (all terms, at the regularizers' full weights) on the whole dataset as one batch."""
    columns = [c for c in data if c != "score"]
    labels = torch.tensor(data["score"]) if "score" in data else None
    with torch.no_grad():
        terms = loss([model.tokenize(data[c]) for c in columns], labels)
    return sum(t.item() for t in terms.values())


RUNS = {
    "scifact-csr": (scifact_pairs, lambda m: losses.CSRLoss(m, losses.SparseMultipleNegativesRankingLoss(m))),
    "scifact-mnrl": (
        scifact_pairs,
        lambda m: losses.SpladeLoss(
            m,
            losses.SparseMultipleNegativesRankingLoss(m),
            document_regularizer_weight=3e-3,
            query_regularizer_weight=5e-3,
        ),
    ),
    "stsb-cosent": (
        sts_pairs,
        lambda m: losses.SpladeLoss(
            m,
            losses.SparseCoSENTLoss(m),
            document_regularizer_weight=1e-3,
            use_document_regularizer_only=True,
        ),
    ),
}


@pytest.mark.parametrize("run", sorted(RUNS))
def test_training_lowers_the_loss_and_saves_a_model_both_libraries_load(
    tiny_mlm_folder, tiny_hf_folder, tmp_path, run
):
    read, build_loss = RUNS[run]
    data = read()
    model = _tiny_csr(tiny_hf_folder) if run == "scifact-csr" else _tiny_splade(tiny_mlm_folder)
    loss = build_loss(model)
    before = _total(loss, data, model)
    trainer = SparseEncoderTrainer(model, _args(tmp_path), train_dataset=data, loss=loss)
    state = trainer.train()
    after = _total(loss, data, model)
    assert state.global_step == 8
    assert after < before, (before, after)

    if isinstance(loss, losses.SpladeLoss):  # its regularizer weights ramp from 0 to their values, logged
        logged = [entry["document_regularizer_weight"] for entry in state.log_history]
        assert (
            logged[0] == 0.0 and logged == sorted(logged) and logged[-1] == loss.document_regularizer_weight
        )
        assert loss.document_regularizer_weight == (3e-3 if run == "scifact-mnrl" else 1e-3)
        assert ("query_regularizer_weight" in state.log_history[-1]) == (run == "scifact-mnrl")
        # each term of the loss is logged next to their sum
        for entry in state.log_history:
            terms = [
                entry["base_loss"],
                entry["document_regularizer_loss"],
                entry.get("query_regularizer_loss", 0.0),
            ]
            assert abs(sum(terms) - entry["loss"]) <= 1e-4 * max(1.0, abs(entry["loss"]))
        assert ("query_regularizer_loss" in state.log_history[-1]) == (run == "scifact-mnrl")
    else:
        assert not any(isinstance(c, SpladeRegularizerWeightSchedulerCallback) for c in trainer.callbacks)

    texts = data[next(iter(data))][:6]
    model.eval()
    expected = model.encode(texts, convert_to_sparse_tensor=False)
    folder = tmp_path / "trained"
    trainer.save_model(folder)
    for loaded in (SparseEncoder(str(folder), device="cpu"), st.SparseEncoder(str(folder), device="cpu")):
        got = loaded.encode(texts, convert_to_sparse_tensor=False)
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
        assert loaded.similarity_fn_name == model.similarity_fn_name


def test_default_loss_and_weight_scheduler(tiny_mlm_folder, tmp_path, caplog):
    """As the reference: no loss -> SpladeLoss(SparseMNRL, 5e-5, 3e-5); one ramp per SpladeLoss, first."""
    model = _tiny_splade(tiny_mlm_folder)
    data = {"query": ["a man eats", "a dog runs"], "passage": ["a man is eating food", "the dog runs"]}
    with caplog.at_level(logging.INFO):
        trainer = SparseEncoderTrainer(model, _args(tmp_path), train_dataset=data)
    loss = trainer.losses["train"]
    assert isinstance(loss, losses.SpladeLoss)
    assert isinstance(loss.loss, losses.SparseMultipleNegativesRankingLoss)
    assert (loss.query_regularizer_weight, loss.document_regularizer_weight) == (5e-5, 3e-5)
    assert (
        "No loss given" in caplog.text and "without a SpladeRegularizerWeightSchedulerCallback" in caplog.text
    )
    (ramp,) = [c for c in trainer.callbacks if isinstance(c, SpladeRegularizerWeightSchedulerCallback)]
    assert ramp.loss is loss and trainer.callbacks[0] is ramp

    class Recorder:
        def on_log(self, state, logs) -> None:
            pass

    mine = SpladeRegularizerWeightSchedulerCallback(loss, "linear", warmup_ratio=0.5)
    caplog.clear()
    recorder = Recorder()
    trainer = SparseEncoderTrainer(
        model, _args(tmp_path), train_dataset=data, loss=loss, callbacks=[recorder, mine]
    )
    assert trainer.callbacks == [mine, recorder]
    assert "without a SpladeRegularizerWeightSchedulerCallback" not in caplog.text


@pytest.mark.parametrize(("kind", "ratio"), [("quadratic", 1 / 3), ("linear", 0.5), ("LINEAR", 1.0)])
def test_weight_schedule_equals_the_references(tiny_mlm_folder, kind, ratio):
    from sentence_transformers.sparse_encoder.callbacks import (
        SpladeRegularizerWeightSchedulerCallback as RefCallback,
    )
    from sentence_transformers.sparse_encoder.losses import SparseMultipleNegativesRankingLoss as RefMNRL
    from sentence_transformers.sparse_encoder.losses import SpladeLoss as RefSpladeLoss

    model = _tiny_splade(tiny_mlm_folder)
    ours = SpladeRegularizerWeightSchedulerCallback(
        losses.SpladeLoss(model, losses.SparseMultipleNegativesRankingLoss(model), 3e-5, 5e-5), kind, ratio
    )
    ref = RefCallback(RefSpladeLoss(model, RefMNRL(model), 3e-5, 5e-5), kind, ratio)
    total = 30
    ours.warmup_steps = ref.warmup_steps = max(1, int(total * ratio))
    for step in range(total):
        document, query = ours.weights_at(step)
        assert document == pytest.approx(ref._calculate_weight_value(step, 3e-5), abs=1e-15)
        assert query == pytest.approx(ref._calculate_weight_value(step, 5e-5), abs=1e-15)


def test_wrong_use_is_explained(tiny_mlm_folder, tmp_path):
    model = _tiny_splade(tiny_mlm_folder)
    data = {"query": ["a man eats", "a dog runs"], "passage": ["a man is eating food", "the dog runs"]}
    dense_args = SentenceTransformerTrainingArguments(str(tmp_path / "out"))
    with pytest.raises(ValueError, match="SparseEncoderTrainingArguments"):
        SparseEncoderTrainer(model, dense_args, train_dataset=data)
    with pytest.raises(TypeError, match="router_mappings"):  # a misspelt argument is named
        SparseEncoderTrainingArguments(str(tmp_path), router_mappings={"query": "query"})
    inner = losses.SparseMultipleNegativesRankingLoss(model)
    with pytest.raises(AttributeError, match="should not be used alone"):
        SparseEncoderTrainer(model, _args(tmp_path), train_dataset=data, loss=inner).train()
    splade = losses.SpladeLoss(model, inner, 3e-5, 5e-5)
    with pytest.raises(ValueError, match="SpladeLoss"):
        SpladeRegularizerWeightSchedulerCallback(inner)
    with pytest.raises(ValueError, match="scheduler_type"):
        SpladeRegularizerWeightSchedulerCallback(splade, "cubic")
    with pytest.raises(ValueError, match="warmup_ratio"):
        SpladeRegularizerWeightSchedulerCallback(splade, warmup_ratio=0.0)


def _inference_free(folder: Path) -> SparseEncoder:
    """An inference-free SPLADE model: a token-weight table for queries, the SPLADE model for passages."""
    from sentencekit.modules import Router, SparseStaticEmbedding

    document = MLMTransformer(str(folder))
    query = SparseStaticEmbedding(tokenizer=document.tokenizer)
    router = Router.for_query_document([query], [document, SpladePooling("max")])
    return without_dropout(SparseEncoder(modules=[router], device="cpu"))


def _train_inference_free(folder: Path, tmp_path: Path, **arguments: Any) -> dict[str, torch.Tensor]:
    """Train 8 steps on SciFact (query, passage) pairs; return how much each route's weights moved."""
    model = _inference_free(folder)
    router = model[0]
    query_table = router.sub_modules["query"][0].weight
    encoder = router.sub_modules["document"][0].auto_model.bert.embeddings.word_embeddings.weight
    before = {"query": query_table.detach().clone(), "document": encoder.detach().clone()}
    loss = losses.SpladeLoss(
        model, losses.SparseMultipleNegativesRankingLoss(model), document_regularizer_weight=3e-3
    )
    SparseEncoderTrainer(
        model, _args(tmp_path, **arguments), train_dataset=scifact_pairs(), loss=loss
    ).train()
    return {
        "query": (query_table.detach() - before["query"]).abs().max(),
        "document": (encoder.detach() - before["document"]).abs().max(),
    }


def test_router_mapping_trains_each_column_on_its_route(tiny_mlm_folder, tmp_path):
    """Queries go through the query table only with router_mapping; without it they take the default route."""
    routed = _train_inference_free(
        tiny_mlm_folder, tmp_path / "routed", router_mapping={"query": "query", "passage": "document"}
    )
    assert routed["query"] > 1e-4 and routed["document"] > 1e-4
    unrouted = _train_inference_free(tiny_mlm_folder, tmp_path / "unrouted")
    assert unrouted["query"] == 0 and unrouted["document"] > 1e-4
    per_dataset = {"train": {"query": "query", "passage": "document"}}
    assert (
        _train_inference_free(tiny_mlm_folder, tmp_path / "nested", router_mapping=per_dataset)["query"]
        > 1e-4
    )


def test_learning_rate_mapping_sets_a_rate_per_parameter(tiny_mlm_folder, tmp_path):
    routes = {"query": "query", "passage": "document"}
    frozen = _train_inference_free(
        tiny_mlm_folder,
        tmp_path / "frozen",
        router_mapping=routes,
        learning_rate_mapping={r"sub_modules\.query\.0\.weight": 0.0},
    )
    assert frozen["query"] == 0 and frozen["document"] > 1e-4
    with pytest.raises(ValueError, match="match no parameter"):
        _train_inference_free(
            tiny_mlm_folder, tmp_path / "bad", router_mapping=routes, learning_rate_mapping={"nope": 1e-3}
        )


def test_parameter_groups_follow_the_references_names(tiny_mlm_folder):
    """The names the patterns see are the reference trainer's (``model.`` + the model's parameter name)."""
    from sentencekit.training.loop import parameter_groups

    model = _inference_free(tiny_mlm_folder)
    groups = parameter_groups(model, [], 0.01, {r"^model\.0\.sub_modules\.query\.": 1e-3, r"LayerNorm": 7e-4})
    table = model[0].sub_modules["query"][0].weight
    fast = [g for g in groups if g.get("lr") == 1e-3]
    assert [p is table for g in fast for p in g["params"]] == [True]
    norms = [p for g in groups if g.get("lr") == 7e-4 for p in g["params"]]
    assert norms and all(g["weight_decay"] == 0.0 for g in groups if g.get("lr") == 7e-4)
    counted = sum(len(g["params"]) for g in groups)
    assert counted == sum(1 for p in model.parameters() if p.requires_grad)
    reference_names = {f"model.{n}" for n, _ in model.named_parameters()}
    assert "model.0.sub_modules.query.0.weight" in reference_names
