"""Corpus files for indexes and the server: ``.txt`` (a document per line) or ``.jsonl`` (an object per line).

In a ``.txt`` file ids are line numbers (0-based; blank lines are skipped but keep their number). In a
``.jsonl`` file the text is the ``text_field`` of each object and the id its ``id_field`` (or its position).
A BEIR ``corpus.jsonl`` is recognised by its ``_id`` field: ids come from ``_id`` and the text is
``title + " " + text``. The other fields of an object become that item's metadata.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sentencekit.errors import InvalidInputError

__all__ = ["read_corpus"]


def read_corpus(
    path: Path, text_field: str = "text", id_field: str | None = None, limit: int | None = None
) -> tuple[list[str], list[Any], list[dict[str, Any] | None]]:
    """Read ``(texts, ids, metadata)`` from a ``.txt`` or ``.jsonl`` corpus (see the module docstring).

    Args:
        path: The corpus file.
        text_field: The field holding each document's text (``.jsonl``).
        id_field: The field holding each document's id (``.jsonl``; default ``_id`` when present, else the
            position).
        limit: Read the first ``limit`` documents only.

    Raises:
        InvalidInputError: On an unknown extension, bad JSON, or a missing text field; the message names
            the line.

    """
    texts: list[str] = []
    ids: list[Any] = []
    metadata: list[dict[str, Any] | None] = []
    if path.suffix == ".txt":
        with path.open(encoding="utf-8") as f:
            for number, line in enumerate(f):
                if line.strip():
                    texts.append(line.rstrip("\n"))
                    ids.append(number)
                    metadata.append(None)
                if limit is not None and len(texts) >= limit:
                    break
        return texts, ids, metadata
    if path.suffix != ".jsonl":
        raise InvalidInputError(
            f"Cannot read corpus {path}: use a .txt (one document per line) or .jsonl file."
        )
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InvalidInputError(f"{path}:{number} is not valid JSON ({exc}).") from exc
            if not isinstance(record, dict) or not isinstance(record.get(text_field), str):
                raise InvalidInputError(
                    f"{path}:{number} has no string field {text_field!r}; pass --text-field to name it."
                )
            key = id_field or ("_id" if "_id" in record else None)
            if key is not None and key not in record:
                raise InvalidInputError(f"{path}:{number} has no id field {key!r}; check --id-field.")
            text = record[text_field]
            if "_id" in record and record.get("title"):  # BEIR: the title is part of the document
                text = f"{record['title']} {text}"
            texts.append(text)
            ids.append(record[key] if key is not None else len(ids))
            rest = {k: v for k, v in record.items() if k not in (text_field, key)}
            metadata.append(rest or None)
            if limit is not None and len(texts) >= limit:
                break
    return texts, ids, metadata
