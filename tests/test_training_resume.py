"""Resuming: a run killed mid-epoch (SIGKILL) and resumed ends with the weights of an uninterrupted run."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from conftest import _write_tiny_bert
from sentencekit import InputExample
from sentencekit.losses import CoSENTLoss
from training_support import max_difference, run_trainer, tiny_bi_model, toy_pairs, weights

SCRIPT = Path(__file__).resolve().parent / "training_support.py"


def _start(folder: Path, output: Path, weights_out: Path, *extra: str) -> subprocess.Popen:
    command = [sys.executable, str(SCRIPT), "--model-folder", str(folder), "--output", str(output)]
    return subprocess.Popen(
        [*command, "--weights", str(weights_out), *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def test_killed_trainer_run_resumes_to_the_same_weights(tmp_path, one_torch_thread):
    folder = _write_tiny_bert(tmp_path / "tiny", seed=11)
    # 30 rows in batches of 4: 8 steps per epoch, 16 in all; checkpoints every 3 steps
    killed = _start(folder, tmp_path / "run", tmp_path / "never.pt", "--kill-at", "7")
    run_trainer(folder, tmp_path / "full", None, False, tmp_path / "full.pt")  # meanwhile, uninterrupted
    assert killed.wait(timeout=300) == -9, killed.stderr.read().decode()[-2000:]
    assert not (tmp_path / "never.pt").exists()
    checkpoints = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert checkpoints == ["checkpoint-3", "checkpoint-6"]  # killed after step 7, mid-epoch 1

    resumed = _start(folder, tmp_path / "run", tmp_path / "resumed.pt", "--resume")
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read().decode()[-2000:]
    assert "steps run here: 10, global step: 16" in resumed.stdout.read().decode()
    expected = torch.load(tmp_path / "full.pt")
    assert max_difference(torch.load(tmp_path / "resumed.pt"), expected) <= 1e-6
    assert max_difference(expected, weights(tiny_bi_model(folder))) > 1e-3  # and training did something


@pytest.mark.parametrize("seeded_loader", [True, False], ids=["loader-generator", "global-rng"])
def test_fit_resumes_mid_epoch_with_the_loader_order(tmp_path, one_torch_thread, seeded_loader):
    folder = _write_tiny_bert(tmp_path / "tiny", seed=12)
    data = toy_pairs(20)
    examples = [
        InputExample(texts=[a, b], label=s)
        for a, b, s in zip(data["sentence1"], data["sentence2"], data["score"], strict=True)
    ]

    def run(checkpoints: Path, resume: bool) -> dict[str, torch.Tensor]:
        torch.manual_seed(0)
        model = tiny_bi_model(folder)
        generator = torch.Generator().manual_seed(5) if seeded_loader else None
        loader = DataLoader(examples, batch_size=4, shuffle=True, generator=generator)
        model.fit(
            [(loader, CoSENTLoss(model))],
            epochs=2,
            warmup_steps=2,
            optimizer_params={"lr": 1e-3},
            checkpoint_path=str(checkpoints),
            checkpoint_save_steps=3,
            resume_from_checkpoint=resume,
            show_progress_bar=False,
        )
        return weights(model)

    expected = run(tmp_path / "full", resume=False)
    # keep only the checkpoint after step 3 (mid-epoch 0 of 5 steps) and resume from it in a fresh model
    (tmp_path / "part").mkdir()
    shutil.copytree(tmp_path / "full" / "checkpoint-3", tmp_path / "part" / "checkpoint-3")
    stamp = (tmp_path / "part" / "checkpoint-3" / "training_state.pt").stat().st_mtime_ns
    assert max_difference(run(tmp_path / "part", resume=True), expected) <= 1e-6
    written = sorted(p.name for p in (tmp_path / "part").iterdir())
    assert written == ["checkpoint-3", "checkpoint-6", "checkpoint-9"]
    assert (
        tmp_path / "part" / "checkpoint-3" / "training_state.pt"
    ).stat().st_mtime_ns == stamp  # not redone
