"""Retrieval with sparse embeddings: ranking metrics, sparsity of queries and documents, and search cost."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from sentencekit.evaluation._embeddings import Role
from sentencekit.evaluation.information_retrieval import InformationRetrievalEvaluator
from sentencekit.sparse_encoder.evaluation.base import SparseEvaluatorMixin
from sentencekit.types import SimilarityFunction

__all__ = ["SparseInformationRetrievalEvaluator"]


class SparseInformationRetrievalEvaluator(SparseEvaluatorMixin, InformationRetrievalEvaluator):
    """:class:`~sentencekit.evaluation.InformationRetrievalEvaluator` for a SparseEncoder.

    ==================  ===========================================================
    input               meaning
    ==================  ===========================================================
    ``queries``         query id -> query text
    ``corpus``          document id -> document text
    ``relevant_docs``   query id -> ids of the documents relevant to it
    ==================  ===========================================================

    Queries and documents are encoded as sparse vectors (queries with the model's query side, documents with
    its document side) and every document is scored against every query, by default with the model's own
    similarity (``"dot"`` for SPLADE); the corpus stays sparse, ``corpus_chunk_size`` documents at a time.

    Returned keys: those of the dense evaluator (``dot_ndcg@10``, ``dot_mrr@10``, ... for a SPLADE model),
    plus ``query_active_dims``, ``query_sparsity_ratio``, ``corpus_active_dims``, ``corpus_sparsity_ratio``
    (means over the queries and over the corpus ids) and ``avg_flops``: the expected number of dimensions a
    query and a document share, ``sum_d P(query uses d) * P(document uses d)``, which is what an inverted
    index pays per scored pair. They also end the CSV row. ``primary_metric`` is ``{fn}_ndcg@{max(k)}``.

    Args:
        queries: Query id to text.
        corpus: Document id to text.
        relevant_docs: Query id to the ids of its relevant documents.
        corpus_chunk_size: Distinct documents encoded and scored at a time.
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
        max_active_dims: Keep this many non-zero dimensions per embedding; ``None`` keeps the model's setting.
        score_functions: Name to ``(queries, docs) -> scores`` function (sparse inputs); ``None`` uses the
            model's similarity.
        main_score_function: Score function whose nDCG is the primary metric.
        query_prompt: Literal prompt prepended to every query.
        query_prompt_name: Name of a prompt stored in the model, used for queries.
        corpus_prompt: Literal prompt prepended to every document.
        corpus_prompt_name: Name of a prompt stored in the model, used for documents.
        write_predictions: Also write each query's top documents to
            ``Information-Retrieval_evaluation[_{name}]_predictions_{score_function}.jsonl``.

    Example:
        ::

            from sentencekit.readers import read_beir
            from sentencekit.sparse_encoder import SparseEncoder
            from sentencekit.sparse_encoder.evaluation import SparseInformationRetrievalEvaluator

            corpus, queries, relevant_docs = read_beir("scifact/beir", split="test")
            evaluator = SparseInformationRetrievalEvaluator(queries, corpus, relevant_docs, name="scifact")
            results = evaluator(SparseEncoder("naver/splade-v3"))
            results["scifact_dot_ndcg@10"], results["scifact_avg_flops"]

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
        max_active_dims: int | None = None,
        score_functions: Mapping[str, Callable[[Tensor, Tensor], Tensor]] | None = None,
        main_score_function: str | SimilarityFunction | None = None,
        query_prompt: str | None = None,
        query_prompt_name: str | None = None,
        corpus_prompt: str | None = None,
        corpus_prompt_name: str | None = None,
        write_predictions: bool = False,
    ) -> None:
        self.init_sparsity(max_active_dims)
        super().__init__(
            queries,
            corpus,
            relevant_docs,
            corpus_chunk_size=corpus_chunk_size,
            mrr_at_k=mrr_at_k,
            ndcg_at_k=ndcg_at_k,
            accuracy_at_k=accuracy_at_k,
            precision_recall_at_k=precision_recall_at_k,
            map_at_k=map_at_k,
            show_progress_bar=show_progress_bar,
            batch_size=batch_size,
            name=name,
            write_csv=write_csv,
            score_functions=score_functions,
            main_score_function=main_score_function,
            query_prompt=query_prompt,
            query_prompt_name=query_prompt_name,
            corpus_prompt=corpus_prompt,
            corpus_prompt_name=corpus_prompt_name,
            write_predictions=write_predictions,
        )
        self._copies = Counter(self.corpus)  # ids per document text: a text is encoded once, counted per id

    def reset_sparsity(self) -> None:
        """Forget the previous evaluation's statistics and dimension counts."""
        super().reset_sparsity()
        self._dimension_counts: dict[str, Tensor] = {}  # "query"/"corpus" -> vectors using each dimension
        self._vector_counts: dict[str, int] = {}

    def record_sparsity(
        self, model: Any, text_lists: Sequence[Sequence[Any]], embeddings: Sequence[Tensor], role: Role | None
    ) -> None:
        """Queries: one entry. Documents: one entry per chunk, weighted by its ids (a shared text per id)."""
        (texts,), (rows,) = text_lists, embeddings
        kind = "query" if role == "query" else "corpus"
        if kind == "corpus":
            copies = torch.tensor([self._copies[text] for text in texts], device=rows.device)
            if bool((copies > 1).any()):
                rows = rows.index_select(
                    0, torch.arange(len(texts), device=rows.device).repeat_interleave(copies)
                )
            self.add_sparsity(model.sparsity(rows), "corpus_", weight=len(rows))
        else:
            self.add_sparsity(model.sparsity(rows), "query_")
        used = _dimension_counts(rows)
        self._dimension_counts[kind] = self._dimension_counts.get(kind, 0) + used
        self._vector_counts[kind] = self._vector_counts.get(kind, 0) + len(rows)

    def sparsity_metrics(self) -> dict[str, float]:
        """The query and corpus statistics, then ``avg_flops``."""
        metrics = super().sparsity_metrics()
        counts, vectors = self._dimension_counts, self._vector_counts
        if "query" in counts and "corpus" in counts:
            query_share = counts["query"] / vectors["query"]  # float32, as the reference computes it
            corpus_share = counts["corpus"] / vectors["corpus"]
            metrics["avg_flops"] = float(torch.dot(query_share, corpus_share))
        else:
            metrics["avg_flops"] = 0.0
        return metrics


def _dimension_counts(rows: Tensor) -> Tensor:
    """How many rows have a non-zero value in each dimension."""
    if not rows.is_sparse:
        return (rows != 0).sum(dim=0)
    rows = rows.coalesce()
    columns = rows.indices()[1][rows.values() != 0]
    return torch.bincount(columns, minlength=rows.shape[1])
