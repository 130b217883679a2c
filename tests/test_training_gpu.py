"""Mixed-precision training on CUDA: fp16 with loss scaling and bf16 autocast (skipped without a GPU)."""

from __future__ import annotations

import math

import pytest
import torch
from torch.utils.data import DataLoader

from conftest import _write_tiny_bert
from sentencekit import InputExample, SentenceTransformerTrainer, SentenceTransformerTrainingArguments
from sentencekit.losses import CoSENTLoss
from training_support import max_difference, tiny_bi_model, toy_pairs, weights

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_trainer_mixed_precision_on_cuda(tmp_path, precision):
    model = tiny_bi_model(_write_tiny_bert(tmp_path / "tiny", seed=41)).to("cuda")
    before = weights(model)
    args = SentenceTransformerTrainingArguments(
        str(tmp_path / "out"),
        num_train_epochs=2,
        per_device_train_batch_size=4,
        learning_rate=1e-3,
        save_strategy="steps",
        save_steps=3,
        disable_tqdm=True,
        **{precision: True},
    )
    state = SentenceTransformerTrainer(model, args, toy_pairs(16), loss=CoSENTLoss(model)).train()
    losses = [entry["loss"] for entry in state.log_history if "loss" in entry]
    assert state.global_step == 8 and all(math.isfinite(v) for v in losses)
    assert max_difference(weights(model), before) > 1e-4
    saved = torch.load(tmp_path / "out" / "checkpoint-6" / "training_state.pt", weights_only=False)
    assert (saved["scaler"] is not None) == (precision == "fp16")


def test_fit_use_amp_on_cuda(tmp_path):
    model = tiny_bi_model(_write_tiny_bert(tmp_path / "tiny", seed=42)).to("cuda")
    before = weights(model)
    data = toy_pairs(16)
    examples = [
        InputExample(texts=[a, b], label=s)
        for a, b, s in zip(data["sentence1"], data["sentence2"], data["score"], strict=True)
    ]
    model.fit(
        [(DataLoader(examples, batch_size=4), CoSENTLoss(model))],
        warmup_steps=1,
        optimizer_params={"lr": 1e-3},
        use_amp=True,
        show_progress_bar=False,
    )
    assert max_difference(weights(model), before) > 1e-4
