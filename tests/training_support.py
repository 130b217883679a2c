"""Shared pieces of the training tests: tiny models, toy data, weight comparison, and a run script.

Run as a script, it trains a tiny model with the trainer (optionally killing itself with SIGKILL after a
given step, or resuming from the latest checkpoint) and saves the final weights: the kill-and-resume test
runs it in subprocesses.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import SHORT_TEXTS

SENTENCES = [t for t in SHORT_TEXTS if t] + [
    "the quick brown fox jumps over the lazy dog",
    "a small dog is running in the street",
    "a woman rides a blue car",
    "the child eats pasta with a fork",
    "a cat plays with a red guitar",
    "two men are walking to the green car",
    "a large horse walks on the street",
]


def toy_pairs(rows: int = 24) -> dict[str, list]:
    """STS-like rows: ``sentence1``, ``sentence2`` and a ``score`` in [0, 1], deterministic."""
    n = len(SENTENCES)
    first, second, scores = [], [], []
    for i in range(rows):
        a, b = SENTENCES[i % n], SENTENCES[(i * 7 + 3) % n]
        first.append(a)
        second.append(b)
        scores.append(1.0 if a == b else round(((i * 37) % 11) / 10, 2))
    return {"sentence1": first, "sentence2": second, "score": scores}


def tiny_bi_model(folder: Path, dropout: bool = True):
    """A SentenceTransformer (Transformer + mean Pooling) over the tiny BERT in ``folder``, on CPU."""
    from sentencekit import SentenceTransformer
    from sentencekit.models import Pooling, Transformer

    model = SentenceTransformer(modules=[Transformer(folder), Pooling(32)], device="cpu")
    if not dropout:
        for module in model.modules():
            if isinstance(module, nn.Dropout):
                module.p = 0.0
    return model


def trainer_args(tmp_path: Path, **overrides):
    """Trainer arguments for a quick test run (1 epoch, batches of 4, no checkpoints), with ``overrides``."""
    from sentencekit import SentenceTransformerTrainingArguments

    values = {
        "output_dir": str(tmp_path / "out"),
        "num_train_epochs": 1,
        "per_device_train_batch_size": 4,
        "learning_rate": 1e-3,
        "save_strategy": "no",
        "disable_tqdm": True,
    }
    return SentenceTransformerTrainingArguments(**{**values, **overrides})


def weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached CPU copy of the model's state dict."""
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def max_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """Largest absolute difference between two state dicts with the same keys."""
    assert a.keys() == b.keys()
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


class CountSteps:
    """A trainer callback counting the optimizer steps taken in this process."""

    def __init__(self) -> None:
        self.steps = 0

    def on_step_end(self, state, model) -> None:
        self.steps += 1


class KillAt:
    """A trainer callback that kills its own process with SIGKILL after optimizer step ``step``."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, state, model) -> None:
        if state.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


def run_trainer(
    model_folder: Path, output: Path, kill_at: int | None, resume: bool, weights_out: Path
) -> None:
    """Train the tiny model 2 epochs (dropout on, checkpoints every 3 steps); save its final weights."""
    from sentencekit import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentencekit.losses import CoSENTLoss

    torch.set_num_threads(1)
    model = tiny_bi_model(model_folder)
    args = SentenceTransformerTrainingArguments(
        output_dir=str(output),
        num_train_epochs=2,
        per_device_train_batch_size=4,
        learning_rate=1e-3,
        warmup_ratio=0.1,
        seed=7,
        save_steps=3,
        disable_tqdm=True,
    )
    counter = CountSteps()
    callbacks = [counter, *([KillAt(kill_at)] if kill_at is not None else [])]
    trainer = SentenceTransformerTrainer(
        model, args, train_dataset=toy_pairs(30), loss=CoSENTLoss(model), callbacks=callbacks
    )
    state = trainer.train(resume_from_checkpoint=True if resume else None)
    torch.save(weights(model), weights_out)
    print(f"steps run here: {counter.steps}, global step: {state.global_step}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-folder", type=Path, required=True)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--kill-at", type=int)
    parser.add_argument("--resume", action="store_true")
    ns = parser.parse_args()
    run_trainer(ns.model_folder, ns.output, ns.kill_at, ns.resume, ns.weights)
