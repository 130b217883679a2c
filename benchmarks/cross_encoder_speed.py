"""Cross-encoder predict() throughput: sentencekit vs the reference on the same weights, alternating runs.

Usage:
    python benchmarks/cross_encoder_speed.py [--queries 64] [--candidates first|minilm] [--per-query 100]
        [--max-pairs 0] [--rounds 2] [--batch-size 32] [--json results/cross_encoder_speed.json]

No trained cross-encoder is available offline, so the model is a realistic-size stand-in: the
all-MiniLM-L6-v2 BERT weights (6 layers, 384 wide, 512 positions) under a seeded random one-label head
(BertForSequenceClassification), written once to results/minilm-cross-encoder. Speed does not depend on what
the head learned.

Pairs are (query, candidate) for the first ``--queries`` SciFact test queries (BEIR format, read with
sentencekit.readers): the candidates are the first ``--per-query`` corpus documents (``first``), or each
query's top ``--per-query`` documents by all-MiniLM-L6-v2 cosine similarity (``minilm``; the corpus
embeddings are cached in results/). ``--max-pairs N`` scores a seeded random sample of N of those pairs, so
that a slow machine finishes in minutes; the sample keeps the length distribution.

Both libraries run their default exact path (float32, raw logits via an identity activation; sentencekit's
default is ONNX Runtime's fused fp32 graph when the onnx extra is installed) with the same batch size.
``--fast`` adds sentencekit's int8 path (``backend="onnx"``, ``model_qint8_avx512_vnni.onnx``) beside them,
``--torch`` its torch path and ``--auto`` its ``backend="auto"`` (OpenVINO bf16 on CPUs with AMX and the
``openvino`` extra, after its check; else the default). Runs alternate (ours, reference, then reference,
ours, ...) so that load from other jobs spreads over both; the JSON records every run (wall and process CPU
time), the median throughput of each side, their ratio, the largest score difference, the machine and the
load average before and after. On a shared machine the CPU-time ratio is the steadier figure: wall time also
counts the time other jobs hold the cores.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
SCIFACT = ROOT.parent / "shared" / "data" / "scifact" / "beir"
MODEL_DIR = ROOT / "results" / "minilm-cross-encoder"
logger = logging.getLogger("cross_encoder_speed")


def build_model(folder: Path) -> Path:
    """all-MiniLM-L6-v2's encoder under a seeded random one-label head, saved once as a plain HF folder."""
    if (folder / "config.json").is_file():
        return folder
    from transformers import AutoTokenizer, BertForSequenceClassification

    from sentencekit.hub import resolve_model_path

    source = resolve_model_path("all-MiniLM-L6-v2")
    torch.manual_seed(0)
    model = BertForSequenceClassification.from_pretrained(str(source), num_labels=1)
    model.save_pretrained(str(folder))
    AutoTokenizer.from_pretrained(str(source)).save_pretrained(str(folder))
    logger.info("Wrote the benchmark cross-encoder to %s", folder)
    return folder


