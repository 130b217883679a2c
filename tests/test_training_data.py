"""The trainer's data side: dataset forms, several datasets, batch samplers, prompts, bad data."""

from __future__ import annotations

import copy
from collections import Counter

import pytest
import torch

from conftest import _write_tiny_bert
from sentencekit import InvalidInputError, SentenceTransformerTrainer
from sentencekit.losses import CoSENTLoss, CosineSimilarityLoss, MultipleNegativesRankingLoss
from sentencekit.training.collate import BiEncoderCollator
from sentencekit.training.columns import as_datasets, resolve_per_column
from sentencekit.training.samplers import label_grouped_batches, no_duplicate_batches, shuffled_batches
from sentencekit.training.streams import epoch_order
from training_support import max_difference, tiny_bi_model, toy_pairs, trainer_args, weights


@pytest.fixture(scope="module")
def base_model(tmp_path_factory, one_torch_thread):
    return tiny_bi_model(_write_tiny_bert(tmp_path_factory.mktemp("data_tiny"), seed=21))


@pytest.fixture
def model(base_model):
    return copy.deepcopy(base_model)


class Recording(torch.nn.Module):
    """Wraps a loss and records the name of each batch it sees and its first column's texts."""

    def __init__(self, loss: torch.nn.Module, name: str, log: list) -> None:
        super().__init__()
        self.loss, self.name, self.log = loss, name, log

    def forward(self, features, labels):
        tokenizer = self.loss.model.tokenizer
        texts = tokenizer.batch_decode(features[0]["input_ids"], skip_special_tokens=True)
        self.log.append((self.name, texts, None if labels is None else labels.tolist()))
        return self.loss(features, labels)


# --- dataset forms ----------------------------------------------------------------------------------------


def _rows(columns: dict[str, list]) -> list[dict]:
    names = list(columns)
    return [dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)]


def test_dict_list_and_datasets_forms_train_identically(base_model, tmp_path):
    data = toy_pairs(16)
    forms = {"dict of lists": data, "list of dicts": _rows(data)}
    try:
        import datasets

        forms["datasets.Dataset"] = datasets.Dataset.from_dict(data)
    except ImportError:
        pass
    results = {}
    for name, form in forms.items():
        model = copy.deepcopy(base_model)
        SentenceTransformerTrainer(model, trainer_args(tmp_path), form, loss=CoSENTLoss(model)).train()
        results[name] = weights(model)
    first = results.pop("dict of lists")
    assert max_difference(first, weights(base_model)) > 1e-4
    for name, trained in results.items():
        assert max_difference(trained, first) == 0.0, name


def test_datasets_dataset_dict_is_several_datasets():
    datasets = pytest.importorskip("datasets")
    read = as_datasets(
        datasets.DatasetDict(
            {
                "sts": datasets.Dataset.from_dict(toy_pairs(8)),
                "pairs": datasets.Dataset.from_dict({"anchor": ["a", "b"], "positive": ["c", "d"]}),
            }
        )
    )
    assert list(read) == ["sts", "pairs"]
    assert read["sts"].columns == ("sentence1", "sentence2") and read["sts"].label_column == "score"
    assert read["pairs"].labels is None and len(read["pairs"]) == 2


def test_bad_data_is_reported_with_column_and_row(model, tmp_path):
    data = toy_pairs(8)
    data["sentence2"][5] = None
    with pytest.raises(
        InvalidInputError, match=r"column 'sentence2', row 5: expected a string, got NoneType"
    ):
        SentenceTransformerTrainer(model, trainer_args(tmp_path), data, loss=CoSENTLoss(model))
    with pytest.raises(InvalidInputError, match="differ in length"):
        SentenceTransformerTrainer(
            model, trainer_args(tmp_path), {"a": ["x", "y"], "b": ["z"]}, loss=CoSENTLoss(model)
        )
    with pytest.raises(ValueError, match=r"keyed \['other'\] but the datasets are \['one', 'two'\]"):
        SentenceTransformerTrainer(
            model,
            trainer_args(tmp_path),
            {"one": toy_pairs(8), "two": toy_pairs(8)},
            loss={"other": CoSENTLoss(model)},
        )


# --- several datasets -------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["round_robin", "proportional"])
def test_several_datasets_take_turns(model, tmp_path, mode):
    log: list = []
    small, large = toy_pairs(8), toy_pairs(16)  # 2 and 4 batches of 4
    losses = {
        "small": Recording(CoSENTLoss(model), "small", log),
        "large": Recording(CosineSimilarityLoss(model), "large", log),
    }
    args = trainer_args(tmp_path, multi_dataset_batch_sampler=mode)
    state = SentenceTransformerTrainer(model, args, {"small": small, "large": large}, loss=losses).train()
    names = [name for name, _, _ in log]
    if mode == "round_robin":
        assert names == ["small", "large", "small", "large"]
    else:
        assert Counter(names) == {"small": 2, "large": 4} and names != sorted(names)
    assert state.global_step == len(names)


