"""``sentencekit cache``: inspect and empty an embedding cache.

Examples::

    sentencekit cache stats embeddings.sqlite          # entries, file size, format version
    sentencekit cache stats embeddings.sqlite --json
    sentencekit cache clear embeddings.sqlite
    sentencekit cache stats redis://localhost:6379/0
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sentencekit.cli.main import plain_help

__all__ = ["add_parser"]


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``cache`` and its sub-commands to the ``sentencekit`` parser."""
    parser = subparsers.add_parser(
        "cache",
        help="inspect or clear an embedding cache",
        description=plain_help(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(handler=lambda _args: _print_usage(parser))
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    stats = commands.add_parser("stats", help="entries, size and format of a cache")
    stats.add_argument("path", help="SQLite cache file, or a redis:// URL")
    stats.add_argument("--json", action="store_true", help="print JSON")
    stats.set_defaults(handler=run_stats)

    clear = commands.add_parser("clear", help="delete every entry of a cache")
    clear.add_argument("path", help="SQLite cache file, or a redis:// URL")
    clear.set_defaults(handler=run_clear)


def _print_usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _open_existing(spec: str) -> object:
    """Open a cache the user named; a SQLite path must exist (stats on a typo must not create a file)."""
    from sentencekit.cache import open_cache

    if "://" not in spec and not Path(spec).expanduser().exists():
        raise FileNotFoundError(f"No embedding cache at {spec}; pass the path given to cache= when encoding.")
    return open_cache(spec)


def run_stats(args: argparse.Namespace) -> int:
    """Print what the cache holds."""
    cache = _open_existing(args.path)
    try:
        describe = getattr(cache, "describe", None)
        info = describe() if describe is not None else {"entries": cache.stats.entries}  # type: ignore[attr-defined]
    finally:
        cache.close()  # type: ignore[attr-defined]
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    width = max(len(name) for name in info)
    for name, value in info.items():
        shown = f"{value / 1e6:.1f} MB" if name == "file_bytes" else value
        print(f"{name.ljust(width)}  {shown}")
    return 0


def run_clear(args: argparse.Namespace) -> int:
    """Delete every entry and say how many there were."""
    cache = _open_existing(args.path)
    try:
        before = cache.stats.entries  # type: ignore[attr-defined]
        cache.clear()  # type: ignore[attr-defined]
    finally:
        cache.close()  # type: ignore[attr-defined]
    print(f"Removed {before} entries from {args.path}")
    return 0
