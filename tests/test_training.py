"""The training loop through its front doors: schedules, accumulation, clipping, best model, checkpoints,
fit() with InputExample, the cross-encoder, the model card."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch.utils.data import DataLoader

from conftest import _write_tiny_bert
from sentencekit import (
    InputExample,
    SentenceTransformer,
    SentenceTransformerTrainer,
    SentenceTransformerTrainingArguments,
)
from sentencekit.evaluation import SentenceEvaluator
from sentencekit.losses import CoSENTLoss, CosineSimilarityLoss
from sentencekit.training.schedules import SCHEDULES, LearningRateFactor, schedule_name
from training_support import max_difference, tiny_bi_model, toy_pairs, trainer_args, weights


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory, one_torch_thread):
    return _write_tiny_bert(tmp_path_factory.mktemp("train_tiny"), seed=3)


@pytest.fixture(scope="module")
def base_model(tiny_folder):
    return tiny_bi_model(tiny_folder)


@pytest.fixture
def model(base_model):
    return copy.deepcopy(base_model)


def _examples(rows: int = 24) -> list[InputExample]:
    data = toy_pairs(rows)
    return [
        InputExample(texts=[a, b], label=s)
        for a, b, s in zip(data["sentence1"], data["sentence2"], data["score"], strict=True)
    ]


# --- schedules --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SCHEDULES)
def test_schedules_follow_the_reference_curves(name):
    import transformers

    reference = {
        "constantlr": lambda opt: transformers.get_constant_schedule(opt),
        "warmupconstant": lambda opt: transformers.get_constant_schedule_with_warmup(opt, 5),
        "warmuplinear": lambda opt: transformers.get_linear_schedule_with_warmup(opt, 5, 30),
        "warmupcosine": lambda opt: transformers.get_cosine_schedule_with_warmup(opt, 5, 30),
        "warmupcosinewithhardrestarts": lambda opt: (
            transformers.get_cosine_with_hard_restarts_schedule_with_warmup(opt, 5, 30)
        ),
    }[name]
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    expected = reference(optimizer).lr_lambdas[0]
    ours = LearningRateFactor(name, warmup_steps=5, total_steps=30)
    curve = [ours(step) for step in range(35)]
    assert curve == pytest.approx([expected(step) for step in range(35)], abs=1e-12)
    if name == "warmuplinear":
        assert curve[0] == 0 and curve[5] == 1 and curve[30] == 0 and curve[17] == pytest.approx(0.52)


def test_schedule_names_accept_fit_and_trainer_spellings():
    assert schedule_name("WarmupLinear") == "warmuplinear"
    assert schedule_name("cosine") == "warmupcosine"
    with pytest.raises(ValueError, match="warmupcosinewithhardrestarts"):
        schedule_name("exponential")


def test_trainer_learning_rate_follows_warmup_ratio(model, tmp_path):
    seen = []

    class Record:
        def on_log(self, state, logs):
            seen.append(logs["learning_rate"])

    args = trainer_args(tmp_path, warmup_ratio=0.5, logging_steps=1, lr_scheduler_type="linear")
    SentenceTransformerTrainer(
        model, args, toy_pairs(16), loss=CoSENTLoss(model), callbacks=[Record()]
    ).train()
    # 4 steps, 2 of warm-up; the rate logged after step s is the one for step s + 1
    assert seen == pytest.approx([5e-4, 1e-3, 5e-4, 0.0])


# --- the optimizer step -----------------------------------------------------------------------------------


def test_gradient_accumulation_equals_one_larger_batch(tiny_folder, tmp_path):
    runs = {}
    for batch, accumulation in ((8, 1), (4, 2)):
        model = tiny_bi_model(tiny_folder, dropout=False)
        args = trainer_args(
            tmp_path,
            per_device_train_batch_size=batch,
            gradient_accumulation_steps=accumulation,
            learning_rate=1e-2,
            max_grad_norm=0.0,
        )
        state = SentenceTransformerTrainer(
            model, args, toy_pairs(24), loss=CosineSimilarityLoss(model)
        ).train()
        assert state.global_step == 3
        runs[batch] = weights(model)
    start = weights(tiny_bi_model(tiny_folder))
    assert max_difference(runs[8], start) > 1e-3  # it trained
    assert max_difference(runs[8], runs[4]) < 1e-5


def _sgd_step_size(tiny_folder, max_grad_norm: float) -> float:
    model = tiny_bi_model(tiny_folder, dropout=False)
    before = weights(model)
    loader = DataLoader(_examples(8), batch_size=8)
    model.fit(
        [(loader, CosineSimilarityLoss(model))],
        scheduler="constantlr",
        optimizer_class=torch.optim.SGD,
        optimizer_params={"lr": 1.0},
        weight_decay=0.0,
        max_grad_norm=max_grad_norm,
        show_progress_bar=False,
    )
    after = weights(model)
    return math.sqrt(sum(float(((after[k] - before[k]) ** 2).sum()) for k in before))


def test_gradient_clipping_bounds_the_update(tiny_folder):
    unclipped = _sgd_step_size(tiny_folder, 0)
    assert unclipped > 0.02
    assert _sgd_step_size(tiny_folder, 0.01) == pytest.approx(0.01, rel=1e-3)


def _fit_adamw(tiny_folder, optimizer_params: dict) -> tuple[dict, torch.optim.Optimizer]:
    model = tiny_bi_model(tiny_folder, dropout=False)
    seen: list[torch.optim.Optimizer] = []

    class Spy(torch.optim.AdamW):
        def __init__(self, params, **kwargs):
            super().__init__(params, **kwargs)
            seen.append(self)

    loader = DataLoader(_examples(16), batch_size=4)
    model.fit(
        [(loader, CosineSimilarityLoss(model))],
        epochs=2,
        warmup_steps=2,
        optimizer_class=Spy,
        optimizer_params={"lr": 1e-2, **optimizer_params},
        show_progress_bar=False,
    )
    return weights(model), seen[0]


def test_adamw_uses_the_fused_kernel_with_the_same_result(tiny_folder):
    from sentencekit.training.loop import optimizer_options

    params = [{"params": [torch.nn.Parameter(torch.zeros(2))]}]
    assert optimizer_options(torch.optim.AdamW, {"lr": 1e-3}, params) == {"lr": 1e-3, "fused": True}
    assert optimizer_options(torch.optim.AdamW, {"foreach": False}, params) == {"foreach": False}
    assert optimizer_options(torch.optim.SGD, {"lr": 1.0}, params) == {"lr": 1.0}
    assert optimizer_options(torch.optim.AdamW, {}, [{"params": []}]) == {}

    # a subclass (like the Spy) is not fused by default: only Adam and AdamW themselves are
    fused, fused_optimizer = _fit_adamw(tiny_folder, {"fused": True})
    loop, loop_optimizer = _fit_adamw(tiny_folder, {"foreach": False})
    assert fused_optimizer.defaults["fused"] and not loop_optimizer.defaults["fused"]
    start = weights(tiny_bi_model(tiny_folder))
    assert max_difference(fused, start) > 1e-2  # 8 steps at lr 1e-2 moved the weights
    assert max_difference(fused, loop) < 1e-5


# --- fit() ------------------------------------------------------------------------------------------------


def _train_mse(model: SentenceTransformer, rows: int = 24) -> float:
    data = toy_pairs(rows)
    a = model.encode(data["sentence1"], convert_to_tensor=True)
    b = model.encode(data["sentence2"], convert_to_tensor=True)
    cos = torch.nn.functional.cosine_similarity(a, b)
    return float(((cos - torch.tensor(data["score"])) ** 2).mean())


def test_fit_with_input_examples_learns_and_saves_with_a_model_card(model, tmp_path):
    before = _train_mse(model)
    loader = DataLoader(_examples(), shuffle=True, batch_size=4, generator=torch.Generator().manual_seed(0))
    out = tmp_path / "fitted"
    model.fit(
        train_objectives=[(loader, CosineSimilarityLoss(model))],
        epochs=4,
        warmup_steps=2,
        optimizer_params={"lr": 2e-3},
        output_path=str(out),
        show_progress_bar=False,
    )
    assert _train_mse(model) < 0.7 * before
    reloaded = SentenceTransformer(str(out), device="cpu")
    assert max_difference(weights(reloaded), weights(model)) == 0.0
    card = (out / "README.md").read_text()
    assert "CosineSimilarityLoss" in card and "| objective 0 | 24 |" in card and "warmup_steps" in card
    assert "24 optimizer steps over 4 epoch(s)" in card


class ScriptedEvaluator(SentenceEvaluator):
    """Returns the given scores in turn and remembers the model's weights at each call."""

    def __init__(self, scores: list[float]) -> None:
        super().__init__(name="scripted")
        self.scores = list(scores)
        self.snapshots: list[dict[str, torch.Tensor]] = []
        self.calls: list[tuple[int, int]] = []

    def __call__(self, model, output_path=None, epoch=-1, steps=-1):
        self.snapshots.append(weights(model))
        self.calls.append((epoch, steps))
        self.primary_metric = "score"
        return self.prefix_name_to_metrics({"score": self.scores[len(self.snapshots) - 1]}, self.name)


