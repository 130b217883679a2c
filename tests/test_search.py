"""semantic_search, paraphrase mining and community detection: parity with the reference and brute force."""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sentencekit.errors import InvalidInputError
from sentencekit.search import (
    community_detection,
    paraphrase_mining,
    paraphrase_mining_embeddings,
    semantic_search,
)
from sentencekit.similarity import cos_sim, dot_score, euclidean_sim, manhattan_sim, normalize_embeddings

st_util = pytest.importorskip("sentence_transformers.util")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _randn(n: int, dim: int, seed: int) -> torch.Tensor:
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed))


def _clusters(n_clusters: int, per_cluster: int, dim: int, noise: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(n_clusters, dim, generator=g)
    points = centres.repeat_interleave(per_cluster, 0) + noise * torch.randn(
        n_clusters * per_cluster, dim, generator=g
    )
    return points[torch.randperm(len(points), generator=g)]


def _assert_same_hits(ours, ref) -> None:
    assert len(ours) == len(ref)
    for o, r in zip(ours, ref, strict=True):
        assert [h["corpus_id"] for h in o] == [h["corpus_id"] for h in r]
        assert [h["score"] for h in o] == pytest.approx([h["score"] for h in r], abs=1e-6)
        assert all(isinstance(h["corpus_id"], int) and isinstance(h["score"], float) for h in o)


# -------------------------------------------------------------------------------------------- semantic_search


@pytest.mark.parametrize(
    ("n_queries", "n_corpus", "query_chunk", "corpus_chunk", "top_k"),
    [(1, 1, 100, 500000, 10), (7, 50, 3, 11, 5), (20, 30, 100, 500000, 30), (5, 40, 2, 7, 100)],
)
@pytest.mark.parametrize("score_function", [cos_sim, dot_score, euclidean_sim, manhattan_sim])
def test_semantic_search_matches_reference(
    n_queries, n_corpus, query_chunk, corpus_chunk, top_k, score_function
):
    queries, corpus = _randn(n_queries, 12, 1), _randn(n_corpus, 12, 2)
    ref_fn = getattr(st_util, score_function.__name__)
    kwargs = {"query_chunk_size": query_chunk, "corpus_chunk_size": corpus_chunk, "top_k": top_k}
    ours = semantic_search(queries, corpus, score_function=score_function, **kwargs)
    _assert_same_hits(ours, st_util.semantic_search(queries, corpus, score_function=ref_fn, **kwargs))
    assert all(len(row) == min(top_k, n_corpus) for row in ours)  # top_k > corpus returns the whole corpus


def test_semantic_search_accepts_numpy_lists_single_query_and_sparse():
    queries, corpus = _randn(4, 8, 3), _randn(25, 8, 4)
    queries[queries.abs() < 0.7] = 0
    corpus[corpus.abs() < 0.7] = 0
    ref = st_util.semantic_search(queries, corpus, top_k=6)
    _assert_same_hits(semantic_search(queries.numpy(), corpus.numpy(), top_k=6), ref)
    _assert_same_hits(semantic_search(queries.tolist(), list(corpus), top_k=6), ref)
    _assert_same_hits(semantic_search(queries[0], corpus, top_k=6), ref[:1])
    sparse = semantic_search(queries.to_sparse(), corpus.to_sparse(), top_k=6, corpus_chunk_size=4)
    _assert_same_hits(sparse, ref)


def test_semantic_search_never_scores_more_than_a_chunk():
    seen = []

    def spy(a, b):
        seen.append((len(a), len(b)))
        return dot_score(a, b)

    queries, corpus = _randn(10, 4, 5), _randn(23, 4, 6)
    ours = semantic_search(
        queries, corpus, query_chunk_size=4, corpus_chunk_size=5, top_k=3, score_function=spy
    )
    assert max(q for q, _ in seen) == 4
    assert max(c for _, c in seen) == 5
    assert sum(q * c for q, c in seen) == 10 * 23
    _assert_same_hits(ours, semantic_search(queries, corpus, top_k=3, score_function=dot_score))


def test_semantic_search_ties_prefer_the_smaller_id():
    corpus = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [2.0, 0.0]])
    hits = semantic_search(torch.tensor([[1.0, 0.0]]), corpus, top_k=4, corpus_chunk_size=2)
    assert [h["corpus_id"] for h in hits[0]] == [0, 2, 3, 1]
    assert [h["score"] for h in hits[0]] == pytest.approx([1.0, 1.0, 1.0, 0.0])
    # ties cut by top_k: the smaller ids are kept, whatever the chunking
    same = torch.ones(10, 3)
    for chunk in (1, 3, 4, 10):
        hits = semantic_search(torch.ones(2, 3), same, top_k=3, corpus_chunk_size=chunk, query_chunk_size=1)
        assert [[h["corpus_id"] for h in row] for row in hits] == [[0, 1, 2], [0, 1, 2]]


