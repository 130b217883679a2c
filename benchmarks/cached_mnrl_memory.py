"""Peak memory of one training step: MultipleNegativesRankingLoss vs CachedMultipleNegativesRankingLoss.

Usage:
    python benchmarks/cached_mnrl_memory.py [--batch-size 64] [--mini-batch-size 8] [--threads 1]
        [--json results/cached_mnrl_memory.json]

The model is all-MiniLM-L6-v2 (``SentenceTransformer("all-MiniLM-L6-v2")``, from the local cache); the batch
is the first ``--batch-size`` SciFact train queries (BEIR qrels/train.tsv, by query id) with one relevant
abstract each, tokenized at the model's max_seq_length (256). Each loss runs one forward and backward in a
fresh subprocess, in eval mode (dropout off, so both losses have exactly the same gradients to compare).

Per run the JSON records the loss, the wall time, ``ru_maxrss`` after the model and batch were loaded (the
baseline), ``ru_maxrss`` after the step, and their difference: the extra peak resident memory the step
needed. The gradients of every parameter are written to results/ by the workers and compared by the parent
(largest absolute difference), then deleted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SCIFACT = ROOT.parent / "shared" / "data" / "scifact" / "beir"
RESULTS = ROOT / "results"


def _max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _current_rss_mib() -> float:
    with open("/proc/self/status", encoding="utf-8") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def scifact_pairs(count: int) -> tuple[list[str], list[str]]:
    """The first ``count`` SciFact train queries (by numeric id) and one relevant abstract each."""
    from sentencekit.readers import read_beir

    data = read_beir(SCIFACT, split="train")
    query_ids = sorted(data.queries, key=int)[:count]
    if len(query_ids) < count:
        raise SystemExit(f"SciFact train has only {len(query_ids)} judged queries; asked for {count}.")
    docs = [data.corpus[min(data.relevant_docs[q], key=int)] for q in query_ids]
    return [data.queries[q] for q in query_ids], docs


def worker(loss_name: str, args: argparse.Namespace, grads_path: Path) -> dict[str, Any]:
    """One forward + backward with ``loss_name``; returns the figures and writes the flat gradient."""
    import torch

    from sentencekit import SentenceTransformer, losses

    torch.set_num_threads(args.threads)
    model = SentenceTransformer("all-MiniLM-L6-v2", device="cpu").eval()
    queries, docs = scifact_pairs(args.batch_size)
    batch = [model.tokenize(queries), model.tokenize(docs)]
    if loss_name == "cached":
        loss = losses.CachedMultipleNegativesRankingLoss(model, mini_batch_size=args.mini_batch_size)
    else:
        loss = losses.MultipleNegativesRankingLoss(model)
    baseline, baseline_current = _max_rss_mib(), _current_rss_mib()
    start = time.perf_counter()
    value = loss(batch, None)
    value.backward()
    seconds = time.perf_counter() - start
    peak = _max_rss_mib()
    flat = torch.cat([p.grad.reshape(-1) for p in model.parameters() if p.grad is not None])
    torch.save(flat, grads_path)
    return {
        "loss": loss_name,
        "value": value.item(),
        "seconds": round(seconds, 2),
        "baseline_max_rss_mib": round(baseline, 1),
        "baseline_current_rss_mib": round(baseline_current, 1),
        "peak_max_rss_mib": round(peak, 1),
        "step_peak_over_baseline_mib": round(peak - baseline, 1),
        "tokens_per_column": [int(f["attention_mask"].sum()) for f in batch],
        "padded_widths": [int(f["input_ids"].shape[1]) for f in batch],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--mini-batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run (a shared machine: 1)")
    parser.add_argument("--json", type=Path, default=RESULTS / "cached_mnrl_memory.json")
    parser.add_argument("--worker", choices=["plain", "cached"], help=argparse.SUPPRESS)
    parser.add_argument("--grads", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args, args.grads)))
        return

    import torch

    RESULTS.mkdir(exist_ok=True)
    runs, grads = {}, {}
    load_before = os.getloadavg()
    for name in ("plain", "cached"):
        grads[name] = RESULTS / f"cached_mnrl_grads_{name}.pt"
        command = [sys.executable, __file__, "--worker", name, "--grads", str(grads[name])]
        command += ["--batch-size", str(args.batch_size), "--mini-batch-size", str(args.mini_batch_size)]
        command += ["--threads", str(args.threads)]
        out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        runs[name] = json.loads(out.strip().splitlines()[-1])
        print(json.dumps(runs[name]))
    plain, cached = (torch.load(grads[n]) for n in ("plain", "cached"))
    for path in grads.values():
        path.unlink()
    result = {
        "model": "all-MiniLM-L6-v2",
        "data": f"SciFact train, first {args.batch_size} (query, abstract) pairs",
        "batch_size": args.batch_size,
        "mini_batch_size": args.mini_batch_size,
        "threads": args.threads,
        "mode": "eval (dropout off)",
        "runs": runs,
        "loss_difference": abs(runs["plain"]["value"] - runs["cached"]["value"]),
        "max_grad_difference": float((plain - cached).abs().max()),
        "max_abs_grad": float(plain.abs().max()),
        "peak_memory_ratio": runs["cached"]["step_peak_over_baseline_mib"]
        / max(runs["plain"]["step_peak_over_baseline_mib"], 1e-9),
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=2))


if __name__ == "__main__":
    main()
