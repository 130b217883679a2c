"""CrossEncoderTrainer feeds the listwise losses: a column of document lists, a list of labels per row."""

from __future__ import annotations

import pytest
import torch

from sentencekit import CrossEncoder, CrossEncoderTrainer, SentenceTransformerTrainer
from sentencekit.cross_encoder import losses
from sentencekit.errors import InvalidInputError
from sentencekit.training.collate import CrossEncoderCollator
from sentencekit.training.columns import as_column_data
from training_support import tiny_bi_model, trainer_args, weights

LISTS = {
    "query": ["what is a cat", "where is paris", "how do dogs run", "who plays guitar"],
    "docs": [
        ["a cat is a small pet", "paris is in france", "cats purr"],
        ["paris is in france", "a red car"],
        ["dogs run on four legs", "a dog is running", "the sky", "music"],
        ["a woman plays guitar", "a man eats food"],
    ],
    "labels": [[1.0, 0.0, 1.0], [1.0, 0.0], [1.0, 1.0, 0.0, 0.0], [1.0, 0.0]],
}


@pytest.fixture
def reranker(tiny_hf_folder):
    torch.manual_seed(0)
    return CrossEncoder(tiny_hf_folder, num_labels=1, device="cpu", backend="torch")


@pytest.mark.parametrize("make_loss", [losses.ListNetLoss, losses.LambdaLoss, losses.PListMLELoss])
def test_listwise_losses_train_through_the_trainer(reranker, tmp_path, make_loss):
    before = weights(reranker)
    args = trainer_args(tmp_path, per_device_train_batch_size=2, max_steps=2, seed=3)
    trainer = CrossEncoderTrainer(reranker, args, LISTS, loss=make_loss(reranker))
    trainer.train()
    changed = [name for name, value in weights(reranker).items() if not torch.equal(value, before[name])]
    assert "model.classifier.weight" in changed and len(changed) > 10


def test_the_collated_batch_is_what_the_loss_takes_directly(reranker):
    data = as_column_data(LISTS)
    assert data.list_columns == ("docs",)
    collate = CrossEncoderCollator(["", "doc: "], label_lists=True)
    inputs, labels = collate(*data.take([1, 2]))
    assert inputs == [LISTS["query"][1:3], [["doc: " + d for d in docs] for docs in LISTS["docs"][1:3]]]
    assert [label.tolist() for label in labels] == LISTS["labels"][1:3]  # one tensor per row, own length
    loss = losses.ListNetLoss(reranker)
    direct = loss(inputs, [torch.tensor(row) for row in LISTS["labels"][1:3]])
    assert loss(inputs, labels).item() == pytest.approx(direct.item(), abs=1e-6)


def test_no_duplicates_reads_the_documents_of_a_list():
    data = as_column_data(LISTS)
    assert data.row_texts()[1] == ("where is paris", "paris is in france", "a red car")


def test_list_data_errors_name_the_row(tiny_hf_folder, tmp_path):
    bad_labels = {**LISTS, "labels": [[1.0, 0.0, 1.0], [1.0], [1.0, 1.0, 0.0, 0.0], [1.0, 0.0]]}
    with pytest.raises(
        InvalidInputError, match=r"row 1: with a list of 2 documents the label must be a list"
    ):
        as_column_data(bad_labels)
    mixed = {**LISTS, "docs": [LISTS["docs"][0], "paris is in france", *LISTS["docs"][2:]]}
    with pytest.raises(InvalidInputError, match="row 1: expected a list of documents like row 0"):
        as_column_data(mixed)
    empty = {**LISTS, "docs": [[], *LISTS["docs"][1:]], "labels": [[], *LISTS["labels"][1:]]}
    with pytest.raises(InvalidInputError, match="must hold one or more strings"):
        as_column_data(empty)
    model = tiny_bi_model(tiny_hf_folder)
    with pytest.raises(InvalidInputError, match="only the cross-encoder's listwise losses read"):
        SentenceTransformerTrainer(model, trainer_args(tmp_path), LISTS)