@given(
    n_queries=st.integers(1, 15),
    n_corpus=st.integers(1, 40),
    dim=st.integers(1, 10),
    query_chunk=st.integers(1, 20),
    corpus_chunk=st.integers(1, 50),
    top_k=st.integers(1, 50),
    seed=st.integers(0, 2**16),
)
@settings(max_examples=25, deadline=None)
def test_semantic_search_equals_argsort_of_full_matrix(
    n_queries, n_corpus, dim, query_chunk, corpus_chunk, top_k, seed
):
    queries, corpus = _randn(n_queries, dim, seed), _randn(n_corpus, dim, seed + 1)
    hits = semantic_search(
        queries, corpus, query_chunk_size=query_chunk, corpus_chunk_size=corpus_chunk, top_k=top_k
    )
    full = cos_sim(queries, corpus).numpy()
    for q, row in enumerate(hits):
        expected = np.argsort(-full[q], kind="stable")[:top_k]
        assert [h["corpus_id"] for h in row] == expected.tolist()
        assert [h["score"] for h in row] == pytest.approx(full[q][expected].tolist(), abs=1e-6)


def test_semantic_search_bad_input():
    queries, corpus = _randn(3, 8, 0), _randn(10, 8, 1)
    with pytest.raises(InvalidInputError, match=r"dimension 5 .* dimension 8"):
        semantic_search(_randn(3, 5, 0), corpus)
    with pytest.raises(InvalidInputError, match="empty"):
        semantic_search(queries, torch.empty(0, 8))
    for bad in (0, -1):
        with pytest.raises(InvalidInputError, match="top_k must be a positive integer"):
            semantic_search(queries, corpus, top_k=bad)
    with pytest.raises(InvalidInputError, match="corpus_chunk_size"):
        semantic_search(queries, corpus, corpus_chunk_size=0)
    with_nan = corpus.clone()
    with_nan[[2, 7], 1] = float("nan")
    with pytest.raises(InvalidInputError, match=r"corpus_embeddings contains NaN .* rows \[2, 7\]"):
        semantic_search(queries, with_nan)
    with pytest.raises(InvalidInputError, match=r"query_embeddings contains NaN .* rows \[0\]"):
        semantic_search(torch.full((1, 8), float("inf")), corpus)
    with pytest.raises(InvalidInputError, match=r"rows \[2, 7\]"):
        semantic_search(queries, with_nan.to_sparse())
    huge = torch.full((3, 8), 3e38)  # finite, though their sum overflows: must not be mistaken for inf
    assert [h["corpus_id"] for h in semantic_search(huge[:1], huge, top_k=2)[0]] == [0, 1]
    with pytest.raises(ValueError, match="matrix"):
        semantic_search(queries, corpus, score_function=lambda a, b: (a * b[: len(a)]).sum(-1))


# ----------------------------------------------------------------------------------------- paraphrase mining


@pytest.mark.parametrize(
    ("n", "query_chunk", "corpus_chunk", "top_k", "max_pairs"),
    [(2, 5000, 100000, 100, 500000), (40, 7, 9, 3, 1000), (60, 13, 29, 5, 40), (30, 4, 100, 50, 500)],
)
def test_paraphrase_mining_matches_reference(n, query_chunk, corpus_chunk, top_k, max_pairs):
    emb = _randn(n, 10, n)
    kwargs = {
        "query_chunk_size": query_chunk,
        "corpus_chunk_size": corpus_chunk,
        "top_k": top_k,
        "max_pairs": max_pairs,
    }
    ours = paraphrase_mining_embeddings(emb, **kwargs)
    ref = st_util.paraphrase_mining_embeddings(emb, **kwargs)
    assert [p[1:] for p in ours] == [p[1:] for p in ref]
    assert [p[0] for p in ours] == pytest.approx([p[0] for p in ref], abs=1e-6)
    assert all(i < j for _, i, j in ours)


