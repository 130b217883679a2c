"""Paraphrase mining: find the duplicate pairs hidden in a collection of sentences."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from sentencekit.evaluation._thresholds import RankedSweep, midpoint_thresholds
from sentencekit.evaluation.base import (
    SentenceEvaluator,
    append_csv_row,
    csv_file_name,
)

__all__ = ["ParaphraseMiningEvaluator"]

logger = logging.getLogger(__name__)

Pair = tuple[str, str]


class ParaphraseMiningEvaluator(SentenceEvaluator):
    """Mine the most similar sentence pairs of a collection and score them against the known duplicates.

    ======================  ===========================================================
    input                   meaning
    ======================  ===========================================================
    ``sentences_map``       sentence id -> sentence
    ``duplicates_list``     ``(id1, id2)`` pairs that are duplicates of each other, or
    ``duplicates_dict``     ``{id1: {id2: True}}``, the same as nested dicts
    ======================  ===========================================================

    The sentences are embedded and :func:`sentencekit.search.paraphrase_mining_embeddings` proposes, for
    every sentence, its ``top_k`` most similar partners (cosine), keeping the best ``max_pairs`` overall.
    Walking down that list, the evaluator reports the average precision over all known duplicates
    (duplicates never proposed count as misses) and the precision, recall and F1 at the best cut, with the
    similarity threshold of that cut.

    Use it for duplicate-question detection at collection scale (Quora), where
    :class:`BinaryClassificationEvaluator` only looks at given pairs.

    Returned keys: ``average_precision, f1, precision, recall, threshold``; ``primary_metric`` is
    ``average_precision``.

    Args:
        sentences_map: Sentence id to text. Ids sharing one text are encoded once and still paired.
        duplicates_list: Duplicate id pairs; pairs with an id missing from ``sentences_map`` are ignored. A
            pair of an id with itself counts as a duplicate that is never mined (the reference counts it too).
        duplicates_dict: Duplicate pairs as ``{id1: {id2: True}}``; used together with ``duplicates_list``.
        add_transitive_closure: If ``a~b`` and ``b~c`` are duplicates, count ``a~c`` as one too.
        query_chunk_size: Passed to the mining: sentences searched at once.
        corpus_chunk_size: Passed to the mining: candidate partners scored at once.
        max_pairs: At most this many pairs are mined.
        top_k: Partners proposed per sentence.
        show_progress_bar: Show the encoding progress bar.
        batch_size: Encoding batch size.
        name: Prefix of the returned keys and part of the CSV file name.
        write_csv: Append a row to ``paraphrase_mining_evaluation[_{name}]_results.csv`` when called with an
            ``output_path``.
        truncate_dim: Keep only the first ``truncate_dim`` embedding dimensions.

    Example:
        ::

            from sentencekit.evaluation import ParaphraseMiningEvaluator

            sentences = {"1": "How do I learn Python?", "2": "What is the best way to learn Python?",
                         "3": "Where is Paris?"}
            evaluator = ParaphraseMiningEvaluator(sentences, duplicates_list=[("1", "2")], name="toy")
            evaluator(model)["toy_average_precision"]  # 1.0 if the pair (1, 2) is mined first

    """

    def __init__(
        self,
        sentences_map: Mapping[str, str],
        duplicates_list: Iterable[Pair] | None = None,
        duplicates_dict: Mapping[str, Mapping[str, bool]] | None = None,
        add_transitive_closure: bool = False,
        query_chunk_size: int = 5000,
        corpus_chunk_size: int = 100000,
        max_pairs: int = 500000,
        top_k: int = 100,
        show_progress_bar: bool = False,
        batch_size: int = 16,
        name: str = "",
        write_csv: bool = True,
        truncate_dim: int | None = None,
    ) -> None:
        super().__init__(
            name, batch_size=batch_size, show_progress_bar=show_progress_bar, truncate_dim=truncate_dim
        )
        if len(sentences_map) < 2:
            raise ValueError("ParaphraseMiningEvaluator needs at least two sentences to pair")
        self.ids = list(sentences_map)
        self.sentences = [sentences_map[sentence_id] for sentence_id in self.ids]
        pairs: list[Pair] = list(duplicates_list or [])
        for id1, partners in (duplicates_dict or {}).items():
            pairs += [(id1, id2) for id2, is_duplicate in partners.items() if is_duplicate]
        known = set(self.ids)
        self.duplicates = _unordered({pair for pair in pairs if pair[0] in known and pair[1] in known})
        self.add_transitive_closure = add_transitive_closure
        if add_transitive_closure:
            self.duplicates = _transitive_closure(self.duplicates)
        self.query_chunk_size = query_chunk_size
        self.corpus_chunk_size = corpus_chunk_size
        self.max_pairs = max_pairs
        self.top_k = top_k
        self.write_csv = write_csv
        self.csv_file = csv_file_name("paraphrase_mining_evaluation", name)
        self.csv_headers = ["epoch", "steps", "precision", "recall", "f1", "threshold", "average_precision"]
        self.primary_metric = "average_precision"

    @property
    def total_num_duplicates(self) -> int:
        """Number of known duplicate pairs (after the transitive closure, if requested)."""
        return len(self.duplicates)

    def __call__(
        self, model: Any, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        """Encode the sentences, mine pairs and score them against the known duplicates."""
        from sentencekit.search import paraphrase_mining_embeddings

        self.log_start(epoch, steps)
        (embeddings,) = self.embed(
            model,
            self.sentences,
        )
        mined = paraphrase_mining_embeddings(
            embeddings,
            query_chunk_size=self.query_chunk_size,
            corpus_chunk_size=self.corpus_chunk_size,
            max_pairs=self.max_pairs,
            top_k=self.top_k,
        )
        logger.info("Mined %d candidate pairs", len(mined))
        scores = np.array([float(score) for score, _, _ in mined], dtype=np.float64)
        is_duplicate = np.array(
            [frozenset((self.ids[int(i)], self.ids[int(j)])) in self.duplicates for _, i, j in mined],
            dtype=bool,
        )
        sweep = RankedSweep.from_scores(scores, is_duplicate, total_positives=self.total_num_duplicates)
        f1, precision, recall, cut = sweep.best_f1()
        threshold = float(midpoint_thresholds(sweep.scores, sweep.ends)[cut]) if cut >= 0 else 0.0
        metrics = {
            "average_precision": sweep.average_precision(),
            "f1": f1,
            "precision": precision,
            "recall": recall,
            "threshold": threshold,
        }
        logger.info(
            "Average precision %.2f%%, F1 %.2f%% at threshold %.4f (precision %.2f%%, recall %.2f%%)",
            100 * metrics["average_precision"],
            100 * f1,
            threshold,
            100 * precision,
            100 * recall,
        )
        if output_path is not None and self.write_csv:
            row = [epoch, steps, precision, recall, f1, threshold, metrics["average_precision"]]
            append_csv_row(output_path, self.csv_file, self.csv_headers, row)
        self.primary_metric = "average_precision"
        return self.prefix_name_to_metrics(metrics, self.name)

    def get_config_dict(self) -> dict[str, Any]:
        """Mining settings, and ``truncate_dim`` when set."""
        config: dict[str, Any] = {
            "add_transitive_closure": self.add_transitive_closure,
            "max_pairs": self.max_pairs,
            "top_k": self.top_k,
        }
        if self.truncate_dim is not None:
            config["truncate_dim"] = self.truncate_dim
        return config


def _unordered(pairs: Iterable[Pair]) -> set[frozenset[str]]:
    """Pairs as unordered sets.

    A self-pair ``(a, a)`` stays (as ``{a}``): it counts as a known duplicate that mining can never return,
    as in sentence-transformers, so recall and average precision match the reference's.
    """
    return {frozenset(pair) for pair in pairs}


def _transitive_closure(pairs: set[frozenset[str]]) -> set[frozenset[str]]:
    """Every pair of ids connected through a chain of duplicate pairs (union-find over the ids)."""
    parent: dict[str, str] = {}

    def root(node: str) -> str:
        parent.setdefault(node, node)
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for pair in pairs:
        a, *rest = tuple(pair)
        parent[root(a)] = root(rest[0] if rest else a)
    groups: dict[str, list[str]] = {}
    for node in list(parent):
        groups.setdefault(root(node), []).append(node)
    closed = {
        frozenset((group[i], group[j]))
        for group in groups.values()
        for i in range(len(group))
        for j in range(i)
    }
    return closed | pairs  # the given self-pairs stay; the closure adds none
