"""Texts in, embeddings out: the data files that ``encode``, ``search``, ``similarity`` and ``rerank`` use.

==========  =====================================================================================
input       texts
==========  =====================================================================================
``.txt``    one text per line (row ``i`` of the output is line ``i + 1``; blank lines are texts too)
``.jsonl``  one JSON object per line, text in ``--column`` (default ``text``); or one JSON string
``.csv``    a header row, text in the column named by ``--column`` (or its 0-based number);
            ``--no-header`` for files without one (then ``--column`` is a number, default 0)
``.tsv``    as ``.csv``, tab-separated
``.parquet`` text in ``--column`` (needs ``pip install 'sentencekit[parquet]'``)
==========  =====================================================================================

Outputs, chosen by suffix: ``.npy`` (the embedding matrix), ``.jsonl`` (``{"text", "embedding"}`` per
line), ``.parquet`` (``text`` and ``embedding`` columns). Files are written to a temporary name and renamed,
so an interrupted run leaves no half-written output. Every problem is an :class:`InvalidInputError` (or
:class:`FileNotFoundError`) whose message names the file, the line and the fix.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

from sentencekit._optional import require
from sentencekit.errors import InvalidInputError

__all__ = [
    "INPUT_SUFFIXES",
    "OUTPUT_SUFFIXES",
    "check_output",
    "read_texts",
    "write_embeddings",
    "write_sparse_embeddings",
]

INPUT_SUFFIXES = (".txt", ".jsonl", ".csv", ".tsv", ".parquet")
OUTPUT_SUFFIXES = (".npy", ".jsonl", ".parquet")


def _existing_file(path: Path) -> Path:
    if not path.exists():
        raise FileNotFoundError(f"No such file: {path}; check the path.")
    if path.is_dir():
        raise InvalidInputError(f"{path} is a folder; pass a file of texts ({', '.join(INPUT_SUFFIXES)}).")
    return path


def read_texts(path: Path, column: str | None = None, *, header: bool = True) -> list[str]:
    """Read the texts of a data file (see the module docstring for the formats).

    Args:
        path: The file.
        column: Field or column holding the text (jsonl/csv/tsv/parquet); a number picks a CSV column by
            position.
        header: Whether a CSV/TSV file starts with a header row.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        InvalidInputError: For an unknown suffix, a missing column or field, or a value that is not text.
    """
    _existing_file(path)
    suffix = path.suffix.lower()
    if suffix == ".txt":
        if column is not None:
            raise InvalidInputError(
                f"{path} is a .txt file (one text per line): it has no columns; drop --column."
            )
        with path.open(encoding="utf-8") as f:
            return f.read().splitlines()
    if suffix == ".jsonl":
        return _read_jsonl(path, column or "text")
    if suffix in (".csv", ".tsv"):
        return _read_delimited(path, column, header, "\t" if suffix == ".tsv" else ",")
    if suffix == ".parquet":
        return _read_parquet(path, column or "text")
    raise InvalidInputError(
        f"Cannot read texts from {path}: use one of {', '.join(INPUT_SUFFIXES)} (one text per line for .txt)."
    )


def _read_jsonl(path: Path, field: str) -> list[str]:
    texts = []
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InvalidInputError(f"{path}:{number} is not valid JSON ({exc.msg}).") from exc
            if isinstance(record, str):
                texts.append(record)
                continue
            if not isinstance(record, dict) or field not in record:
                fields = ", ".join(map(str, record)) if isinstance(record, dict) else type(record).__name__
                raise InvalidInputError(
                    f"{path}:{number} has no field {field!r} (it has: {fields}); pass --column FIELD."
                )
            value = record[field]
            if not isinstance(value, str):
                raise InvalidInputError(
                    f"{path}:{number}: field {field!r} is {type(value).__name__}, not text."
                )
            texts.append(value)
    return texts


def _read_delimited(path: Path, column: str | None, header: bool, delimiter: str) -> list[str]:
    with path.open(encoding="utf-8", newline="") as f:
        rows = csv.reader(f, delimiter=delimiter)
        names = next(rows, None) if header else None
        if header and names is None:
            return []
        position = _column_position(path, column, names)
        texts = []
        for number, row in enumerate(rows, start=2 if header else 1):
            if not row:
                continue
            if position >= len(row):
                raise InvalidInputError(
                    f"{path}:{number} has {len(row)} columns; column {position} is missing."
                )
            texts.append(row[position])
    return texts


def _column_position(path: Path, column: str | None, names: list[str] | None) -> int:
    """The 0-based position of ``column`` among the header ``names`` (or a number without a header)."""
    if names is None:
        if column is None:
            return 0
        if not column.isdigit():
            raise InvalidInputError(
                f"--column {column!r} names a column, but --no-header says {path} has no header row; "
                "pass the column's number (0 for the first)."
            )
        return int(column)
    if column is None:
        column = "text"
    if column in names:
        return names.index(column)
    if column.isdigit() and int(column) < len(names):
        return int(column)
    shown = ", ".join(repr(n) for n in names)
    raise InvalidInputError(
        f"{path} has no column {column!r} (its header has: {shown}); pass --column NAME, or --no-header "
        "--column NUMBER for a file without a header row."
    )


def _read_parquet(path: Path, column: str) -> list[str]:
    pq = require("pyarrow.parquet", extra="parquet", purpose="reading .parquet files")
    names = pq.read_schema(path).names
    if column not in names:
        raise InvalidInputError(
            f"{path} has no column {column!r} (it has: {', '.join(names)}); pass --column NAME."
        )
    values = pq.read_table(path, columns=[column]).column(column).to_pylist()
    for row, value in enumerate(values):
        if not isinstance(value, str):
            raise InvalidInputError(
                f"{path}: row {row} of column {column!r} is {type(value).__name__}, not text."
            )
    return values


def check_output(path: Path) -> None:
    """Fail early (before loading a model) on an output suffix that cannot be written or a missing folder."""
    if path.suffix.lower() not in OUTPUT_SUFFIXES:
        raise InvalidInputError(
            f"Cannot write embeddings to {path}: use one of {', '.join(OUTPUT_SUFFIXES)}."
        )
    if not path.parent.is_dir():
        raise FileNotFoundError(f"The folder {path.parent} does not exist; create it or write elsewhere.")
    if path.suffix.lower() == ".parquet":
        require("pyarrow", extra="parquet", purpose="writing .parquet files")


def write_sparse_embeddings(path: Path, rows: list[Any], texts: list[str], tokenizer: Any) -> None:
    """Write sparse vectors (1-D sparse COO tensors, one per text) to a .jsonl file, heaviest weight first."""
    check_output(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as f:
            for text, row in zip(texts, rows, strict=True):
                row = row.coalesce()
                values, order = row.values().sort(descending=True, stable=True)
                indices = row.indices()[0][order].tolist()
                embedding = {
                    "indices": indices,
                    "values": values.tolist(),
                    "tokens": tokenizer.convert_ids_to_tokens(indices),
                }
                f.write(json.dumps({"text": text, "embedding": embedding}, ensure_ascii=False) + "\n")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_embeddings(path: Path, embeddings: Any, texts: list[str]) -> None:
    """Write ``embeddings`` (a 2-D numpy array, row ``i`` for ``texts[i]``) to ``path`` by its suffix."""
    import numpy as np

    check_output(path)
    tmp = path.with_name(f".{path.name}.tmp")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            with tmp.open("wb") as f:
                np.save(f, embeddings)
        elif suffix == ".jsonl":
            with tmp.open("w", encoding="utf-8") as f:
                for text, row in zip(texts, embeddings.tolist(), strict=True):
                    f.write(json.dumps({"text": text, "embedding": row}, ensure_ascii=False) + "\n")
        else:
            pa = require("pyarrow", extra="parquet", purpose="writing .parquet files")
            pq = require("pyarrow.parquet", extra="parquet", purpose="writing .parquet files")
            width = int(embeddings.shape[1])
            values = pa.array(np.ascontiguousarray(embeddings).reshape(-1))
            table = pa.table(
                {
                    "text": pa.array(texts, pa.string()),
                    "embedding": pa.FixedSizeListArray.from_arrays(values, width),
                }
            )
            pq.write_table(table, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
