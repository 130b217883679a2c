"""Embedding parity with sentence-transformers on real STSb sentences, for one or more models.

Usage:
    python benchmarks/parity.py --model all-MiniLM-L6-v2 --model all-mpnet-base-v2 --n 2000 \
        --json results/parity.json

For each model and setting (plain, normalize, truncate_dim=128, a prompt, batch sizes 1/7/32, token
embeddings,
int8/uint8/binary/ubinary), encodes the same sentences with sentencekit and with the reference and reports the
max |difference| per component (floats) or the number of differing codes (quantized).
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "stsb" / "stsb-en-test.csv"

FLOAT_SETTINGS = {
    "plain": {},
    "normalize_embeddings": {"normalize_embeddings": True},
    "truncate_dim=128": {"truncate_dim": 128},
    "prompt='query: '": {"prompt": "query: "},
    "batch_size=1 (first 200)": {"batch_size": 1},
    "batch_size=7": {"batch_size": 7},
}  # "plain" is batch_size=32, the default


def load_sentences(n: int) -> list[str]:
    with open(DATA, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    return list(dict.fromkeys(s for r in rows for s in r[:2]))[:n]


def compare(model_name: str, texts: list[str]) -> dict:
    import sentence_transformers as st
    import torch

    from sentencekit import SentenceTransformer
    from sentencekit.hub import resolve_model_path

    folder = str(resolve_model_path(model_name))
    ours = SentenceTransformer(folder, device="cpu")
    ref = st.SentenceTransformer(folder, device="cpu")
    report: dict = {"model": model_name, "folder": folder, "sentences": len(texts), "settings": {}}
    for label, kwargs in FLOAT_SETTINGS.items():
        subset = texts[:200] if kwargs.get("batch_size") == 1 else texts
        start = time.perf_counter()
        a = ours.encode(subset, **kwargs)
        mid = time.perf_counter()
        b = ref.encode(subset, **kwargs)
        end = time.perf_counter()
        report["settings"][label] = {
            "max_abs_diff": float(np.abs(a - b).max()),
            "sentencekit_s": round(mid - start, 2),
            "reference_s": round(end - mid, 2),
        }
        print(
            f"{model_name:22s} {label:28s} max|diff| {report['settings'][label]['max_abs_diff']:.2e}",
            flush=True,
        )
    a_tok = ours.encode(texts[:200], output_value="token_embeddings")
    b_tok = ref.encode(texts[:200], output_value="token_embeddings")
    shapes_equal = all(x.shape == y.shape for x, y in zip(a_tok, b_tok, strict=True))
    report["settings"]["token_embeddings (first 200)"] = {
        "max_abs_diff": max(float(torch.abs(x - y).max()) for x, y in zip(a_tok, b_tok, strict=True)),
        "shapes_equal": shapes_equal,
    }
    # encode(precision=p) is quantize_embeddings(encode(), p) in both libraries: quantize each side's floats
    # (tests/test_parity_minilm.py checks the end-to-end calls on MiniLM).
    from sentencekit import quantize_embeddings

    ours_floats, ref_floats = ours.encode(texts), ref.encode(texts)
    for precision in ("int8", "uint8", "binary", "ubinary"):
        qa = np.asarray(quantize_embeddings(ours_floats, precision=precision)).astype(np.int32)
        qb = np.asarray(st.quantize_embeddings(ref_floats, precision=precision)).astype(np.int32)
        same_quantizer = bool(
            (
                np.asarray(quantize_embeddings(ref_floats, precision=precision))
                == st.quantize_embeddings(ref_floats, precision=precision)
            ).all()
        )
        report["settings"][f"precision={precision}"] = {
            "differing_codes": int((qa != qb).sum()),
            "codes": int(qa.size),
            "max_step": int(np.abs(qa - qb).max()),
            "quantizer_identical_on_same_floats": same_quantizer,
        }
        print(
            f"{model_name:22s} precision={precision:9s} differing codes {int((qa != qb).sum())} / {qa.size}"
        )
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description="sentencekit vs sentence-transformers embedding parity")
    parser.add_argument("--model", action="append", default=None)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    texts = load_sentences(args.n)
    results = {
        "machine": f"{platform.machine()} {platform.processor() or ''} python {platform.python_version()}",
        "reports": [compare(m, texts) for m in (args.model or ["all-MiniLM-L6-v2"])],
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
