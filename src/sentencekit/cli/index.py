"""``sentencekit index``: build a vector index from a corpus file, search it, describe it.

Examples::

    sentencekit index build corpus.jsonl --model all-MiniLM-L6-v2 --out scifact.idx --backend faiss-hnsw
    sentencekit index search scifact.idx "statins lower cholesterol" -k 5
    sentencekit index search scifact.idx "stem cells" --filter title="Some title" --json
    sentencekit index info scifact.idx

A corpus is a ``.txt`` or ``.jsonl`` file, read by :func:`sentencekit.corpus_files.read_corpus` (the
fields are chosen with ``--text-field``, default ``text``, and ``--id-field``). The other fields of a JSON
object become the item's metadata, which ``--filter`` matches.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from sentencekit.cli.main import plain_help
from sentencekit.cli.options import add_fast_option, model_backend
from sentencekit.corpus_files import read_corpus
from sentencekit.errors import InvalidInputError

__all__ = ["add_parser"]

logger = logging.getLogger(__name__)

BACKENDS = ("exact", "faiss-flat", "faiss-ivf", "faiss-hnsw", "faiss-ivfpq", "binary", "int8")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``index build|search|info`` to the ``sentencekit`` parser."""
    parser = subparsers.add_parser(
        "index",
        help="build, search and describe a vector index",
        description=plain_help(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(handler=lambda _args: _usage(parser))
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    build = commands.add_parser("build", help="encode a corpus and save an index")
    build.add_argument("corpus", type=Path, help=".txt (one document per line) or .jsonl corpus")
    build.add_argument(
        "--model", required=True, help="local folder, Hub id, or name such as all-MiniLM-L6-v2"
    )
    build.add_argument("--out", type=Path, required=True, help="index folder to write (replaced atomically)")
    build.add_argument(
        "--backend", choices=BACKENDS, default="exact", help="search structure (default: exact)"
    )
    build.add_argument(
        "--metric", choices=("cosine", "dot"), default="cosine", help="score (default: cosine)"
    )
    build.add_argument("--text-field", default="text", help="JSONL field holding the text (default: text)")
    build.add_argument(
        "--id-field", help="JSONL field holding the id (default: _id if present, else 0, 1, ...)"
    )
    build.add_argument("--nlist", type=_positive, help="IVF clusters (default: 4 * sqrt(n))")
    build.add_argument(
        "--nprobe", type=_positive, help="IVF clusters searched (default: max(32, nlist / 16))"
    )
    build.add_argument("--hnsw-m", type=_positive, default=32, help="HNSW graph degree (default: 32)")
    build.add_argument("--ef-search", type=_positive, default=64, help="HNSW search breadth (default: 64)")
    build.add_argument(
        "--batch-size", type=_positive, help="encoding batch size (default: the inference path's plan)"
    )
    build.add_argument("--device", help="torch device, e.g. cpu or cuda (default: best available)")
    add_fast_option(build)
    build.add_argument("--limit", type=_positive, help="index only the first N documents")
    build.set_defaults(handler=run_build)

    search = commands.add_parser("search", help="search a saved index with a text query")
    search.add_argument("path", type=Path, help="index folder")
    search.add_argument("query", help="the query text")
    search.add_argument("-k", type=_positive, default=10, help="results (default: 10)")
    search.add_argument(
        "--model", help="model to encode the query (default: the one the index was built with)"
    )
    search.add_argument("--filter", action="append", default=[], metavar="FIELD=VALUE", help="metadata match")
    search.add_argument("--json", action="store_true", help="print the hits as JSON")
    search.set_defaults(handler=run_search)

    info = commands.add_parser("info", help="print an index's backend, size and parameters as JSON")
    info.add_argument("path", type=Path, help="index folder")
    info.set_defaults(handler=run_info)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def run_build(args: argparse.Namespace) -> int:
    """Encode the corpus and save the index."""
    import time

    from sentencekit import SentenceTransformer
    from sentencekit.index import Index

    texts, ids, metadata = read_corpus(args.corpus, args.text_field, args.id_field, args.limit)
    if not texts:
        raise InvalidInputError(f"The corpus {args.corpus} holds no documents.")
    model = SentenceTransformer(args.model, device=args.device, backend=model_backend(args))
    index = Index(
        model,
        backend=args.backend,
        metric=args.metric,
        nlist=args.nlist,
        nprobe=args.nprobe,
        hnsw_m=args.hnsw_m,
        ef_search=args.ef_search,
        model_name=args.model,
    )
    start = time.perf_counter()
    embeddings = model.encode(
        texts, batch_size=args.batch_size, show_progress_bar=None, convert_to_numpy=True
    )
    encoded = time.perf_counter()
    index.add(embeddings, ids=ids, metadata=metadata)
    index.save(args.out)
    logger.info(
        "Encoded in %.1f s (%s), indexed and saved in %.1f s",
        encoded - start,
        model.inference_path,
        time.perf_counter() - encoded,
    )
    print(json.dumps(index.info(), indent=2))
    return 0


def _parse_filter(pairs: list[str]) -> dict[str, Any] | None:
    if not pairs:
        return None
    out: dict[str, Any] = {}
    for pair in pairs:
        field, sep, value = pair.partition("=")
        if not sep:
            raise InvalidInputError(f"--filter {pair!r} is not FIELD=VALUE.")
        try:  # numbers, booleans and null match their JSON types; anything else is a string
            out[field] = json.loads(value)
        except json.JSONDecodeError:
            out[field] = value
    return out


def run_search(args: argparse.Namespace) -> int:
    """Search a saved index and print the hits."""
    from sentencekit import SentenceTransformer
    from sentencekit.index import Index

    index = Index.load(args.path)
    name = args.model or index.model_name
    if name is None:
        raise InvalidInputError(f"The index at {args.path} records no model; pass --model.")
    index.model = SentenceTransformer(name)
    hits = index.search(args.query, k=args.k, filter=_parse_filter(args.filter))[0]
    if args.json:
        print(json.dumps(hits, indent=2))
    else:
        for rank, hit in enumerate(hits, start=1):
            print(f"{rank:>3}  {hit['score']:.4f}  {hit['id']}")
    return 0


def run_info(args: argparse.Namespace) -> int:
    """Print the index's :meth:`~sentencekit.index.Index.info` as JSON."""
    from sentencekit.index import Index

    print(json.dumps(Index.load(args.path).info(), indent=2))
    return 0
