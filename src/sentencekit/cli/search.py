"""``sentencekit search``: the nearest texts of a file, or items of a saved index, for one or more queries.

Examples::

    sentencekit search "How do vaccines work?" --corpus docs.txt -k 5
    sentencekit search "stem cells" "statins" --corpus corpus.jsonl --column text --json
    sentencekit search --queries questions.txt --corpus docs.csv --column body --cache docs.sqlite
    sentencekit search "stem cells" --index scifact.idx -k 3

With --corpus the file is embedded on each run (--cache keeps its embeddings between runs) and searched
exactly; with --index the saved index (from `sentencekit index build`) is searched with the model it was
built with, unless --model names another.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from sentencekit.cli.main import plain_help
from sentencekit.cli.options import (
    DEFAULT_MODEL,
    add_input_options,
    add_model_options,
    model_backend,
    positive_int,
)

__all__ = ["add_parser", "shorten"]


def shorten(text: str, width: int = 100) -> str:
    """One line of at most ``width`` characters for a terminal."""
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``search`` to the ``sentencekit`` parser."""
    parser = subparsers.add_parser(
        "search",
        help="find the nearest texts of a file (or items of an index) for queries",
        description=plain_help(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("query", nargs="*", help="query texts")
    parser.add_argument("--queries", type=Path, help="file of queries (same formats as --corpus)")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--corpus", type=Path, help="file of texts to search: .txt, .jsonl, .csv, .tsv, .parquet"
    )
    where.add_argument("--index", type=Path, help="index folder saved by `sentencekit index build`")
    parser.add_argument("-k", type=positive_int, default=5, help="results per query (default: 5)")
    add_input_options(parser)
    add_model_options(
        parser,
        default=None,
        model_help=f"embedding model (default: the index's own model, else {DEFAULT_MODEL})",
    )
    parser.add_argument(
        "--cache", help="embedding cache for the corpus: a SQLite file, :memory: or redis:// URL"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.set_defaults(handler=run)


def _queries(args: argparse.Namespace) -> list[str]:
    from sentencekit.cli.files import read_texts
    from sentencekit.errors import InvalidInputError

    queries = list(args.query)
    if args.queries is not None:
        queries += read_texts(args.queries, args.column, header=not args.no_header)
    if not queries:
        raise InvalidInputError("No query: pass query texts, or --queries FILE.")
    return queries


def run(args: argparse.Namespace) -> int:
    """Search and print the hits."""
    queries = _queries(args)
    results = _search_index(args, queries) if args.index is not None else _search_corpus(args, queries)
    if args.json:
        print(
            json.dumps(
                [{"query": q, "hits": hits} for q, hits in zip(queries, results, strict=True)], indent=2
            )
        )
        return 0
    for query, hits in zip(queries, results, strict=True):
        print(f"Query: {shorten(query)}")
        for rank, hit in enumerate(hits, start=1):
            label = hit.get("text") or (hit.get("metadata") or {}).get("title") or ""
            shown = shorten(str(label)) if label else ""
            print(f"  {rank:>2}. {hit['score']:.4f}  {shown}  [{hit['id']}]")
    return 0


def _search_corpus(args: argparse.Namespace, queries: list[str]) -> list[list[dict[str, Any]]]:
    from sentencekit.cli.files import read_texts
    from sentencekit.errors import InvalidInputError

    corpus = read_texts(args.corpus, args.column, header=not args.no_header)
    if not corpus:
        raise InvalidInputError(f"{args.corpus} holds no texts.")

    from sentencekit import SentenceTransformer
    from sentencekit.search import semantic_search
    from sentencekit.similarity import cos_sim

    model = SentenceTransformer(args.model or DEFAULT_MODEL, device=args.device, backend=model_backend(args))
    progress = not args.quiet and sys.stderr.isatty()
    corpus_emb = model.encode_document(
        corpus,
        batch_size=args.batch_size,
        cache=args.cache,
        show_progress_bar=progress,
        convert_to_tensor=True,
    )
    query_emb = model.encode_query(queries, batch_size=args.batch_size, convert_to_tensor=True)
    score = cos_sim if model.similarity_fn_name == "cosine" else model.similarity
    found = semantic_search(query_emb, corpus_emb, top_k=args.k, score_function=score)
    return [
        [
            {"id": hit["corpus_id"], "score": float(hit["score"]), "text": corpus[int(hit["corpus_id"])]}
            for hit in hits
        ]
        for hits in found
    ]


def _search_index(args: argparse.Namespace, queries: list[str]) -> list[list[dict[str, Any]]]:
    from sentencekit import SentenceTransformer
    from sentencekit.index import Index

    index = Index.load(args.index)
    name = args.model or index.model_name or DEFAULT_MODEL
    index.model = SentenceTransformer(name, device=args.device, backend=model_backend(args))
    return index.search(queries, k=args.k)