def test_fit_saves_the_best_model_by_the_primary_metric(model, tmp_path):
    evaluator = ScriptedEvaluator([0.2, 0.9, 0.5, 0.1])
    seen = []
    out = tmp_path / "best"
    model.fit(
        [(DataLoader(_examples(24), batch_size=4), CoSENTLoss(model))],
        evaluator=evaluator,
        evaluation_steps=2,
        warmup_steps=0,
        optimizer_params={"lr": 1e-3},
        output_path=str(out),
        callback=lambda score, epoch, steps: seen.append((score, steps)),
        show_progress_bar=False,
    )
    # 6 steps: evaluations after steps 2, 4, 6 and at the end of the epoch
    assert evaluator.calls == [(0, 2), (0, 4), (0, 6), (0, -1)]
    assert seen == [(0.2, 2), (0.9, 4), (0.5, 6), (0.1, 6)]
    saved = weights(SentenceTransformer(str(out), device="cpu"))
    assert max_difference(saved, evaluator.snapshots[1]) == 0.0
    assert max_difference(saved, weights(model)) > 0
    assert "scripted_score | 0.9000" in (out / "README.md").read_text()
    assert (out / "eval").is_dir()


# --- the trainer ------------------------------------------------------------------------------------------


def test_checkpoints_respect_save_total_limit(model, tmp_path):
    args = trainer_args(tmp_path, save_strategy="steps", save_steps=1, save_total_limit=2, max_steps=5)
    SentenceTransformerTrainer(model, args, toy_pairs(24), loss=CoSENTLoss(model)).train()
    folders = sorted(p.name for p in (tmp_path / "out").iterdir() if p.name.startswith("checkpoint"))
    assert folders == ["checkpoint-4", "checkpoint-5"]
    last = tmp_path / "out" / "checkpoint-5"
    assert (last / "training_state.pt").is_file() and (last / "trainer_state.json").is_file()
    assert max_difference(weights(SentenceTransformer(str(last), device="cpu")), weights(model)) == 0.0