def make_pairs(args: argparse.Namespace) -> list[tuple[str, str]]:
    from sentencekit.readers import read_beir

    corpus, queries, _ = read_beir(SCIFACT, split="test")
    query_texts = list(queries.values())[: args.queries]
    doc_texts = list(corpus.values())
    if args.candidates == "first":
        pairs = [(q, d) for q in query_texts for d in doc_texts[: args.per_query]]
    else:
        from sentencekit import SentenceTransformer
        from sentencekit.search import semantic_search

        bi = SentenceTransformer("all-MiniLM-L6-v2", device="cpu")
        cache = ROOT / "results" / "scifact_minilm_corpus.npy"
        if cache.is_file():
            corpus_emb = np.load(cache)
        else:
            corpus_emb = bi.encode(doc_texts, batch_size=64, normalize_embeddings=True)
            np.save(cache, corpus_emb)
        hits = semantic_search(
            bi.encode(query_texts, normalize_embeddings=True), corpus_emb, top_k=args.per_query
        )
        pairs = [
            (q, doc_texts[h["corpus_id"]]) for q, row in zip(query_texts, hits, strict=True) for h in row
        ]
    if args.max_pairs and args.max_pairs < len(pairs):
        keep = np.sort(np.random.default_rng(0).choice(len(pairs), args.max_pairs, replace=False))
        pairs = [pairs[i] for i in keep]
    return pairs


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=64)
    parser.add_argument("--per-query", type=int, default=100)
    parser.add_argument("--candidates", choices=["first", "minilm"], default="first")
    parser.add_argument("--max-pairs", type=int, default=0, help="score a random sample of this many pairs")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--json", default="results/cross_encoder_speed.json")
    parser.add_argument("--fast", action="store_true", help="also time sentencekit's int8 path")
    parser.add_argument("--torch", action="store_true", help="also time sentencekit's torch path")
    parser.add_argument("--auto", action="store_true", help="also time sentencekit's backend='auto'")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for name in ("transformers", "sentence_transformers", "sentencekit"):
        logging.getLogger(name).setLevel(logging.WARNING)

    from sentence_transformers.cross_encoder import CrossEncoder as Reference

    from sentencekit.cross_encoder import CrossEncoder

    (ROOT / "results").mkdir(exist_ok=True)
    folder = build_model(MODEL_DIR)
    pairs = make_pairs(args)
    ours = CrossEncoder(folder, device="cpu")
    ref = Reference(str(folder), device="cpu")
    extra = {}
    if args.torch:
        extra["sentencekit torch"] = CrossEncoder(folder, device="cpu", backend="torch")
    if args.fast:
        int8 = {"file_name": "onnx/model_qint8_avx512_vnni.onnx"}
        extra["sentencekit int8"] = CrossEncoder(folder, device="cpu", backend="onnx", model_kwargs=int8)
    if args.auto:
        extra["sentencekit auto"] = CrossEncoder(folder, device="cpu", backend="auto")
    logger.info("sentencekit default: %s", ours.inference_path)
    identity = torch.nn.Identity()
    tokens = [
        len(ids)
        for ids in ours.tokenizer(
            [p[0] for p in pairs],
            [p[1] for p in pairs],
            truncation="longest_first",
            max_length=ours.max_length,
        )["input_ids"]
    ]
    logger.info(
        "%d pairs, %.0f tokens on average (max_length %d)", len(pairs), np.mean(tokens), ours.max_length
    )

    def run_ours() -> np.ndarray:
        return ours.predict(
            pairs, batch_size=args.batch_size, activation_fn=identity, show_progress_bar=False
        )

    def run_ref() -> np.ndarray:
        return ref.predict(pairs, batch_size=args.batch_size, activation_fn=identity, show_progress_bar=False)

    def runner(model: Any) -> Any:
        return lambda: model.predict(
            pairs, batch_size=args.batch_size, activation_fn=identity, show_progress_bar=False
        )

    sides = {"sentencekit": run_ours, "reference": run_ref, **{k: runner(m) for k, m in extra.items()}}
    for model in extra.values():
        model.predict(pairs[:8], activation_fn=identity)
    ours.predict(pairs[:8], activation_fn=identity)  # warm-up outside the timings
    ref.predict(pairs[:8], activation_fn=identity)
    load_before = os.getloadavg()
    seconds: dict[str, list[float]] = {name: [] for name in sides}
    cpu_seconds: dict[str, list[float]] = {name: [] for name in sides}
    outputs: dict[str, np.ndarray] = {}
    for round_ in range(args.rounds):
        order = list(sides) if round_ % 2 == 0 else list(reversed(sides))
        for name in order:
            start, cpu_start = time.perf_counter(), time.process_time()
            outputs[name] = sides[name]()
            seconds[name].append(time.perf_counter() - start)
            cpu_seconds[name].append(time.process_time() - cpu_start)
            logger.info(
                "round %d %-17s %.1f s (%.1f pairs/s)",
                round_,
                name,
                seconds[name][-1],
                len(pairs) / seconds[name][-1],
            )
    load_after = os.getloadavg()

    throughput = {name: len(pairs) / statistics.median(times) for name, times in seconds.items()}
    ratio = throughput["sentencekit"] / throughput["reference"]
    per_round = [r / o for o, r in zip(seconds["sentencekit"], seconds["reference"], strict=True)]
    cpu_ratio = statistics.median(cpu_seconds["reference"]) / statistics.median(cpu_seconds["sentencekit"])
    diff = float(np.abs(outputs["sentencekit"] - outputs["reference"]).max())
    result = {
        "benchmark": "cross-encoder predict throughput, exact path (float32, raw logits)",
        "model": "all-MiniLM-L6-v2 encoder + seeded random 1-label head (BertForSequenceClassification)",
        "data": f"SciFact test: {args.queries} queries x {args.per_query} candidates ({args.candidates})",
        "pairs": len(pairs),
        "sampled_from": args.queries * args.per_query if args.max_pairs else None,
        "mean_tokens_per_pair": round(float(np.mean(tokens)), 1),
        "max_length": ours.max_length,
        "batch_size": args.batch_size,
        "rounds": args.rounds,
        "seconds": {name: [round(s, 2) for s in times] for name, times in seconds.items()},
        "pairs_per_second_median": {name: round(v, 2) for name, v in throughput.items()},
        "speedup_median": round(ratio, 3),
        "speedup_per_round": [round(r, 3) for r in per_round],
        # CPU time of this process (all threads): less sensitive than wall time to other jobs on the machine
        "cpu_seconds": {name: [round(s, 2) for s in times] for name, times in cpu_seconds.items()},
        "cpu_time_speedup_median": round(cpu_ratio, 3),
        "max_abs_logit_diff": diff,
        "inference_path": ours.inference_path,
        "other_sides": {
            name: {
                "inference_path": extra[name].inference_path,
                "speedup_median": round(throughput[name] / throughput["reference"], 3),
                "max_abs_logit_diff": float(np.abs(outputs[name] - outputs["reference"]).max()),
            }
            for name in extra
        },
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "machine": machine(),
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    logger.info(
        "speed-up %.2fx wall (per round %s), %.2fx CPU time, max |logit diff| %.2e -> %s",
        ratio,
        result["speedup_per_round"],
        cpu_ratio,
        diff,
        args.json,
    )
    for name, side in result["other_sides"].items():
        logger.info(
            "%s: %.2fx, max |logit diff| %.2e", name, side["speedup_median"], side["max_abs_logit_diff"]
        )


if __name__ == "__main__":
    main()
