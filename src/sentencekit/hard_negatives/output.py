"""The four output formats (triplet, n-tuple, labeled-pair, labeled-list) and the verbose summary log."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

# the package's one logger, named as it was before the package was split into modules
logger = logging.getLogger("sentencekit.hard_negatives")


@dataclass(frozen=True)
class _Mined:
    """What every output format is built from."""

    queries: list[str]
    texts: list[str]
    rows: list[tuple[int, int]]  # unique (query index, positive's text index), grouped by query
    positive_scores: list[float]  # one per row
    negatives: list[list[tuple[int, float]]]  # per query: (text index, score), best first
    num_negatives: int
    scored: bool

    def scored_rows(self) -> list[tuple[int, int, float]]:
        return [(qi, pid, s) for (qi, pid), s in zip(self.rows, self.positive_scores, strict=True)]


def _triplets(m: _Mined) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {"anchor": [], "positive": [], "negative": [], "scores": []}
    for qi, pid, pos_score in m.scored_rows():
        for nid, neg_score in m.negatives[qi]:
            out["anchor"].append(m.queries[qi])
            out["positive"].append(m.texts[pid])
            out["negative"].append(m.texts[nid])
            out["scores"].append([pos_score, neg_score])
    return out if m.scored else {key: out[key] for key in ("anchor", "positive", "negative")}


def _n_tuples(m: _Mined) -> dict[str, list[Any]]:
    full = [(qi, pid, s) for qi, pid, s in m.scored_rows() if len(m.negatives[qi]) == m.num_negatives]
    out: dict[str, list[Any]] = {"anchor": [m.queries[qi] for qi, _, _ in full]}
    out["positive"] = [m.texts[pid] for _, pid, _ in full]
    for i in range(m.num_negatives):
        out[f"negative_{i + 1}"] = [m.texts[m.negatives[qi][i][0]] for qi, _, _ in full]
    if m.scored:
        out["scores"] = [[s, *(score for _, score in m.negatives[qi])] for qi, _, s in full]
    return out


def _labeled_pairs(m: _Mined) -> dict[str, list[Any]]:
    label = "score" if m.scored else "label"
    out: dict[str, list[Any]] = {"anchor": [], "positive": [], label: []}
    labelled: dict[int, list[tuple[int, float, int]]] = {}  # per query, its positives then its negatives
    for qi, pid, s in m.scored_rows():
        labelled.setdefault(qi, []).append((pid, s, 1))
    for qi, texts in labelled.items():
        for tid, s, value in [*texts, *((nid, s, 0) for nid, s in m.negatives[qi])]:
            out["anchor"].append(m.queries[qi])
            out["positive"].append(m.texts[tid])
            out[label].append(s if m.scored else value)
    return out


def _labeled_lists(m: _Mined) -> dict[str, list[Any]]:
    kept = [(qi, pid, s) for qi, pid, s in m.scored_rows() if m.negatives[qi]]
    out: dict[str, list[Any]] = {"anchor": [m.queries[qi] for qi, _, _ in kept]}
    out["positive"] = [[m.texts[pid], *(m.texts[c] for c, _ in m.negatives[qi])] for qi, pid, _ in kept]
    if m.scored:
        out["scores"] = [[s, *(score for _, score in m.negatives[qi])] for qi, _, s in kept]
    else:
        out["labels"] = [[1] + [0] * len(m.negatives[qi]) for qi, _, _ in kept]
    return out


_FORMATTERS = {"triplet": _triplets, "n-tuple": _n_tuples, "labeled-pair": _labeled_pairs}
_FORMATTERS["labeled-list"] = _labeled_lists


def _log_summary(m: _Mined, skipped: dict[str, int], filters: dict[str, float | None], n_out: int) -> None:
    negative_scores = [s for row in m.negatives for _, s in row]
    logger.info(
        "Mean positive score %.4f over %d pairs; mean negative score %.4f over %d negatives; %d output rows.",
        np.mean(m.positive_scores),
        len(m.positive_scores),
        np.mean(negative_scores) if negative_scores else float("nan"),
        len(negative_scores),
        n_out,
    )
    for name, count in skipped.items():
        if count:
            logger.info("Skipped %d candidates because of %s=%s.", count, name, filters[name])
    short = sum(len(row) < m.num_negatives for row in m.negatives)
    if short:
        logger.warning(
            "%d of %d anchors found fewer than %d negatives. To find more, raise range_max or lower "
            "range_min, or loosen the margins, max_score or min_score.",
            short,
            len(m.negatives),
            m.num_negatives,
        )
