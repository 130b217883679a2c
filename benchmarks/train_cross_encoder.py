"""Train a cross-encoder from all-MiniLM-L6-v2 on STSb train with sentencekit's fit() and the reference's.

Usage:
    python benchmarks/train_cross_encoder.py [--epochs 4] [--limit N] [--test-limit N] [--batch-size 16]
        [--warmup-ratio 0.1] [--lr 2e-5] [--seed 42] [--only both|ours|reference]
        [--save-dir results/minilm-stsb-cross-encoder] [--output results/train_cross_encoder.json]

A CrossEncoder with one label is built on all-MiniLM-L6-v2's BERT weights (the classification head is new; the
global torch seed is set to --seed before each model is built, so both heads start equal) and trained on
(sentence1, sentence2) pairs with label score/5 and binary cross-entropy on the logits (the default loss of
both libraries' fit for one label). Both sides use a DataLoader shuffled by a generator seeded with --seed,
AdamW at --lr, linear warm-up over --warmup-ratio of the steps then linear decay. The reference trains with
its classic loop (``CrossEncoder.old_fit``; its ``fit`` needs the accelerate package).

Reported: test Spearman (each library's CrossEncoderCorrelationEvaluator, stsb-en-test) after training, the
gap, training wall and CPU time. Our trained model is saved to --save-dir (keep it outside git: results/ is
ignored), then loaded by the reference CrossEncoder, which must give the same scores on the test pairs.
"""

from __future__ import annotations

import argparse
import gc
import logging
import math
from pathlib import Path

import numpy as np
import torch
from train_common import (
    ROOT,
    add_common_arguments,
    machine,
    seeded_loader,
    stsb_training_data,
    timed,
    write_json,
)

BI_ENCODER_BASELINE = 0.8203  # all-MiniLM-L6-v2 as a bi-encoder on stsb-en-test (shared/data/README.md)


def build(side: str, folder: Path, seed: int):
    torch.manual_seed(seed)
    if side == "ours":
        from sentencekit.cross_encoder import CrossEncoder
    else:
        from sentence_transformers.cross_encoder import CrossEncoder
    return CrossEncoder(str(folder), num_labels=1, device="cpu")


def correlation(side: str, model, test) -> float:
    first, second, scores = test
    pairs = [[a, b] for a, b in zip(first, second, strict=True)]
    if side == "ours":
        from sentencekit.evaluation import CrossEncoderCorrelationEvaluator
    else:
        from sentence_transformers.cross_encoder.evaluation import CrossEncoderCorrelationEvaluator
    evaluator = CrossEncoderCorrelationEvaluator(pairs, scores, name="stsb-test")
    metrics = evaluator(model)
    return float(metrics[evaluator.primary_metric])


def train(side: str, folder: Path, examples, args, record: dict):
    model = build(side, folder, args.seed)
    loader = seeded_loader(examples, args.batch_size, args.seed)
    warmup = math.ceil(len(loader) * args.epochs * args.warmup_ratio)
    fit = model.fit if side == "ours" else model.old_fit
    torch.manual_seed(args.seed)
    with timed(record, "train"):
        fit(
            loader,
            epochs=args.epochs,
            warmup_steps=warmup,
            optimizer_params={"lr": args.lr},
            show_progress_bar=args.progress,
        )
    record["steps"] = len(loader) * args.epochs
    record["warmup_steps"] = warmup
    return model


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_common_arguments(parser, epochs=4)
    parser.add_argument("--save-dir", type=Path, default=ROOT / "results" / "minilm-stsb-cross-encoder")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    folder, examples, test = stsb_training_data(args.limit, args.test_limit)
    result: dict = {
        "task": "cross-encoder from all-MiniLM-L6-v2 on STSb (BCE on score/5)",
        "train_rows": len(examples),
        "test_pairs": len(test[0]),
        "bi_encoder_baseline_spearman": BI_ENCODER_BASELINE,
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k != "output"},
        "machine_before": machine(),
    }
    sides = ["ours", "reference"] if args.only == "both" else [args.only]
    for side in sides:
        record = result[side] = {"trainer": "fit" if side == "ours" else "old_fit"}
        model = train(side, folder, examples, args, record)
        record["test_spearman"] = correlation(side, model, test)
        if side == "ours":
            model.save(str(args.save_dir))
            record["saved_to"] = str(args.save_dir)
            pairs = list(zip(test[0], test[1], strict=True))
            ours_scores = np.asarray(model.predict(pairs, batch_size=64))
            from sentence_transformers.cross_encoder import CrossEncoder as ReferenceCrossEncoder

            loaded = ReferenceCrossEncoder(str(args.save_dir), device="cpu")
            theirs = np.asarray(loaded.predict(pairs, batch_size=64))
            record["reference_loads_saved_model_max_score_difference"] = float(
                np.abs(ours_scores - theirs).max()
            )
        del model
        gc.collect()
    if len(sides) == 2:
        ours, ref = result["ours"], result["reference"]
        result["spearman_gap"] = abs(ours["test_spearman"] - ref["test_spearman"])
        result["train_wall_ratio_ours_over_reference"] = round(
            ours["train"]["wall_s"] / ref["train"]["wall_s"], 3
        )
    result["machine_after"] = machine()
    write_json(args.output, result)


if __name__ == "__main__":
    main()
