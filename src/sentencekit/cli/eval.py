"""``sentencekit eval``: score a model on a standard benchmark file and print (and save) the metrics.

Examples::

    sentencekit eval sts stsb/stsb-en-test.csv --model all-MiniLM-L6-v2
    sentencekit eval retrieval scifact/beir --split test --model all-MiniLM-L6-v2 --output scifact.json
    sentencekit eval pairs quora_duplicates/test.tsv --format quora --model all-MiniLM-L6-v2
    sentencekit eval triplets snli/snli_test_triplets.tsv --model all-MiniLM-L6-v2 --limit 500
    sentencekit eval paraphrase-mining quora_duplicates/test.tsv --model all-MiniLM-L6-v2

The metrics are printed as a table (the primary metric is marked with ``*``); ``--output`` also writes them,
with the settings of the run, as JSON.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sentencekit.cli.main import plain_help

__all__ = ["add_parser"]

SIMILARITIES = ("cosine", "dot", "euclidean", "manhattan")


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``eval`` and its sub-commands (one per task) to the ``sentencekit`` parser."""
    parser = subparsers.add_parser(
        "eval",
        help="evaluate a model on a benchmark file (STS, retrieval, pairs, triplets, paraphrase mining)",
        description=plain_help(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(handler=lambda _args: _usage(parser))
    tasks = parser.add_subparsers(title="tasks", metavar="TASK")

    sts = tasks.add_parser("sts", help="Spearman/Pearson on a sentence1,sentence2,score CSV")
    sts.add_argument("file", type=Path, help="CSV with sentence1, sentence2 and a gold score per row")
    _add_similarities(sts)
    _add_common(sts)
    sts.set_defaults(handler=run_sts)

    retrieval = tasks.add_parser("retrieval", help="nDCG, MRR, MAP, recall... on a BEIR folder")
    retrieval.add_argument("folder", type=Path, help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/")
    retrieval.add_argument("--split", default="test", help="qrels split to evaluate (default: test)")
    retrieval.add_argument("--query-prompt", help='text prepended to every query, e.g. "query: "')
    retrieval.add_argument("--corpus-prompt", help='text prepended to every document, e.g. "passage: "')
    retrieval.add_argument("--min-score", type=int, default=1, help="lowest qrels score that is relevant")
    _add_common(retrieval)
    retrieval.set_defaults(handler=run_retrieval)

    pairs = tasks.add_parser("pairs", help="best-threshold accuracy, F1 and AP on 0/1-labelled pairs")
    pairs.add_argument("file", type=Path, help="pair TSV")
    pairs.add_argument("--format", choices=("quora", "mrpc"), default="quora", help="file layout")
    _add_similarities(pairs)
    _add_common(pairs)
    pairs.set_defaults(handler=run_pairs)

    triplets = tasks.add_parser("triplets", help="accuracy on (anchor, positive, negative) triplets")
    triplets.add_argument("file", type=Path, help="TSV with anchor, positive and negative columns")
    _add_similarities(triplets)
    _add_common(triplets)
    triplets.set_defaults(handler=run_triplets)

    mining = tasks.add_parser(
        "paraphrase-mining", help="mine duplicate pairs from the questions of a pair file"
    )
    mining.add_argument("file", type=Path, help="pair TSV; pairs labelled 1 are the known duplicates")
    mining.add_argument("--format", choices=("quora", "mrpc"), default="quora", help="file layout")
    mining.add_argument("--top-k", type=_positive, default=100, help="partners proposed per sentence")
    _add_common(mining)
    mining.set_defaults(handler=run_paraphrase_mining)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", required=True, help="local folder, Hub id, or name such as all-MiniLM-L6-v2"
    )
    parser.add_argument("--device", help="torch device, e.g. cpu or cuda (default: best available)")
    parser.add_argument("--batch-size", type=_positive, default=32, help="encoding batch size (default: 32)")
    parser.add_argument("--truncate-dim", type=_positive, help="keep only the first N embedding dimensions")
    parser.add_argument(
        "--limit", type=_positive, help="evaluate only the first N rows (queries for retrieval)"
    )
    parser.add_argument("--name", default="", help="prefix of the metric names")
    parser.add_argument("--output", type=Path, help="also write the metrics as JSON to this file")


def _add_similarities(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--similarity",
        action="append",
        choices=SIMILARITIES,
        help="similarity function to report (repeatable; default: the model's own)",
    )


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _common_options(args: argparse.Namespace) -> dict[str, Any]:
    """The evaluator settings every task takes from the command line."""
    return {"name": args.name, "batch_size": args.batch_size, "truncate_dim": args.truncate_dim}


def _limit(limit: int | None, *columns: list[Any]) -> list[list[Any]]:
    return [column[:limit] for column in columns]


# ------------------------------------------------------------------------------------------------ handlers


def _reports_bad_files(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn a reader's ValueError (malformed file, missing column) into an error message and exit code 2."""

    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except ValueError as exc:
            print(f"sentencekit: error: {exc}", file=sys.stderr)
            return 2

    return run


@_reports_bad_files
def run_sts(args: argparse.Namespace) -> int:
    """Evaluate on an STS CSV."""
    from sentencekit.evaluation import EmbeddingSimilarityEvaluator
    from sentencekit.readers import read_sts_csv

    sentences1, sentences2, scores = _limit(args.limit, *read_sts_csv(args.file))
    evaluator = EmbeddingSimilarityEvaluator(
        sentences1,
        sentences2,
        scores,
        similarity_fn_names=args.similarity,
        **_common_options(args),
    )
    return _evaluate(args, "sts", evaluator, {"file": str(args.file), "pairs": len(scores)})


@_reports_bad_files
def run_retrieval(args: argparse.Namespace) -> int:
    """Evaluate on a BEIR folder."""
    from sentencekit.evaluation import InformationRetrievalEvaluator
    from sentencekit.readers import read_beir

    corpus, queries, relevant_docs = read_beir(args.folder, split=args.split, min_score=args.min_score)
    if args.limit is not None:
        (query_ids,) = _limit(args.limit, list(queries))
        queries = {qid: queries[qid] for qid in query_ids}
    evaluator = InformationRetrievalEvaluator(
        queries,
        corpus,
        relevant_docs,
        **_common_options(args),
        query_prompt=args.query_prompt,
        corpus_prompt=args.corpus_prompt,
        accuracy_at_k=[1, 3, 5, 10],
        precision_recall_at_k=[1, 3, 5, 10, 100],
        map_at_k=[100],
    )
    details = {
        "folder": str(args.folder),
        "split": args.split,
        "queries": len(queries),
        "documents": len(corpus),
    }
    return _evaluate(args, "retrieval", evaluator, details)


@_reports_bad_files
def run_pairs(args: argparse.Namespace) -> int:
    """Evaluate on a 0/1-labelled pair file."""
    from sentencekit.evaluation import BinaryClassificationEvaluator

    sentences1, sentences2, labels = _limit(args.limit, *_read_pairs(args.file, args.format))
    evaluator = BinaryClassificationEvaluator(
        sentences1,
        sentences2,
        labels,
        **_common_options(args),
        similarity_fn_names=args.similarity,
    )
    return _evaluate(args, "pairs", evaluator, {"file": str(args.file), "pairs": len(labels)})


@_reports_bad_files
def run_triplets(args: argparse.Namespace) -> int:
    """Evaluate on a triplet TSV."""
    from sentencekit.evaluation import TripletEvaluator
    from sentencekit.readers import read_triplet_tsv

    anchors, positives, negatives = _limit(args.limit, *read_triplet_tsv(args.file))
    evaluator = TripletEvaluator(
        anchors,
        positives,
        negatives,
        **_common_options(args),
        similarity_fn_names=args.similarity,
    )
    return _evaluate(args, "triplets", evaluator, {"file": str(args.file), "triplets": len(anchors)})


@_reports_bad_files
def run_paraphrase_mining(args: argparse.Namespace) -> int:
    """Mine paraphrases among the sentences of a pair file; the pairs labelled 1 are the known duplicates."""
    from sentencekit.evaluation import ParaphraseMiningEvaluator

    sentences1, sentences2, labels = _limit(args.limit, *_read_pairs(args.file, args.format))
    ids: dict[str, str] = {}
    for text in sentences1 + sentences2:
        ids.setdefault(text, str(len(ids)))
    duplicates = [
        (ids[a], ids[b]) for a, b, label in zip(sentences1, sentences2, labels, strict=True) if label == 1
    ]
    evaluator = ParaphraseMiningEvaluator(
        {sentence_id: text for text, sentence_id in ids.items()},
        duplicates_list=duplicates,
        top_k=args.top_k,
        **_common_options(args),
    )
    details = {"file": str(args.file), "sentences": len(ids), "duplicates": evaluator.total_num_duplicates}
    return _evaluate(args, "paraphrase-mining", evaluator, details)


def _read_pairs(path: Path, layout: str) -> Any:
    from sentencekit.readers import read_mrpc, read_quora_duplicates

    return read_mrpc(path) if layout == "mrpc" else read_quora_duplicates(path)


# ------------------------------------------------------------------------------------------------ running


def load_model(name: str, device: str | None) -> Any:
    """Load the model to evaluate (a separate function so tests can substitute one)."""
    from sentencekit import SentenceTransformer

    return SentenceTransformer(name, device=device)


def _evaluate(args: argparse.Namespace, task: str, evaluator: Any, details: dict[str, Any]) -> int:
    model = load_model(args.model, args.device)
    start = time.perf_counter()
    metrics = evaluator(model)
    seconds = time.perf_counter() - start
    print(_table(metrics, evaluator.primary_metric))
    settings = ", ".join(f"{key}={value}" for key, value in details.items())
    print(f"\n{task} ({settings}): evaluated in {seconds:.1f} s", file=sys.stderr)
    if args.output is not None:
        report = {
            "task": task,
            "model": args.model,
            **details,
            "primary_metric": evaluator.primary_metric,
            "metrics": metrics,
            "seconds": round(seconds, 3),
        }
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


def _table(metrics: dict[str, float], primary: str | None) -> str:
    width = max((len(key) for key in metrics), default=6)
    lines = [f"  {'metric':<{width}}  value", f"  {'-' * width}  ------"]
    for key, value in metrics.items():
        marker = "*" if key == primary else " "
        lines.append(f"{marker} {key:<{width}}  {value:.4f}")
    return "\n".join(lines)
