"""Retrieval quality: rank a corpus for each query and score the ranking against relevance judgments."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from sentencekit.evaluation._embeddings import model_similarity_name, similarity_matrix
from sentencekit.evaluation.base import (
    SentenceEvaluator,
    csv_file_name,
)
from sentencekit.types import SimilarityFunction

__all__ = ["InformationRetrievalEvaluator"]

logger = logging.getLogger(__name__)

ScoreFunction = Callable[[Tensor, Tensor], Tensor]
Ranking = list[tuple[float, str]]  # (score, corpus id), best first


class InformationRetrievalEvaluator(SentenceEvaluator):
    """Retrieve the best documents for every query and report MRR, nDCG, MAP, recall, precision and accuracy.

    ==================  ===========================================================
    input               meaning
    ==================  ===========================================================
    ``queries``         query id -> query text
    ``corpus``          document id -> document text
    ``relevant_docs``   query id -> ids of the documents relevant to it
    ==================  ===========================================================

    Only queries with at least one relevant document are evaluated. Every score function ranks the whole
    corpus for every query (ties broken by ascending document id) and the top ``max(k)`` documents are kept.
    Relevance is binary: a document listed in ``relevant_docs`` counts as relevant whatever its grade.

    Metrics, each averaged over queries: ``accuracy@k`` (a relevant document in the top k), ``precision@k``,
    ``recall@k``, ``mrr@k`` (reciprocal rank of the first relevant document), ``ndcg@k`` and ``map@k``
    (average precision, divided by ``min(k, number of relevant documents)``).

    Use it on BEIR-style collections (see :func:`sentencekit.readers.read_beir`) and as the dev evaluator of
    retrieval fine-tuning. For a fixed candidate list per query, use :class:`RerankingEvaluator`.

    Returned keys: ``{score_function}_{metric}@{k}``. ``primary_metric`` is ``{main}_ndcg@{max(ndcg_at_k)}``,
    where ``main`` is ``main_score_function`` or else the score function with the best such nDCG.

    Args:
        queries: Query id to text.
        corpus: Document id to text.
        relevant_docs: Query id to the ids of its relevant documents (a set, list or dict keyed by id).
        corpus_chunk_size: Distinct documents encoded and scored at a time; bounds the memory of the
            ``queries x chunk`` score matrix.
        mrr_at_k: Cut-offs for MRR.
        ndcg_at_k: Cut-offs for nDCG.
        accuracy_at_k: Cut-offs for accuracy.
        precision_recall_at_k: Cut-offs for precision and recall.
        map_at_k: Cut-offs for MAP.
        show_progress_bar: Show the encoding progress bar.
        batch_size: Encoding batch size.
        name: Prefix of the returned keys and part of the CSV file name.
        write_csv: Append a row to ``Information-Retrieval_evaluation[_{name}]_results.csv`` when called
            with an ``output_path``.
        truncate_dim: Keep only the first ``truncate_dim`` embedding dimensions.
        score_functions: Name to ``(queries, docs) -> (n_queries, n_docs)`` score function; ``None`` uses the
            model's ``similarity_fn_name``.
        main_score_function: Score function whose nDCG is the primary metric.
        query_prompt: Literal prompt prepended to every query (e.g. ``"query: "``).
        query_prompt_name: Name of a prompt stored in the model, used for queries.
        corpus_prompt: Literal prompt prepended to every document (e.g. ``"passage: "``).
        corpus_prompt_name: Name of a prompt stored in the model, used for documents.
        write_predictions: When called with an ``output_path``, also write each query's top ``max(k)``
            documents to ``Information-Retrieval_evaluation[_{name}]_predictions_{score_function}.jsonl``
            (one ``{"query_id", "query", "results": [{"corpus_id", "score"}, ...]}`` line per query).

    Example:
        ::

            from sentencekit.evaluation import InformationRetrievalEvaluator
            from sentencekit.readers import read_beir

            corpus, queries, relevant_docs = read_beir("scifact/beir", split="test")
            evaluator = InformationRetrievalEvaluator(queries, corpus, relevant_docs, name="scifact")
            results = evaluator(model)
            results["scifact_cosine_ndcg@10"]  # about 0.65 for all-MiniLM-L6-v2

    """

    def __init__(
        self,
        queries: Mapping[str, str],
        corpus: Mapping[str, str],
        relevant_docs: Mapping[str, Iterable[str]],
        corpus_chunk_size: int = 50000,
        mrr_at_k: Sequence[int] = (10,),
        ndcg_at_k: Sequence[int] = (10,),
        accuracy_at_k: Sequence[int] = (1, 3, 5, 10),
        precision_recall_at_k: Sequence[int] = (1, 3, 5, 10),
        map_at_k: Sequence[int] = (100,),
        show_progress_bar: bool = False,
        batch_size: int = 32,
        name: str = "",
        write_csv: bool = True,
        truncate_dim: int | None = None,
        score_functions: Mapping[str, ScoreFunction] | None = None,
        main_score_function: str | SimilarityFunction | None = None,
        query_prompt: str | None = None,
        query_prompt_name: str | None = None,
        corpus_prompt: str | None = None,
        corpus_prompt_name: str | None = None,
        write_predictions: bool = False,
    ) -> None:
        super().__init__(
            name, batch_size=batch_size, show_progress_bar=show_progress_bar, truncate_dim=truncate_dim
        )
        cutoffs = (mrr_at_k, ndcg_at_k, accuracy_at_k, precision_recall_at_k, map_at_k)
        if any(not ks or min(ks) < 1 for ks in cutoffs):
            raise ValueError("every *_at_k argument needs at least one cut-off, and cut-offs must be >= 1")
        if corpus_chunk_size < 1:
            raise ValueError(f"corpus_chunk_size must be >= 1, got {corpus_chunk_size}")
        self.relevant_docs = {qid: set(docs) for qid, docs in relevant_docs.items()}
        self.queries_ids = [qid for qid in queries if self.relevant_docs.get(qid)]
        self.queries = [queries[qid] for qid in self.queries_ids]
        if not self.queries:
            raise ValueError(
                f"none of the {len(queries)} queries has a relevant document in relevant_docs; check that "
                f"both use the same ids and id type: {list(queries)[:3]} vs {list(relevant_docs)[:3]}"
            )
        if not corpus:
            raise ValueError("InformationRetrievalEvaluator needs a non-empty corpus")
        self.corpus_ids = list(corpus)
        self.corpus = [corpus[cid] for cid in self.corpus_ids]
        self.corpus_chunk_size = corpus_chunk_size
        self.mrr_at_k = list(mrr_at_k)
        self.ndcg_at_k = list(ndcg_at_k)
        self.accuracy_at_k = list(accuracy_at_k)
        self.precision_recall_at_k = list(precision_recall_at_k)
        self.map_at_k = list(map_at_k)
        self.write_csv = write_csv
        self.score_functions = dict(score_functions) if score_functions else None
        self.main_score_function = (
            SimilarityFunction.parse(main_score_function) if main_score_function else None
        )
        self.query_prompt = query_prompt
        self.query_prompt_name = query_prompt_name
        self.corpus_prompt = corpus_prompt
        self.corpus_prompt_name = corpus_prompt_name
        self.csv_file = csv_file_name("Information-Retrieval_evaluation", name)
        self.write_predictions = write_predictions
        self.predictions_file = csv_file_name("Information-Retrieval_evaluation", name, "_predictions.jsonl")
        self._score_function_names = sorted(self.score_functions or [])

    @property
    def csv_headers(self) -> list[str]:
        """Columns of the CSV file: ``epoch, steps`` then ``{fn}-Accuracy@{k}`` ... ``{fn}-MAP@{k}``."""
        headers = ["epoch", "steps"]
        for fn in self._score_function_names:
            headers += [f"{fn}-Accuracy@{k}" for k in self.accuracy_at_k]
            headers += [f"{fn}-{m}@{k}" for k in self.precision_recall_at_k for m in ("Precision", "Recall")]
            headers += [f"{fn}-MRR@{k}" for k in self.mrr_at_k]
            headers += [f"{fn}-NDCG@{k}" for k in self.ndcg_at_k]
            headers += [f"{fn}-MAP@{k}" for k in self.map_at_k]
        return headers

    def __call__(
        self, model: Any, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        """Encode queries and corpus, rank, and return the retrieval metrics."""
        self.log_start(epoch, steps, f" ({len(self.queries)} queries, {len(self.corpus)} documents)")
        functions = self.score_functions
        if functions is None:
            model_fn = model_similarity_name(model)
            functions = {model_fn: similarity_matrix(model_fn)}
        self._score_function_names = sorted(functions)
        rankings = self.rank(model, functions)
        if output_path is not None and self.write_predictions:
            self.save_predictions(rankings, output_path)
        scores = {fn: self.compute_metrics(rankings[fn]) for fn in self._score_function_names}
        for fn in self._score_function_names:
            logger.info("Score function %s: %s", fn, _summary(scores[fn]))

        if output_path is not None and self.write_csv:
            row: list[Any] = [epoch, steps]
            for fn in self._score_function_names:
                values = scores[fn]
                row += [values["accuracy"][k] for k in self.accuracy_at_k]
                row += [values[m][k] for k in self.precision_recall_at_k for m in ("precision", "recall")]
                row += [values["mrr"][k] for k in self.mrr_at_k]
                row += [values["ndcg"][k] for k in self.ndcg_at_k]
                row += [values["map"][k] for k in self.map_at_k]
            self.write_csv_row(output_path, self.csv_file, self.csv_headers, row)

        top_ndcg = max(self.ndcg_at_k)
        if self.main_score_function is not None:
            main = str(self.main_score_function)
        else:
            main = max(self._score_function_names, key=lambda fn: scores[fn]["ndcg"][top_ndcg])
        self.primary_metric = f"{main}_ndcg@{top_ndcg}"
        metrics = {
            f"{fn}_{metric}@{k}": value
            for fn in self._score_function_names
            for metric, by_k in scores[fn].items()
            for k, value in by_k.items()
        }
        return self.prefix_name_to_metrics(metrics, self.name)

    def rank(self, model: Any, functions: Mapping[str, ScoreFunction]) -> dict[str, list[Ranking]]:
        """Return the top ``max(k)`` ``(score, corpus_id)`` of every evaluated query, per score function.

        The distinct documents are encoded ``corpus_chunk_size`` at a time; a document text shared by several
        ids is encoded once and ranked under each of its ids.
        """
        max_k = max(
            self.mrr_at_k + self.ndcg_at_k + self.accuracy_at_k + self.precision_recall_at_k + self.map_at_k
        )
        (query_embeddings,) = self.embed(
            model,
            self.queries,
            role="query",
            prompt=self.query_prompt,
            prompt_name=self.query_prompt_name,
        )
        # distinct document texts, and for each of them the corpus positions holding it
        holders: dict[str, list[int]] = {}
        for position, text in enumerate(self.corpus):
            holders.setdefault(text, []).append(position)
        distinct = list(holders)

        rankings: dict[str, list[Ranking]] = {fn: [[] for _ in self.queries] for fn in functions}
        for start in range(0, len(distinct), self.corpus_chunk_size):
            chunk = distinct[start : start + self.corpus_chunk_size]
            (chunk_embeddings,) = self.embed(
                model,
                chunk,
                role="document",
                prompt=self.corpus_prompt,
                prompt_name=self.corpus_prompt_name,
            )
            columns = [column for column, text in enumerate(chunk) for _ in holders[text]]
            positions = [position for text in chunk for position in holders[text]]
            chunk_ids = [self.corpus_ids[position] for position in positions]
            column_index = torch.as_tensor(columns, dtype=torch.long, device=chunk_embeddings.device)
            for fn, score_function in functions.items():
                chunk_scores = score_function(query_embeddings, chunk_embeddings).detach()[:, column_index]
                for query, hits in enumerate(_top_k(chunk_scores, chunk_ids, max_k)):
                    merged = sorted(rankings[fn][query] + hits, key=lambda hit: (-hit[0], hit[1]))
                    rankings[fn][query] = merged[:max_k]
        return rankings

    def save_predictions(self, rankings: Mapping[str, list[Ranking]], output_path: str | Path) -> None:
        """Write every query's ranking to one JSON-lines file per score function (overwriting it)."""
        folder = Path(output_path)
        folder.mkdir(parents=True, exist_ok=True)
        for fn, per_query in rankings.items():
            path = folder / self.predictions_file.replace(".jsonl", f"_{fn}.jsonl")
            with path.open("w", encoding="utf-8") as handle:
                for query_id, query, ranking in zip(self.queries_ids, self.queries, per_query, strict=True):
                    results = [{"corpus_id": cid, "score": score} for score, cid in ranking]
                    handle.write(
                        json.dumps({"query_id": query_id, "query": query, "results": results}) + "\n"
                    )
            logger.debug("Wrote %s predictions to %s", fn, path)

    def compute_metrics(self, rankings: list[Ranking]) -> dict[str, dict[int, float]]:
        """Average every metric over the queries, given each query's ranking (best first)."""
        sums: dict[str, dict[int, float]] = {
            "accuracy": dict.fromkeys(self.accuracy_at_k, 0.0),
            "precision": dict.fromkeys(self.precision_recall_at_k, 0.0),
            "recall": dict.fromkeys(self.precision_recall_at_k, 0.0),
            "ndcg": dict.fromkeys(self.ndcg_at_k, 0.0),
            "mrr": dict.fromkeys(self.mrr_at_k, 0.0),
            "map": dict.fromkeys(self.map_at_k, 0.0),
        }
        for query_id, ranking in zip(self.queries_ids, rankings, strict=True):
            relevant = self.relevant_docs[query_id]
            hits = [corpus_id in relevant for _, corpus_id in ranking]
            first_hit = hits.index(True) if True in hits else math.inf
            for k in self.accuracy_at_k:
                sums["accuracy"][k] += float(first_hit < k)
            for k in self.precision_recall_at_k:
                found = sum(hits[:k])
                sums["precision"][k] += found / k
                sums["recall"][k] += found / len(relevant)
            for k in self.mrr_at_k:
                sums["mrr"][k] += 1.0 / (first_hit + 1) if first_hit < k else 0.0
            for k in self.ndcg_at_k:
                ideal = _dcg([True] * len(relevant), k)
                sums["ndcg"][k] += _dcg(hits, k) / ideal
            for k in self.map_at_k:
                sums["map"][k] += _average_precision(hits[:k]) / min(k, len(relevant))
        return {
            metric: {k: total / len(rankings) for k, total in by_k.items()} for metric, by_k in sums.items()
        }

    def get_config_dict(self) -> dict[str, Any]:
        """Return the truncation and prompts, when set."""
        keys = ("truncate_dim", "query_prompt", "query_prompt_name", "corpus_prompt", "corpus_prompt_name")
        return {key: getattr(self, key) for key in keys if getattr(self, key) is not None}