def test_load_best_model_at_end_with_eval_loss(model, tmp_path):
    args = trainer_args(
        tmp_path, eval_strategy="steps", eval_steps=1, load_best_model_at_end=True, learning_rate=5e-2
    )
    trainer = SentenceTransformerTrainer(
        model, args, toy_pairs(16), eval_dataset=toy_pairs(8), loss=CosineSimilarityLoss(model)
    )
    state = trainer.train()
    losses = [entry["eval_loss"] for entry in state.log_history if "eval_loss" in entry]
    assert len(losses) == 4 and state.best_metric == min(losses)
    best = weights(SentenceTransformer(str(tmp_path / "out" / "best-model"), device="cpu"))
    assert max_difference(best, weights(model)) == 0.0


def test_model_card_after_trainer_and_save(model, tmp_path):
    from sentencekit.evaluation import EmbeddingSimilarityEvaluator

    data = toy_pairs(8)
    evaluator = EmbeddingSimilarityEvaluator(data["sentence1"], data["sentence2"], data["score"], name="toy")
    args = trainer_args(tmp_path, eval_strategy="epoch")
    trainer = SentenceTransformerTrainer(
        model, args, toy_pairs(20), loss=CoSENTLoss(model), evaluator=evaluator
    )
    trainer.train()
    assert set(trainer.evaluate()) >= {"eval_toy_spearman_cosine", "eval_toy_pearson_cosine"}
    trainer.save_model(tmp_path / "final")
    card = (tmp_path / "final" / "README.md").read_text()
    from sentencekit import __version__

    for expected in (
        f"sentencekit {__version__}",
        "CoSENTLoss",
        "| train | 20 | `sentence1`, `sentence2` | `score` |",
        "| learning_rate | `0.001` |",
        "eval_toy_spearman_cosine",
        "5 optimizer steps over 1 epoch(s)",
    ):
        assert expected in card


