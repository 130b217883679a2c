"""Column datasets: what the trainers accept, read into one plain form.

A training dataset is a table whose text columns are the loss's inputs, in order, and whose optional
``label`` / ``labels`` / ``score`` / ``scores`` column is the label. A text column holds strings, or (for the
cross-encoder's listwise losses) a list of documents per row, with a list of labels per row to match.
Accepted forms:

* a ``datasets.Dataset`` (read through its ``column_names``; ``datasets`` itself is never imported here),
* a dict of equally long lists: ``{"anchor": [...], "positive": [...], "score": [...]}``,
* a list of dicts: ``[{"anchor": ..., "positive": ..., "score": ...}, ...]``,
* a dict (or ``datasets.DatasetDict``) of any of these, for training on several datasets at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sentencekit.errors import InvalidInputError

__all__ = ["LABEL_COLUMNS", "ColumnData", "as_column_data", "as_datasets", "resolve_per_column"]

# Label column names, in the order they are looked for (the reference's list).
LABEL_COLUMNS = ("label", "labels", "score", "scores")


@dataclass(frozen=True)
class ColumnData:
    """One dataset as text columns and labels.

    Attributes:
        name: The dataset's name (its key among several datasets, else ``"train"`` or ``"eval"``).
        columns: Names of the text columns, in the order the loss receives them.
        texts: The text columns, parallel to ``columns``.
        labels: The label column, or ``None`` when the dataset has none.
        label_column: Name of the label column.
        list_columns: The text columns that hold a list of documents per row.
    """

    name: str
    columns: tuple[str, ...]
    texts: tuple[list[Any], ...]
    labels: list[Any] | None
    label_column: str | None
    list_columns: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.texts[0])

    def row_texts(self) -> list[tuple[str, ...]]:
        """The texts of each row, documents of a list included (for the ``no_duplicates`` sampler)."""
        return [
            tuple(t for cell in row for t in ([cell] if isinstance(cell, str) else cell))
            for row in zip(*self.texts, strict=True)
        ]

    def take(self, rows: Sequence[int]) -> tuple[list[list[Any]], list[Any] | None]:
        """The text columns and labels of ``rows``."""
        columns = [[column[i] for i in rows] for column in self.texts]
        labels = None if self.labels is None else [self.labels[i] for i in rows]
        return columns, labels


def _is_table(data: Any) -> bool:
    if hasattr(data, "column_names") and not isinstance(data, Mapping):
        return True
    if isinstance(data, Mapping):
        return bool(data) and all(
            isinstance(v, Sequence) and not isinstance(v, str) and not _is_rows(v) for v in data.values()
        )
    return _is_rows(data)


def _is_rows(data: Any) -> bool:
    return (
        isinstance(data, Sequence)
        and not isinstance(data, str)
        and bool(data)
        and isinstance(data[0], Mapping)
    )


def _as_columns(data: Any) -> dict[str, list[Any]]:
    if hasattr(data, "column_names") and not isinstance(data, Mapping):  # datasets.Dataset
        return {name: list(data[name]) for name in data.column_names}
    if isinstance(data, Mapping):
        return {str(name): list(values) for name, values in data.items()}
    names = list(data[0])
    columns: dict[str, list[Any]] = {name: [] for name in names}
    for number, row in enumerate(data):
        if not isinstance(row, Mapping) or list(row) != names:
            raise InvalidInputError(f"Row {number} has the columns {list(row)}; row 0 has {names}.")
        for name in names:
            columns[name].append(row[name])
    return columns


def as_column_data(data: Any, name: str = "train") -> ColumnData:
    """Read one dataset (see the module docstring for the accepted forms).

    Raises:
        InvalidInputError: For an empty dataset, columns of different lengths, no text column, or a text
            that is not a string (the message names the dataset, column and row).
    """
    if not _is_table(data):
        raise InvalidInputError(
            f"Dataset {name!r} is a {type(data).__name__}; pass a datasets.Dataset, a dict of column lists "
            "or a list of row dicts."
        )
    columns = _as_columns(data)
    lengths = {column: len(values) for column, values in columns.items()}
    if len(set(lengths.values())) > 1:
        raise InvalidInputError(f"The columns of dataset {name!r} differ in length: {lengths}.")
    if not columns or not next(iter(lengths.values())):
        raise InvalidInputError(f"Dataset {name!r} has no rows.")
    label_column = next((c for c in LABEL_COLUMNS if c in columns), None)
    text_columns = [c for c in columns if c != label_column]
    if not text_columns:
        raise InvalidInputError(f"Dataset {name!r} has no text column besides its label {label_column!r}.")
    list_columns = tuple(c for c in text_columns if _check_text_column(name, c, columns[c]))
    if list_columns and label_column:
        _check_label_lists(name, label_column, columns[label_column], columns[list_columns[0]])
    return ColumnData(
        name=name,
        columns=tuple(text_columns),
        texts=tuple(columns[c] for c in text_columns),
        labels=columns[label_column] if label_column else None,
        label_column=label_column,
        list_columns=list_columns,
    )


def _check_label_lists(name: str, label_column: str, labels: list[Any], documents: list[Any]) -> None:
    """With document lists, each row's labels are a list as long as its documents."""
    for row, (label, docs) in enumerate(zip(labels, documents, strict=True)):
        try:  # a NumPy array or a tensor has a shape; a list gets one
            shape = tuple(label.shape) if hasattr(label, "shape") else np.shape(label)
        except ValueError:  # ragged nesting
            shape = None
        if shape != (len(docs),):
            raise InvalidInputError(
                f"Dataset {name!r}, column {label_column!r}, row {row}: with a list of {len(docs)} documents "
                f"the label must be a list of {len(docs)} scores, got {label!r}."
            )


