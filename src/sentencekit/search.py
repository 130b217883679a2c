"""Exact nearest-neighbour search, paraphrase mining and fast community detection over embeddings.

All three work in chunks, so memory stays bounded by ``chunk x corpus`` scores however large the inputs:

=================================  ==========================================================================
function                           returns
=================================  ==========================================================================
``semantic_search``                per query, the ``top_k`` best corpus rows as ``{"corpus_id", "score"}``
``paraphrase_mining_embeddings``   the best-scoring unordered pairs ``[score, i, j]`` (``i < j``)
``paraphrase_mining``              the same, encoding the sentences with a model first
``community_detection``            groups of rows within ``threshold`` cosine of a centre (centre first)
=================================  ==========================================================================

The two ``paraphrase_mining`` functions live in :mod:`sentencekit.paraphrases` and are re-exported here; the
input checks and running top-``k`` that all four share live in ``sentencekit._ranking``.

Results are sorted best first. Equal scores are ordered, and cut at ``top_k``/``max_pairs``, smaller id
first, so results never depend on the chunk sizes.

Example:
    >>> import torch
    >>> corpus = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]])
    >>> semantic_search(torch.tensor([[1.0, 0.1]]), corpus, top_k=2)
    [[{'corpus_id': 0, 'score': 0.995...}, {'corpus_id': 2, 'score': 0.773...}]]

"""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from sentencekit._ranking import (
    ScoreFunction,
    _check_same_dim,
    _embeddings,
    _merge_top_k,
    _require_positive,
    _scores,
)
from sentencekit.errors import InvalidInputError
from sentencekit.paraphrases import paraphrase_mining, paraphrase_mining_embeddings
from sentencekit.similarity import ArrayLike, _take_rows, cos_sim, dot_score, normalize_embeddings

__all__ = ["community_detection", "paraphrase_mining", "paraphrase_mining_embeddings", "semantic_search"]

logger = logging.getLogger(__name__)

# The smallest norm a corpus row is divided by, as in torch.nn.functional.normalize: zero rows score 0.
_NORM_EPS = 1e-12
# Rows whose norms are all this many float eps from 1 count as normalized (normalize() leaves up to ~2).
_UNIT_ULPS = 4
# community_detection scores at most this many pairs at once (128 MB of float32), whatever its batch_size:
# the scores and the sorting of the pairs above the threshold then stay well under 2 GB even when all pass.
_SCORE_BLOCK_ELEMENTS = 1 << 25
# ... and keeps the members found for each candidate centre while they total at most this many indices
# (256 MB of int32); past that, the remaining candidates' rows are scored again when they are visited.
_MEMBER_BUDGET = 1 << 26


# ------------------------------------------------------------------------------------------------ search


