"""Memory of encoding: peak RSS for a large call, against the reference, and RSS over repeated calls (soak).

Usage:
    python benchmarks/memory.py --n 100000 --soak-calls 20 --json results/memory.json

Each measurement runs in a fresh process, so that one library's allocations do not count against the
other. Texts: STSb sentences (train, dev and test), made unique by a numeric suffix when more are asked for
than exist, so that both libraries encode ``--n`` distinct short texts. Reported per library: RSS after the
model is loaded, peak RSS (``ru_maxrss``) after one ``encode`` of all texts, and the difference; for the soak,
RSS after each of ``--soak-calls`` calls of ``--soak-n`` texts (same texts every call), with the growth from
call 2 to the last (call 1 warms up allocator pools and tokenizer caches).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "stsb"
MODEL = "all-MiniLM-L6-v2"


def texts(n: int) -> list[str]:
    """``n`` distinct short texts from STSb."""
    base: list[str] = []
    for split in ("train", "dev", "test"):
        with open(DATA / f"stsb-en-{split}.csv", encoding="utf-8", newline="") as f:
            for row in csv.reader(f):
                base.extend(row[:2])
    unique = [t for t in dict.fromkeys(base) if t.strip()]
    out = unique[:n]
    i = 0
    while len(out) < n:
        out.append(f"{unique[i % len(unique)]} ({i // len(unique) + 1})")
        i += 1
    return out


def _rss_mb() -> float:
    with open("/proc/self/status", encoding="utf-8") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _load(library: str) -> Any:
    if library == "reference":
        from sentence_transformers import SentenceTransformer as Reference

        from sentencekit.hub import resolve_model_path

        return Reference(str(resolve_model_path(MODEL)), device="cpu")
    from sentencekit import SentenceTransformer

    return SentenceTransformer(MODEL, device="cpu")


def child(library: str, mode: str, n: int, calls: int) -> dict[str, Any]:
    """One measurement in this process (called through a subprocess)."""
    model = _load(library)
    items = texts(n)
    model.encode(items[:64], batch_size=32)  # load kernels, warm the tokenizer
    loaded = _rss_mb()
    if mode == "peak":
        emb = model.encode(items, batch_size=32)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return {
            "rss_loaded_mb": loaded,
            "peak_rss_mb": peak,
            "peak_minus_loaded_mb": peak - loaded,
            "shape": list(emb.shape),
        }
    series = []
    for _ in range(calls):
        model.encode(items, batch_size=32)
        series.append(_rss_mb())
    return {
        "rss_loaded_mb": loaded,
        "rss_after_each_call_mb": series,
        "growth_call2_to_last_mb": series[-1] - series[1] if len(series) > 1 else 0.0,
    }


def run_child(library: str, mode: str, n: int, calls: int) -> dict[str, Any]:
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    cmd = [sys.executable, __file__, "--child", library, mode, str(n), str(calls)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--soak-calls", type=int, default=20)
    parser.add_argument("--soak-n", type=int, default=2_000)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--child", nargs=4, metavar=("LIBRARY", "MODE", "N", "CALLS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        library, mode, n, calls = args.child
        print(json.dumps(child(library, mode, int(n), int(calls))))
        return
    results: dict[str, Any] = {
        "n": args.n,
        "soak_n": args.soak_n,
        "soak_calls": args.soak_calls,
        "load_before": os.getloadavg(),
    }
    for library in ("reference", "sentencekit"):
        results[library] = {
            "peak": run_child(library, "peak", args.n, 1),
            "soak": run_child(library, "soak", args.soak_n, args.soak_calls),
        }
        print(library, json.dumps(results[library]), flush=True)
    ref, ours = results["reference"]["peak"], results["sentencekit"]["peak"]
    results["peak_ratio"] = ours["peak_rss_mb"] / ref["peak_rss_mb"]
    results["load_after"] = os.getloadavg()
    print(
        f"peak RSS: sentencekit {ours['peak_rss_mb']:.0f} MB, reference {ref['peak_rss_mb']:.0f} MB "
        f"(ratio {results['peak_ratio']:.3f})"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
