"""Is a 10,000-sentence encode stable on a small machine? Times repeated runs, each in a fresh process.

Usage: python benchmarks/encode_stability.py [--runs 3] [--n 10000] [--model all-MiniLM-L6-v2]
       [--json results/encode_stability.json]

Runs sentencekit and the reference alternately (default settings, batch 32, CPU) on the same STSb sentences
and reports the wall time of each run, so a run that stalls (tokenizer and torch threads fighting) shows.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "stsb"

CHILD = """
import csv, json, sys, time
lib, folder, path, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
texts = json.load(open(path))[:n]
if lib == "sentencekit":
    from sentencekit import SentenceTransformer
else:
    from sentence_transformers import SentenceTransformer
model = SentenceTransformer(folder, device="cpu")
model.encode(texts[:64])  # warm-up
start = time.perf_counter()
model.encode(texts, batch_size=32, show_progress_bar=False)
print(json.dumps({"seconds": time.perf_counter() - start}))
"""


def sentences(n: int) -> list[str]:
    out: list[str] = []
    for split in ("train", "dev", "test"):
        with open(DATA / f"stsb-en-{split}.csv", encoding="utf-8", newline="") as f:
            out.extend(s for row in csv.reader(f) for s in row[:2])
    return out[:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    from sentencekit.hub import resolve_model_path

    folder = str(resolve_model_path(args.model))
    texts_file = Path(os.environ.get("TMPDIR", "/tmp")) / "sentencekit_stability_texts.json"
    texts_file.write_text(json.dumps(sentences(args.n)))
    env = {k: v for k, v in os.environ.items() if k != "TOKENIZERS_PARALLELISM"}  # default settings
    times: dict[str, list[float]] = {"sentencekit": [], "sentence_transformers": []}
    for run in range(args.runs):
        for lib in times:
            out = subprocess.run(
                [sys.executable, "-c", CHILD, lib, folder, str(texts_file), str(args.n)],
                capture_output=True,
                text=True,
                check=True,
                env=env,
            ).stdout
            seconds = json.loads(out.strip().splitlines()[-1])["seconds"]
            times[lib].append(round(seconds, 2))
            print(f"run {run + 1} {lib:22s} {seconds:7.2f} s", flush=True)
    result = {
        "machine": f"{platform.machine()} {os.cpu_count()} cpus python {platform.python_version()}",
        "model": args.model,
        "sentences": args.n,
        "seconds": times,
        "spread_max_over_min": {k: round(max(v) / min(v), 2) for k, v in times.items() if v},
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
