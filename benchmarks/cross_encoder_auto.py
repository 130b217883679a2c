"""How far and how fast CrossEncoder(backend="auto") scores from the exact default, on a trained reranker.

Usage:
    python benchmarks/cross_encoder_auto.py MODEL_FOLDER [--queries 20] [--per-query 50] [--rounds 2]
        [--int8] [--json results/cross_encoder_auto.json]

MODEL_FOLDER is a trained one-label cross-encoder, e.g. the STSb reranker that ``python
benchmarks/train_cross_encoder.py --epochs 1 --only ours --save-dir results/minilm-stsb-cross-encoder``
writes (no trained reranker is available offline). Both paths load in one process: the exact default (ONNX
Runtime fp32) and ``backend="auto"`` (whatever this CPU gets; the log and the JSON name it); ``--int8`` adds
the int8 files by name, OpenVINO's (``onnx/model_int8_weights.onnx``) and ONNX Runtime's
(``onnx/model_qint8_avx512_vnni.onnx``). Reported for each path against the default:

* the probe pairs' largest logit change over the spread of fp32's (what ``"auto"`` checks at load);
* STSb test (1,379 pairs): each path's Spearman with the gold scores, and the largest logit change over the
  spread of the default's logits;
* SciFact, the first ``--queries`` test claims x the first ``--per-query`` abstracts: each path's time (best
  of ``--rounds``, runs alternating between paths), the Spearman between its scores and the default's per
  claim (the lowest), the share of top-10 places the two rankings share, and how many claims keep the same
  top 1.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from cross_encoder_speed import machine
from scipy.stats import spearmanr
from train_common import read_stsb

from sentencekit.backends.fast_scorer import PROBE_PAIRS, logit_error
from sentencekit.cross_encoder import CrossEncoder
from sentencekit.readers import read_beir

ROOT = Path(__file__).resolve().parents[1]
SCIFACT = ROOT.parent / "shared" / "data" / "scifact" / "beir"


def _scores(model: CrossEncoder, pairs: list[tuple[str, str]]) -> np.ndarray:
    logits = model.predict(pairs, batch_size=32, activation_fn=torch.nn.Identity())  # raw logits
    return np.asarray(logits, dtype=np.float64).reshape(-1)


def _change(candidate: np.ndarray, reference: np.ndarray) -> float:
    return logit_error(torch.from_numpy(candidate[:, None]), torch.from_numpy(reference[:, None]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--per-query", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--int8", action="store_true", help="also the int8 files, by name")
    parser.add_argument("--json", type=Path, default=ROOT / "results" / "cross_encoder_auto.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("sentencekit.backends").setLevel(logging.INFO)  # which path "auto" took, and why

    model = str(args.model)
    paths = {
        "default": CrossEncoder(model, device="cpu"),
        "auto": CrossEncoder(model, device="cpu", backend="auto"),
    }
    if args.int8:
        for backend, file in (
            ("openvino", "model_int8_weights.onnx"),
            ("onnx", "model_qint8_avx512_vnni.onnx"),
        ):
            options = {"file_name": f"onnx/{file}"}
            paths[f"{backend} int8"] = CrossEncoder(
                model, device="cpu", backend=backend, model_kwargs=options
            )
    result: dict[str, Any] = {
        "machine": {**machine(), "load_average_before": os.getloadavg()},
        "model": model,
        "paths": {name: encoder.inference_path for name, encoder in paths.items()},
    }
    probe = {name: _scores(encoder, list(PROBE_PAIRS)) for name, encoder in paths.items()}
    first, second, gold = read_stsb("test")
    stsb = {name: _scores(encoder, list(zip(first, second, strict=True))) for name, encoder in paths.items()}

    corpus, queries, _ = read_beir(SCIFACT, split="test")
    claims = list(queries.values())[: args.queries]
    docs = list(corpus.values())[: args.per_query]
    pairs = [(claim, doc) for claim in claims for doc in docs]
    seconds: dict[str, list[float]] = {name: [] for name in paths}
    scifact: dict[str, np.ndarray] = {}
    for round_ in range(args.rounds):
        for name in list(paths) if round_ % 2 == 0 else reversed(paths):
            start = time.perf_counter()
            scifact[name] = _scores(paths[name], pairs).reshape(len(claims), len(docs))
            seconds[name].append(round(time.perf_counter() - start, 2))

    result["stsb_pairs"], result["scifact_pairs"] = len(gold), len(pairs)
    result["stsb_logit_spread"] = float(stsb["default"].max() - stsb["default"].min())
    a = scifact["default"]
    for name in paths:
        b = scifact[name]
        top10 = [
            len(set(np.argsort(-x)[:10]) & set(np.argsort(-y)[:10])) / 10 for x, y in zip(a, b, strict=True)
        ]
        result[name] = {
            "probe_logit_change": _change(probe[name], probe["default"]),
            "stsb_spearman": float(spearmanr(stsb[name], gold).statistic),
            "stsb_logit_change": _change(stsb[name], stsb["default"]),
            "scifact_seconds": seconds[name],
            "scifact_speedup_best": round(min(seconds["default"]) / min(seconds[name]), 2),
            "scifact_logit_change": _change(b.reshape(-1), a.reshape(-1)),
            "scifact_spearman_with_default_lowest": float(
                min(spearmanr(x, y).statistic for x, y in zip(a, b, strict=True))
            ),
            "scifact_top10_shared": float(np.mean(top10)),
            "scifact_same_top1": int(
                sum(int(np.argmax(x) == np.argmax(y)) for x, y in zip(a, b, strict=True))
            ),
        }
    result["machine"]["load_average_after"] = os.getloadavg()
    text = json.dumps(result, indent=2)
    print(text)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
