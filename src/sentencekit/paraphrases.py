"""Paraphrase mining: the best-scoring pairs of distinct sentences or embeddings, each unordered pair once.

Each row's ``top_k`` partners are found chunk by chunk, as in :func:`~sentencekit.search.semantic_search`, so
memory stays bounded by ``chunk x corpus`` scores; of all proposed pairs the best ``max_pairs`` are kept.
Both functions are also importable from :mod:`sentencekit.search` and :mod:`sentencekit.util`.

Example:
    >>> import torch
    >>> paraphrase_mining_embeddings(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.9, 0.1]]), top_k=1)
    [[0.993..., 0, 2], [0.110..., 1, 2]]

"""

from __future__ import annotations

from typing import Any, Protocol

import torch
from torch import Tensor

from sentencekit._ranking import ScoreFunction, _embeddings, _merge_top_k, _require_positive, _scores, _top_k
from sentencekit.similarity import ArrayLike, _take_rows, cos_sim

__all__ = ["paraphrase_mining", "paraphrase_mining_embeddings"]


class _Encoder(Protocol):
    """What :func:`paraphrase_mining` needs from a model: ``SentenceTransformer.encode``."""

    def encode(self, sentences: list[str], **kwargs: Any) -> Any: ...


def paraphrase_mining(
    model: _Encoder,
    sentences: list[str],
    show_progress_bar: bool = False,
    batch_size: int = 32,
    query_chunk_size: int = 5000,
    corpus_chunk_size: int = 100000,
    max_pairs: int = 500000,
    top_k: int = 100,
    score_function: ScoreFunction = cos_sim,
    truncate_dim: int | None = None,
    prompt_name: str | None = None,
    prompt: str | None = None,
) -> list[list[float | int]]:
    """Encode ``sentences`` with ``model`` and return the most similar pairs among them.

    See :func:`paraphrase_mining_embeddings` for the search; the other arguments go to ``model.encode``.

    Args:
        model: A :class:`~sentencekit.SentenceTransformer` (anything with its ``encode``).
        sentences: The texts to compare with each other.
        show_progress_bar: Show a progress bar while encoding.
        batch_size: Texts encoded at once.
        query_chunk_size: See :func:`paraphrase_mining_embeddings`.
        corpus_chunk_size: See :func:`paraphrase_mining_embeddings`.
        max_pairs: See :func:`paraphrase_mining_embeddings`.
        top_k: See :func:`paraphrase_mining_embeddings`.
        score_function: See :func:`paraphrase_mining_embeddings`.
        truncate_dim: Truncate the embeddings to this many dimensions (``None``: the model's setting).
        prompt_name: Name of one of the model's prompts to prepend to each sentence.
        prompt: A literal prompt to prepend; takes precedence over ``prompt_name``.

    Returns:
        ``[score, i, j]`` triples with ``i < j`` indexing ``sentences``, best first.

    """
    embeddings = model.encode(
        sentences,
        show_progress_bar=show_progress_bar,
        batch_size=batch_size,
        convert_to_tensor=True,
        truncate_dim=truncate_dim,
        prompt_name=prompt_name,
        prompt=prompt,
    )
    return paraphrase_mining_embeddings(
        embeddings,
        query_chunk_size=query_chunk_size,
        corpus_chunk_size=corpus_chunk_size,
        max_pairs=max_pairs,
        top_k=top_k,
        score_function=score_function,
    )


def paraphrase_mining_embeddings(
    embeddings: ArrayLike,
    query_chunk_size: int = 5000,
    corpus_chunk_size: int = 100000,
    max_pairs: int = 500000,
    top_k: int = 100,
    score_function: ScoreFunction = cos_sim,
) -> list[list[float | int]]:
    """Return the highest-scoring pairs of distinct embeddings, each unordered pair once.

    Every embedding proposes its ``top_k`` best partners (itself excluded); of all proposed pairs the best
    ``max_pairs`` are returned. ``score_function`` is assumed symmetric, since each pair is scored once.

    Args:
        embeddings: ``(n, dim)`` embeddings, dense or sparse COO.
        query_chunk_size: Rows whose partners are searched at once. Lower it to save memory.
        corpus_chunk_size: Candidate partners scored at once. Lower it to save memory.
        max_pairs: At most this many pairs are returned.
        top_k: Partners proposed per embedding.
        score_function: ``f(a, b) -> (len(a), len(b))`` scores, higher is more similar.

    Returns:
        ``[score, i, j]`` triples with ``i < j``, sorted by score, best first.

    Raises:
        InvalidInputError: On NaN/infinite values or a non-positive ``top_k``, ``max_pairs`` or chunk size.

    """
    _require_positive(
        top_k=top_k,
        max_pairs=max_pairs,
        query_chunk_size=query_chunk_size,
        corpus_chunk_size=corpus_chunk_size,
    )
    emb = _embeddings(embeddings, "embeddings")
    n = len(emb)
    # the best pairs so far, as i * n + j keys (i < j) and their scores; at most max_pairs of them
    kept_keys = torch.empty(0, dtype=torch.long, device=emb.device)
    kept_scores: Tensor | None = None

    for q_start in range(0, n, query_chunk_size):
        q_end = min(q_start + query_chunk_size, n)
        queries = _take_rows(emb, q_start, q_end)
        best: tuple[Tensor, Tensor] | None = None
        for c_start in range(0, n, corpus_chunk_size):
            c_end = min(c_start + corpus_chunk_size, n)
            scores = _scores(score_function, queries, _take_rows(emb, c_start, c_end))
            # an embedding is not its own paraphrase: mask the diagonal that falls in this block
            lo, hi = max(q_start, c_start), min(q_end, c_end)
            if lo < hi:
                diag = torch.arange(lo, hi, device=scores.device)
                scores[diag - q_start, diag - c_start] = -torch.inf
            best = _merge_top_k(best, scores, c_start, top_k)
        assert best is not None
        scores, partners = best
        rows = torch.arange(q_start, q_end, device=partners.device).unsqueeze(1).expand_as(partners)
        proposed = partners != rows  # the masked diagonal can only surface when a row has few partners
        i, j = torch.minimum(rows, partners)[proposed], torch.maximum(rows, partners)[proposed]
        keys = torch.cat([kept_keys, i * n + j])
        pair_scores = scores[proposed] if kept_scores is None else torch.cat([kept_scores, scores[proposed]])
        kept_keys, kept_scores = _best_unique_pairs(keys, pair_scores, max_pairs)

    if kept_scores is None:
        return []
    triples = [
        [score, key // n, key % n]
        for key, score in zip(kept_keys.tolist(), kept_scores.tolist(), strict=True)
    ]
    triples.sort(key=lambda t: (-t[0], t[1], t[2]))
    return triples


def _best_unique_pairs(keys: Tensor, scores: Tensor, max_pairs: int) -> tuple[Tensor, Tensor]:
    """Drop repeated pair keys (keeping the first score seen) and keep the ``max_pairs`` best."""
    unique, inverse = torch.unique(keys, return_inverse=True)
    positions = torch.arange(len(keys), device=keys.device)
    first = torch.full((len(unique),), len(keys), device=keys.device).scatter_reduce(
        0, inverse, positions, reduce="amin"
    )
    keys, scores = keys[first], scores[first]
    if len(keys) > max_pairs:
        top, top_keys = _top_k(scores.unsqueeze(0), keys.unsqueeze(0), max_pairs)
        scores, keys = top[0], top_keys[0]
    return keys, scores
