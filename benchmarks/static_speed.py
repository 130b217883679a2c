"""StaticEmbedding encode() throughput: sentencekit vs the reference on the same table, alternating runs.

Usage:
    python benchmarks/static_speed.py [--dim 256] [--rounds 5] [--json results/static_speed.json]

No trained static model is available offline, so the model is a realistic-size stand-in: all-MiniLM-L6-v2's
WordPiece tokenizer (30,522 tokens) over a seeded random ``(30522, dim)`` table, the shape of
static-retrieval-mrl-en-v1 (1024 wide) or model2vec's potion models (256). Speed does not depend on the
values.

Texts: the 2 x 1,379 STSb test sentences and the first 2,000 SciFact abstracts.
Both libraries run with their default batch size (the reference's 32; sentencekit's 1,024 for a static model)
and, to separate the batch size from the rest, sentencekit also at 32. Runs alternate; the JSON records every
run, the median texts/s of each side, the ratio and the largest difference between the two libraries' vectors.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
logger = logging.getLogger("static_speed")


def texts() -> dict[str, list[str]]:
    """The STSb test sentences and the first 2,000 SciFact abstracts (title and text)."""
    with open(DATA / "stsb" / "stsb-en-test.csv", encoding="utf-8") as f:
        rows = list(csv.reader(f))  # sentence1, sentence2, score; no header
    sentences = [r[0] for r in rows] + [r[1] for r in rows]
    with open(DATA / "scifact" / "beir" / "corpus.jsonl", encoding="utf-8") as f:
        docs = [json.loads(line) for line in f][:2000]
    return {"sentences": sentences, "abstracts": [f"{d['title']} {d['text']}" for d in docs]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path, default=ROOT / "results" / "static_speed.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    from sentence_transformers import SentenceTransformer as RefModel
    from sentence_transformers import models as ref_models
    from tokenizers import Tokenizer

    from sentencekit import SentenceTransformer
    from sentencekit.benchmarking.runner import machine
    from sentencekit.hub import resolve_model_path
    from sentencekit.models import StaticEmbedding

    tokenizer = Tokenizer.from_file(str(resolve_model_path("all-MiniLM-L6-v2") / "tokenizer.json"))
    table = torch.randn(tokenizer.get_vocab_size(), args.dim, generator=torch.Generator().manual_seed(0))
    ours = SentenceTransformer(modules=[StaticEmbedding(tokenizer, embedding_weights=table)], device="cpu")
    ref = RefModel(
        modules=[ref_models.StaticEmbedding(tokenizer, embedding_weights=table.clone())], device="cpu"
    )
    sides: dict[str, Any] = {
        "reference": lambda t: ref.encode(t, show_progress_bar=False),
        "sentencekit": lambda t: ours.encode(t, show_progress_bar=False),
        "sentencekit batch 32": lambda t: ours.encode(t, batch_size=32, show_progress_bar=False),
    }
    report: dict[str, Any] = {"dim": args.dim, "machine": machine(), "load_average_before": os.getloadavg()}
    for name, items in texts().items():
        runs: dict[str, list[float]] = {side: [] for side in sides}
        outputs: dict[str, np.ndarray] = {}
        for round_ in range(args.rounds):
            order = list(sides) if round_ % 2 == 0 else list(reversed(sides))
            for side in order:
                start = time.perf_counter()
                outputs[side] = sides[side](items)
                runs[side].append(len(items) / (time.perf_counter() - start))
        medians = {side: statistics.median(r) for side, r in runs.items()}
        result = {
            "texts": len(items),
            "texts_per_s": medians,
            "runs": runs,
            "ratio": {side: medians[side] / medians["reference"] for side in sides},
            "max_abs_diff": float(np.abs(outputs["sentencekit"] - outputs["reference"]).max()),
        }
        report[name] = result
        line = ", ".join(f"{side} {medians[side]:,.0f} ({result['ratio'][side]:.2f}x)" for side in sides)
        logger.info(
            "%s (%d texts): texts/s %s; max |diff| %.1e", name, len(items), line, result["max_abs_diff"]
        )
    report["load_average_after"] = os.getloadavg()
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    logger.info("wrote %s", args.json)


if __name__ == "__main__":
    main()
