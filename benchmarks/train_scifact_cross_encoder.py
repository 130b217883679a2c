"""Train a SciFact relevance cross-encoder: (claim, abstract) pairs labelled 1/0, negatives mined by MiniLM.

Usage:
    python benchmarks/train_scifact_cross_encoder.py [--base results/minilm-stsb-cross-encoder]
        [--epochs 1] [--batch-size 16] [--lr 2e-5] [--warmup-ratio 0.1] [--num-negatives 4]
        [--relative-margin 0.05] [--max-length 256] [--seed 42] [--limit N]
        [--save-dir results/minilm-scifact-cross-encoder] [--output results/train_scifact_cross_encoder.json]

Why: a cross-encoder trained on STSb scores paraphrase similarity, not whether an abstract supports a claim;
reranking SciFact with it makes the ranking worse (docs/cross_encoder.md). This script trains the relevance
model the reranking figure needs, from the STSb cross-encoder that train_cross_encoder.py saves (its pair head
is already trained; ``--base all-MiniLM-L6-v2`` starts from the bi-encoder's weights with a new head instead).

Data: every SciFact train query (qrels/train.tsv) with each relevant abstract (title and text) labelled 1,
and ``--num-negatives`` abstracts per pair that all-MiniLM-L6-v2 ranks highest for the query, are not relevant
to it, and score below the positive by at least ``--relative-margin``, labelled 0
(``mine_hard_negatives(output_format="labeled-pair")``). Training is ``CrossEncoder.fit`` with binary
cross-entropy on the logits, AdamW, linear warm-up and decay. Only train queries are used: the test queries
are left for ``scifact_rerank.py``.
"""

from __future__ import annotations

import argparse
import logging
import math
from pathlib import Path

import torch
from train_common import DATA, ROOT, machine, seeded_loader, timed, write_json

SCIFACT = DATA / "scifact" / "beir"


def training_pairs(limit: int | None) -> tuple[list[str], list[str], list[str]]:
    """(queries, positive abstracts, corpus) from SciFact train, in a fixed order."""
    from sentencekit.readers import read_beir

    train = read_beir(SCIFACT, "train")
    pairs = [
        (train.queries[q], train.corpus[d])
        for q in sorted(train.relevant_docs, key=int)
        for d in sorted(train.relevant_docs[q])
        if d in train.corpus
    ][:limit]
    return [q for q, _ in pairs], [d for _, d in pairs], list(train.corpus.values())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--base", default=str(ROOT / "results" / "minilm-stsb-cross-encoder"))
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-5)
    parser.add_argument("--warmup-ratio", type=float, default=0.1)
    parser.add_argument("--num-negatives", type=int, default=4)
    parser.add_argument("--relative-margin", type=float, default=0.05)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--limit", type=int, help="train on the first N (query, abstract) pairs only")
    parser.add_argument("--save-dir", type=Path, default=ROOT / "results" / "minilm-scifact-cross-encoder")
    parser.add_argument("--progress", action="store_true", help="show the training progress bar")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from sentencekit import CrossEncoder, InputExample, SentenceTransformer
    from sentencekit.hard_negatives import mine_hard_negatives

    queries, positives, corpus = training_pairs(args.limit)
    result: dict = {
        "task": "SciFact relevance cross-encoder (BCE on 1/0 labels, MiniLM-mined negatives)",
        "train_pairs": len(queries),
        "corpus_size": len(corpus),
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k != "output"},
        "machine_before": machine(),
    }
    bi_encoder = SentenceTransformer("all-MiniLM-L6-v2", device="cpu")
    with timed(result, "mining"):
        labelled = mine_hard_negatives(
            {"anchor": queries, "positive": positives},
            bi_encoder,
            corpus=corpus,
            num_negatives=args.num_negatives,
            relative_margin=args.relative_margin,
            sampling_strategy="top",
            output_format="labeled-pair",
            batch_size=64,
            verbose=False,
        )
    columns = labelled.to_dict() if hasattr(labelled, "to_dict") else dict(labelled)
    examples = [
        InputExample(texts=[query, text], label=float(label))
        for query, text, label in zip(columns["anchor"], columns["positive"], columns["label"], strict=True)
    ]
    result["train_rows"] = len(examples)
    result["positive_rows"] = int(sum(example.label for example in examples))
    del bi_encoder

    torch.manual_seed(args.seed)
    model = CrossEncoder(args.base, num_labels=1, max_length=args.max_length, device="cpu")
    loader = seeded_loader(examples, args.batch_size, args.seed)
    warmup = math.ceil(len(loader) * args.epochs * args.warmup_ratio)
    torch.manual_seed(args.seed)
    with timed(result, "train"):
        model.fit(
            loader,
            epochs=args.epochs,
            warmup_steps=warmup,
            optimizer_params={"lr": args.lr},
            show_progress_bar=args.progress,
        )
    result["steps"] = len(loader) * args.epochs
    model.save(str(args.save_dir))
    result["saved_to"] = str(args.save_dir)
    result["machine_after"] = machine()
    write_json(args.output, result)


if __name__ == "__main__":
    main()