def _brute_force_pairs(emb: torch.Tensor, top_k: int, max_pairs: int) -> dict[tuple[int, int], float]:
    """Every row proposes its top_k partners; keep the max_pairs best distinct unordered pairs."""
    scores = cos_sim(emb, emb).numpy()
    proposed: dict[tuple[int, int], float] = {}
    for i in range(len(emb)):
        others = [j for j in np.argsort(-scores[i], kind="stable") if j != i][:top_k]
        for j in others:
            proposed.setdefault((min(i, j), max(i, j)), float(scores[i, j]))
    # equal scores: the smaller pair first
    best = sorted(proposed.items(), key=lambda item: (-item[1], item[0]))[:max_pairs]
    return dict(best)


@given(
    n=st.integers(0, 30),
    dim=st.integers(1, 8),  # in one dimension every cosine is exactly +-1: ties everywhere
    query_chunk=st.integers(1, 35),
    corpus_chunk=st.integers(1, 35),
    top_k=st.integers(1, 35),
    max_pairs=st.integers(1, 500),
    seed=st.integers(0, 2**16),
)
@settings(max_examples=25, deadline=None)
def test_paraphrase_mining_equals_brute_force(n, dim, query_chunk, corpus_chunk, top_k, max_pairs, seed):
    emb = _randn(n, dim, seed)
    pairs = paraphrase_mining_embeddings(
        emb, query_chunk_size=query_chunk, corpus_chunk_size=corpus_chunk, top_k=top_k, max_pairs=max_pairs
    )
    expected = _brute_force_pairs(emb, top_k, max_pairs)
    assert [(i, j) for _, i, j in pairs] == list(expected)  # each unordered pair once, in order
    for score, i, j in pairs:
        assert score == pytest.approx(expected[(i, j)], abs=1e-6)
    scores = [p[0] for p in pairs]
    assert scores == sorted(scores, reverse=True)


class _FakeModel:
    """Stands in for SentenceTransformer: one fixed embedding per sentence, and records encode()'s kwargs."""

    def __init__(self, embeddings: torch.Tensor) -> None:
        self.embeddings = embeddings
        self.calls: list[dict] = []

    def encode(self, sentences, **kwargs):
        self.calls.append(kwargs)
        return self.embeddings[: len(sentences)]


def test_paraphrase_mining_encodes_then_mines():
    emb = _randn(12, 6, 9)
    model = _FakeModel(emb)
    pairs = paraphrase_mining(model, [f"s{i}" for i in range(12)], batch_size=4, top_k=3, prompt="q: ")
    assert pairs == paraphrase_mining_embeddings(emb, top_k=3)
    assert model.calls == [
        {
            "show_progress_bar": False,
            "batch_size": 4,
            "convert_to_tensor": True,
            "truncate_dim": None,
            "prompt_name": None,
            "prompt": "q: ",
        }
    ]


def test_paraphrase_mining_finds_the_planted_duplicates():
    emb = _randn(20, 16, 10)
    emb[15] = emb[3] * 2  # cosine 1 with row 3
    emb[18] = emb[7] + 1e-3
    pairs = paraphrase_mining_embeddings(emb, max_pairs=2)
    assert [(i, j) for _, i, j in pairs] == [(3, 15), (7, 18)]


def test_paraphrase_mining_bad_input():
    emb = _randn(5, 4, 0)
    with pytest.raises(InvalidInputError, match="top_k"):
        paraphrase_mining_embeddings(emb, top_k=0)
    with pytest.raises(InvalidInputError, match="max_pairs"):
        paraphrase_mining_embeddings(emb, max_pairs=-3)
    emb[4, 0] = float("nan")
    with pytest.raises(InvalidInputError, match=r"NaN .* rows \[4\]"):
        paraphrase_mining_embeddings(emb)
    assert paraphrase_mining_embeddings(_randn(1, 4, 0)) == []


