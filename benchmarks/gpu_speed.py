"""GPU inference speed and accuracy: sentencekit vs the reference (sentence-transformers) on one CUDA device.

Two steps, because the GPU machine has no access to the model cache or ../shared:

    # here: write a bundle (the model with fp16-stored weights, ~45 MB, and the texts) into an ignored folder
    python benchmarks/gpu_speed.py bundle --model all-MiniLM-L6-v2 --out .gpu
    # on the GPU machine (the folder travels with the working tree):
    PYTHONPATH=src python benchmarks/gpu_speed.py run --bundle .gpu --json $OUT/gpu_speed.json

The bundle stores the weights in fp16 to fit the transfer limit; ``run`` widens them back to fp32 before
loading, so both libraries load the same fp32 folder (the weights are the model's, rounded to fp16).

Paths, each encoding the same texts in one process, alternating, best of ``--repeats`` runs after a warm-up:
the reference in fp32 (its default) and in fp16 (``model.half()``), sentencekit by default (fp16 autocast with
fp32 layer norms and pooling), sentencekit with ``gpu_precision="float32"`` (exact), all at batch size 32,
and the fp16 paths of both libraries again at batch size 256. Short texts: unique STSb test sentences; long
texts: SciFact abstracts (truncated at the model's max_seq_length). Per path: tokens/s, sentences/s, the ratio
to the reference fp32 and fp16 at the same batch size, max |diff| and min cosine to the reference's fp32
embeddings, and STSb test Spearman. A last check caps the process at a small share of GPU memory and encodes
the long texts in one huge batch: the out-of-memory back-off must finish it with the same embeddings.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def make_bundle(model_name: str, out: Path, n_long: int) -> None:
    """Write the model (fp16 weights) and the texts into ``out``."""
    import shutil

    import torch
    from safetensors.torch import load_file, save_file

    from sentencekit.hub import resolve_model_path

    folder = resolve_model_path(model_name)
    target = out / "model"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(folder, target, ignore=shutil.ignore_patterns("onnx", "*.bin", "openvino"))
    weights = target / "model.safetensors"
    tensors = load_file(str(weights))
    save_file(
        {k: v.to(torch.float16) if v.is_floating_point() else v for k, v in tensors.items()}, str(weights)
    )
    with open(DATA / "stsb" / "stsb-en-test.csv", encoding="utf-8", newline="") as f:
        rows = [(r[0], r[1], float(r[2])) for r in csv.reader(f)]
    long = []
    with open(DATA / "scifact" / "beir" / "corpus.jsonl", encoding="utf-8") as f:
        for line in f:
            text = json.loads(line)["text"].strip()
            if text:
                long.append(text)
            if len(long) == n_long:
                break
    (out / "texts.json").write_text(json.dumps({"stsb": rows, "long": long}), encoding="utf-8")


def widen(bundle: Path) -> Path:
    """Copy the bundle's model to /tmp with fp32 weights; return that folder."""
    import shutil

    from safetensors.torch import load_file, save_file

    target = Path("/tmp/gpu_speed_model")
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(bundle / "model", target)
    tensors = load_file(str(target / "model.safetensors"))
    save_file(
        {k: v.float() if v.is_floating_point() else v for k, v in tensors.items()},
        str(target / "model.safetensors"),
    )
    return target


def _spearman(emb: np.ndarray, index: dict[str, int], rows: list[tuple[str, str, float]]) -> float:
    from scipy.stats import spearmanr

    a = emb[[index[r[0]] for r in rows]]
    b = emb[[index[r[1]] for r in rows]]
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return float(spearmanr(cos, [r[2] for r in rows]).statistic)


