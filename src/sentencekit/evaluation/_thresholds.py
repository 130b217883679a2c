"""Sweeping a decision threshold down a ranked list: best accuracy, best F1 and average precision.

Both :class:`BinaryClassificationEvaluator` (pairs scored by similarity) and
:class:`ParaphraseMiningEvaluator` (mined pairs ranked by similarity) ask the same question: if everything
scoring at least ``t`` is called a positive, how good is that call, and which ``t`` is best? Items with equal
scores cannot be separated by any threshold, so the sweep only stops at the end of each group of tied scores.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["RankedSweep", "midpoint_thresholds"]


@dataclass(frozen=True)
class RankedSweep:
    """Counts at every cut of a ranked list that does not split a group of tied scores.

    Attributes:
        scores: The scores sorted from highest to lowest.
        ends: Index (into ``scores``) of the last item of each tie group, ascending.
        selected: Number of items at or above each cut (``ends + 1``).
        true_positives: Number of positives at or above each cut.
        total_positives: Positives in the whole population (may exceed those in the list, e.g. duplicates
            that paraphrase mining never retrieved).
        total: Size of the whole population the accuracy is computed over.

    """

    scores: np.ndarray
    ends: np.ndarray
    selected: np.ndarray
    true_positives: np.ndarray
    total_positives: int
    total: int

    @classmethod
    def from_scores(
        cls, scores: np.ndarray, is_positive: np.ndarray, total_positives: int | None = None
    ) -> RankedSweep:
        """Rank ``scores`` (higher = more likely positive) and count positives at every tie-group end.

        Args:
            scores: One score per item.
            is_positive: One boolean (or 0/1) per item.
            total_positives: Positives in the population; defaults to ``is_positive.sum()``.

        """
        order = np.argsort(-scores, kind="stable")
        ranked = scores[order]
        hits = np.cumsum(np.asarray(is_positive, dtype=np.int64)[order])
        ends = (
            np.flatnonzero(np.append(ranked[1:] != ranked[:-1], True)) if len(ranked) else np.array([], int)
        )
        positives = int(hits[-1]) if len(hits) else 0
        return cls(
            scores=ranked,
            ends=ends,
            selected=ends + 1,
            true_positives=hits[ends],
            total_positives=positives if total_positives is None else total_positives,
            total=len(ranked),
        )

    def best_accuracy(self) -> tuple[float, int]:
        """Best accuracy over all cuts, including "nothing is positive", and its cut index (-1 for that)."""
        negatives = self.total - self.total_positives
        correct = self.true_positives + (negatives - (self.selected - self.true_positives))
        candidates = np.concatenate(([negatives], correct))
        best = int(np.argmax(candidates))  # first maximum: the highest threshold among equals
        return (float(candidates[best]) / self.total if self.total else 0.0), best - 1

    def best_f1(self) -> tuple[float, float, float, int]:
        """Best F1 over all cuts as ``(f1, precision, recall, cut index)``; all zero and -1 if none scores."""
        useful = self.true_positives > 0
        if self.total_positives == 0 or not useful.any():
            return 0.0, 0.0, 0.0, -1
        precision = np.where(useful, self.true_positives / self.selected, 0.0)
        recall = self.true_positives / self.total_positives
        with np.errstate(invalid="ignore", divide="ignore"):
            f1 = np.where(useful, 2 * precision * recall / (precision + recall), 0.0)
        best = int(np.argmax(f1))
        return float(f1[best]), float(precision[best]), float(recall[best]), best

    def average_precision(self) -> float:
        """Precision averaged over the positives, each counted at the cut that first includes it."""
        if self.total_positives == 0:
            return 0.0
        gained = np.diff(self.true_positives, prepend=0)
        return float(np.sum(gained * (self.true_positives / self.selected)) / self.total_positives)


def midpoint_thresholds(ranked: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """For each cut, the threshold halfway between its last score and the next one down (kept in dtype).

    The last cut's threshold is its own score. A midpoint that rounds onto the next score would let that score
    through, so it falls back to the cut's own score.
    """
    following = ranked[np.minimum(ends + 1, len(ranked) - 1)]
    middle = ((ranked[ends] + following) / 2).astype(ranked.dtype)
    return np.where(middle == following, ranked[ends], middle) if len(ends) else middle
