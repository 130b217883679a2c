"""``sentencekit encode``: embed every text of a file and write the embeddings to a file.

Examples::

    sentencekit encode docs.txt                                  # -> docs.npy, with all-MiniLM-L6-v2
    sentencekit encode docs.jsonl --column body --output docs.parquet
    sentencekit encode stsb-en-train.csv --no-header --column 0 --output s1.npy --normalize
    sentencekit encode queries.txt --model intfloat/e5-small-v2 --prompt-name query --output q.jsonl
    sentencekit encode docs.txt --precision int8 --cache embeddings.sqlite --output docs_int8.npy

Inputs: .txt (one text per line), .jsonl, .csv, .tsv, .parquet (text in --column). Outputs, by the suffix
of --output: .npy (the matrix, row i = text i), .jsonl ({"text", "embedding"} per line), .parquet (text and
embedding columns). A progress bar shows on a terminal.

A sparse model (a folder that SparseEncoder saved, e.g. SPLADE) writes .jsonl only, one line per text with
its non-zero weights: {"text", "embedding": {"indices", "values", "tokens"}} (the vocabulary ids, their
weights and tokens, heaviest first).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from sentencekit.cli.main import plain_help
from sentencekit.cli.options import add_input_options, add_model_options, model_backend, positive_int

__all__ = ["add_parser"]

logger = logging.getLogger(__name__)

PRECISIONS = ("float32", "int8", "uint8", "binary", "ubinary")


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``encode`` to the ``sentencekit`` parser."""
    parser = subparsers.add_parser(
        "encode",
        help="embed the texts of a file (txt, jsonl, csv, parquet) into npy, jsonl or parquet",
        description=plain_help(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("input", type=Path, help="file of texts: .txt, .jsonl, .csv, .tsv or .parquet")
    parser.add_argument(
        "--output",
        "-o",
        type=Path,
        help="embeddings file: .npy, .jsonl or .parquet (default: INPUT with .npy)",
    )
    add_input_options(parser)
    add_model_options(parser)
    parser.add_argument("--prompt-name", help="model prompt to prepend, e.g. query or document")
    parser.add_argument(
        "--precision", choices=PRECISIONS, default="float32", help="output type (default: float32)"
    )
    parser.add_argument("--normalize", action="store_true", help="scale embeddings to unit length")
    parser.add_argument("--truncate-dim", type=positive_int, help="keep only the first N dimensions")
    parser.add_argument(
        "--cache",
        help="embedding cache: SQLite file, :memory: or redis:// URL (texts seen before are not re-encoded)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Read the texts, encode them, write the file."""
    from sentencekit.cli.files import write_embeddings
    from sentencekit.errors import InvalidInputError

    if _is_sparse_model(args.model):
        return _encode_sparse(args)
    output: Path = args.output or args.input.with_suffix(".npy")
    texts = _read_input(args, output)

    from sentencekit import SentenceTransformer

    model = SentenceTransformer(args.model, device=args.device, backend=model_backend(args))
    if model.folder_settings.model_type == "SparseEncoder":  # fetched just now: on disk from here on
        return _encode_sparse(args)
    started = time.perf_counter()
    try:
        embeddings = model.encode(
            texts,
            prompt_name=args.prompt_name,
            batch_size=args.batch_size,
            precision=args.precision,
            normalize_embeddings=args.normalize,
            truncate_dim=args.truncate_dim,
            cache=args.cache,
            show_progress_bar=not args.quiet and sys.stderr.isatty(),
        )
    except ValueError as exc:  # e.g. an unknown --prompt-name: the message says what is valid
        raise InvalidInputError(str(exc)) from exc
    seconds = time.perf_counter() - started
    write_embeddings(output, embeddings, texts)
    logger.info("Encoded %d texts in %.1f s (%s)", len(texts), seconds, model.inference_path)
    if not args.quiet:
        print(
            f"Wrote {embeddings.shape[0]} x {embeddings.shape[1]} {embeddings.dtype} embeddings to {output}"
        )
    return 0


def _read_input(args: argparse.Namespace, output: Path) -> list[str]:
    """The input file's texts, once the output path is known to be writable and not the input."""
    from sentencekit.cli.files import check_output, read_texts
    from sentencekit.errors import InvalidInputError

    if output.resolve() == args.input.resolve():
        raise InvalidInputError(f"--output {output} is the input file; pass another --output.")
    check_output(output)
    texts = read_texts(args.input, args.column, header=not args.no_header)
    if not texts:
        raise InvalidInputError(f"{args.input} holds no texts.")
    return texts


def _is_sparse_model(name: str) -> bool:
    """Whether ``name`` is a folder (or a model already on disk) that a SparseEncoder saved.

    Nothing is downloaded here: the input file is checked before any model is fetched, and a sparse model that
    is not on disk yet is recognized once the dense path has fetched it.
    """
    from sentencekit.hub import resolve_model_path
    from sentencekit.loading import load_settings

    try:
        folder = resolve_model_path(name, local_files_only=True)
    except Exception:  # not on disk: the model's own loading fetches it or says why
        return False
    return load_settings(folder).model_type == "SparseEncoder"


def _encode_sparse(args: argparse.Namespace) -> int:
    """``encode`` for a sparse model: its non-zero weights per text, as JSON lines."""
    from sentencekit.cli.files import write_sparse_embeddings
    from sentencekit.errors import InvalidInputError

    output: Path = args.output or args.input.with_suffix(".jsonl")
    if output.suffix.lower() != ".jsonl":
        raise InvalidInputError(
            f"--output {output}: a sparse model writes .jsonl (its non-zero weights per text); "
            "pass a .jsonl path."
        )
    unsupported = [
        flag
        for flag, used in (
            ("--precision", args.precision != "float32"),
            ("--normalize", args.normalize),
            ("--truncate-dim", args.truncate_dim is not None),
            ("--cache", args.cache is not None),
            ("--fast", model_backend(args) is not None),
        )
        if used
    ]
    if unsupported:
        raise InvalidInputError(
            f"{args.model} is a sparse model: {', '.join(unsupported)} does not apply to it."
        )
    texts = _read_input(args, output)

    from sentencekit.sparse_encoder import SparseEncoder

    model = SparseEncoder(args.model, device=args.device)
    started = time.perf_counter()
    try:
        rows = model.encode(
            texts,
            prompt_name=args.prompt_name,
            batch_size=args.batch_size or 32,  # the reference's default
            convert_to_tensor=False,
            save_to_cpu=True,
            show_progress_bar=not args.quiet and sys.stderr.isatty(),
        )
    except ValueError as exc:
        raise InvalidInputError(str(exc)) from exc
    seconds = time.perf_counter() - started
    write_sparse_embeddings(output, rows, texts, model.tokenizer)
    active = sum(int(row._nnz()) for row in rows) / len(rows)
    logger.info("Encoded %d texts in %.1f s", len(texts), seconds)
    if not args.quiet:
        print(f"Wrote {len(rows)} sparse embeddings ({active:.1f} non-zero weights on average) to {output}")
    return 0
