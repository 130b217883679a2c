"""How much faster is a second encode of the same texts through the SQLite embedding cache?

Usage: python benchmarks/cache_speed.py [--n 10000] [--model all-MiniLM-L6-v2]
       [--json results/cache_speed.json]

Encodes the first ``n`` STSb train sentences (both columns, row by row) on CPU with an empty SQLite cache
(cold: every vector computed and stored), then again with the same model (warm: every vector read back),
then once more with a fresh model object on the same file (what a new process pays: loading aside, it hashes
the weights once). Checks that the warm results are bit-identical to the cold ones and writes JSON.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from sentencekit import SentenceTransformer
from sentencekit.cache.sqlite import SQLiteCache

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "stsb" / "stsb-en-train.csv"
logger = logging.getLogger("cache_speed")


def sentences(n: int) -> list[str]:
    with open(DATA, encoding="utf-8", newline="") as f:
        out = [s for row in csv.reader(f) for s in row[:2]]
    return out[:n]


def timed(model: SentenceTransformer, texts: list[str], cache: SQLiteCache) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    emb = model.encode(texts, batch_size=32, show_progress_bar=False, cache=cache)
    return emb, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--json", default="results/cache_speed.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    texts = sentences(args.n)
    model = SentenceTransformer(args.model, device="cpu")
    model.encode(texts[:64], show_progress_bar=False)  # warm-up outside the timings
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "emb.sqlite"
        cache = SQLiteCache(path)
        cold, cold_s = timed(model, texts, cache)
        logger.info("cold: %.2f s", cold_s)
        warm, warm_s = timed(model, texts, cache)
        logger.info("warm: %.3f s", warm_s)
        stats = cache.stats
        info = cache.describe()
        cache.close()
        fresh_model = SentenceTransformer(args.model, device="cpu")
        reopened = SQLiteCache(path)
        again, reopened_s = timed(fresh_model, texts, reopened)
        logger.info("fresh model, same file: %.3f s", reopened_s)
        reopened.close()

    result = {
        "model": args.model,
        "texts": len(texts),
        "distinct_texts": len(set(texts)),
        "cold_seconds": round(cold_s, 3),
        "warm_seconds": round(warm_s, 3),
        "speedup": round(cold_s / warm_s, 1),
        "fresh_model_warm_seconds": round(reopened_s, 3),
        "bit_identical": bool(warm.tobytes() == cold.tobytes() and again.tobytes() == cold.tobytes()),
        "hits": stats.hits,
        "misses": stats.misses,
        "entries": stats.entries,
        "file_bytes": info["file_bytes"],
        "torch_threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "command": "python benchmarks/cache_speed.py",
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    logger.info("%s", json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
