"""SparseEncoder encode() throughput: sentencekit vs the reference on the same SPLADE model, alternating runs.

Usage:
    python benchmarks/sparse_speed.py [--base all-MiniLM-L6-v2] [--rounds 3] [--json results/sparse.json]

No trained SPLADE model is available offline, so the model is a realistic-size stand-in: the base model's
encoder and WordPiece tokenizer (all-MiniLM-L6-v2: 6 layers, 384 wide; all-mpnet-base-v2: 12 layers, 768
wide) under a seeded, untrained masked-language head over its 30,522-token vocabulary, saved once and loaded
by both libraries. The head's bias is lowered so that SciFact abstracts get about ``--active-dims``
non-zero weights each (default 250), as trained SPLADE models give passages (one to a few hundred; queries
get tens); an untrained head would make ~29,000 of 30,522 weights non-zero, and the sparse output would
dominate the timings. The work per text (encoder, vocabulary head, pooling, sparse output) is a real SPLADE
model's; the values are not.

Texts: the 2 x 1,379 STSb test sentences and the first 500 (``--abstracts``) SciFact abstracts. Both
libraries run with batch size 32 and their default sparse COO output; ``--bf16`` adds both in bfloat16
(``model_kwargs={"torch_dtype": torch.bfloat16}``). The JSON records every run, the median texts/s of each
side, its ratio to the reference's fp32, the largest difference and smallest cosine (over rows with a weight)
against the reference's fp32 vectors, and the mean active dimensions.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
logger = logging.getLogger("sparse_speed")


def texts(abstracts: int) -> dict[str, list[str]]:
    """The STSb test sentences and the first ``abstracts`` SciFact abstracts (title and text)."""
    with open(DATA / "stsb" / "stsb-en-test.csv", encoding="utf-8") as f:
        rows = list(csv.reader(f))  # sentence1, sentence2, score; no header
    sentences = [r[0] for r in rows] + [r[1] for r in rows]
    with open(DATA / "scifact" / "beir" / "corpus.jsonl", encoding="utf-8") as f:
        docs = [json.loads(line) for line in f][:abstracts]
    return {"sentences": sentences, "abstracts": [f"{d['title']} {d['text']}" for d in docs]}


def build_splade_folder(base: str, folder: Path, active_dims: int, sample: list[str]) -> Path:
    """Save ``base``'s encoder and tokenizer under a seeded, untrained masked-language head.

    The head's bias is shifted so that the ``sample`` texts get about ``active_dims`` positive max-pooled
    logits each.
    """
    import transformers

    from sentencekit.hub import resolve_model_path

    source = resolve_model_path(base)
    config = transformers.AutoConfig.from_pretrained(str(source))
    torch.manual_seed(0)
    mlm = transformers.AutoModelForMaskedLM.from_config(config)
    encoder = transformers.AutoModel.from_pretrained(str(source))
    mlm.base_model.load_state_dict(encoder.state_dict(), strict=False)
    mlm.eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(source))
    with torch.inference_mode():
        batch = tokenizer(sample, padding=True, truncation=True, return_tensors="pt")
        logits = mlm(**batch).logits.masked_fill(batch["attention_mask"][..., None] == 0, -1e4)
        pooled = logits.amax(dim=1)
        shift = torch.quantile(pooled.flatten(), 1.0 - active_dims / pooled.shape[1])
        mlm.get_output_embeddings().bias -= shift
    mlm.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


def _min_cosine(embeddings: torch.Tensor, exact: torch.Tensor) -> float:
    """Smallest cosine between rows of ``embeddings`` and ``exact``, over rows where both have a weight."""
    dense = embeddings.to_dense().float()
    both = (dense.abs().sum(dim=1) > 0) & (exact.abs().sum(dim=1) > 0)
    return float(torch.nn.functional.cosine_similarity(dense[both], exact[both]).min())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="all-MiniLM-L6-v2")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--active-dims", type=int, default=250)
    parser.add_argument("--abstracts", type=int, default=500)
    parser.add_argument("--bf16", action="store_true", help="also run both libraries in bfloat16")
    parser.add_argument("--json", type=Path, default=ROOT / "results" / "sparse_speed.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for name in ("transformers", "sentence_transformers", "sentencekit"):
        logging.getLogger(name).setLevel(logging.ERROR)

    from sentence_transformers import SparseEncoder as RefEncoder

    from sentencekit.benchmarking.runner import machine
    from sentencekit.sparse_encoder import SparseEncoder

    inputs = texts(args.abstracts)
    with tempfile.TemporaryDirectory() as tmp:
        folder = build_splade_folder(
            args.base, Path(tmp) / "splade", args.active_dims, inputs["abstracts"][:64]
        )
        models = {
            "reference": RefEncoder(str(folder), device="cpu"),
            "sentencekit": SparseEncoder(str(folder), device="cpu"),
        }
        if args.bf16:
            half = {"torch_dtype": torch.bfloat16}
            models["reference bf16"] = RefEncoder(str(folder), device="cpu", model_kwargs=half)
            models["sentencekit bf16"] = SparseEncoder(str(folder), device="cpu", model_kwargs=half)
    sides: dict[str, Any] = {
        side: (lambda t, m=model: m.encode(t, batch_size=32, show_progress_bar=False))
        for side, model in models.items()
    }
    report: dict[str, Any] = {
        "base": args.base,
        "target_active_dims": args.active_dims,
        "machine": machine(),
        "torch_threads": torch.get_num_threads(),
        "load_average_before": os.getloadavg(),
    }
    for name, items in inputs.items():
        runs: dict[str, list[float]] = {side: [] for side in sides}
        outputs: dict[str, torch.Tensor] = {}
        for round_ in range(args.rounds):
            order = list(sides) if round_ % 2 == 0 else list(reversed(sides))
            for side in order:
                start = time.perf_counter()
                outputs[side] = sides[side](items)
                runs[side].append(len(items) / (time.perf_counter() - start))
        medians = {side: statistics.median(r) for side, r in runs.items()}
        exact = outputs["reference"].to_dense()
        result = {
            "texts": len(items),
            "texts_per_s": medians,
            "runs": runs,
            "ratio_vs_reference": {side: medians[side] / medians["reference"] for side in sides},
            "max_abs_diff_vs_reference": {
                side: float((out.to_dense().float() - exact).abs().max()) for side, out in outputs.items()
            },
            "min_cosine_vs_reference": {side: _min_cosine(out, exact) for side, out in outputs.items()},
            "mean_active_dims": {
                side: SparseEncoder.sparsity(out)["active_dims"] for side, out in outputs.items()
            },
            "max_weight": float(exact.max()),
        }
        if args.bf16:
            result["bf16_ratio"] = medians["sentencekit bf16"] / medians["reference bf16"]
        report[name] = result
        logger.info("%s (%d texts), largest weight %.2f:", name, len(items), result["max_weight"])
        for side in sides:
            logger.info(
                "  %-17s %7.1f texts/s (%.2fx the reference); max |diff| %.1e, min cosine %.5f; "
                "%.0f active dims",
                side,
                medians[side],
                result["ratio_vs_reference"][side],
                result["max_abs_diff_vs_reference"][side],
                result["min_cosine_vs_reference"][side],
                result["mean_active_dims"][side],
            )
    report["load_average_after"] = os.getloadavg()
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    logger.info("wrote %s", args.json)


if __name__ == "__main__":
    main()