def test_arguments_reject_unknown_names_and_bad_values(tmp_path):
    with pytest.raises(TypeError, match=r"\['learnin_rate'\].*learning_rate"):
        SentenceTransformerTrainingArguments(output_dir=str(tmp_path), learnin_rate=1e-3)
    with pytest.raises(ValueError, match="batch_sampler"):
        SentenceTransformerTrainingArguments(output_dir=str(tmp_path), batch_sampler="shuffle")
    with pytest.raises(ValueError, match="eval_strategy"):
        SentenceTransformerTrainingArguments(output_dir=str(tmp_path), load_best_model_at_end=True)
    assert SentenceTransformerTrainingArguments(str(tmp_path), num_train_epochs=2.0).num_train_epochs == 2


# --- cross-encoders ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cross_folder(tmp_path_factory, one_torch_thread):
    from test_cross_encoder import write_tiny_cross_encoder

    return write_tiny_cross_encoder(tmp_path_factory.mktemp("train_ce"), 1, seed=5)


def _bce(model, data) -> float:
    pairs = list(zip(data["sentence1"], data["sentence2"], strict=True))
    logits = torch.as_tensor(model.predict(pairs, activation_fn=torch.nn.Identity()))
    target = (torch.tensor(data["score"]) > 0.5).float()
    return float(torch.nn.functional.binary_cross_entropy_with_logits(logits, target))


def test_cross_encoder_fit_and_trainer_learn(cross_folder, tmp_path):
    from sentencekit.cross_encoder import CrossEncoder
    from sentencekit.cross_encoder.losses import BinaryCrossEntropyLoss
    from sentencekit.training import CrossEncoderTrainer, CrossEncoderTrainingArguments

    data = toy_pairs(16)
    data["label"] = [float(s > 0.5) for s in data.pop("score")]
    labelled = {**data, "score": data["label"]}
    model = CrossEncoder(cross_folder, device="cpu")
    before = _bce(model, labelled)
    examples = [
        InputExample(texts=[a, b], label=y)
        for a, b, y in zip(data["sentence1"], data["sentence2"], data["label"], strict=True)
    ]
    model.fit(
        DataLoader(examples, batch_size=4, shuffle=True, generator=torch.Generator().manual_seed(1)),
        epochs=3,
        warmup_steps=1,
        optimizer_params={"lr": 1e-3},
        output_path=str(tmp_path / "ce_fit"),
        show_progress_bar=False,
    )
    after_fit = _bce(model, labelled)
    assert after_fit < before
    reloaded = CrossEncoder(tmp_path / "ce_fit", device="cpu")
    assert _bce(reloaded, labelled) == pytest.approx(after_fit, abs=1e-6)
    assert "BCEWithLogitsLoss" in (tmp_path / "ce_fit" / "README.md").read_text()

    model = CrossEncoder(cross_folder, device="cpu")
    args = CrossEncoderTrainingArguments(
        str(tmp_path / "ce_out"),
        num_train_epochs=3,
        per_device_train_batch_size=4,
        learning_rate=1e-3,
        save_strategy="no",
        disable_tqdm=True,
    )
    CrossEncoderTrainer(model, args, train_dataset=data, loss=BinaryCrossEntropyLoss(model)).train()
    assert _bce(model, labelled) < before


