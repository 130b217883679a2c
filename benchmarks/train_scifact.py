"""Fine-tune all-MiniLM-L6-v2 for SciFact retrieval: MultipleNegativesRankingLoss with mined hard negatives.

Usage:
    python benchmarks/train_scifact.py [--epochs 1] [--batch-size 32] [--lr 2e-5] [--warmup-ratio 0.1]
        [--num-negatives 1] [--relative-margin 0.05] [--seed 42]
        [--limit N] [--corpus-limit N] [--test-queries N] [--output results/train_scifact.json]

Training pairs are the SciFact train queries (qrels/train.tsv) with each of their relevant abstracts (title
and text). ``sentencekit.hard_negatives.mine_hard_negatives`` adds, for every pair, the --num-negatives
abstracts the base model ranks highest for the query that are not relevant to it and score below the
positive by at least --relative-margin (the NV-Retriever setting), giving (anchor, positive, negative) rows.
The model is trained on them with SentenceTransformerTrainer, MultipleNegativesRankingLoss and the
``no_duplicates`` batch sampler (so that no text is its own in-batch negative), then SciFact test nDCG@10
(InformationRetrievalEvaluator, cosine) is compared with the base model's.

``--limit``, ``--corpus-limit`` and ``--test-queries`` shrink the run for a quick check: fewer training
pairs; a corpus of the judged abstracts plus the first N others; the first N test queries.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

from train_common import DATA, machine, timed, write_json

SCIFACT = DATA / "scifact" / "beir"


def load(args):
    from sentencekit.readers import read_beir

    train = read_beir(SCIFACT, "train")
    test = read_beir(SCIFACT, "test")
    test_queries = dict(sorted(test.queries.items(), key=lambda kv: int(kv[0]))[: args.test_queries])
    test_relevant = {q: test.relevant_docs[q] for q in test_queries}
    pairs = [
        (train.queries[q], d)
        for q in sorted(train.relevant_docs, key=int)
        for d in sorted(train.relevant_docs[q])
        if d in train.corpus
    ][: args.limit]
    corpus = train.corpus
    if args.corpus_limit is not None:
        keep = {d for _, d in pairs} | {d for docs in test_relevant.values() for d in docs}
        keep |= set(list(corpus)[: args.corpus_limit])
        corpus = {d: text for d, text in corpus.items() if d in keep}
    anchors = [q for q, _ in pairs]
    positives = [corpus[d] for _, d in pairs]
    return corpus, anchors, positives, test_queries, test_relevant


def ndcg(model, queries, corpus, relevant, name: str) -> dict:
    from sentencekit.evaluation import InformationRetrievalEvaluator

    evaluator = InformationRetrievalEvaluator(
        queries, corpus, relevant, name=name, batch_size=64, write_csv=False
    )
    metrics = evaluator(model)
    prefix = f"{name}_cosine_"
    return {key.removeprefix(prefix): value for key, value in metrics.items() if key.startswith(prefix)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-5)
    parser.add_argument("--warmup-ratio", type=float, default=0.1)
    parser.add_argument("--num-negatives", type=int, default=1)
    parser.add_argument("--relative-margin", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--limit", type=int, help="train on the first N (query, abstract) pairs only")
    parser.add_argument("--corpus-limit", type=int, help="corpus: judged abstracts plus the first N others")
    parser.add_argument("--test-queries", type=int, help="evaluate on the first N test queries only")
    parser.add_argument("--progress", action="store_true", help="show the training progress bar")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from sentencekit import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentencekit.hard_negatives import mine_hard_negatives
    from sentencekit.losses import MultipleNegativesRankingLoss

    corpus, anchors, positives, test_queries, test_relevant = load(args)
    result: dict = {
        "task": "SciFact: MultipleNegativesRankingLoss with mined hard negatives, all-MiniLM-L6-v2",
        "train_pairs": len(anchors),
        "corpus_size": len(corpus),
        "test_queries": len(test_queries),
        "settings": {k: v for k, v in vars(args).items() if k != "output"},
        "machine_before": machine(),
    }
    model = SentenceTransformer("all-MiniLM-L6-v2", device="cpu")
    with timed(result, "evaluate_before"):
        result["test_before"] = ndcg(model, test_queries, corpus, test_relevant, "scifact-test")
    with timed(result, "mining"):
        triplets = mine_hard_negatives(
            {"anchor": anchors, "positive": positives},
            model,
            corpus=list(corpus.values()),
            num_negatives=args.num_negatives,
            relative_margin=args.relative_margin,
            sampling_strategy="top",
            batch_size=64,
            verbose=False,
        )
    columns = dict(triplets) if not hasattr(triplets, "column_names") else triplets.to_dict()
    result["train_rows"] = len(next(iter(columns.values())))
    result["train_columns"] = list(columns)
    with tempfile.TemporaryDirectory() as scratch:
        args_ = SentenceTransformerTrainingArguments(
            output_dir=scratch,
            num_train_epochs=args.epochs,
            per_device_train_batch_size=args.batch_size,
            learning_rate=args.lr,
            warmup_ratio=args.warmup_ratio,
            weight_decay=0.01,
            seed=args.seed,
            batch_sampler="no_duplicates",
            save_strategy="no",
            disable_tqdm=not args.progress,
        )
        trainer = SentenceTransformerTrainer(
            model, args_, train_dataset=columns, loss=MultipleNegativesRankingLoss(model)
        )
        with timed(result, "train"):
            state = trainer.train()
    result["steps"] = state.global_step
    with timed(result, "evaluate_after"):
        result["test_after"] = ndcg(model, test_queries, corpus, test_relevant, "scifact-test")
    result["ndcg@10_gain"] = result["test_after"]["ndcg@10"] - result["test_before"]["ndcg@10"]
    result["machine_after"] = machine()
    write_json(args.output, result)


if __name__ == "__main__":
    main()