def test_epoch_order_proportional_is_seeded():
    assert epoch_order([3, 1], "round_robin", None, 0, 0) == [0, 1]
    assert epoch_order([3, 1], "round_robin", 3, 0, 0) == [0, 1, 0, 1, 0, 1]
    first = epoch_order([5, 3], "proportional", None, 42, 0)
    assert first == epoch_order([5, 3], "proportional", None, 42, 0)
    assert sorted(first) == [0] * 5 + [1] * 3
    assert any(epoch_order([5, 3], "proportional", None, 42, e) != first for e in range(1, 4))


# --- batch samplers ---------------------------------------------------------------------------------------


def test_shuffled_batches_cover_every_row_once():
    generator = torch.Generator().manual_seed(0)
    batches = shuffled_batches(10, 4, generator)
    assert [len(b) for b in batches] == [4, 4, 2]
    assert sorted(i for b in batches for i in b) == list(range(10))
    assert shuffled_batches(10, 4, None, drop_last=True) == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_no_duplicates_sampler_keeps_texts_unique_per_batch(model, tmp_path):
    anchors = ["q1", "q1", "q1", "q2", "q2", "q3", "q4", "q5", "q6", "q7"]
    positives = ["p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8", "p9", "p1"]
    rows = list(zip(anchors, positives, strict=True))
    batches = no_duplicate_batches(rows, 4, torch.Generator().manual_seed(3))
    assert sorted(i for b in batches for i in b) == list(range(10))
    for batch in batches:
        texts = [t for i in batch for t in rows[i]]
        assert len(texts) == len(set(texts))

    log: list = []
    data = {
        "anchor": [f"{w} dog" for w in ("a", "a", "a", "the", "the", "the", "red", "blue")],
        "positive": [
            f"{w} cat" for w in ("small", "large", "quick", "brown", "green", "lazy", "blue", "red")
        ],
    }
    args = trainer_args(tmp_path, batch_sampler="no_duplicates")
    loss = Recording(MultipleNegativesRankingLoss(model), "mnrl", log)
    SentenceTransformerTrainer(model, args, data, loss=loss).train()
    for _, anchors_seen, _ in log:
        assert len(anchors_seen) == len(set(anchors_seen))


def test_group_by_label_sampler_mixes_labels_in_pairs():
    labels = [0] * 9 + [1] * 6 + [2] * 4 + [3]
    batches = label_grouped_batches(labels, 6, torch.Generator().manual_seed(0))
    used = [i for b in batches for i in b]
    assert len(used) == len(set(used)) and 19 not in used  # label 3 has a single row
    for batch in batches:
        counts = Counter(labels[i] for i in batch)
        assert len(counts) >= 2 and min(counts.values()) >= 2
    with pytest.raises(ValueError, match="even batch size"):
        label_grouped_batches(labels, 5, None)
    with pytest.raises(ValueError, match="at least 2 labels"):
        label_grouped_batches([0, 0, 0, 1], 4, None)


def test_trainer_with_group_by_label(model, tmp_path):
    log: list = []
    data = {"text": [f"{w} dog" for w in ("a", "the", "red", "blue", "small", "large", "quick", "lazy")]}
    data["label"] = [0, 0, 0, 0, 1, 1, 1, 1]
    args = trainer_args(tmp_path, batch_sampler="group_by_label", num_train_epochs=2)

    class Spread(torch.nn.Module):  # any loss over one column with labels: the spread of embeddings
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, features, labels):
            return self.model(features[0])["sentence_embedding"].var(dim=0).mean()

    SentenceTransformerTrainer(model, args, data, loss=Recording(Spread(model), "spread", log)).train()
    assert len(log) == 4
    for _, _, labels in log:
        assert sorted(Counter(labels).values()) == [2, 2]


# --- prompts ----------------------------------------------------------------------------------------------


def test_prompts_resolve_per_column_and_dataset():
    columns = ["query", "doc"]
    assert resolve_per_column("p: ", "train", columns, ["train"]) == ["p: ", "p: "]
    assert resolve_per_column({"query": "query: "}, "train", columns, ["train"]) == ["query: ", None]
    by_dataset = {"a": "A: ", "b": {"doc": "passage: "}}
    assert resolve_per_column(by_dataset, "a", columns, ["a", "b"]) == ["A: ", "A: "]
    assert resolve_per_column(by_dataset, "b", columns, ["a", "b"]) == [None, "passage: "]
    assert resolve_per_column(None, "a", columns, ["a"]) == [None, None]


def test_prompts_are_prepended_and_measured(model, tmp_path):
    collate = BiEncoderCollator(model, ["query: ", None])
    features, labels = collate([["a dog"], ["a cat"]], [1.0])
    assert torch.equal(features[0]["input_ids"], model.tokenize(["query: a dog"])["input_ids"])
    assert features[0]["prompt_length"] == model.transformer.prompt_length("query: ")
    assert "prompt_length" not in features[1] and labels.tolist() == [1.0]

    log: list = []
    args = trainer_args(tmp_path, prompts={"sentence1": "query: "})
    SentenceTransformerTrainer(model, args, toy_pairs(8), loss=Recording(CoSENTLoss(model), "p", log)).train()
    assert all(
        text.startswith("query : ") or text.startswith("query: ") for _, texts, _ in log for text in texts
    )
