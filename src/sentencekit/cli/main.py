"""Entry point of the ``sentencekit`` command (``sentencekit.cli.main:main``).

To add a command, write ``sentencekit/cli/<name>.py`` with ``add_parser(subparsers) -> None`` that adds a
sub-parser and sets ``handler`` on it (``parser.set_defaults(handler=run)``, where ``run(args) -> int``), and
add the module's name to :data:`COMMANDS`. Import torch and other heavy modules inside the handler only.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from sentencekit import __version__
from sentencekit.errors import SentenceKitError

__all__ = ["COMMANDS", "EXIT_USER_ERROR", "build_parser", "main", "plain_help"]

# Command modules, in the order `sentencekit --help` lists them.
COMMANDS: tuple[str, ...] = (
    "sentencekit.cli.models",
    "sentencekit.cli.eval",
    "sentencekit.cli.cache",
    "sentencekit.cli.index",
    "sentencekit.cli.encode",
    "sentencekit.cli.search",
    "sentencekit.cli.similarity",
    "sentencekit.cli.rerank",
    "sentencekit.cli.serve",
    "sentencekit.cli.train",
    "sentencekit.cli.bench",
)

EXIT_USER_ERROR = 2  # as argparse uses for bad arguments


def plain_help(docstring: str | None) -> str:
    """A command module's docstring as ``--help`` text: reST literals and ``Examples::`` made plain."""
    return (docstring or "").replace("::\n", ":\n").replace("``", "")


def build_parser() -> argparse.ArgumentParser:
    """Build the parser with one sub-command per module in :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(
        prog="sentencekit",
        description="Dense text embeddings, API-compatible with sentence-transformers.",
    )
    parser.add_argument("--version", action="version", version=f"sentencekit {__version__}")
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    verbosity.add_argument("-q", "--quiet", action="store_true", help="only errors")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for module_name in COMMANDS:
        importlib.import_module(module_name).add_parser(subparsers)
    return parser


def _configure_logging(verbose: int, quiet: bool) -> None:
    if quiet:
        level = logging.ERROR
    elif verbose >= 2:
        level = logging.DEBUG
    elif verbose == 1:
        level = logging.INFO
    else:
        level = logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if not quiet and verbose == 0:
        # progress of long downloads is worth showing without -v
        logging.getLogger("sentencekit.packaged").setLevel(logging.INFO)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``sentencekit`` command.

    Args:
        argv: Arguments without the program name; ``sys.argv[1:]`` when None.

    Returns:
        The exit code: 0 on success, 2 for user errors (unknown model, missing file, bad arguments), 130 when
        interrupted.

    """
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return EXIT_USER_ERROR
    _configure_logging(args.verbose, args.quiet)
    try:
        return int(handler(args))
    except (
        SentenceKitError,
        FileNotFoundError,
        IsADirectoryError,
        NotADirectoryError,
        PermissionError,
    ) as exc:
        # user errors: the message says what to do, a traceback would only hide it (-vv logs one)
        logging.getLogger(__name__).debug("Command failed", exc_info=True)
        print(f"sentencekit: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("sentencekit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
