"""``sentencekit similarity``: how similar two texts are, or the texts of two files.

Examples::

    sentencekit similarity "A man is eating food." "Someone is having lunch."
    sentencekit similarity --files first.txt second.txt              # line i against line i
    sentencekit similarity --files queries.txt docs.txt --matrix --output scores.npy
    sentencekit similarity --files a.csv b.csv --column sentence --json

The score is the model's similarity function (cosine for most models). With --files, the two files are
compared row by row (they must have the same number of texts), or every text against every text with
--matrix; --output writes the scores as .npy.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sentencekit.cli.main import plain_help
from sentencekit.cli.options import add_input_options, add_model_options, model_backend

__all__ = ["add_parser"]


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``similarity`` to the ``sentencekit`` parser."""
    parser = subparsers.add_parser(
        "similarity",
        help="similarity of two texts, or of the texts of two files",
        description=plain_help(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("first", help="a text (a file with --files)")
    parser.add_argument("second", help="a text (a file with --files)")
    parser.add_argument("--files", action="store_true", help="FIRST and SECOND are files of texts")
    parser.add_argument(
        "--matrix", action="store_true", help="every text of FIRST against every text of SECOND"
    )
    parser.add_argument("--output", "-o", type=Path, help="write the scores to this .npy file")
    parser.add_argument("--json", action="store_true", help="print the scores as JSON")
    add_input_options(parser)
    add_model_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Encode both sides and print (or save) the scores."""
    from sentencekit.errors import InvalidInputError

    if args.files:
        from sentencekit.cli.files import read_texts

        first = read_texts(Path(args.first), args.column, header=not args.no_header)
        second = read_texts(Path(args.second), args.column, header=not args.no_header)
        if not first or not second:
            raise InvalidInputError(f"{args.first if not first else args.second} holds no texts.")
        if not args.matrix and len(first) != len(second):
            raise InvalidInputError(
                f"{args.first} has {len(first)} texts and {args.second} has {len(second)}: row-by-row "
                "comparison needs the same number; pass --matrix to compare every text with every text."
            )
    else:
        first, second = [args.first], [args.second]
    if args.output is not None and args.output.suffix != ".npy":
        raise InvalidInputError(f"--output {args.output}: scores are written as .npy; use that suffix.")

    from sentencekit import SentenceTransformer

    model = SentenceTransformer(args.model, device=args.device, backend=model_backend(args))
    a = model.encode(first, batch_size=args.batch_size, convert_to_tensor=True)
    b = model.encode(second, batch_size=args.batch_size, convert_to_tensor=True)
    scores = (model.similarity(a, b) if args.matrix else model.similarity_pairwise(a, b)).cpu().numpy()
    if args.output is not None:
        import numpy as np

        np.save(args.output, scores)
    if args.json:
        print(json.dumps({"similarity_fn_name": model.similarity_fn_name, "scores": scores.tolist()}))
    elif args.matrix:
        for row in scores:
            print(" ".join(f"{s:.4f}" for s in row))
    else:
        for s in scores:
            print(f"{s:.4f}")
    return 0