# -------------------------------------------------------------------------------------- community detection


def _brute_force_communities(emb: torch.Tensor, threshold: float, min_size: int) -> list[list[int]]:
    """The greedy algorithm, written plainly over the full score matrix."""
    unit = normalize_embeddings(emb)
    scores = (unit @ unit.T).numpy()
    limit = np.float32(threshold)
    candidates = []
    for i in range(len(emb)):
        members = sorted(
            (j for j in range(len(emb)) if scores[i, j] >= limit), key=lambda j: (-scores[i, j], j)
        )
        if len(members) >= min_size:
            candidates.append((i, members))
    candidates.sort(key=lambda c: len(c[1]), reverse=True)
    taken: set[int] = set()
    communities = []
    for centre, members in candidates:
        if centre in taken:
            continue
        free = [m for m in members if m not in taken]
        if len(free) >= min_size:
            community = [centre] + [m for m in free if m != centre]
            communities.append(community)
            taken.update(community)
    return sorted(communities, key=len, reverse=True)


@pytest.mark.parametrize(
    ("threshold", "min_size", "batch_size"), [(0.8, 5, 50), (0.6, 10, 1024), (0.9, 2, 7)]
)
def test_community_detection_matches_reference(threshold, min_size, batch_size):
    emb = _clusters(6, 30, 24, noise=0.35, seed=int(threshold * 100))
    kwargs = {"threshold": threshold, "min_community_size": min_size, "batch_size": batch_size}
    ours = community_detection(emb, **kwargs)
    assert ours  # the planted clusters are found
    assert ours == st_util.community_detection(emb, **kwargs)
    assert ours == community_detection(emb.numpy(), **kwargs)


@given(
    n_clusters=st.integers(1, 5),
    per_cluster=st.integers(1, 12),
    dim=st.integers(2, 12),
    noise=st.floats(0.05, 1.5),
    threshold=st.floats(0.3, 0.95),
    min_size=st.integers(1, 8),
    batch_size=st.integers(1, 70),
    seed=st.integers(0, 2**16),
)
@settings(max_examples=25, deadline=None)
def test_community_detection_equals_brute_force(
    n_clusters, per_cluster, dim, noise, threshold, min_size, batch_size, seed
):
    emb = _clusters(n_clusters, per_cluster, dim, noise, seed)
    ours = community_detection(emb, threshold=threshold, min_community_size=min_size, batch_size=batch_size)
    assert ours == _brute_force_communities(emb, threshold, min_size)
    flat = [i for community in ours for i in community]
    assert len(flat) == len(set(flat))  # communities never overlap


def test_community_detection_edge_cases():
    assert community_detection(torch.empty(0, 4)) == []
    assert community_detection(_randn(3, 4, 0), min_community_size=10) == []
    # a single embedding is a batch of one, its own community at min size 1
    assert community_detection(torch.tensor([1.0, 2.0]), min_community_size=1) == [[0]]


def test_community_detection_bad_input():
    emb = _randn(20, 4, 0)
    with pytest.raises(InvalidInputError, match="min_community_size"):
        community_detection(emb, min_community_size=0)
    with pytest.raises(InvalidInputError, match="batch_size"):
        community_detection(emb, batch_size=0)
    emb[5] = float("nan")
    with pytest.raises(InvalidInputError, match=r"rows \[5\]"):
        community_detection(emb, min_community_size=2)


# ------------------------------------------------------------------------------------------ public namespace


def test_util_namespace_matches_the_reference_names():
    from sentencekit import util

    assert util.__all__ == sorted(util.__all__)
    public = {
        name
        for name, value in vars(util).items()
        if not name.startswith("_") and name != "annotations" and not isinstance(value, types.ModuleType)
    }
    assert public == set(util.__all__)
    ours_only = {"semantic_search_quantized"}
    assert set(util.__all__) - ours_only <= set(st_util.__all__)
    assert util.semantic_search is semantic_search
    assert util.quantize_embeddings is __import__("sentencekit").quantize_embeddings
