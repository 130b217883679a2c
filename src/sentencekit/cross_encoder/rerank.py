"""Retrieve with a bi-encoder, rerank with a cross-encoder: the usual two-stage search, in one call."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from torch import Tensor

from sentencekit.encoding.inputs import as_text_list
from sentencekit.errors import InvalidInputError
from sentencekit.similarity import cos_sim

__all__ = ["retrieve_and_rerank"]

logger = logging.getLogger(__name__)

Hit = dict[str, Any]


def retrieve_and_rerank(
    queries: str | Sequence[str],
    cross_encoder: Any,
    corpus: Sequence[str] | Mapping[Any, str],
    *,
    bi_encoder: Any = None,
    corpus_embeddings: Any = None,
    index: Any = None,
    query_embeddings: Any = None,
    retrieve_top_k: int = 100,
    top_k: int | None = None,
    score_function: Callable[[Tensor, Tensor], Tensor] = cos_sim,
    filter: Any = None,
    batch_size: int = 32,
    show_progress_bar: bool | None = None,
    activation_fn: Callable[[Tensor], Tensor] | None = None,
    return_documents: bool = False,
) -> list[Hit] | list[list[Hit]]:
    """Retrieve each query's ``retrieve_top_k`` nearest documents by embedding, then rerank them.

    Candidates come from one of three places:

    ==================================  ==================================================================
    given                               candidates
    ==================================  ==================================================================
    ``index``                           ``index.search`` (ids are keys of ``corpus``); ``filter`` applies
    ``corpus_embeddings``               exact search over these rows, row ``i`` being ``corpus``'s item ``i``
    neither                             ``bi_encoder`` encodes ``corpus`` first (fine once; for repeated
                                        calls pass ``corpus_embeddings`` or an index)
    ==================================  ==================================================================

    Queries are embedded with ``bi_encoder`` (its query prompt when it has one) unless ``query_embeddings``
    are given; with an index that has its own model, neither is needed. All candidate pairs of all queries
    go to the cross-encoder in one ``predict`` call, so they are batched by length together.

    Args:
        queries: One query or a list of queries.
        cross_encoder: A :class:`~sentencekit.cross_encoder.CrossEncoder` (anything with ``predict``) with
            one label.
        corpus: The document texts: a list (ids are positions) or a mapping from id to text.
        bi_encoder: The embedding model, e.g. a :class:`~sentencekit.SentenceTransformer`.
        corpus_embeddings: ``(len(corpus), dim)`` embeddings of ``corpus``, in its order.
        index: A :class:`~sentencekit.Index` whose item ids are ids of ``corpus``.
        query_embeddings: ``(len(queries), dim)`` embeddings instead of encoding the queries.
        retrieve_top_k: Candidates per query from the first stage.
        top_k: Results per query after reranking (``None``: all candidates).
        score_function: First-stage similarity for embedding search (cosine by default).
        filter: Metadata filter passed to ``index.search``.
        batch_size: Cross-encoder batch size.
        show_progress_bar: Show the cross-encoder's progress bar.
        activation_fn: Applied to the cross-encoder logits (see ``CrossEncoder.predict``).
        return_documents: Add each document's text under ``"text"``.

    Returns:
        Per query (one list, or a list of lists for a list of queries), hits best first:
        ``{"corpus_id", "score", "retrieval_score", "retrieval_rank"[, "text"]}``. ``score`` is the
        cross-encoder's, ``retrieval_rank`` the 0-based position in the first stage, so the ranking before
        reranking is the hits sorted by ``retrieval_rank``.

    Raises:
        InvalidInputError: On bad queries, an empty corpus, embeddings whose row count differs from the
            corpus, index ids missing from ``corpus``, a non-positive ``retrieve_top_k`` or a negative
            ``top_k``.
        ValueError: If nothing can embed the queries or the corpus, or the cross-encoder has several labels.

    Example:
        >>> hits = retrieve_and_rerank("what is rain?", cross_encoder, docs, bi_encoder=bi)  # doctest: +SKIP
        >>> hits[0]
        {'corpus_id': 3, 'score': 0.97, 'retrieval_score': 0.61, 'retrieval_rank': 1}
    """
    texts, single = as_text_list(queries, caller="retrieve_and_rerank(queries=...)")
    _check_counts(retrieve_top_k, top_k)
    ids = list(corpus.keys()) if isinstance(corpus, Mapping) else list(range(len(corpus)))
    if not ids:
        raise InvalidInputError("The corpus is empty; there is nothing to retrieve.")
    if index is not None and corpus_embeddings is not None:
        raise ValueError("Pass corpus_embeddings or index, not both.")
    if not texts:
        return []

    if index is not None:
        candidates = _from_index(index, texts, query_embeddings, bi_encoder, retrieve_top_k, filter)
    else:
        candidates = _from_embeddings(
            texts,
            corpus,
            ids,
            bi_encoder,
            corpus_embeddings,
            query_embeddings,
            retrieve_top_k,
            score_function,
        )

    pairs: list[tuple[str, str]] = []
    for query, hits in zip(texts, candidates, strict=True):
        for hit in hits:
            pairs.append((query, _text(corpus, hit["corpus_id"])))
    scores = (
        np.asarray(
            cross_encoder.predict(
                pairs,
                batch_size=batch_size,
                show_progress_bar=show_progress_bar,
                activation_fn=activation_fn,
                convert_to_numpy=True,
            )
        )
        if pairs
        else np.zeros(0)
    )
    if scores.ndim != 1:
        raise ValueError(
            f"The cross-encoder gives {scores.shape[-1]} scores per pair; reranking needs a model with one "
            "label."
        )

    results: list[list[Hit]] = []
    start = 0
    for hits in candidates:
        ranked = []
        for rank, hit in enumerate(hits):
            item: Hit = {
                "corpus_id": hit["corpus_id"],
                "score": float(scores[start + rank]),
                "retrieval_score": float(hit["score"]),
                "retrieval_rank": rank,
            }
            if return_documents:
                item["text"] = _text(corpus, hit["corpus_id"])
            ranked.append(item)
        start += len(hits)
        ranked.sort(key=lambda h: (-h["score"], h["retrieval_rank"]))
        results.append(ranked[:top_k])
    return results[0] if single else results


def _check_counts(retrieve_top_k: int, top_k: int | None) -> None:
    if isinstance(retrieve_top_k, bool) or not isinstance(retrieve_top_k, int) or retrieve_top_k <= 0:
        raise InvalidInputError(f"retrieve_top_k must be a positive integer, got {retrieve_top_k!r}.")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0):
        raise InvalidInputError(f"top_k must be None or a non-negative integer, got {top_k!r}.")


def _text(corpus: Sequence[str] | Mapping[Any, str], corpus_id: Any) -> str:
    try:
        text = corpus[corpus_id]
    except (KeyError, IndexError, TypeError):
        raise InvalidInputError(
            f"The index returned id {corpus_id!r}, which is not in the corpus; build the index with the "
            "corpus's ids (positions for a list, keys for a dict)."
        ) from None
    if not isinstance(text, str):
        raise InvalidInputError(
            f"The corpus item {corpus_id!r} is of type {type(text).__name__}, not a string."
        )
    return text


def _encode(model: Any, texts: list[str], role: str) -> Any:
    """Embed with the model's query/document prompt when it has ``encode_query``/``encode_document``."""
    method = getattr(model, f"encode_{role}", None) or model.encode
    return method(texts, convert_to_tensor=True, show_progress_bar=False)


