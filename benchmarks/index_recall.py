"""Recall and speed of every :class:`sentencekit.Index` backend, and of FAISS used directly.

Usage:
    python benchmarks/index_recall.py                     # SciFact recall + synthetic 1,000,000 x 384
    python benchmarks/index_recall.py --part scifact      # only the SciFact recall
    python benchmarks/index_recall.py --part synthetic --n 200000

Part ``scifact`` embeds the SciFact corpus and its test queries with all-MiniLM-L6-v2 (cached as .npy under
``results/index_recall/``, so reruns skip encoding) and reports, per backend, Recall@10 against exact search
(the share of the exact top 10 that the backend returns) and Recall@10 against the relevance judgments.

Part ``synthetic`` draws ``--n`` clustered random vectors (384 dims) and reports, per backend, the build time
(add + training + building the structure), the memory ``Index.info()`` reports, queries per second for a
batch of ``--queries`` queries at k=10 and Recall@10 against exact search; then the same for FAISS indexes
built directly with the same parameters (no ids, metadata or float copy).

Results are merged into ``results/index_recall.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
CACHE = RESULTS / "index_recall"
SCIFACT = ROOT.parent / "shared" / "data" / "scifact" / "beir"
BACKENDS = ("exact", "faiss-flat", "faiss-ivf", "faiss-hnsw", "faiss-ivfpq", "binary", "int8")
DIM, K = 384, 10

logger = logging.getLogger("index_recall")


def _recall(found: list[list[Any]], truth: list[list[Any]]) -> float:
    return float(
        np.mean([len(set(f[:K]) & set(t[:K])) / len(t[:K]) for f, t in zip(found, truth, strict=True)])
    )


def _ids(hits: list[list[dict[str, Any]]]) -> list[list[Any]]:
    return [[h["id"] for h in row] for row in hits]


# ------------------------------------------------------------------------------------------------ scifact


def _scifact() -> tuple[np.ndarray, np.ndarray, list[str], list[str], dict[str, set[str]]]:
    from sentencekit.readers import read_beir

    corpus, queries, relevant = read_beir(SCIFACT, split="test")
    doc_ids, query_ids = list(corpus), sorted(queries)
    files = [CACHE / "scifact_corpus.npy", CACHE / "scifact_queries.npy", CACHE / "scifact_ids.json"]
    if all(f.exists() for f in files) and json.loads(files[2].read_text()) == [doc_ids, query_ids]:
        logger.info("Using cached SciFact embeddings in %s", CACHE)
        return np.load(files[0]), np.load(files[1]), doc_ids, query_ids, relevant
    from sentencekit import SentenceTransformer

    model = SentenceTransformer("all-MiniLM-L6-v2", device="cpu")
    start = time.perf_counter()
    corpus_emb = model.encode([corpus[d] for d in doc_ids], batch_size=32)
    query_emb = model.encode([queries[q] for q in query_ids], batch_size=32)
    logger.info("Encoded SciFact in %.0f s", time.perf_counter() - start)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(files[0], corpus_emb)
    np.save(files[1], query_emb)
    files[2].write_text(json.dumps([doc_ids, query_ids]))
    return corpus_emb, query_emb, doc_ids, query_ids, relevant


def part_scifact() -> dict[str, Any]:
    from sentencekit.index import Index

    corpus, queries, doc_ids, query_ids, relevant = _scifact()
    truth: list[list[Any]] = []
    out: dict[str, Any] = {"corpus": len(doc_ids), "queries": len(query_ids), "backends": {}}
    for backend in BACKENDS:
        index = Index(DIM, backend=backend)
        index.add(corpus, ids=doc_ids)
        start = time.perf_counter()
        index.info()  # builds the structure
        built = time.perf_counter() - start
        found = _ids(index.search(queries, k=K))
        truth = truth or found
        judged = float(
            np.mean(
                [len(set(f) & relevant[q]) / len(relevant[q]) for f, q in zip(found, query_ids, strict=True)]
            )
        )
        info = index.info()
        out["backends"][backend] = {
            "recall@10_vs_exact": round(_recall(found, truth), 4),
            "recall@10_vs_qrels": round(judged, 4),
            "build_s": round(built, 2),
            "params": {k: v for k, v in info["params"].items() if v is not None and k != "dim"},
        }
        logger.info("scifact %-12s %s", backend, out["backends"][backend])
    # how recall moves with the search-time knobs
    sweeps: dict[str, dict[int, float]] = {"faiss-ivf nprobe": {}, "faiss-hnsw ef_search": {}}
    for nprobe in (8, 16, 32, 64):
        index = Index(DIM, backend="faiss-ivf", nprobe=nprobe)
        index.add(corpus, ids=doc_ids)
        sweeps["faiss-ivf nprobe"][nprobe] = round(_recall(_ids(index.search(queries, k=K)), truth), 4)
    for ef in (16, 32, 64, 128):
        index = Index(DIM, backend="faiss-hnsw", ef_search=ef)
        index.add(corpus, ids=doc_ids)
        sweeps["faiss-hnsw ef_search"][ef] = round(_recall(_ids(index.search(queries, k=K)), truth), 4)
    out["sweeps"] = sweeps
    logger.info("scifact sweeps %s", sweeps)
    return out


# ---------------------------------------------------------------------------------------------- synthetic


def _synthetic(n: int, n_queries: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Clustered unit vectors: 1,000 random centres plus noise, so that neighbours are meaningful."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((1000, DIM)).astype(np.float32)
    data = np.empty((n + n_queries, DIM), dtype=np.float32)
    for start in range(0, len(data), 100_000):
        end = min(start + 100_000, len(data))
        data[start:end] = centres[rng.integers(0, 1000, end - start)]
        data[start:end] += rng.standard_normal((end - start, DIM)).astype(np.float32) * 0.8
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    return data[:n], data[n:]


def _faiss_direct(backend: str, corpus: np.ndarray, params: dict[str, Any]) -> Any:
    import faiss

    if backend == "faiss-flat":
        index = faiss.IndexFlatIP(DIM)
    elif backend == "faiss-hnsw":
        index = faiss.IndexHNSWFlat(DIM, params["hnsw_m"], faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = params["ef_construction"]
        index.hnsw.efSearch = params["ef_search"]
    else:
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(DIM), DIM, params["nlist"], faiss.METRIC_INNER_PRODUCT)
        sample = corpus[
            np.sort(
                np.random.default_rng(0).choice(
                    len(corpus), min(len(corpus), 40 * params["nlist"]), replace=False
                )
            )
        ]
        index.train(sample)
        index.nprobe = params["nprobe"]
    index.add(corpus)
    return index


def part_synthetic(n: int, n_queries: int, backends: list[str]) -> dict[str, Any]:
    from sentencekit.index import Index

    corpus, queries = _synthetic(n, n_queries)
    out: dict[str, Any] = {"n": n, "dim": DIM, "queries": n_queries, "k": K, "sentencekit": {}, "faiss": {}}
    truth: list[list[Any]] = []
    ivf_params: dict[str, Any] = {}
    hnsw_params: dict[str, Any] = {}
    for backend in backends:
        start = time.perf_counter()
        index = Index(DIM, backend=backend)
        index.add(corpus)
        info = index.info()  # builds the structure
        built = time.perf_counter() - start
        start = time.perf_counter()
        found = _ids(index.search(queries, k=K))
        seconds = time.perf_counter() - start
        truth = truth or (found if backend == "exact" else [])
        row = {
            "build_s": round(built, 2),
            "memory_mb": round(info["memory_bytes"] / 2**20, 1),
            "qps": round(n_queries / seconds, 1),
            "recall@10_vs_exact": round(_recall(found, truth), 4) if truth else None,
            "params": {k: v for k, v in info["params"].items() if v is not None and k != "dim"},
        }
        out["sentencekit"][backend] = row
        logger.info("synthetic sentencekit %-12s %s", backend, row)
        if backend == "faiss-ivf":
            ivf_params = info["params"]
        if backend == "faiss-hnsw":
            hnsw_params = info["params"]
        del index
    for backend, params in (("faiss-flat", {}), ("faiss-ivf", ivf_params), ("faiss-hnsw", hnsw_params)):
        if backend not in backends:
            continue
        start = time.perf_counter()
        index = _faiss_direct(backend, corpus, params)
        built = time.perf_counter() - start
        start = time.perf_counter()
        _, rows = index.search(queries, K)
        seconds = time.perf_counter() - start
        row = {
            "build_s": round(built, 2),
            "qps": round(n_queries / seconds, 1),
            "recall@10_vs_exact": round(_recall(rows.tolist(), truth), 4) if truth else None,
        }
        out["faiss"][backend] = row
        logger.info("synthetic faiss       %-12s %s", backend, row)
    return out


def main() -> None:
    """Run the parts asked for and merge their results into ``results/index_recall.json``."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--part", choices=("scifact", "synthetic", "all"), default="all")
    parser.add_argument("--n", type=int, default=1_000_000, help="synthetic corpus size (default: 1,000,000)")
    parser.add_argument("--queries", type=int, default=1000, help="synthetic queries (default: 1,000)")
    parser.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated backends")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch and FAISS threads (default 1: a busy shared machine)"
    )
    parser.add_argument(
        "--output", type=Path, default=RESULTS / "index_recall.json", help="JSON to merge into"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    # On a loaded machine FAISS's OpenMP threads spin against each other (k-means ran 4x slower on 2 threads
    # than on 1 here), so the default is one thread for everything, sentencekit and FAISS alike.
    import faiss
    import torch

    faiss.omp_set_num_threads(args.threads)
    torch.set_num_threads(args.threads)

    path: Path = args.output
    results: dict[str, Any] = {}
    results["machine"] = {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "threads": args.threads,
    }
    if args.part in ("scifact", "all"):
        results["scifact"] = part_scifact()
    if args.part in ("synthetic", "all"):
        backends = args.backends.split(",")
        if "exact" not in backends:
            backends.insert(0, "exact")
        results[f"synthetic_{args.n}"] = part_synthetic(args.n, args.queries, backends)
    path.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(path.read_text()) if path.exists() else {}  # read late: other runs may have written
    path.write_text(json.dumps({**previous, **results}, indent=2) + "\n")
    logger.info("Wrote %s", path)


if __name__ == "__main__":
    main()