def semantic_search(
    query_embeddings: ArrayLike,
    corpus_embeddings: ArrayLike,
    query_chunk_size: int = 100,
    corpus_chunk_size: int = 500000,
    top_k: int = 10,
    score_function: ScoreFunction = cos_sim,
) -> list[list[dict[str, int | float]]]:
    """Find the ``top_k`` corpus embeddings that score highest against each query.

    The score matrix is computed ``query_chunk_size x corpus_chunk_size`` at a time, keeping only the running
    top ``k`` per query, so a corpus of millions fits in memory. The search is exact (brute force).

    Args:
        query_embeddings: ``(queries, dim)`` or a single ``(dim,)`` query; dense or sparse COO.
        corpus_embeddings: ``(corpus, dim)``; dense or sparse COO.
        query_chunk_size: Queries scored at once. Larger is faster and uses more memory.
        corpus_chunk_size: Corpus rows scored at once. Larger is faster and uses more memory.
        top_k: Results per query; a ``top_k`` above the corpus size returns the whole corpus.
        score_function: ``f(a, b) -> (len(a), len(b))`` scores, higher is better. With the default
            :func:`~sentencekit.similarity.cos_sim` each corpus chunk is normalized once.

    Returns:
        One list per query of ``{"corpus_id": int, "score": float}`` dicts, best first.

    Raises:
        InvalidInputError: On an empty corpus, mismatched dimensions, NaN/infinite values, or a non-positive
            ``top_k`` or chunk size.

    """
    _require_positive(top_k=top_k, query_chunk_size=query_chunk_size, corpus_chunk_size=corpus_chunk_size)
    corpus = _embeddings(corpus_embeddings, "corpus_embeddings")
    queries = _embeddings(query_embeddings, "query_embeddings").to(corpus.device)
    if corpus.numel() == 0:
        raise InvalidInputError("corpus_embeddings is empty; there is nothing to search.")
    _check_same_dim(queries, corpus, "query_embeddings", "corpus_embeddings")

    # cos_sim would renormalize a corpus chunk for every query chunk. Instead the queries are normalized and
    # each score divided by its corpus row's norm: the same cosine, with no normalized copy of the chunk
    # (768 MB for 500k x 384 floats). Sparse and half-precision chunks are normalized once per chunk.
    normalize = score_function is cos_sim
    best: list[tuple[Tensor, Tensor] | None] = [None] * -(-len(queries) // query_chunk_size)
    for c_start in range(0, len(corpus), corpus_chunk_size):
        c_end = min(c_start + corpus_chunk_size, len(corpus))
        chunk = _take_rows(corpus, c_start, c_end)
        norms = None
        if normalize and not chunk.is_sparse and chunk.dtype in (torch.float32, torch.float64):
            norms = torch.linalg.vector_norm(chunk, dim=1)
            # rows already of unit length (the usual case: most models normalize) are not divided, which
            # would change no score by more than a few units in the last place
            unit = (norms - 1).abs_().max() <= _UNIT_ULPS * torch.finfo(chunk.dtype).eps
            norms = None if bool(unit) else norms.clamp_min_(_NORM_EPS)
        elif normalize:
            chunk = normalize_embeddings(chunk)
        for n, q_start in enumerate(range(0, len(queries), query_chunk_size)):
            q_chunk = _take_rows(queries, q_start, min(q_start + query_chunk_size, len(queries)))
            if normalize:
                scores = _scores(dot_score, normalize_embeddings(q_chunk), chunk)
                if norms is not None:
                    scores.div_(norms)
            else:
                scores = _scores(score_function, q_chunk, chunk)
            best[n] = _merge_top_k(best[n], scores, c_start, top_k)
            del scores  # free this block before the next is computed: one score block in memory, not two

    results: list[list[dict[str, int | float]]] = []
    for entry in best:
        assert entry is not None  # every query chunk met at least one corpus chunk
        for row_scores, row_ids in zip(entry[0].cpu().tolist(), entry[1].cpu().tolist(), strict=True):
            ranked = sorted(zip(row_scores, row_ids, strict=True), key=lambda hit: (-hit[0], hit[1]))
            results.append([{"corpus_id": i, "score": s} for s, i in ranked])
    return results


# ----------------------------------------------------------------------------------------- communities


def community_detection(
    embeddings: ArrayLike,
    threshold: float = 0.75,
    min_community_size: int = 10,
    batch_size: int = 1024,
    show_progress_bar: bool = False,
) -> list[list[int]]:
    """Greedy "fast clustering": group embeddings around centres they are close to.

    1. Every embedding with at least ``min_community_size`` embeddings (itself included) at cosine similarity
       ``>= threshold`` is a candidate centre; its community is those embeddings, most similar first.
    2. Candidates are visited largest first (ties: lower index first). A candidate whose centre already
       belongs to a community is skipped; otherwise the members not yet taken form a community if they are
       still at least ``min_community_size``.

    Step 1 scores every row once, at most ``batch_size`` rows (and 32M scores) at a time, and keeps each
    candidate's members (int32 indices). Those are few for clustered data; should they exceed 64M in all,
    the remaining candidates' rows are scored again in step 2 instead, so memory stays bounded.

    Args:
        embeddings: ``(n, dim)`` embeddings, dense or sparse COO.
        threshold: Minimum cosine similarity to a centre.
        min_community_size: Smallest community returned.
        batch_size: Rows scored at once (fewer when ``n`` is so large that the scores would pass 32M).
        show_progress_bar: Show progress of step 1.

    Returns:
        Communities as lists of row indices, largest first; the first index of each is its centre.

    Raises:
        InvalidInputError: On NaN/infinite values or a non-positive ``min_community_size`` or ``batch_size``.

    """
    _require_positive(min_community_size=min_community_size, batch_size=batch_size)
    emb = _embeddings(embeddings, "embeddings")
    n = len(emb)
    if n < min_community_size:
        return []
    emb = normalize_embeddings(emb)
    # compared as float32, so that a threshold such as 0.8 means the same for float32 and float64 scores
    limit = torch.tensor(threshold, dtype=torch.float32, device=emb.device)
    rows_per_block = min(batch_size, max(1, _SCORE_BLOCK_ELEMENTS // n))

    counts = np.zeros(n, dtype=np.int64)
    # members of candidate r: flat[offsets[r] : offsets[r] + counts[r]]; offsets[r] = -1 if not kept
    offsets = np.full(n, -1, dtype=np.int64)
    kept: list[np.ndarray] = []
    n_kept = 0
    blocks = range(0, n, rows_per_block)
    for start in tqdm(blocks, desc="Finding clusters", disable=not show_progress_bar):
        end = min(start + rows_per_block, n)
        rows, members, block_counts = _members(_take_rows(emb, start, end), emb, limit)
        counts[start:end] = block_counts
        if n_kept + len(members) > _MEMBER_BUDGET:
            continue
        candidate = block_counts[rows] >= min_community_size
        members = members[candidate]
        first = np.flatnonzero(block_counts >= min_community_size)
        offsets[start + first] = n_kept + np.concatenate(([0], np.cumsum(block_counts[first])[:-1]))
        kept.append(members.astype(np.int32))
        n_kept += len(members)
    flat = np.concatenate(kept) if kept else np.empty(0, dtype=np.int32)

    qualified = np.flatnonzero(counts >= min_community_size)
    # largest first; a stable sort keeps equal sizes in index order
    centres = qualified[np.argsort(-counts[qualified], kind="stable")]
    if len(centres) and (offsets[centres] < 0).any():
        logger.info("community_detection: over %d members; scoring some candidates twice", _MEMBER_BUDGET)

    taken = np.zeros(n, dtype=bool)
    communities: list[list[int]] = []
    for start in range(0, len(centres), rows_per_block):
        batch = centres[start : start + rows_per_block]
        batch = batch[~taken[batch]]
        # candidates whose members were not kept: score their rows again
        rescored: dict[int, np.ndarray] = {}
        missing = batch[offsets[batch] < 0]
        if len(missing):
            block = emb.index_select(0, torch.from_numpy(missing).to(emb.device))
            rows, members, _ = _members(block, emb, limit)
            bounds = np.searchsorted(rows, np.arange(len(missing) + 1))
            rescored = {int(c): members[bounds[i] : bounds[i + 1]] for i, c in enumerate(missing)}
        for centre in batch.tolist():
            if taken[centre]:
                continue
            found = rescored.get(centre)
            if found is None:
                found = flat[offsets[centre] : offsets[centre] + counts[centre]]
            free = found[~taken[found]]
            if len(free) >= min_community_size:
                community = [centre, *free[free != centre].tolist()]
                communities.append(community)
                taken[community] = True
    communities.sort(key=len, reverse=True)
    return communities


def _members(block: Tensor, emb: Tensor, limit: Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The embeddings at cosine ``>= limit`` of each row of ``block`` (both normalized).

    Returns:
        ``(rows, members, counts)``: pairs sorted by row, then by score (best first), then by member
        index; ``counts[r]`` is how many pairs row ``r`` has.

    """
    scores = dot_score(block, emb)
    rows_t, members_t = (scores >= limit).nonzero(as_tuple=True)
    values = scores[rows_t, members_t].cpu().numpy()
    rows, members = rows_t.cpu().numpy(), members_t.cpu().numpy()
    # numpy's lexsort is exact and, on CPU, far quicker here than torch's stable sorts
    order = np.lexsort((members, -values, rows))
    return rows[order], members[order], np.bincount(rows, minlength=len(block))
