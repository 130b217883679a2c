"""The later bi-encoder losses: bad arguments and inputs are explained, and they train in the real loops."""

from __future__ import annotations

import copy

import pytest
import torch
from torch.utils.data import DataLoader

from conftest import _write_tiny_bert
from loss_cases import ANCHORS, NEGATIVES, POSITIVES, teacher_embeddings
from sentencekit import InputExample, InvalidInputError, SentenceTransformer, losses
from sentencekit.models import Pooling, Transformer
from training_support import SENTENCES, max_difference, toy_pairs, trainer_args, weights


@pytest.fixture(scope="module")
def base(tmp_path_factory, one_torch_thread) -> SentenceTransformer:
    folder = _write_tiny_bert(tmp_path_factory.mktemp("more_inputs_bert"), seed=6)
    return SentenceTransformer(modules=[Transformer(folder), Pooling(32)], device="cpu").eval()


@pytest.fixture
def model(base) -> SentenceTransformer:
    return copy.deepcopy(base)


def _columns(model: SentenceTransformer, count: int) -> list[dict[str, torch.Tensor]]:
    return [model.tokenize(texts) for texts in (ANCHORS, POSITIVES, NEGATIVES)[:count]]


# --- constructor arguments ---------------------------------------------------------------------------------


def test_bad_constructor_arguments_are_explained(base):
    guide = copy.deepcopy(base)
    bad = [
        (
            lambda: losses.CachedMultipleNegativesSymmetricRankingLoss(base, mini_batch_size=0),
            "mini_batch_size",
        ),
        (
            lambda: losses.CachedMultipleNegativesSymmetricRankingLoss(base, scale=0.0),
            "scale must be positive",
        ),
        (lambda: losses.CachedGISTEmbedLoss(base, guide, margin_strategy="soft"), "margin_strategy"),
        (lambda: losses.CachedGISTEmbedLoss(base, guide, temperature=0.0), "temperature"),
        (lambda: losses.CachedGISTEmbedLoss(base, guide, mini_batch_size=-4), "mini_batch_size"),
        (lambda: losses.CachedGISTEmbedLoss(base, torch.nn.Linear(2, 2)), "tokenizer"),
        (lambda: losses.MegaBatchMarginLoss(base, mini_batch_size=0), "mini_batch_size"),
        (
            lambda: losses.GlobalOrthogonalRegularizationLoss(base, mean_weight=0, second_moment_weight=None),
            "non-zero",
        ),
        (lambda: losses.GlobalOrthogonalRegularizationLoss(base, aggregation="max"), "aggregation"),
        (lambda: losses.EmbedDistillLoss(base, distance_metric="dot"), "distance_metric"),
        (lambda: losses.ContrastiveTensionLossInBatchNegatives(base, scale=0.0), "scale must be positive"),
        (lambda: losses.ContrastiveTensionDataLoader(SENTENCES, batch_size=10, pos_neg_ratio=4), "divisible"),
        (lambda: losses.ContrastiveTensionDataLoader(SENTENCES, batch_size=0), "batch_size"),
        (
            lambda: losses.ContrastiveTensionDataLoader(SENTENCES, batch_size=4, pos_neg_ratio=2.0),
            "pos_neg_ratio",
        ),
    ]
    for build, message in bad:
        with pytest.raises(ValueError, match=message):
            build()
    with pytest.raises(InvalidInputError, match="at least 15 sentences"):
        losses.ContrastiveTensionDataLoader(SENTENCES[:14], batch_size=8, pos_neg_ratio=8)


# --- batches that do not fit the loss -----------------------------------------------------------------------


def test_wrong_column_counts_are_explained(base):
    one, three = _columns(base, 1), _columns(base, 3)
    guide = copy.deepcopy(base)
    for loss in (
        losses.CachedMultipleNegativesSymmetricRankingLoss(base),
        losses.CachedGISTEmbedLoss(base, guide),
        losses.ContrastiveTensionLoss(base),
    ):
        with pytest.raises(InvalidInputError, match="column"):
            loss(one, None)
    for mini_batched in (True, False):
        with pytest.raises(InvalidInputError, match="exactly 2 text columns"):
            losses.MegaBatchMarginLoss(base, use_mini_batched_version=mini_batched)(three, None)
    with pytest.raises(InvalidInputError, match="takes 2 text column"):
        losses.ContrastiveTensionLoss(base)(three, None)


def test_embed_distill_label_problems_are_explained(base):
    loss = losses.EmbedDistillLoss(base)
    pair = _columns(base, 2)
    with pytest.raises(InvalidInputError, match=r"teacher\.encode"):
        loss(pair, None)
    with pytest.raises(InvalidInputError, match=r"\(batch, 2, teacher_dim\)"):
        loss(pair, torch.zeros(8, 3, 32))
    with pytest.raises(InvalidInputError, match="projection_dim"):
        loss(pair, torch.zeros(8, 16))
    with pytest.raises(InvalidInputError, match="2 teacher embedding columns for 1"):
        loss.compute_loss_from_embeddings([torch.zeros(8, 32)], [torch.zeros(8, 32)] * 2)


