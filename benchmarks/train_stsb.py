"""Fine-tune all-MiniLM-L6-v2 on STSb train with sentencekit's fit() and the reference's, in one run.

Usage:
    python benchmarks/train_stsb.py --loss cosent|cosine|matryoshka [--limit N] [--test-limit N]
        [--epochs 1] [--batch-size 16] [--warmup-ratio 0.1] [--lr 2e-5] [--seed 42]
        [--only both|ours|reference] [--reference-api auto|old_fit|fit] [--reference-first]
        [--output results/train_stsb_cosent.json]

Both sides train the same base weights on the same rows in the same order (one DataLoader each, shuffled by a
torch.Generator seeded with --seed), labels score/5, the same loss, AdamW at --lr with linear warm-up over
--warmup-ratio of the steps and linear decay, weight decay 0.01, gradient clipping at 1, and the global torch
seed set to --seed before each run (dropout). The reference trains with its classic loop, ``old_fit``, unless
``fit`` is asked for (that one needs the accelerate package) -- with ``auto``, fit when accelerate is
installed. Test Spearman (cosine, stsb-en-test) is measured the same way for both before and after training;
with --loss matryoshka (MatryoshkaLoss over CoSENTLoss, dims 384/256/128/64) at each of those dimensions.
Training wall and CPU time are recorded for both, with the load average (the machine may be shared).
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import logging
import math
from pathlib import Path

import torch
from train_common import (
    add_common_arguments,
    machine,
    read_stsb,
    seeded_loader,
    sts_spearman,
    stsb_training_data,
    timed,
    write_json,
)

DIMS = [384, 256, 128, 64]


def make_loss(losses, model, kind: str):
    if kind == "cosent":
        return losses.CoSENTLoss(model)
    if kind == "cosine":
        return losses.CosineSimilarityLoss(model)
    return losses.MatryoshkaLoss(model, losses.CoSENTLoss(model), matryoshka_dims=DIMS)


def train(side: str, folder: Path, examples, args, record: dict) -> dict:
    if side == "ours":
        from sentencekit import SentenceTransformer, losses
    else:
        from sentence_transformers import SentenceTransformer
        from sentence_transformers.sentence_transformer import losses
    torch.manual_seed(args.seed)
    model = SentenceTransformer(str(folder), device="cpu")
    loader = seeded_loader(examples, args.batch_size, args.seed)
    warmup = math.ceil(len(loader) * args.epochs * args.warmup_ratio)
    options = dict(
        epochs=args.epochs,
        warmup_steps=warmup,
        optimizer_params={"lr": args.lr},
        show_progress_bar=args.progress,
    )
    fit = model.fit
    if side == "reference":
        api = args.reference_api
        if api == "auto":
            api = "fit" if importlib.util.find_spec("accelerate") else "old_fit"
        record["reference_api"] = api
        fit = model.fit if api == "fit" else model.old_fit
    loss = make_loss(losses, model, args.loss)
    torch.manual_seed(args.seed)
    with timed(record, "train"):
        fit(train_objectives=[(loader, loss)], **options)
    record["steps"] = len(loader) * args.epochs
    record["warmup_steps"] = warmup
    test = read_stsb("test", args.test_limit)
    record["test_spearman_after"] = sts_spearman(
        model, *test, dims=DIMS if args.loss == "matryoshka" else None
    )
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--loss", choices=("cosent", "cosine", "matryoshka"), default="cosent")
    add_common_arguments(parser, epochs=1)
    parser.add_argument("--reference-api", choices=("auto", "old_fit", "fit"), default="auto")
    parser.add_argument(
        "--reference-first", action="store_true", help="train the reference first (default: ours first)"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from sentencekit import SentenceTransformer

    folder, examples, test = stsb_training_data(args.limit, args.test_limit)
    result: dict = {
        "task": "STSb fine-tuning of all-MiniLM-L6-v2",
        "loss": args.loss,
        "train_rows": len(examples),
        "test_pairs": len(test[0]),
        "settings": {k: v for k, v in vars(args).items() if k != "output"},
        "machine_before": machine(),
    }
    base = SentenceTransformer(str(folder), device="cpu")
    result["test_spearman_before"] = sts_spearman(
        base, *test, dims=DIMS if args.loss == "matryoshka" else None
    )
    del base
    sides = ["ours", "reference"] if args.only == "both" else [args.only]
    if args.reference_first:
        sides.reverse()
    result["order"] = sides
    trained = {}
    for side in sides:
        result[side] = {}
        trained[side] = train(side, folder, examples, args, result[side])
        gc.collect()
    if len(trained) == 2:
        ours, ref = result["ours"], result["reference"]
        if args.loss == "matryoshka":
            gap = {d: abs(ours["test_spearman_after"][d] - ref["test_spearman_after"][d]) for d in DIMS}
            result["spearman_gap_per_dim"] = gap
        else:
            result["spearman_gap"] = abs(ours["test_spearman_after"] - ref["test_spearman_after"])
        result["train_wall_ratio_ours_over_reference"] = round(
            ours["train"]["wall_s"] / ref["train"]["wall_s"], 3
        )
        if trained["ours"].keys() == trained["reference"].keys():
            result["max_weight_difference"] = max(
                float((trained["ours"][k].float() - trained["reference"][k].float()).abs().max())
                for k in trained["ours"]
            )
    result["machine_after"] = machine()
    write_json(args.output, result)


if __name__ == "__main__":
    main()
