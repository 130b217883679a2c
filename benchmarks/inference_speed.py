"""CPU inference speed and accuracy: sentencekit's inference paths vs the reference, in one process.

Usage:
    python benchmarks/inference_speed.py --model all-MiniLM-L6-v2 --repeats 3 \
        --json results/inference_speed.json [--paths "reference fp32,sentencekit default"] [--png chart.png]

A thin wrapper over ``sentencekit bench`` (the code is in ``sentencekit.benchmarking``), with the project's
data: short texts are the unique STSb test sentences (``--n-short``: the first N; Spearman is computed on the
full test set either way), long texts the first ``--n-long`` SciFact abstracts, truncated at the model's
max_seq_length. Batches: each library's default (the reference's 32; sentencekit's path plan, see
``encode(batch_size=None)``), or ``--batch-size`` for all. Paths: the reference (sentence-transformers) in
fp32 (its default) and bf16, and bf16 with 128 texts per batch;
sentencekit's default (the fastest exact path: ONNX Runtime fp32, fused), its torch fp32 and bf16, and
``backend="auto"``.

Runs alternate between paths (each round in a rotated order), so that load from other jobs spreads over all
of them; the best run of each path is reported, with the median beside it. Per path: tokens/s (real tokens
after truncation), sentences/s, ratio to the reference's fp32 default, max |diff| and min cosine to the
reference's fp32 embeddings, STSb test Spearman, and peak RSS during the path's runs (whole process) with its
growth over the RSS of the process with every model loaded (see ``sentencekit.benchmarking.rss``). The JSON
keeps the keys of earlier versions (``ratio_vs_reference_fp32``, ...) beside the ``*_vs_baseline`` ones. The
load average before and after is recorded: on a shared machine, compare ratios measured together rather than
absolute figures across runs.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from sentencekit.benchmarking import BenchConfig, format_tables, run_benchmark, write_chart, write_json
from sentencekit.cli.bench import load_text_sets

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
STSB = DATA / "stsb" / "stsb-en-test.csv"
SCIFACT = DATA / "scifact" / "beir" / "corpus.jsonl"
REFERENCE = "reference fp32"
# key in earlier versions of this script's JSON -> key the benchmark writes now
LEGACY_KEYS = {
    "ratio_vs_reference_fp32": "ratio_vs_baseline",
    "max_abs_diff_vs_reference_fp32": "max_abs_diff_vs_baseline",
    "min_cosine_vs_reference_fp32": "min_cosine_vs_baseline",
}


def add_legacy_keys(report: dict[str, Any]) -> None:
    """Copy ``*_vs_baseline`` figures to the older ``*_vs_reference_fp32`` keys (baseline: the reference)."""
    if report["baseline"] != REFERENCE:
        return
    for data in report["datasets"].values():
        for results in data["paths"].values():
            for legacy, key in LEGACY_KEYS.items():
                results[legacy] = results[key]


def main() -> None:
    parser = argparse.ArgumentParser(
        description="CPU inference speed: sentencekit paths vs sentence-transformers"
    )
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--n-short", type=int, default=0, help="STSb sentences (0: all 2,552)")
    parser.add_argument("--n-long", type=int, default=300, help="SciFact abstracts to encode")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per path and dataset")
    parser.add_argument("--json", type=Path, default=Path("results/inference_speed.json"))
    parser.add_argument("--png", type=Path, help="also write a tokens/s chart (needs matplotlib)")
    parser.add_argument("--paths", default="", help="comma-separated subset of the paths (default: all)")
    parser.add_argument(
        "--batch-size",
        type=int,
        help="texts per batch for every path (default: each library's own: 32 for the reference, the path's "
        "plan for sentencekit)",
    )
    args = parser.parse_args()
    for name in ("sentencekit", "sentence_transformers"):  # SciFact abstracts beyond 256 tokens: expected
        logging.getLogger(name).setLevel(logging.ERROR)
    sets, pairs = load_text_sets(
        short=None,
        long=SCIFACT,
        stsb=STSB,
        n_short=args.n_short or None,
        n_long=args.n_long,
        labels=("STSb test", "SciFact abstracts"),
    )
    paths = tuple(name for name in args.paths.split(",") if name.strip())
    report = run_benchmark(
        args.model,
        sets,
        BenchConfig(paths=paths, repeats=args.repeats, batch_size=args.batch_size),
        stsb=pairs,
    )
    add_legacy_keys(report)
    print(format_tables(report))
    write_json(report, args.json)
    print(f"wrote {args.json}")
    if args.png is not None:
        write_chart(report, args.png)
        print(f"wrote {args.png}")


if __name__ == "__main__":
    sys.exit(main())
