"""Arguments several commands share: the model, the device and batch size, and how to read a data file."""

from __future__ import annotations

import argparse

__all__ = [
    "DEFAULT_MODEL",
    "add_fast_option",
    "add_input_options",
    "add_model_options",
    "model_backend",
    "positive_int",
]

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
    embedding: bool = True,
) -> None:
    """``--model``, ``--device`` and ``--batch-size``; for embedding models (``embedding``) also ``--fast``.

    An embedding model's ``--batch-size`` defaults to its inference path's own plan (``encode``'s
    ``batch_size=None``); a cross-encoder's to 32.
    """
    shown = f" (default: {default})" if default else ""
    parser.add_argument(
        "--model",
        default=default,
        required=required,
        help=model_help or f"local folder, Hub id, or name such as all-MiniLM-L6-v2{shown}",
    )
    parser.add_argument("--device", help="torch device, e.g. cpu or cuda (default: best available)")
    plan = "the inference path's plan: 32, or more for bf16 on the CPU" if embedding else "32"
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        default=None if embedding else 32,
        help=f"texts per forward pass (default: {plan})",
    )
    if embedding:
        add_fast_option(parser)


_FAST_HELP = (
    "use the fastest path that stays within cosine 0.98 of fp32 on this CPU (backend='auto': bf16 or int8, "
    "checked on the model when it loads) instead of the exact default"
)
_FAST_CROSS_ENCODER_HELP = (
    "score in bf16 where the CPU has it (backend='auto': OpenVINO's with AMX and the openvino extra, else "
    "torch's), when the model's logits pass a check at load; elsewhere the exact default"
)


def add_fast_option(parser: argparse.ArgumentParser, *, cross_encoder: bool = False) -> None:
    """``--fast``: the model's ``backend="auto"`` instead of the exact default."""
    parser.add_argument(
        "--fast", action="store_true", help=_FAST_CROSS_ENCODER_HELP if cross_encoder else _FAST_HELP
    )


def model_backend(args: argparse.Namespace) -> str | None:
    """The ``backend`` argument that ``--fast`` asks for (``None``: the default)."""
    return "auto" if getattr(args, "fast", False) else None