def _top_k(scores: Tensor, ids: Sequence[str], k: int) -> list[Ranking]:
    """Per row of ``scores``, the best ``k`` columns as ``(score, id)``, ties broken by ascending id.

    ``torch.topk`` picks arbitrarily among equal scores at the cut-off, so rows with such ties take every
    column tied at the cut-off and let the id decide.
    """
    k = min(k, scores.shape[1])
    if k == 0:
        return [[] for _ in range(scores.shape[0])]
    values, columns = torch.topk(scores, k, dim=1)
    cutoff = values[:, -1:]
    tied_rows = ((scores >= cutoff).sum(dim=1) > k).tolist()
    values_list, columns_list = values.tolist(), columns.tolist()
    result: list[Ranking] = []
    for row, tied in enumerate(tied_rows):
        if tied:
            candidates = torch.nonzero(scores[row] >= cutoff[row]).flatten().tolist()
            row_scores = scores[row, candidates].tolist()
            hits = sorted(
                zip(row_scores, (ids[c] for c in candidates), strict=True), key=lambda hit: (-hit[0], hit[1])
            )
            result.append(hits[:k])
        else:
            result.append(
                [(value, ids[c]) for value, c in zip(values_list[row], columns_list[row], strict=True)]
            )
    return result


def _dcg(hits: Sequence[bool], k: int) -> float:
    return sum(1.0 / math.log2(rank + 2) for rank, hit in enumerate(hits[:k]) if hit)


def _average_precision(hits: Sequence[bool]) -> float:
    """Sum of the precision at each relevant position (the caller normalises)."""
    found, total = 0, 0.0
    for rank, hit in enumerate(hits):
        if hit:
            found += 1
            total += found / (rank + 1)
    return total


def _summary(scores: Mapping[str, Mapping[int, float]]) -> str:
    return ", ".join(
        f"{metric}@{k} {value:.4f}" for metric, by_k in scores.items() for k, value in by_k.items()
    )