def _from_index(
    index: Any, texts: list[str], query_embeddings: Any, bi_encoder: Any, k: int, filter: Any
) -> list[list[Hit]]:
    if query_embeddings is not None:
        queries: Any = np.asarray(
            query_embeddings.cpu() if isinstance(query_embeddings, Tensor) else query_embeddings
        )
    elif bi_encoder is not None:
        queries = _encode(bi_encoder, texts, "query").float().cpu().numpy()
    elif getattr(index, "model", None) is not None:
        queries = texts
    else:
        raise ValueError("The index has no model: pass bi_encoder or query_embeddings to embed the queries.")
    found = index.search(queries, k=k, filter=filter)
    return [[{"corpus_id": hit["id"], "score": hit["score"]} for hit in hits] for hits in found]


def _from_embeddings(
    texts: list[str],
    corpus: Sequence[str] | Mapping[Any, str],
    ids: list[Any],
    bi_encoder: Any,
    corpus_embeddings: Any,
    query_embeddings: Any,
    k: int,
    score_function: Callable[[Tensor, Tensor], Tensor],
) -> list[list[Hit]]:
    from sentencekit.search import semantic_search

    if bi_encoder is None and (corpus_embeddings is None or query_embeddings is None):
        raise ValueError(
            "Pass bi_encoder to embed the queries and corpus, or both query_embeddings and corpus_embeddings "
            "(or an index)."
        )
    if corpus_embeddings is None:
        corpus_embeddings = _encode(bi_encoder, [_text(corpus, i) for i in ids], "document")
    if len(corpus_embeddings) != len(ids):
        raise InvalidInputError(
            f"corpus_embeddings has {len(corpus_embeddings)} rows but the corpus has {len(ids)} documents; "
            "embed the corpus in its order (list order, or the dict's key order)."
        )
    if query_embeddings is None:
        query_embeddings = _encode(bi_encoder, texts, "query")
    if len(query_embeddings) != len(texts) and not (
        len(texts) == 1 and getattr(query_embeddings, "ndim", 2) == 1
    ):
        raise InvalidInputError(
            f"query_embeddings has {len(query_embeddings)} rows for {len(texts)} queries; give one row per "
            "query."
        )
    found = semantic_search(query_embeddings, corpus_embeddings, top_k=k, score_function=score_function)
    return [
        [{"corpus_id": ids[int(hit["corpus_id"])], "score": hit["score"]} for hit in hits] for hits in found
    ]