# --- precision, losses with parameters, several fit objectives --------------------------------------------


def test_bf16_autocast_on_cpu_and_fp16_needs_cuda(model, tmp_path):
    before = weights(model)
    state = SentenceTransformerTrainer(
        model, trainer_args(tmp_path, bf16=True), toy_pairs(8), loss=CoSENTLoss(model)
    ).train()
    losses = [entry["loss"] for entry in state.log_history if "loss" in entry]
    assert losses and all(math.isfinite(v) for v in losses)
    assert max_difference(weights(model), before) > 1e-4
    assert next(model.parameters()).dtype == torch.float32  # autocast leaves the weights in fp32
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="fp16 training needs a CUDA device"):
            SentenceTransformerTrainer(
                model, trainer_args(tmp_path, fp16=True), toy_pairs(8), loss=CoSENTLoss(model)
            ).train()


class HeadLoss(torch.nn.Module):
    """A loss with parameters of its own (like SoftmaxLoss): a linear head on the two embeddings."""

    def __init__(self, model) -> None:
        super().__init__()
        self.model = model
        self.head = torch.nn.Linear(64, 1)

    def forward(self, features, labels):
        a, b = (self.model(f)["sentence_embedding"] for f in features)
        return torch.nn.functional.mse_loss(self.head(torch.cat([a, b], dim=1)).squeeze(1), labels.float())


def test_loss_parameters_are_trained_and_checkpointed(model, tmp_path):
    loss = HeadLoss(model)
    head_before = loss.head.weight.detach().clone()
    args = trainer_args(tmp_path, save_strategy="steps", save_steps=2, max_steps=2)
    SentenceTransformerTrainer(model, args, toy_pairs(8), loss=loss).train()
    assert not torch.equal(loss.head.weight, head_before)
    saved = torch.load(tmp_path / "out" / "checkpoint-2" / "training_state.pt", weights_only=False)["losses"][
        0
    ]
    assert sorted(saved) == ["head.bias", "head.weight"]  # the head only: the model is saved as a folder
    assert torch.equal(saved["head.weight"], loss.head.weight)


def test_empty_loader_is_an_error(model):
    with pytest.raises(ValueError, match="have no batches"):
        model.fit([(DataLoader([], batch_size=4), CoSENTLoss(model))], show_progress_bar=False)


def test_fit_round_robin_over_several_objectives(model):
    calls = []

    class Counting(torch.nn.Module):
        def __init__(self, name):
            super().__init__()
            self.name, self.loss = name, CosineSimilarityLoss(model)

        def forward(self, features, labels):
            calls.append(self.name)
            return self.loss(features, labels)

    small = DataLoader(_examples(8), batch_size=4)  # 2 batches
    large = DataLoader(_examples(12), batch_size=4)  # 3 batches
    objectives = [(small, Counting("small")), (large, Counting("large"))]
    model.fit(objectives, warmup_steps=0, show_progress_bar=False)
    assert calls == ["small", "large"] * 2
    calls.clear()
    model.fit(objectives, steps_per_epoch=3, warmup_steps=0, show_progress_bar=False)
    assert calls == ["small", "large"] * 3  # the small loader starts over within the epoch