def _check_text_column(name: str, column: str, cells: list[Any]) -> bool:
    """Check that a text column holds strings, or lists of strings in every row; return whether lists."""
    lists = isinstance(cells[0], (list, tuple))
    for row, cell in enumerate(cells):
        where = f"Dataset {name!r}, column {column!r}, row {row}"
        if lists and not isinstance(cell, (list, tuple)):
            raise InvalidInputError(
                f"{where}: expected a list of documents like row 0, got {type(cell).__name__}."
            )
        if lists and not (cell and all(isinstance(document, str) for document in cell)):
            raise InvalidInputError(
                f"{where}: a list of documents must hold one or more strings, got {cell!r}."
            )
        if not lists and not isinstance(cell, str):
            raise InvalidInputError(
                f"{where}: expected a string, got {type(cell).__name__}. Text columns must hold strings (or, "
                f"for listwise cross-encoder losses, lists of strings); name the label column one of "
                f"{list(LABEL_COLUMNS)}."
            )
    return lists


def as_datasets(data: Any, default_name: str = "train") -> dict[str, ColumnData]:
    """Read one dataset or a dict of datasets into ``{name: ColumnData}`` (one entry for a single dataset)."""
    if isinstance(data, Mapping) and data and not _is_table(data):
        return {str(key): as_column_data(value, str(key)) for key, value in data.items()}
    return {default_name: as_column_data(data, default_name)}


def resolve_per_column(
    prompts: str | Mapping[str, Any] | None,
    dataset: str,
    columns: Sequence[str],
    dataset_names: Sequence[str],
) -> list[str | None]:
    """The value of each text column of ``dataset`` (``None``: none): its prompt, or its Router route.

    Args:
        prompts: One value for every column; ``{column: value}``; ``{dataset: value}``; or
            ``{dataset: {column: value}}``.
        dataset: The dataset's name.
        columns: Its text columns.
        dataset_names: Every dataset's name, to tell dataset keys from column keys.
    """
    if not prompts:
        return [None] * len(columns)
    if isinstance(prompts, str):
        return [prompts] * len(columns)
    by_dataset = any(isinstance(value, Mapping) for value in prompts.values()) or (
        any(key in dataset_names for key in prompts) and not any(key in columns for key in prompts)
    )
    if not by_dataset:
        return [prompts.get(column) for column in columns]
    chosen = prompts.get(dataset)
    if chosen is None or isinstance(chosen, str):
        return [chosen] * len(columns)
    return [chosen.get(column) for column in columns]
