"""``sentencekit rerank``: order the documents of a file by a cross-encoder's score for a query.

Examples::

    sentencekit rerank "How many people live in Berlin?" docs.txt --model cross-encoder/ms-marco-MiniLM-L6-v2
    sentencekit rerank "statins and cholesterol" corpus.jsonl --column text -k 10 --json
    sentencekit rerank "statins and cholesterol" corpus.jsonl --model ./my-reranker --fast

Documents come from .txt (one per line), .jsonl, .csv, .tsv or .parquet files (text in --column). The
score is the cross-encoder's (a probability for the usual one-label rerankers).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sentencekit.cli.main import plain_help
from sentencekit.cli.options import (
    add_fast_option,
    add_input_options,
    add_model_options,
    model_backend,
    positive_int,
)

__all__ = ["add_parser"]


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``rerank`` to the ``sentencekit`` parser."""
    parser = subparsers.add_parser(
        "rerank",
        help="order the documents of a file for a query with a cross-encoder",
        description=plain_help(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("query", help="the query text")
    parser.add_argument("documents", type=Path, help="file of documents: .txt, .jsonl, .csv, .tsv, .parquet")
    parser.add_argument("-k", type=positive_int, help="print only the K best (default: all)")
    parser.add_argument("--json", action="store_true", help="print the ranking as JSON")
    add_input_options(parser)
    add_model_options(
        parser,
        default=None,
        required=True,
        model_help="cross-encoder: folder, Hub id or name",
        embedding=False,
    )
    add_fast_option(parser, cross_encoder=True)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Score every (query, document) pair and print the documents best first."""
    from sentencekit.cli.files import read_texts
    from sentencekit.cli.search import shorten
    from sentencekit.errors import InvalidInputError

    documents = read_texts(args.documents, args.column, header=not args.no_header)
    if not documents:
        raise InvalidInputError(f"{args.documents} holds no documents.")

    from sentencekit.cross_encoder import CrossEncoder

    model = CrossEncoder(args.model, device=args.device, backend=model_backend(args))
    try:
        ranked = model.rank(
            args.query,
            documents,
            top_k=args.k,
            batch_size=args.batch_size,
            show_progress_bar=not args.quiet and sys.stderr.isatty(),
        )
    except ValueError as exc:  # a classifier with several labels cannot rank; the message says so
        raise InvalidInputError(str(exc)) from exc
    if args.json:
        hits = [
            {"index": int(h["corpus_id"]), "score": float(h["score"]), "text": documents[int(h["corpus_id"])]}
            for h in ranked
        ]
        print(json.dumps(hits, indent=2))
        return 0
    for rank, hit in enumerate(ranked, start=1):
        print(f"{rank:>3}. {float(hit['score']):.4f}  {shorten(documents[int(hit['corpus_id'])])}")
    return 0
