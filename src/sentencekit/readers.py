"""Readers for the standard evaluation file formats, returning exactly what the evaluators take.

=================================  ============================================  =========================
reader                             file                                          returns
=================================  ============================================  =========================
:func:`read_beir`                  BEIR folder (corpus, queries, qrels/SPLIT)    :class:`BeirData`
:func:`read_sts_csv`               ``sentence1,sentence2,score`` CSV             :class:`ScoredPairs`
:func:`read_pair_tsv`              any two-texts-and-a-label TSV                 :class:`LabeledPairs`
:func:`read_quora_duplicates`      ``label q1 q2 id`` TSV (no header)            :class:`LabeledPairs`
:func:`read_mrpc`                  MSR paraphrase corpus TSV                     :class:`LabeledPairs`
:func:`read_snli_pairs`            ``premise hypothesis label`` TSV              :class:`LabeledPairs`
:func:`read_triplet_tsv`           ``anchor positive negative`` TSV              :class:`Triplets`
:func:`read_labeled_texts_csv`     ``text,category`` CSV                         :class:`LabeledTexts`
=================================  ============================================  =========================

Each result is a ``NamedTuple``, so it unpacks straight into an evaluator::

    from sentencekit.evaluation import EmbeddingSimilarityEvaluator, InformationRetrievalEvaluator
    from sentencekit.readers import read_beir, read_sts_csv

    sts = EmbeddingSimilarityEvaluator(*read_sts_csv("stsb/stsb-en-test.csv"), name="sts_test")
    corpus, queries, relevant = read_beir("scifact/beir", split="test")
    retrieval = InformationRetrievalEvaluator(queries, corpus, relevant, name="scifact")

Files are read as UTF-8 (a byte-order mark is skipped). TSV fields are split on tabs without quote handling,
because tokenized corpora (Quora, SNLI, MRPC) contain bare ``"`` characters; STS and labelled-text files are
real quoted CSV. Missing files and columns raise :class:`FileNotFoundError` / :class:`ValueError` naming
the file, the line and what was expected.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from sentencekit.training.input_example import InputExample  # the reference's readers.InputExample

__all__ = [
    "SNLI_LABELS",
    "BeirData",
    "InputExample",
    "LabeledPairs",
    "LabeledTexts",
    "ScoredPairs",
    "Triplets",
    "read_beir",
    "read_labeled_texts_csv",
    "read_mrpc",
    "read_pair_tsv",
    "read_quora_duplicates",
    "read_snli_pairs",
    "read_sts_csv",
    "read_triplet_tsv",
]

logger = logging.getLogger(__name__)

# NLI label ids as in the sentence-transformers NLI datasets (all-nli "pair-class")
SNLI_LABELS: Mapping[str, int] = {"entailment": 0, "neutral": 1, "contradiction": 2}


class BeirData(NamedTuple):
    """A BEIR retrieval split: what :class:`InformationRetrievalEvaluator` takes (note its argument order)."""

    corpus: dict[str, str]
    queries: dict[str, str]
    relevant_docs: dict[str, set[str]]


class ScoredPairs(NamedTuple):
    """Sentence pairs with a graded similarity, for :class:`EmbeddingSimilarityEvaluator`."""

    sentences1: list[str]
    sentences2: list[str]
    scores: list[float]


class LabeledPairs(NamedTuple):
    """Sentence pairs with an integer label, for :class:`BinaryClassificationEvaluator` (0/1 labels)."""

    sentences1: list[str]
    sentences2: list[str]
    labels: list[int]


class Triplets(NamedTuple):
    """(anchor, positive, negative) texts, for :class:`TripletEvaluator`."""

    anchors: list[str]
    positives: list[str]
    negatives: list[str]


class LabeledTexts(NamedTuple):
    """Single texts with a class name, for classification and clustering."""

    texts: list[str]
    labels: list[str]


# ------------------------------------------------------------------------------------------------- BEIR


def read_beir(folder: str | Path, split: str = "test", min_score: int = 1) -> BeirData:
    """Read a BEIR-format retrieval collection.

    The folder holds ``corpus.jsonl`` (``{"_id", "title", "text"}`` per line), ``queries.jsonl``
    (``{"_id", "text"}``) and ``qrels/{split}.tsv`` (``query-id, corpus-id, score`` with a header line).
    A document's text is its title and body joined by a space (the usual BEIR practice). Only queries judged
    in ``split`` are returned.

    Args:
        folder: The collection folder.
        split: Which ``qrels/{split}.tsv`` to read (``"test"``, ``"dev"``, ``"train"``).
        min_score: Judgments scoring below this are not relevant (BEIR's convention: score > 0 is relevant).
            Graded judgments are otherwise treated as binary.

    Returns:
        ``BeirData(corpus, queries, relevant_docs)``: id -> text, id -> text, query id -> relevant doc ids.

    Raises:
        FileNotFoundError: If the folder or one of its files is missing; lists the available splits.
        ValueError: If a line is malformed or a judged query has no text.

    Example:
        >>> corpus, queries, relevant = read_beir("scifact/beir", split="test")  # doctest: +SKIP
        >>> len(corpus), len(queries)  # doctest: +SKIP
        (5183, 300)

    """
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"BEIR folder {root} does not exist")
    qrels_path = root / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        available = sorted(p.stem for p in (root / "qrels").glob("*.tsv"))
        raise FileNotFoundError(
            f"{qrels_path} not found; splits available in {root / 'qrels'}: {available or 'none'}"
        )

    relevant_docs: dict[str, set[str]] = {}
    for number, fields in _tsv_rows(qrels_path):
        if number == 1 and fields[:2] == ["query-id", "corpus-id"]:
            continue
        if len(fields) < 3:
            raise ValueError(f"{qrels_path}:{number}: expected 'query-id, corpus-id, score', got {fields}")
        try:
            score = int(float(fields[2]))
        except ValueError:
            raise ValueError(f"{qrels_path}:{number}: score {fields[2]!r} is not a number") from None
        if score >= min_score:
            relevant_docs.setdefault(fields[0], set()).add(fields[1])

    corpus = {
        record["_id"]: " ".join(
            part for part in (record.get("title", ""), record.get("text", "")) if part
        ).strip()
        for record in _jsonl(root / "corpus.jsonl")
    }
    all_queries = {record["_id"]: record.get("text", "") for record in _jsonl(root / "queries.jsonl")}
    missing = sorted(set(relevant_docs) - set(all_queries))
    if missing:
        raise ValueError(f"{qrels_path} judges queries missing from queries.jsonl: {missing[:5]}")
    queries = {qid: text for qid, text in all_queries.items() if qid in relevant_docs}
    unknown_docs = sum(1 for docs in relevant_docs.values() for doc in docs if doc not in corpus)
    if unknown_docs:
        logger.warning("%s: %d relevant document ids are not in corpus.jsonl", qrels_path, unknown_docs)
    logger.info("Read %s: %d documents, %d queries (%s)", root, len(corpus), len(queries), split)
    return BeirData(corpus, queries, relevant_docs)


def _jsonl(path: Path) -> Iterator[dict]:
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found (a BEIR folder needs corpus.jsonl and queries.jsonl)")
    with path.open(encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
            if "_id" not in record:
                raise ValueError(f"{path}:{number}: record has no '_id' field")
            record["_id"] = str(record["_id"])
            yield record


# ------------------------------------------------------------------------------------------------- CSV


def read_sts_csv(
    path: str | Path,
    columns: Sequence[str] = ("sentence1", "sentence2", "score"),
    has_header: bool | None = None,
) -> ScoredPairs:
    """Read a semantic-textual-similarity CSV (quoted CSV, one pair and its gold score per row).

    Args:
        path: The CSV file, e.g. ``stsb-en-test.csv``.
        columns: Names of the first sentence, second sentence and score columns, used when there is a header.
        has_header: Whether the first row names the columns; ``None`` guesses (a header has a non-numeric
            score). Without a header the columns are taken in order: sentence1, sentence2, score.

    Returns:
        ``ScoredPairs(sentences1, sentences2, scores)``, scores as in the file (STSb: 0 to 5).

    Raises:
        FileNotFoundError: If the file is missing.
        ValueError: If a named column is missing, a row is short, or a score is not a number.

    """
    source = _existing(path)
    with source.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        return ScoredPairs([], [], [])
    if has_header is None:
        has_header = len(rows[0]) < 3 or not _is_number(rows[0][2])
    indices = _column_indices(source, rows[0], columns) if has_header else [0, 1, 2]
    first, second, score = indices
    result = ScoredPairs([], [], [])
    for number, row in enumerate(rows[1:] if has_header else rows, start=2 if has_header else 1):
        if not row:
            continue
        if len(row) <= max(indices):
            raise ValueError(f"{source}:{number}: expected at least {max(indices) + 1} columns, got {row}")
        if not _is_number(row[score]):
            raise ValueError(f"{source}:{number}: score {row[score]!r} is not a number")
        result.sentences1.append(row[first])
        result.sentences2.append(row[second])
        result.scores.append(float(row[score]))
    return result


def read_labeled_texts_csv(
    path: str | Path, text_column: str = "text", label_column: str = "category"
) -> LabeledTexts:
    """Read a classification CSV with a header (e.g. BANKING77's ``text,category``).

    Args:
        path: The CSV file.
        text_column: Name of the text column.
        label_column: Name of the class column.

    Returns:
        ``LabeledTexts(texts, labels)``, labels as strings.

    """
    source = _existing(path)
    with source.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        raise ValueError(f"{source} is empty; expected a header with {text_column!r} and {label_column!r}")
    text_index, label_index = _column_indices(source, rows[0], (text_column, label_column))
    result = LabeledTexts([], [])
    for number, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) <= max(text_index, label_index):
            raise ValueError(f"{source}:{number}: expected {len(rows[0])} columns, got {row}")
        result.texts.append(row[text_index])
        result.labels.append(row[label_index])
    return result


# ------------------------------------------------------------------------------------------------- TSV


def read_pair_tsv(
    path: str | Path,
    columns: Sequence[int | str],
    has_header: bool,
    label_map: Mapping[str, int] | None = None,
) -> LabeledPairs:
    """Read a tab-separated file of two texts and a label per line.

    Args:
        path: The TSV file.
        columns: Where the first text, second text and label are: three column indices, or three header names
            (``has_header`` must then be true).
        has_header: Whether the first line is a header (skipped, and used to resolve column names).
        label_map: Label text to id (e.g. :data:`SNLI_LABELS`); ``None`` parses labels as integers.

    Returns:
        ``LabeledPairs(sentences1, sentences2, labels)``.

    Raises:
        FileNotFoundError: If the file is missing.
        ValueError: If a column is missing, a line is short, or a label is unknown / not an integer.

    """
    if len(columns) != 3:
        raise ValueError(f"columns must name 3 columns (text1, text2, label), got {list(columns)}")
    first, second, label = _resolve_tsv(path, columns, has_header)
    result = LabeledPairs([], [], [])
    for source, number, fields in _tsv_data(path, has_header, max(first, second, label)):
        result.sentences1.append(fields[first])
        result.sentences2.append(fields[second])
        result.labels.append(_label(source, number, fields[label], label_map))
    return result


def read_triplet_tsv(
    path: str | Path,
    columns: Sequence[int | str] = ("anchor", "positive", "negative"),
    has_header: bool = True,
) -> Triplets:
    """Read (anchor, positive, negative) triplets from a tab-separated file.

    Args:
        path: The TSV file, e.g. ``snli_test_triplets.tsv``.
        columns: Header names (or indices) of the anchor, positive and negative columns.
        has_header: Whether the first line is a header.

    Returns:
        ``Triplets(anchors, positives, negatives)``.

    """
    if len(columns) != 3:
        raise ValueError(f"columns must name 3 columns (anchor, positive, negative), got {list(columns)}")
    anchor, positive, negative = _resolve_tsv(path, columns, has_header)
    result = Triplets([], [], [])
    for _, _, fields in _tsv_data(path, has_header, max(anchor, positive, negative)):
        result.anchors.append(fields[anchor])
        result.positives.append(fields[positive])
        result.negatives.append(fields[negative])
    return result


def read_quora_duplicates(path: str | Path) -> LabeledPairs:
    """Read the Quora Question Pairs TSV of the BiMPM split (``label q1 q2 pair_id``, no header)."""
    return read_pair_tsv(path, columns=(1, 2, 0), has_header=False)


def read_mrpc(path: str | Path) -> LabeledPairs:
    """Read the Microsoft Research Paraphrase Corpus TSV (header ``Quality #1 ID #2 ID #1 String #2 String``).

    The strings contain bare quotes, so the file is split on tabs only.
    """
    return read_pair_tsv(path, columns=("#1 String", "#2 String", "Quality"), has_header=True)


def read_snli_pairs(path: str | Path, label_map: Mapping[str, int] = SNLI_LABELS) -> LabeledPairs:
    """Read NLI pairs (header ``premise hypothesis label``), mapping labels through :data:`SNLI_LABELS`."""
    return read_pair_tsv(
        path, columns=("premise", "hypothesis", "label"), has_header=True, label_map=label_map
    )


def _resolve_tsv(path: str | Path, columns: Sequence[int | str], has_header: bool) -> list[int]:
    source = _existing(path)
    if all(isinstance(column, int) for column in columns):
        return [int(column) for column in columns]
    if not has_header:
        raise ValueError(f"columns {list(columns)} are names, but {source} is read without a header")
    with source.open(encoding="utf-8-sig") as handle:
        header = handle.readline().rstrip("\r\n").split("\t")
    return _column_indices(source, header, columns)


def _tsv_data(path: str | Path, has_header: bool, last_column: int) -> Iterator[tuple[Path, int, list[str]]]:
    source = _existing(path)
    for number, fields in _tsv_rows(source):
        if has_header and number == 1:
            continue
        if len(fields) <= last_column:
            raise ValueError(
                f"{source}:{number}: expected at least {last_column + 1} tab-separated fields, got {fields}"
            )
        yield source, number, fields


def _tsv_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    with path.open(encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            line = line.rstrip("\r\n")
            if line:
                yield number, line.split("\t")


# ------------------------------------------------------------------------------------------------- helpers


def _existing(path: str | Path) -> Path:
    source = Path(path)
    if not source.is_file():
        raise FileNotFoundError(f"{source} not found")
    return source


def _column_indices(source: Path, header: Sequence[str], names: Sequence[int | str]) -> list[int]:
    stripped = [name.strip() for name in header]
    indices = []
    for name in names:
        if isinstance(name, int):
            indices.append(name)
        elif name in stripped:
            indices.append(stripped.index(name))
        else:
            raise ValueError(f"{source}: no column {name!r}; the header has {stripped}")
    return indices


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _label(source: Path, number: int, text: str, label_map: Mapping[str, int] | None) -> int:
    if label_map is not None:
        if text not in label_map:
            raise ValueError(f"{source}:{number}: label {text!r} is not one of {sorted(label_map)}")
        return label_map[text]
    try:
        return int(text)
    except ValueError:
        raise ValueError(
            f"{source}:{number}: label {text!r} is not an integer; pass label_map to map label names to ids"
        ) from None
