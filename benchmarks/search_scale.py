"""Search, community detection and binary-quantized search at scale, against sentence-transformers.

Usage:
    python benchmarks/search_scale.py --part search       # 10,000 queries x 1,000,000 x 384 corpus
    python benchmarks/search_scale.py --part community    # community_detection over 200,000 x 384
    python benchmarks/search_scale.py --part quantized    # SciFact: exact vs binary + rescore Recall@10
    python benchmarks/search_scale.py --part all --small  # every part at a small size (a dry run)

Parts ``search`` and ``community`` run each library in a fresh subprocess on the same seeded inputs and
measure its wall time and its peak memory *beyond the inputs*: the resident set size once the inputs are
built is the baseline, the kernel's high-water mark (``VmHWM``, reset through ``/proc/self/clear_refs`` after
the inputs are built) is the peak, and the difference is reported. The reference's community detection runs
under a virtual-memory cap (``RLIMIT_AS``) and a timeout; if it fails, the failure is reported.

Part ``quantized`` embeds SciFact with all-MiniLM-L6-v2 (cached as .npy under ``results/``, so reruns skip
encoding) and compares exact Recall@10 with binary (ubinary) search rescored with the float queries, both
as the reference rescores (float query . candidate bits) and with the candidates' float rows read from the
cached .npy through a memory map (``rescore_embeddings``), which keeps only the bits in memory.

Results are merged into ``results/search_scale.json`` (``results/search_scale_small.json`` with
``--small``), and a markdown table is printed.
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

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
WORK = RESULTS / "search_scale_work"
SCIFACT = ROOT.parent / "shared" / "data" / "scifact" / "beir"
MODEL = Path("/root/.cache/sentencekit/models/all-MiniLM-L6-v2")

SIZES = {
    # part: (full, small)
    "search": ({"n_corpus": 1_000_000, "n_queries": 10_000}, {"n_corpus": 100_000, "n_queries": 1_000}),
    "community": ({"n": 200_000, "n_centres": 2_000}, {"n": 20_000, "n_centres": 200}),
}
DIM = 384
TOP_K = 10
THRESHOLD, MIN_COMMUNITY = 0.75, 10
REFERENCE_MEMORY_CAP = 8 << 30  # bytes of address space for the reference's community detection
LIBRARIES = ("sentencekit", "sentence-transformers")


# ----------------------------------------------------------------------------------------------- memory


def _status_kb(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def _reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
    except OSError:
        return False
    return _status_kb("VmHWM") <= _status_kb("VmRSS") + 1024


class PeakMemory:
    """Peak resident memory of this process beyond the moment :meth:`start` was called, in MiB."""

    def start(self) -> None:
        import gc

        gc.collect()
        self.reset = _reset_peak()
        self.baseline_kb = _status_kb("VmRSS")

    def report(self) -> dict[str, Any]:
        peak_kb = _status_kb("VmHWM")
        return {
            "rss_after_inputs_mib": round(self.baseline_kb / 1024, 1),
            "peak_rss_mib": round(peak_kb / 1024, 1),
            "peak_beyond_inputs_mib": round((peak_kb - self.baseline_kb) / 1024, 1),
            "ru_maxrss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            # without the reset, the peak includes building the inputs: an upper bound only
            "peak_reset_after_inputs": self.reset,
        }


# ----------------------------------------------------------------------------------------------- inputs


def unit_normal(n: int, dim: int, seed: int):
    """``n`` random unit vectors, filled in place block by block so that building them needs no copy."""
    import torch

    out = torch.empty(n, dim)
    g = torch.Generator().manual_seed(seed)
    for start in range(0, n, 1 << 16):
        block = out[start : start + (1 << 16)]
        block.normal_(generator=g)
        block.div_(block.norm(dim=1, keepdim=True))
    return out


def clustered(n: int, dim: int, n_centres: int, seed: int):
    """90% of the points around ``n_centres`` random centres, 10% pure noise, shuffled.

    Each cluster has its own spread (noise 0.4-0.6 of a centre's scale), so that the cosine between two
    members of a cluster is about 0.74-0.86: some clusters pass the 0.75 threshold whole, some in part.
    """
    import torch

    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(n_centres, dim, generator=g)
    spread = 0.4 + 0.2 * torch.rand(n_centres, generator=g)
    n_clustered = n * 9 // 10
    assign = torch.randint(0, n_centres, (n_clustered,), generator=g)
    points = torch.empty(n, dim).normal_(generator=g)
    for start in range(0, n_clustered, 1 << 16):
        ids = assign[start : start + (1 << 16)]
        points[start : start + len(ids)].mul_(spread[ids, None]).add_(centres[ids])
    return points[torch.randperm(n, generator=g)]


# ---------------------------------------------------------------------------------------------- workers


def _search_fn(library: str):
    if library == "sentencekit":
        from sentencekit.util import community_detection, semantic_search
    else:
        from sentence_transformers.util import community_detection, semantic_search
    return semantic_search, community_detection


def worker(part: str, library: str, size: dict[str, int], out: Path) -> dict[str, Any]:
    """Run one library on one part in this (fresh) process; write its results to ``out``."""
    import torch

    semantic_search, community_detection = _search_fn(library)
    memory = PeakMemory()
    if part == "search":
        corpus = unit_normal(size["n_corpus"], DIM, seed=0)
        queries = unit_normal(size["n_queries"], DIM, seed=1)
        memory.start()
        start = time.perf_counter()
        hits = semantic_search(queries, corpus, top_k=TOP_K)
        wall = time.perf_counter() - start
        ids = np.array([[h["corpus_id"] for h in row] for row in hits], dtype=np.int64)
        scores = np.array([[h["score"] for h in row] for row in hits], dtype=np.float64)
        np.savez(out, ids=ids, scores=scores)
        extra: dict[str, Any] = {}
    else:
        embeddings = clustered(size["n"], DIM, size["n_centres"], seed=2)
        memory.start()
        start = time.perf_counter()
        communities = community_detection(embeddings, threshold=THRESHOLD, min_community_size=MIN_COMMUNITY)
        wall = time.perf_counter() - start
        out.write_text(json.dumps(communities))
        extra = {"communities": len(communities), "members": sum(map(len, communities))}
    return {"wall_s": round(wall, 2), "torch_threads": torch.get_num_threads(), **memory.report(), **extra}


def run_worker(part: str, library: str, size: dict[str, int], small: bool, timeout: float) -> dict[str, Any]:
    """Run :func:`worker` in a subprocess; a timeout or a crash becomes a ``failed`` entry."""
    WORK.mkdir(parents=True, exist_ok=True)
    out = WORK / f"{part}_{library}{'_small' if small else ''}.{'npz' if part == 'search' else 'json'}"
    out.unlink(missing_ok=True)
    cmd = [sys.executable, __file__, "--worker", part, "--library", library, "--out", str(out)]
    cmd += ["--size", json.dumps(size)]
    capped = part == "community" and library == "sentence-transformers"

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (REFERENCE_MEMORY_CAP, REFERENCE_MEMORY_CAP))

    load = os.getloadavg()[0]
    print(f"[{part}] {library} {size} (load {load:.1f}) ...", file=sys.stderr, flush=True)
    started = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, preexec_fn=cap if capped else None
        )
    except subprocess.TimeoutExpired:
        return {"failed": f"no result within the {timeout:.0f} s timeout", "load_avg_1m_at_start": load}
    entry: dict[str, Any] = {"load_avg_1m_at_start": round(load, 2)}
    if capped:
        entry["address_space_cap_gib"] = REFERENCE_MEMORY_CAP >> 30
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        entry["failed"] = f"exit code {proc.returncode} after {time.perf_counter() - started:.0f} s: {tail}"
        return entry
    entry.update(json.loads(proc.stdout.strip().splitlines()[-1]))
    entry["output"] = str(out.relative_to(ROOT))
    return entry


# --------------------------------------------------------------------------------------------- checking


def compare_hits(path_a: Path, path_b: Path, tol: float = 1e-6) -> dict[str, int]:
    """Compare two top-k results row by row; a differing id is allowed only among tied scores."""
    a, b = np.load(path_a), np.load(path_b)
    identical = tie_only = mismatched = 0
    for ids_a, sc_a, ids_b, sc_b in zip(a["ids"], a["scores"], b["ids"], b["scores"], strict=True):
        if np.array_equal(ids_a, ids_b) and np.allclose(sc_a, sc_b, atol=tol, rtol=0):
            identical += 1
            continue
        same_scores = np.allclose(sc_a, sc_b, atol=tol, rtol=0)
        differ = np.flatnonzero(ids_a != ids_b)
        tied = all(
            np.sum(np.abs(sc_a - sc_a[i]) <= tol) > 1 or abs(sc_a[i] - sc_a[-1]) <= tol for i in differ
        )
        if same_scores and tied:
            tie_only += 1
        else:
            mismatched += 1
    return {
        "rows_identical": identical,
        "rows_differing_only_in_ties": tie_only,
        "rows_mismatched": mismatched,
    }


def compare_communities(path_a: Path, path_b: Path) -> dict[str, Any]:
    """Compare two community lists; members in another order (near-tied scores) are counted apart."""
    a, b = json.loads(path_a.read_text()), json.loads(path_b.read_text())
    as_sets = {frozenset(c) for c in a} == {frozenset(c) for c in b}
    reordered = sum(x != y and set(x) == set(y) and x[0] == y[0] for x, y in zip(a, b, strict=False))
    return {
        "identical": a == b,
        "same_communities_as_sets": as_sets,
        "communities": len(a),
        "same_centre_members_in_another_order": reordered,
    }


# ----------------------------------------------------------------------------------------------- parts


def part_scale(part: str, small: bool, timeout: float) -> dict[str, Any]:
    size = SIZES[part][1 if small else 0]
    runs = {library: run_worker(part, library, size, small, timeout) for library in LIBRARIES}
    result: dict[str, Any] = {"size": {**size, "dim": DIM}, "runs": runs}
    if all("output" in r for r in runs.values()):
        ours, ref = (ROOT / runs[lib]["output"] for lib in LIBRARIES)
        result["agreement"] = compare_hits(ours, ref) if part == "search" else compare_communities(ours, ref)
    if part == "search":
        result["settings"] = {"top_k": TOP_K, "query_chunk_size": 100, "corpus_chunk_size": 500000}
    else:
        result["settings"] = {"threshold": THRESHOLD, "min_community_size": MIN_COMMUNITY, "batch_size": 1024}
    return result


def _scifact_embeddings(small: bool) -> tuple[np.ndarray, np.ndarray, list[str], list[str], dict]:
    """SciFact test queries and corpus embedded with all-MiniLM-L6-v2, cached under ``results/``."""
    from sentencekit.readers import read_beir

    corpus, queries, relevant = read_beir(SCIFACT, split="test")
    query_ids = sorted(queries)
    doc_ids = list(corpus)
    if small:  # the first 50 queries over their relevant documents and 1,000 others
        query_ids = query_ids[:50]
        wanted = {d for q in query_ids for d in relevant[q]}
        doc_ids = [d for d in doc_ids if d in wanted] + [d for d in doc_ids[:1000] if d not in wanted]
    cache = _scifact_cache(small)
    files = [cache / "corpus.npy", cache / "queries.npy", cache / "ids.json"]
    if all(f.exists() for f in files) and json.loads(files[2].read_text()) == [doc_ids, query_ids]:
        print(f"[quantized] using cached embeddings in {cache}", file=sys.stderr)
        return np.load(files[0]), np.load(files[1]), doc_ids, query_ids, relevant

    from sentencekit import SentenceTransformer

    model = SentenceTransformer(str(MODEL), device="cpu")
    start = time.perf_counter()
    corpus_emb = model.encode([corpus[d] for d in doc_ids], batch_size=32, show_progress_bar=True)
    query_emb = model.encode([queries[q] for q in query_ids], batch_size=32)
    print(f"[quantized] encoded in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    cache.mkdir(parents=True, exist_ok=True)
    np.save(files[0], corpus_emb)
    np.save(files[1], query_emb)
    files[2].write_text(json.dumps([doc_ids, query_ids]))
    return corpus_emb, query_emb, doc_ids, query_ids, relevant


def _scifact_cache(small: bool) -> Path:
    return RESULTS / f"scifact_minilm{'_small' if small else ''}"


def recall_at_k(hits: list[list[dict]], doc_ids: list[str], query_ids: list[str], relevant: dict) -> float:
    """Mean over queries of the share of a query's relevant documents found in its hits."""
    shares = []
    for query_id, row in zip(query_ids, hits, strict=True):
        found = {doc_ids[h["corpus_id"]] for h in row[:TOP_K]}
        shares.append(len(found & relevant[query_id]) / len(relevant[query_id]))
    return float(np.mean(shares))


def part_quantized(small: bool) -> dict[str, Any]:
    from sentencekit.quantization import quantize_embeddings, semantic_search_quantized
    from sentencekit.util import semantic_search

    corpus, queries, doc_ids, query_ids, relevant = _scifact_embeddings(small)
    binary = quantize_embeddings(corpus, "ubinary")
    assert isinstance(binary, np.ndarray)

    def timed(fn: Any) -> tuple[float, float]:
        start = time.perf_counter()
        hits = fn()
        return recall_at_k(hits, doc_ids, query_ids, relevant), time.perf_counter() - start

    rows: dict[str, dict[str, Any]] = {}
    recall, wall = timed(lambda: semantic_search(queries, corpus, top_k=TOP_K))
    rows["float32 exact"] = {"recall@10": recall, "search_s": wall, "index_bytes": corpus.nbytes}
    exact = recall
    # the reference's rescoring: float query . candidate bits
    for multiplier in (None, 2, 4, 8, 16):
        name = "ubinary, no rescore" if multiplier is None else f"ubinary + rescore x{multiplier} (bits)"
        recall, wall = timed(
            lambda m=multiplier: semantic_search_quantized(
                queries, binary, "ubinary", top_k=TOP_K, rescore=m is not None, rescore_multiplier=m or 1
            )
        )
        rows[name] = {"recall@10": recall, "search_s": wall, "index_bytes": binary.nbytes}
    # rescoring with the float rows of the candidates, read from the .npy on disk (a memory map)
    on_disk = np.load(_scifact_cache(small) / "corpus.npy", mmap_mode="r")
    for multiplier in (2, 4):
        recall, wall = timed(
            lambda m=multiplier: semantic_search_quantized(
                queries, binary, "ubinary", top_k=TOP_K, rescore_multiplier=m, rescore_embeddings=on_disk
            )
        )
        name = f"ubinary + rescore x{multiplier} (float rows, memory-mapped)"
        rows[name] = {"recall@10": recall, "search_s": wall, "index_bytes": binary.nbytes}
    for backend in ("faiss", "usearch"):
        try:
            from sentencekit import ann

            search = getattr(ann, f"semantic_search_{backend}")
            recall, wall = timed(
                lambda s=search: s(
                    queries,
                    corpus_embeddings=binary,
                    corpus_precision="ubinary",
                    top_k=TOP_K,
                    rescore_multiplier=4,
                )[0]
            )
        except ImportError as exc:
            print(f"[quantized] {backend} skipped: {exc}", file=sys.stderr)
            continue
        rows[f"ubinary + rescore x4 (bits; {backend}, exact)"] = {
            "recall@10": recall,
            "search_s": wall,
            "index_bytes": binary.nbytes,
        }
    for row in rows.values():
        row["recall_vs_exact"] = round(row["recall@10"] / exact, 4)
        row["recall@10"] = round(row["recall@10"], 4)
        row["search_s"] = round(row["search_s"], 3)
    return {
        "data": f"SciFact test: {len(query_ids)} queries, {len(doc_ids)} documents",
        "model": "all-MiniLM-L6-v2 (sentencekit.SentenceTransformer)",
        "memory_ratio_float32_to_binary": round(corpus.nbytes / binary.nbytes, 1),
        "rows": rows,
    }


# ------------------------------------------------------------------------------------------- reporting


def machine() -> dict[str, Any]:
    model = "unknown"
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next(ln.split(":", 1)[1].strip() for ln in lscpu.splitlines() if ln.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        pass
    import torch

    return {
        "cpu_model": model,
        "cpu_cores_usable": len(os.sched_getaffinity(0)),
        "torch_threads": torch.get_num_threads(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "note": "a machine shared with other jobs: see load_avg_1m_at_start per run",
    }


def table(results: dict[str, Any]) -> str:
    lines = []
    for part in ("search", "community"):
        if part not in results:
            continue
        r = results[part]
        lines += [
            f"\n**{part}** {r['size']} {r.get('agreement', '')}\n",
            "| library | wall (s) | peak beyond inputs (MiB) | load |",
            "|---|---|---|---|",
        ]
        for library, run in r["runs"].items():
            if "failed" in run:
                lines.append(f"| {library} | failed: {run['failed']} | | |")
            else:
                lines.append(
                    f"| {library} | {run['wall_s']} | {run['peak_beyond_inputs_mib']} | "
                    f"{run['load_avg_1m_at_start']} |"
                )
    if "quantized" in results:
        q = results["quantized"]
        lines += [
            f"\n**quantized** {q['data']}\n",
            "| search | Recall@10 | vs exact | index (bytes) | time (s) |",
        ]
        lines.append("|---|---|---|---|---|")
        for name, row in q["rows"].items():
            lines.append(
                f"| {name} | {row['recall@10']} | {row['recall_vs_exact']} | {row['index_bytes']:,} | "
                f"{row['search_s']} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--part", choices=["search", "community", "quantized", "all"], default="all")
    parser.add_argument("--small", action="store_true", help="small sizes, for a quick dry run")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per library run (default 1800)")
    parser.add_argument("--json", type=Path, help="where to merge the results")
    parser.add_argument("--worker", choices=["search", "community"], help=argparse.SUPPRESS)
    parser.add_argument("--library", choices=LIBRARIES, help=argparse.SUPPRESS)
    parser.add_argument("--size", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        print(json.dumps(worker(args.worker, args.library, json.loads(args.size), args.out)))
        return

    path = args.json or RESULTS / f"search_scale{'_small' if args.small else ''}.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    parts = ["search", "community", "quantized"] if args.part == "all" else [args.part]
    for part in parts:
        started = time.strftime("%Y-%m-%d %H:%M:%S")
        results[part] = (
            part_quantized(args.small) if part == "quantized" else part_scale(part, args.small, args.timeout)
        )
        results[part]["started"] = started
        results[part]["command"] = (
            f"python benchmarks/search_scale.py --part {part}{' --small' if args.small else ''}"
        )
        results["machine"] = machine()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))


if __name__ == "__main__":
    main()