def test_contrastive_tension_label_count_is_checked(base):
    with pytest.raises(InvalidInputError, match="one label per example"):
        losses.ContrastiveTensionLoss(base)(_columns(base, 2), torch.ones(5))


# --- EmbedDistillLoss details -------------------------------------------------------------------------------


def test_embed_distill_mse_is_mse_loss_and_cosine_ignores_the_norm(base):
    pair, targets = _columns(base, 2), teacher_embeddings()
    with torch.no_grad():
        mse = losses.EmbedDistillLoss(base, distance_metric="mse")(pair, targets)
        assert mse.item() == pytest.approx(losses.MSELoss(base)(pair, targets).item(), abs=1e-7)
        embeddings = [base(f)["sentence_embedding"] for f in pair]
        cosine = losses.EmbedDistillLoss(base)
        assert cosine.compute_loss_from_embeddings(embeddings, [3 * e for e in embeddings]).item() == (
            pytest.approx(0.0, abs=1e-6)
        )


def test_embed_distill_projection_saves_and_loads(base, tmp_path):
    path = tmp_path / "projection.safetensors"
    with pytest.raises(ValueError, match="no projection to save"):
        losses.EmbedDistillLoss(base).save_projection(path)
    trained = losses.EmbedDistillLoss(base, projection_dim=16)
    trained.save_projection(path)
    fresh = losses.EmbedDistillLoss(base)
    fresh.load_projection(path)  # builds the layer
    assert fresh.projection_dim == 16 and fresh.projection is not None and trained.projection is not None
    assert torch.equal(fresh.projection.weight, trained.projection.weight)
    assert fresh.get_config_dict() == {"distance_metric": "cosine", "projection_dim": 16}
    with pytest.raises(ValueError, match="maps 32 -> 16"):
        losses.EmbedDistillLoss(base, projection_dim=8).load_projection(path)


# --- in the training loops ----------------------------------------------------------------------------------


def test_fit_trains_contrastive_tension_from_its_data_loader(model):
    torch.manual_seed(0)
    loader = losses.ContrastiveTensionDataLoader(SENTENCES * 2, batch_size=4, pos_neg_ratio=2)
    loss = losses.ContrastiveTensionLoss(model)
    before, copy_before = weights(model), weights(loss.model1)
    model.fit(train_objectives=[(loader, loss)], epochs=1, warmup_steps=0, show_progress_bar=False)
    assert max_difference(weights(model), before) > 0
    assert max_difference(weights(loss.model1), copy_before) > 0  # the copy is trained too
    assert loader.collate_fn is not None  # fit tokenizes the loader's InputExample batches


def test_dict_valued_loss_trains_and_evaluates_in_the_trainer(model, tmp_path):
    """GlobalOrthogonalRegularizationLoss returns named terms: the loop trains on, and reports, their sum."""
    from sentencekit import SentenceTransformerTrainer

    data = {k: v for k, v in toy_pairs(16).items() if k != "score"}
    loss = losses.GlobalOrthogonalRegularizationLoss(model)
    args = trainer_args(tmp_path, eval_strategy="epoch", learning_rate=1e-2)
    trainer = SentenceTransformerTrainer(model, args, data, eval_dataset=data, loss=loss)
    features = [model.tokenize(data["sentence1"]), model.tokenize(data["sentence2"])]
    with torch.no_grad():
        before = sum(loss(features, None).values()).item()
    state = trainer.train()
    eval_losses = [entry["eval_loss"] for entry in state.log_history if "eval_loss" in entry]
    assert eval_losses and eval_losses[-1] < before


def test_fit_with_input_examples_and_a_dict_valued_loss(model):
    examples = [InputExample(texts=[a, b]) for a, b in zip(ANCHORS, POSITIVES, strict=True)]
    loader = DataLoader(examples, batch_size=4, shuffle=False)
    before = weights(model)
    model.fit(
        train_objectives=[(loader, losses.GlobalOrthogonalRegularizationLoss(model, mean_weight=None))],
        epochs=1,
        warmup_steps=0,
        show_progress_bar=False,
    )
    assert max_difference(weights(model), before) > 0


def test_contrastive_tension_labels_from_a_static_embedding_batch(tiny_hf_folder):
    """A StaticEmbedding batch is flat (ids and offsets): identical texts are still found."""
    from tokenizers import Tokenizer

    from sentencekit.models import StaticEmbedding

    tokenizer = Tokenizer.from_file(str(tiny_hf_folder / "tokenizer.json"))
    table = torch.randn(tokenizer.get_vocab_size(), 8, generator=torch.Generator().manual_seed(0))
    static = SentenceTransformer(modules=[StaticEmbedding(tokenizer, embedding_weights=table)], device="cpu")
    second = [ANCHORS[0], POSITIVES[1], ANCHORS[2], NEGATIVES[3]]
    features = [static.tokenize(ANCHORS[:4]), static.tokenize(second)]
    loss = losses.ContrastiveTensionLoss(static)
    with torch.no_grad():
        derived = loss(features, None)
        given = loss(features, torch.tensor([1, 0, 1, 0]))
        assert derived.item() == pytest.approx(given.item(), abs=1e-6)
        assert derived.item() != pytest.approx(loss(features, torch.zeros(4)).item(), abs=1e-3)
