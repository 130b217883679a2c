"""CPU inference speed and accuracy: sentencekit's inference paths vs the reference, in one process.

Usage:
    python benchmarks/inference_speed.py --model all-MiniLM-L6-v2 --repeats 3 \
        --json results/inference_speed.json [--paths "reference fp32,sentencekit default"]

Paths: the reference (sentence-transformers) in fp32 (its default) and bf16; sentencekit's default (the
fastest exact path: ONNX Runtime fp32, fused), its torch fp32 and bf16, and ``backend="auto"`` (on a CPU with
VNNI: ONNX int8 with per-token activation scales).

Every path encodes the same texts in one process: short texts (unique STSb test sentences) and long texts
(SciFact abstracts, truncated at the model's max_seq_length), batch size 32. Runs alternate between paths
(each round in a rotated order), so that load from other jobs spreads over all of them; the best run of each
path is reported, with the median beside it. Per path: tokens/s (real tokens after truncation), sentences/s,
ratio to the reference's fp32 default, max |diff| and min cosine to the reference's fp32 embeddings, and the
STSb test Spearman correlation of cosine similarity with the gold scores. The load average before and after
is recorded: on a shared machine, compare ratios measured together rather than absolute figures across runs.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
STSB = DATA / "stsb" / "stsb-en-test.csv"
SCIFACT = DATA / "scifact" / "beir" / "corpus.jsonl"
REFERENCE = "reference fp32"


def load_stsb() -> tuple[list[str], list[tuple[str, str, float]]]:
    with open(STSB, encoding="utf-8", newline="") as f:
        rows = [(r[0], r[1], float(r[2])) for r in csv.reader(f)]
    sentences = list(dict.fromkeys(s for r in rows for s in r[:2]))
    return sentences, rows


def load_scifact(n: int) -> list[str]:
    texts = []
    with open(SCIFACT, encoding="utf-8") as f:
        for line in f:
            text = json.loads(line)["text"].strip()
            if text:
                texts.append(text)
            if len(texts) == n:
                break
    return texts


def machine() -> dict[str, Any]:
    cpu, flags = platform.processor(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                cpu = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    except OSError:
        pass
    import onnxruntime
    import sentence_transformers
    import torch
    import transformers

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "isa": sorted(f for f in flags if f in {"avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16"}),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "transformers": transformers.__version__,
        "onnxruntime": onnxruntime.__version__,
        "sentence_transformers": sentence_transformers.__version__,
    }


def build_paths(folder: str, only: list[str] | None = None) -> dict[str, Any]:
    """Each path: a callable texts -> fp32 numpy embeddings, loaded once."""
    import sentence_transformers as st
    import torch

    from sentencekit import SentenceTransformer

    bf16 = {"torch_dtype": torch.bfloat16}
    loaders = {
        REFERENCE: lambda: st.SentenceTransformer(folder, device="cpu"),
        "reference bf16": lambda: st.SentenceTransformer(folder, device="cpu", model_kwargs=bf16),
        "sentencekit default": lambda: SentenceTransformer(folder, device="cpu"),
        "sentencekit torch fp32": lambda: SentenceTransformer(folder, device="cpu", backend="torch"),
        "sentencekit torch bf16": lambda: SentenceTransformer(folder, device="cpu", model_kwargs=bf16),
        "sentencekit auto": lambda: SentenceTransformer(folder, device="cpu", backend="auto"),
    }
    chosen = [REFERENCE, *[name for name in only or loaders if name != REFERENCE]]
    models = {name: loaders[name]() for name in chosen}
    for name, model in models.items():
        print(f"{name:24s} -> {getattr(model, 'inference_path', 'reference')}")

    def encoder(model: Any) -> Any:
        def encode(texts: list[str]) -> np.ndarray:
            out = model.encode(texts, batch_size=32, convert_to_tensor=True)
            return out.float().cpu().numpy()

        return encode

    return {name: encoder(model) for name, model in models.items()}


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return float((a * b).sum(axis=1).min())


def spearman(embeddings: np.ndarray, sentences: list[str], rows: list[tuple[str, str, float]]) -> float:
    from scipy.stats import spearmanr

    index = {s: i for i, s in enumerate(sentences)}
    unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    left = unit[[index[r[0]] for r in rows]]
    right = unit[[index[r[1]] for r in rows]]
    return float(spearmanr((left * right).sum(axis=1), [r[2] for r in rows]).statistic)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from sentencekit.hub import resolve_model_path
    from sentencekit.modules import Transformer

    folder = str(resolve_model_path(args.model))
    sentences, rows = load_stsb()
    short = sentences[: args.n_short] if args.n_short else sentences
    datasets = {"short (STSb test)": short, "long (SciFact abstracts)": load_scifact(args.n_long)}
    load_before = os.getloadavg()
    started = time.perf_counter()
    paths = build_paths(folder, args.paths.split(",") if args.paths else None)
    counter = Transformer.load(folder)
    report: dict[str, Any] = {
        "model": args.model,
        "batch_size": 32,
        "repeats": args.repeats,
        "machine": machine(),
        "load_average_before": [round(x, 2) for x in load_before],
        "datasets": {},
    }
    for label, texts in datasets.items():
        tokens = sum(counter.tokenize_unpadded(texts).lengths())
        for encode in paths.values():  # warm-up: first-call allocations, ONNX Runtime's lazy init
            encode(texts[:64])
        seconds: dict[str, list[float]] = {name: [] for name in paths}
        outputs: dict[str, np.ndarray] = {}
        names = list(paths)
        for round_ in range(args.repeats):
            # each round starts at another path: a load change during the run favours no path
            shift = round_ % len(names)
            for name in names[shift:] + names[:shift]:
                start = time.perf_counter()
                outputs[name] = paths[name](texts)
                seconds[name].append(time.perf_counter() - start)
        reference = outputs[REFERENCE]
        reference_best = min(seconds[REFERENCE])
        results = {}
        for name, times in seconds.items():
            best = min(times)
            results[name] = {
                "tokens_per_s": round(tokens / best),
                "tokens_per_s_median": round(tokens / statistics.median(times)),
                "sentences_per_s": round(len(texts) / best, 1),
                "ratio_vs_reference_fp32": round(reference_best / best, 2),
                "max_abs_diff_vs_reference_fp32": float(np.abs(outputs[name] - reference).max()),
                "min_cosine_vs_reference_fp32": min_cosine(outputs[name], reference),
            }
            if texts is sentences:
                results[name]["stsb_spearman"] = round(spearman(outputs[name], sentences, rows), 5)
        report["datasets"][label] = {
            "texts": len(texts),
            "tokens": tokens,
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
            "paths": results,
        }
        print_table(label, len(texts), tokens, results)
    report["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    report["wall_s"] = round(time.perf_counter() - started, 1)
    print(f"load average before {report['load_average_before']}, after {report['load_average_after']}")
    return report


def print_table(label: str, n: int, tokens: int, results: dict[str, dict[str, Any]]) -> None:
    print(f"\n{label}: {n} texts, {tokens} tokens, batch 32")
    print(
        f"{'path':24s} {'tok/s':>8s} {'sent/s':>8s} {'ratio':>6s} {'max|diff|':>10s} {'min cos':>9s} "
        f"{'Spearman':>9s}"
    )
    for name, r in results.items():
        rho = f"{r['stsb_spearman']:.4f}" if "stsb_spearman" in r else ""
        print(
            f"{name:24s} {r['tokens_per_s']:8d} {r['sentences_per_s']:8.1f} "
            f"{r['ratio_vs_reference_fp32']:6.2f} {r['max_abs_diff_vs_reference_fp32']:10.2e} "
            f"{r['min_cosine_vs_reference_fp32']:9.5f} {rho:>9s}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description="CPU inference speed: sentencekit paths vs sentence-transformers"
    )
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument(
        "--n-short", type=int, default=0, help="STSb sentences (0: all 2,552; Spearman needs all)"
    )
    parser.add_argument("--n-long", type=int, default=300, help="SciFact abstracts to encode")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per path and dataset")
    parser.add_argument("--json", type=Path, default=Path("results/inference_speed.json"))
    parser.add_argument("--paths", default="", help="comma-separated subset of the paths (default: all)")
    args = parser.parse_args()
    for name in ("sentencekit", "sentence_transformers"):  # SciFact abstracts beyond 256 tokens: expected
        logging.getLogger(name).setLevel(logging.ERROR)
    report = run(args)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
