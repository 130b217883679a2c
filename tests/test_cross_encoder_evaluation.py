"""Cross-encoder evaluators against the reference's, each with its own library's model on the same weights."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from conftest import SHORT_TEXTS
from sentencekit import CrossEncoder
from sentencekit.evaluation import (
    CrossEncoderClassificationEvaluator,
    CrossEncoderCorrelationEvaluator,
    CrossEncoderRerankingEvaluator,
)
from test_cross_encoder import LONG, write_tiny_cross_encoder

st_ce = pytest.importorskip("sentence_transformers.cross_encoder")
ref_eval = pytest.importorskip("sentence_transformers.cross_encoder.evaluation")

TEXTS = [*SHORT_TEXTS, LONG]
PAIRS = [(a, b) for i, a in enumerate(TEXTS) for b in TEXTS[i + 1 :]][:40]


@pytest.fixture(scope="module")
def both(tmp_path_factory, one_torch_thread):
    out = {}
    for n in (1, 3):
        folder = write_tiny_cross_encoder(tmp_path_factory.mktemp(f"eval{n}"), n, seed=10 + n)
        out[n] = (CrossEncoder(folder, device="cpu"), st_ce.CrossEncoder(str(folder), device="cpu"))
    return out


def _assert_same(ours: dict[str, float], theirs: dict[str, float]) -> None:
    assert list(ours) == list(theirs)
    for key in ours:
        assert ours[key] == pytest.approx(float(theirs[key]), abs=1e-4), key


def test_classification_one_label(both, tmp_path):
    labels = [int(i % 3 == 0) for i in range(len(PAIRS))]
    ours, ref = both[1]
    ev = CrossEncoderClassificationEvaluator(PAIRS, labels, name="dev")
    result = ev(ours, output_path=str(tmp_path))
    _assert_same(result, ref_eval.CrossEncoderClassificationEvaluator(PAIRS, labels, name="dev")(ref))
    assert ev.primary_metric == "dev_average_precision"
    assert 0 < result["dev_average_precision"] < 1
    with open(tmp_path / "CrossEncoderClassificationEvaluator_dev_results.csv", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0][:3] == ["epoch", "steps", "Accuracy"] and len(rows) == 2


def test_classification_three_labels(both):
    labels = [i % 3 for i in range(len(PAIRS))]
    ours, ref = both[3]
    ev = CrossEncoderClassificationEvaluator(PAIRS, labels)
    _assert_same(ev(ours), ref_eval.CrossEncoderClassificationEvaluator(PAIRS, labels)(ref))
    assert ev.primary_metric == "f1_macro"


def test_correlation(both):
    gold = list(np.random.default_rng(0).uniform(0, 5, len(PAIRS)))
    ours, ref = both[1]
    ev = CrossEncoderCorrelationEvaluator(PAIRS, gold, name="sts")
    result = ev(ours)
    _assert_same(result, ref_eval.CrossEncoderCorrelationEvaluator(PAIRS, gold, name="sts")(ref))
    assert set(result) == {"sts_pearson", "sts_spearman"} and ev.primary_metric == "sts_spearman"


def _samples() -> list[dict]:
    rng = np.random.default_rng(1)
    samples = []
    for i, query in enumerate(TEXTS[:8]):
        others = [t for t in TEXTS if t != query]
        order = rng.permutation(len(others))
        docs = [others[j] for j in order]
        positives = docs[:2] if i % 2 else [docs[0]]
        if i < 4:
            samples.append({"query": query, "positive": positives, "negative": docs[len(positives) : 7]})
        else:  # a first-stage list that misses one positive
            samples.append({"query": query, "positive": [*positives, "not retrieved"], "documents": docs[:7]})
    samples.append({"query": "q", "positive": ["p"], "documents": ["x", "y"]})  # no positive retrieved
    return samples


@pytest.mark.parametrize("always_rerank_positives", [True, False])
def test_reranking(both, always_rerank_positives):
    ours, ref = both[1]
    samples = _samples()
    kwargs = {"at_k": 3, "always_rerank_positives": always_rerank_positives, "name": "rr"}
    ev = CrossEncoderRerankingEvaluator(samples, **kwargs)
    result = ev(ours)
    _assert_same(result, ref_eval.CrossEncoderRerankingEvaluator(samples, **kwargs)(ref))
    assert {"rr_map", "rr_mrr@3", "rr_ndcg@3", "rr_base_map", "rr_base_mrr@3", "rr_base_ndcg@3"} == set(
        result
    )
    assert ev.primary_metric == "rr_ndcg@3"
    assert 0 < result["rr_ndcg@3"] < 1


def test_reranking_rejects_malformed_samples():
    with pytest.raises(ValueError, match="exactly one of"):
        CrossEncoderRerankingEvaluator([{"query": "q", "positive": ["p"]}])
    with pytest.raises(ValueError, match="exactly one of"):
        CrossEncoderRerankingEvaluator([{"query": "q", "positive": ["p"], "negative": [], "documents": []}])
