"""Read the (anchor, positive) pairs from a dataset, dict or list, and check the settings before encoding."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from sentencekit.errors import InvalidInputError

# the package's one logger, named as it was before the package was split into modules
logger = logging.getLogger("sentencekit.hard_negatives")

OUTPUT_FORMATS = ("triplet", "n-tuple", "labeled-pair", "labeled-list")
SAMPLING_STRATEGIES = ("top", "random")
PAIR_COLUMNS = ("anchor", "positive")  # the column names a list of (anchor, positive) tuples gets


def _any_set(*values: object) -> bool:
    return any(v is not None for v in values)


def _is_dataset(data: object) -> bool:
    """Whether ``data`` is a ``datasets.Dataset``, found out without importing ``datasets``."""
    return type(data).__module__.split(".")[0] == "datasets" and hasattr(data, "column_names")


def _strings(values: Sequence[Any], name: str) -> list[str]:
    values = list(values)
    for i, value in enumerate(values):
        if not isinstance(value, str):
            raise InvalidInputError(f"{name}[{i}] is {type(value).__name__} {value!r}; texts must be str.")
    return values


def _read_pairs(data: Any, anchor: str | None, positive: str | None) -> tuple[str, str, list[str], list[str]]:
    """The anchor and positive column names and texts, whichever form ``data`` came in."""
    if _is_dataset(data) or isinstance(data, Mapping):
        names = list(data.column_names if _is_dataset(data) else data)
        columns = {name: data[name] for name in names if name in (anchor, positive) or name in names[:2]}
    elif isinstance(data, Sequence) and all(isinstance(r, (tuple, list)) and len(r) == 2 for r in data):
        names = list(PAIR_COLUMNS)
        columns = {name: [row[i] for row in data] for i, name in enumerate(names)}
    else:
        raise InvalidInputError(
            f"Cannot read (anchor, positive) pairs from {type(data).__name__}. Pass a datasets.Dataset, a "
            "dict of columns such as {'anchor': [...], 'positive': [...]}, or a list of (anchor, positive) "
            "tuples."
        )
    chosen = []
    for position, (what, given) in enumerate((("anchor", anchor), ("positive", positive))):
        if given is None and len(names) <= position:
            raise ValueError(f"The input has the columns {names}; it needs two: anchors and positives.")
        name = names[position] if given is None else given
        if name not in names:
            raise ValueError(
                f"{what}_column_name={name!r} is not a column of the input, whose columns are {names}. "
                f"Pass one of them as {what}_column_name."
            )
        chosen.append(name)
    anchors, positives = (_strings(columns[name], name) for name in chosen)
    if not anchors:
        raise ValueError("The input has no rows; pass at least one (anchor, positive) pair.")
    return chosen[0], chosen[1], anchors, positives


def _resolve_deprecated(
    output_format: str,
    scores: bool,
    absolute_margin: float | None,
    as_triplets: bool | None,
    margin: float | None,
) -> tuple[str, bool, float | None]:
    if as_triplets is not None:
        output_format = "triplet" if as_triplets else "n-tuple"
        logger.warning("as_triplets is deprecated; use output_format=%r.", output_format)
    if output_format == "n-tuple-scores":
        logger.warning("output_format='n-tuple-scores' is deprecated; use 'n-tuple' and output_scores=True.")
        output_format, scores = "n-tuple", True
    if margin is not None:
        logger.warning("margin is deprecated; use absolute_margin=%r (or relative_margin).", margin)
        absolute_margin = margin
    return output_format, scores, absolute_margin


def _check_settings(
    output_format: str, strategy: str, num_negatives: int, batch_size: int, chunk: int
) -> None:
    for name, value, valid in (
        ("output_format", output_format, OUTPUT_FORMATS),
        ("sampling_strategy", strategy, SAMPLING_STRATEGIES),
    ):
        if value not in valid:
            raise ValueError(f"{name}={value!r} is unknown; choose one of {list(valid)}.")
    for name, number in (
        ("num_negatives", num_negatives),
        ("batch_size", batch_size),
        ("faiss_batch_size", chunk),
    ):
        if isinstance(number, bool) or not isinstance(number, int) or number < 1:
            raise ValueError(f"{name} must be a positive integer, got {number!r}.")
