"""``sentencekit bench``: time sentencekit's CPU inference paths (and sentence-transformers') on your texts.

Examples::

    sentencekit bench all-MiniLM-L6-v2 --short queries.txt --long docs.jsonl --json bench.json --png bench.png
    sentencekit bench all-MiniLM-L6-v2 --stsb stsb-en-test.csv --long corpus.jsonl --repeats 3
    sentencekit bench ./my-model --paths sentencekit-default,sentencekit-torch-fp32 --n-long 50

Every path encodes the same texts in one process, runs alternating; the table gives tokens/s, sentences/s,
the ratio to the baseline, max |diff| and min cosine against the baseline's embeddings, STSb Spearman (with
--stsb) and peak RSS. The baseline always runs: sentence-transformers in fp32 when it is installed (unless
--no-reference), else sentencekit's torch fp32; the table says which. Paths: reference-fp32, reference-bf16,
reference-bf16-b128, sentencekit-default, sentencekit-torch-fp32, sentencekit-torch-bf16,
sentencekit-onnx-int8, sentencekit-auto (default: all that can run). Without --batch-size each library
batches as it does by default (the reference 32 texts, sentencekit its inference path's plan).

Texts: --short and --long take .txt (one per line), .jsonl (field --column, default text), .csv/.tsv
(column --column; ignored for .txt); blank texts are skipped. --stsb takes a sentence1,sentence2,score CSV:
its sentences are the short texts unless --short is given. Without --short and --stsb, STSb test
(../shared/data/stsb/stsb-en-test.csv) is used, and without --long the SciFact corpus
(../shared/data/scifact/beir/corpus.jsonl), where they exist. --png needs: pip install matplotlib.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sentencekit.cli.main import plain_help
from sentencekit.cli.options import add_input_options, positive_int

if TYPE_CHECKING:
    from sentencekit.benchmarking.runner import TextSet
    from sentencekit.readers import ScoredPairs

__all__ = ["DEFAULT_SCIFACT", "DEFAULT_STSB", "add_parser", "load_text_sets", "run"]

# The project's shared benchmark data, beside the checkout; used only where it exists.
DEFAULT_DATA = Path("..") / "shared" / "data"
DEFAULT_STSB = DEFAULT_DATA / "stsb" / "stsb-en-test.csv"
DEFAULT_SCIFACT = DEFAULT_DATA / "scifact" / "beir" / "corpus.jsonl"


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``bench`` to the ``sentencekit`` parser."""
    parser = subparsers.add_parser(
        "bench",
        help="CPU inference speed and accuracy of each path, beside sentence-transformers",
        description=plain_help(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", help="local folder, Hub id, or name such as all-MiniLM-L6-v2")
    parser.add_argument(
        "--paths", help="comma-separated paths to run, e.g. sentencekit-default,reference-fp32 (default: all)"
    )
    parser.add_argument(
        "--no-reference",
        action="store_true",
        help="leave sentence-transformers out even when it is installed",
    )
    parser.add_argument("--repeats", type=positive_int, default=2, help="timed runs per path (default: 2)")
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        help="texts per forward pass (default: each library's: 32 for sentence-transformers, the inference "
        "path's own plan for sentencekit)",
    )
    parser.add_argument("--short", type=Path, help="file of short texts")
    parser.add_argument("--long", type=Path, help="file of long texts")
    parser.add_argument("--stsb", type=Path, help="STSb-format CSV (sentence1, sentence2, score): Spearman")
    parser.add_argument(
        "--n-short", type=positive_int, help="time only the first N short texts (default: all)"
    )
    parser.add_argument("--n-long", type=positive_int, default=300, help="long texts to time (default: 300)")
    add_input_options(parser)
    parser.add_argument("--json", type=Path, help="also write the report as JSON to this file")
    parser.add_argument("--png", type=Path, help="also draw tokens/s per path as a PNG chart (matplotlib)")
    parser.set_defaults(handler=run)


def _read(path: Path, column: str | None, header: bool) -> list[str]:
    """The non-blank texts of ``path``; ``--column`` is ignored for .txt files (they have no columns)."""
    from sentencekit.cli.files import read_texts

    texts = read_texts(path, None if path.suffix.lower() == ".txt" else column, header=header)
    return _non_blank(texts)


def _non_blank(texts: list[str]) -> list[str]:
    return [text for text in texts if text.strip()]


def load_text_sets(
    *,
    short: Path | None,
    long: Path | None,
    stsb: Path | None,
    n_short: int | None = None,
    n_long: int | None = 300,
    column: str | None = None,
    header: bool = True,
    labels: tuple[str | None, str | None] = (None, None),
) -> tuple[list[TextSet], ScoredPairs | None]:
    """Read the short and long texts and the STSb pairs, falling back on the shared data where it exists.

    Args:
        short: File of short texts; ``None``: the sentences of ``stsb`` (or of the default STSb file).
        long: File of long texts; ``None``: the default SciFact corpus where it exists.
        stsb: STSb-format CSV; ``None``: the default STSb test file, when ``short`` is ``None`` too.
        n_short: Keep the first N short texts (``None``: all).
        n_long: Keep the first N long texts (``None``: all).
        column: Field or column of the texts in jsonl/csv/tsv files.
        header: Whether csv/tsv files of texts start with a header row.
        labels: Sources shown in the report for the short and long sets (``None``: the file's name).

    Raises:
        FileNotFoundError: For a named file that does not exist.
        InvalidInputError: For a file that cannot be read, an empty one, or no texts at all.
    """
    from sentencekit.benchmarking.runner import TextSet
    from sentencekit.errors import InvalidInputError
    from sentencekit.readers import read_sts_csv

    short_source, long_source = labels
    if short is None and stsb is None and DEFAULT_STSB.is_file():
        stsb, short_source = DEFAULT_STSB, short_source or "STSb test"
    if long is None and DEFAULT_SCIFACT.is_file():
        long, long_source = DEFAULT_SCIFACT, long_source or "SciFact abstracts"
    pairs = None
    if stsb is not None:
        try:
            pairs = read_sts_csv(stsb)
        except ValueError as exc:  # the reader's own errors name the file and line
            raise InvalidInputError(str(exc)) from exc
        if not pairs.scores:
            raise InvalidInputError(f"{stsb} has no sentence pairs; pass a sentence1,sentence2,score CSV.")
    sets = []
    if short is not None:
        texts = _read(short, column, header)
        sets.append(TextSet("short", short_source or short.name, texts[:n_short]))
    elif pairs is not None and stsb is not None:
        texts = _non_blank(list(dict.fromkeys((*pairs.sentences1, *pairs.sentences2))))
        sets.append(TextSet("short", short_source or stsb.name, texts[:n_short]))
    if long is not None:
        texts = _read(long, column, header)
        sets.append(TextSet("long", long_source or long.name, texts[:n_long]))
    for text_set in sets:
        if not text_set.texts:
            raise InvalidInputError(f"The {text_set.name} texts file has no texts ({text_set.source}).")
    if not sets:
        raise InvalidInputError(
            f"No texts to time: pass --short FILE, --long FILE or --stsb FILE ({DEFAULT_DATA} has no "
            "STSb or SciFact data here)."
        )
    return sets, pairs


def run(args: argparse.Namespace) -> int:
    """Load the texts, run every path, print the tables and write the JSON and PNG files."""
    sets, pairs = load_text_sets(
        short=args.short,
        long=args.long,
        stsb=args.stsb,
        n_short=args.n_short,
        n_long=args.n_long,
        column=args.column,
        header=not args.no_header,
    )
    from sentencekit.benchmarking import BenchConfig, format_tables, run_benchmark, write_chart, write_json
    from sentencekit.benchmarking.report import check_chart_dependency

    if args.png is not None:
        check_chart_dependency()
    paths = tuple(name for name in (args.paths or "").split(",") if name.strip())
    config = BenchConfig(
        paths=paths, reference=not args.no_reference, repeats=args.repeats, batch_size=args.batch_size
    )
    report = run_benchmark(args.model, sets, config, stsb=pairs, log=_log)
    print(format_tables(report))
    for path, write, what in ((args.json, write_json, "report"), (args.png, write_chart, "chart")):
        if path is not None:
            write(report, path)
            _log(f"Wrote the {what} to {path}")
    return 0


def _log(line: Any) -> None:
    print(line, file=sys.stderr)
