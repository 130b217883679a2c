"""Shared pieces of the training benchmarks (train_stsb.py, train_cross_encoder.py, train_scifact.py).

Scores are computed here, the same way for both libraries (encode or predict, then scipy), so that the two
trained models are measured by one yardstick.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
STSB = DATA / "stsb"


def add_common_arguments(parser: Any, epochs: int) -> None:
    """The options train_stsb.py and train_cross_encoder.py share."""
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--limit", type=int, help="train on the first N rows only (for a quick check)")
    parser.add_argument("--test-limit", type=int, help="score the first N test pairs only")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--warmup-ratio", type=float, default=0.1)
    parser.add_argument("--lr", type=float, default=2e-5)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--only", choices=("both", "ours", "reference"), default="both")
    parser.add_argument("--progress", action="store_true", help="show the training progress bars")
    parser.add_argument("--output", type=Path)


def read_stsb(split: str, limit: int | None = None) -> tuple[list[str], list[str], list[float]]:
    """STSb rows of a split (no header; scores 0-5), the first ``limit`` when given."""
    first, second, scores = [], [], []
    with open(STSB / f"stsb-en-{split}.csv", encoding="utf-8", newline="") as handle:
        for row in csv.reader(handle):
            first.append(row[0])
            second.append(row[1])
            scores.append(float(row[2]))
            if limit is not None and len(scores) >= limit:
                break
    return first, second, scores


def sts_spearman(
    model: Any, first: list[str], second: list[str], scores: list[float], dims: list[int] | None = None
):
    """Spearman correlation of cosine similarity with the gold scores (per truncation dim when given)."""
    from scipy.stats import spearmanr

    a = np.asarray(model.encode(first, batch_size=64, convert_to_numpy=True, show_progress_bar=False))
    b = np.asarray(model.encode(second, batch_size=64, convert_to_numpy=True, show_progress_bar=False))
    results = {}
    for dim in dims or [a.shape[1]]:
        x, y = a[:, :dim], b[:, :dim]
        cos = (x * y).sum(1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1) + 1e-12)
        results[dim] = float(spearmanr(cos, scores).statistic)
    return results if dims else results[a.shape[1]]


def stsb_training_data(limit: int | None, test_limit: int | None):
    """The base model folder, STSb train rows as InputExamples (label score/5), and the test split."""
    from sentencekit import InputExample
    from sentencekit.hub import resolve_model_path

    first, second, scores = read_stsb("train", limit)
    examples = [
        InputExample(texts=[a, b], label=s / 5.0) for a, b, s in zip(first, second, scores, strict=True)
    ]
    return resolve_model_path("all-MiniLM-L6-v2"), examples, read_stsb("test", test_limit)


@contextmanager
def timed(record: dict[str, Any], key: str):
    """Store the wall and process CPU seconds of the block under ``record[key]``."""
    wall, cpu = time.perf_counter(), time.process_time()
    yield
    record[key] = {
        "wall_s": round(time.perf_counter() - wall, 2),
        "cpu_s": round(time.process_time() - cpu, 2),
    }


def machine() -> dict[str, Any]:
    """Facts about the machine and its load, for the JSON."""
    import torch

    return {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average": os.getloadavg(),
        "torch": torch.__version__,
    }


def write_json(path: Path | None, result: dict[str, Any]) -> None:
    """Print the result and write it to ``path`` (folders created) when given."""
    text = json.dumps(result, indent=2)
    print(text)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n", encoding="utf-8")


def seeded_loader(examples: list[Any], batch_size: int, seed: int):
    """A shuffling DataLoader whose order depends on ``seed`` only: the same for both libraries."""
    import torch
    from torch.utils.data import DataLoader

    return DataLoader(
        examples, batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed)
    )
