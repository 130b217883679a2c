"""The memory bounds inside search: results never depend on internal block sizes, budgets or shortcuts."""

from __future__ import annotations

import pytest
import torch

import sentencekit.search as search_module
from sentencekit.search import community_detection, semantic_search

st_util = pytest.importorskip("sentence_transformers.util")


def _clusters(n_clusters: int, per_cluster: int, dim: int, noise: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(n_clusters, dim, generator=g)
    points = centres.repeat_interleave(per_cluster, 0) + noise * torch.randn(
        n_clusters * per_cluster, dim, generator=g
    )
    return points[torch.randperm(len(points), generator=g)]


@pytest.mark.parametrize("budget", [0, 40, 300])
@pytest.mark.parametrize("score_block", [1, 64, 1 << 25])
def test_community_detection_rescoring_fallback_gives_the_same_communities(monkeypatch, budget, score_block):
    emb = _clusters(8, 25, 16, noise=0.3, seed=3)
    kwargs = {"threshold": 0.8, "min_community_size": 5, "batch_size": 64}
    expected = community_detection(emb, **kwargs)
    assert expected == st_util.community_detection(emb, **kwargs)
    # budget 0: every candidate is scored again in step 2; 40/300: some kept, the rest scored again
    monkeypatch.setattr(search_module, "_MEMBER_BUDGET", budget)
    # score_block 1: one row at a time, whatever batch_size says
    monkeypatch.setattr(search_module, "_SCORE_BLOCK_ELEMENTS", score_block)
    assert community_detection(emb, **kwargs) == expected


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
def test_semantic_search_cosine_matches_the_reference_for_each_dtype(dtype):
    # float32/float64 chunks: scores divided by the row norms (no normalized copy); float16: normalized copy
    g = torch.Generator().manual_seed(0)
    queries, corpus = torch.randn(9, 8, generator=g), torch.randn(120, 8, generator=g)
    corpus[5] = 0  # a zero row scores 0, as with a normalized copy
    corpus = corpus.to(dtype)
    expected = st_util.semantic_search(queries.to(dtype), corpus, top_k=7, corpus_chunk_size=50)
    ours = semantic_search(queries.to(dtype), corpus, top_k=7, corpus_chunk_size=50)
    assert [[h["corpus_id"] for h in row] for row in ours] == [
        [h["corpus_id"] for h in row] for row in expected
    ]
    for o, r in zip(ours, expected, strict=True):
        assert [h["score"] for h in o] == pytest.approx(
            [h["score"] for h in r], abs=1e-3 if dtype == torch.float16 else 1e-6
        )
    everything = semantic_search(queries, corpus.float(), top_k=120)
    assert all(h["score"] == 0.0 for row in everything for h in row if h["corpus_id"] == 5)


def test_semantic_search_on_unit_rows_skips_the_division_and_keeps_the_hits():
    g = torch.Generator().manual_seed(1)
    queries = torch.randn(9, 16, generator=g)
    corpus = torch.nn.functional.normalize(torch.randn(300, 16, generator=g), dim=1)
    expected = st_util.semantic_search(queries, corpus, top_k=10)
    ours = semantic_search(queries, corpus, top_k=10)
    assert [[h["corpus_id"] for h in row] for row in ours] == [
        [h["corpus_id"] for h in row] for row in expected
    ]
    for o, r in zip(ours, expected, strict=True):
        assert [h["score"] for h in o] == pytest.approx([h["score"] for h in r], abs=1e-6)
    # one row off unit length by more than a few ulps: the chunk is divided again
    corpus[7] *= 1.001
    ours = semantic_search(queries, corpus, top_k=300)
    assert all(abs(h["score"]) <= 1 + 1e-6 for row in ours for h in row)
