"""Arguments several commands share: the model, the device and batch size, and how to read a data file."""

from __future__ import annotations

import argparse

__all__ = ["DEFAULT_MODEL", "add_input_options", "add_model_options", "positive_int"]

DEFAULT_MODEL = "all-MiniLM-L6-v2"


def positive_int(text: str) -> int:
    """Argparse type: an integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_input_options(parser: argparse.ArgumentParser) -> None:
    """``--column`` and ``--no-header``, for commands that read texts from data files."""
    parser.add_argument(
        "--column",
        help="field (jsonl, parquet) or column (csv, tsv: name or 0-based number) holding the text",
    )
    parser.add_argument("--no-header", action="store_true", help="the CSV/TSV file has no header row")


def add_model_options(
    parser: argparse.ArgumentParser,
    *,
    default: str | None = DEFAULT_MODEL,
    required: bool = False,
    model_help: str | None = None,
) -> None:
    """``--model``, ``--device`` and ``--batch-size``."""
    shown = f" (default: {default})" if default else ""
    parser.add_argument(
        "--model",
        default=default,
        required=required,
        help=model_help or f"local folder, Hub id, or name such as all-MiniLM-L6-v2{shown}",
    )
    parser.add_argument("--device", help="torch device, e.g. cpu or cuda (default: best available)")
    parser.add_argument(
        "--batch-size", type=positive_int, default=32, help="texts per forward pass (default: 32)"
    )