def run(bundle: Path, repeats: int, json_path: Path | None, device: str, limit: int | None) -> dict[str, Any]:
    """Time every path on the GPU; return (and write) the results."""
    import torch
    from sentence_transformers import SentenceTransformer as Reference

    from sentencekit import SentenceTransformer

    folder = widen(bundle)
    data = json.loads((bundle / "texts.json").read_text(encoding="utf-8"))
    rows = [tuple(r) for r in data["stsb"]]
    short = list(dict.fromkeys(s for r in rows for s in r[:2]))
    texts = {"short": short[:limit], "long": data["long"][:limit]}
    rows = [r for r in rows if r[0] in texts["short"] and r[1] in texts["short"]] if limit else rows
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

    ref32 = Reference(str(folder), device=device)
    ref16 = Reference(str(folder), device=device).half()
    ours = SentenceTransformer(str(folder), device=device)
    ours32 = SentenceTransformer(str(folder), device=device)
    ours32.gpu_precision = "float32"
    paths: dict[str, tuple[Any, int]] = {
        "reference fp32 (bs 32)": (ref32, 32),
        "reference fp16 (bs 32)": (ref16, 32),
        "sentencekit default fp16 (bs 32)": (ours, 32),
        "sentencekit fp32 (bs 32)": (ours32, 32),
        "reference fp16 (bs 256)": (ref16, 256),
        "sentencekit default fp16 (bs 256)": (ours, 256),
    }
    tok = ours.tokenizer
    info = {
        "gpu": torch.cuda.get_device_name(0) if device.startswith("cuda") else device,
        "torch": torch.__version__,
        "attention": getattr(ours.transformer.auto_model.config, "_attn_implementation", None),
        "model": str(bundle / "model"),
    }
    results: dict[str, Any] = {"machine": info, "repeats": repeats, "sets": {}}
    for set_name, items in texts.items():
        n_tokens = sum(
            len(ids) for ids in tok(items, truncation=True, max_length=ours.max_seq_length)["input_ids"]
        )
        times: dict[str, list[float]] = {name: [] for name in paths}
        outputs: dict[str, np.ndarray] = {}
        for name, (model, bs) in paths.items():  # warm-up (CUDA kernels, allocator)
            outputs[name] = np.asarray(model.encode(items, batch_size=bs), dtype=np.float32)
        names = list(paths)
        for r in range(repeats):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                model, bs = paths[name]
                sync()
                start = time.perf_counter()
                model.encode(items, batch_size=bs)
                sync()
                times[name].append(time.perf_counter() - start)
        base = outputs["reference fp32 (bs 32)"]
        index = {t: i for i, t in enumerate(items)}
        table = {}
        for name in names:
            best = min(times[name])
            emb = outputs[name]
            cos = (emb * base).sum(1) / (np.linalg.norm(emb, axis=1) * np.linalg.norm(base, axis=1))
            bs = paths[name][1]
            table[name] = {
                "seconds": best,
                "tokens_per_s": n_tokens / best,
                "sentences_per_s": len(items) / best,
                "max_abs_diff": float(np.abs(emb - base).max()),
                "min_cosine": float(cos.min()),
                "stsb_spearman": _spearman(emb, index, rows) if set_name == "short" else None,
                "batch_size": bs,
            }
        for name in names:
            bs = paths[name][1]
            table[name]["vs_reference_fp32_bs32"] = min(times["reference fp32 (bs 32)"]) / min(times[name])
            table[name][f"vs_reference_fp16_bs{bs}"] = min(times[f"reference fp16 (bs {bs})"]) / min(
                times[name]
            )
        results["sets"][set_name] = {"texts": len(items), "tokens": n_tokens, "paths": table}
        logging.info("%s: %s", set_name, json.dumps(table, indent=1))

    if device.startswith("cuda"):
        # out-of-memory back-off: a tiny share of the card, one huge batch of long texts
        long = [f"{i}: {t}" for i, t in enumerate(texts["long"])]
        expected = ours32.encode(long, batch_size=32)  # fp32: different padding changes only float rounding
        torch.cuda.empty_cache()
        total = torch.cuda.get_device_properties(0).total_memory
        torch.cuda.set_per_process_memory_fraction(min(1.0, 2 * 2**30 / total))
        splits: list[str] = []
        counter = logging.Handler()
        counter.emit = lambda record: splits.append(record.getMessage())  # type: ignore[method-assign]
        logging.getLogger("sentencekit.encoding.gpu").addHandler(counter)
        start = time.perf_counter()
        got = ours32.encode(long, batch_size=len(long))
        results["oom_backoff"] = {
            "memory_cap_gib": 2.0,
            "texts": len(long),
            "batch_size": len(long),
            "seconds": time.perf_counter() - start,
            "max_abs_diff_vs_bs32": float(np.abs(got - expected).max()),
            "batches_split": len(splits),
            "first_split": splits[0] if splits else None,
        }
        torch.cuda.set_per_process_memory_fraction(1.0)
    if json_path is not None:
        json_path.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="step", required=True)
    b = sub.add_parser("bundle")
    b.add_argument("--model", default="all-MiniLM-L6-v2")
    b.add_argument("--out", type=Path, default=Path(".gpu"))
    b.add_argument("--n-long", type=int, default=3000)
    r = sub.add_parser("run")
    r.add_argument("--bundle", type=Path, default=Path(".gpu"))
    r.add_argument("--repeats", type=int, default=3)
    r.add_argument("--json", type=Path, default=None)
    r.add_argument("--device", default="cuda")
    r.add_argument("--limit", type=int, default=None, help="first N texts of each set (a quick check)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.step == "bundle":
        make_bundle(args.model, args.out, args.n_long)
    else:
        run(args.bundle, args.repeats, args.json, args.device, args.limit)


if __name__ == "__main__":
    main()
