"""retrieve_and_rerank and zero_shot_classify on tiny random models: checked against doing it by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import SHORT_TEXTS
from sentencekit import CrossEncoder, Index, InvalidInputError, SentenceTransformer
from sentencekit.cross_encoder import retrieve_and_rerank, zero_shot_classify
from sentencekit.similarity import cos_sim
from test_cross_encoder import write_tiny_cross_encoder

CORPUS = list(SHORT_TEXTS)
QUERIES = ["A man eats pasta.", "Someone plays music.", "horse riding"]
NLI_LABELS = {0: "contradiction", 1: "entailment", 2: "neutral"}


@pytest.fixture(scope="module")
def bi_encoder(tiny_hf_folder, one_torch_thread):
    return SentenceTransformer(str(tiny_hf_folder), device="cpu")


@pytest.fixture(scope="module")
def reranker(tmp_path_factory):
    return CrossEncoder(write_tiny_cross_encoder(tmp_path_factory.mktemp("rr"), 1, seed=5), device="cpu")


@pytest.fixture(scope="module")
def nli(tmp_path_factory):
    folder = write_tiny_cross_encoder(tmp_path_factory.mktemp("nli"), 3, seed=6, id2label=NLI_LABELS)
    return CrossEncoder(folder, device="cpu")


def _by_hand(bi_encoder, reranker, query, k):
    scores = cos_sim(bi_encoder.encode([query]), bi_encoder.encode(CORPUS))[0]
    candidates = torch.argsort(scores, descending=True, stable=True)[:k].tolist()
    rerank = reranker.predict([(query, CORPUS[i]) for i in candidates])
    return candidates, scores, rerank


def test_retrieve_and_rerank_equals_the_two_stages_by_hand(bi_encoder, reranker):
    results = retrieve_and_rerank(QUERIES, reranker, CORPUS, bi_encoder=bi_encoder, retrieve_top_k=4)
    assert len(results) == len(QUERIES)
    for query, hits in zip(QUERIES, results, strict=True):
        candidates, retrieval, rerank = _by_hand(bi_encoder, reranker, query, 4)
        assert sorted(h["corpus_id"] for h in hits) == sorted(candidates)
        expected = sorted(range(4), key=lambda r: -rerank[r])
        assert [h["corpus_id"] for h in hits] == [candidates[r] for r in expected]
        for hit in hits:
            assert hit["retrieval_rank"] == candidates.index(hit["corpus_id"])
            np.testing.assert_allclose(hit["retrieval_score"], float(retrieval[hit["corpus_id"]]), atol=1e-5)
            np.testing.assert_allclose(hit["score"], rerank[hit["retrieval_rank"]], atol=1e-6)


def test_precomputed_embeddings_dict_corpus_and_documents(bi_encoder, reranker):
    ids = [f"doc{i}" for i in range(len(CORPUS))]
    corpus = dict(zip(ids, CORPUS, strict=True))
    embeddings = bi_encoder.encode(CORPUS)
    single = retrieve_and_rerank(
        QUERIES[0],
        reranker,
        corpus,
        corpus_embeddings=embeddings,
        query_embeddings=bi_encoder.encode([QUERIES[0]]),
        retrieve_top_k=5,
        top_k=2,
        return_documents=True,
    )
    assert len(single) == 2 and single[0]["score"] >= single[1]["score"]
    assert all(corpus[h["corpus_id"]] == h["text"] for h in single)
    full = retrieve_and_rerank(QUERIES[0], reranker, CORPUS, bi_encoder=bi_encoder, retrieve_top_k=5)
    assert [h["corpus_id"] for h in single] == [ids[h["corpus_id"]] for h in full[:2]]


def test_index_as_first_stage(bi_encoder, reranker):
    index = Index(bi_encoder)
    index.add(bi_encoder.encode(CORPUS), ids=list(range(len(CORPUS))))
    via_index = retrieve_and_rerank(
        QUERIES, reranker, CORPUS, bi_encoder=bi_encoder, index=index, retrieve_top_k=3
    )
    via_embeddings = retrieve_and_rerank(QUERIES, reranker, CORPUS, bi_encoder=bi_encoder, retrieve_top_k=3)
    for a, b in zip(via_index, via_embeddings, strict=True):
        assert [h["corpus_id"] for h in a] == [h["corpus_id"] for h in b]
        np.testing.assert_allclose([h["score"] for h in a], [h["score"] for h in b], atol=1e-6)
    # the index's own model embeds the queries when no bi-encoder is given
    own = retrieve_and_rerank(QUERIES, reranker, CORPUS, index=index, retrieve_top_k=3)
    assert [[h["corpus_id"] for h in hits] for hits in own] == [
        [h["corpus_id"] for h in hits] for hits in via_index
    ]
    stranger = Index(bi_encoder)
    stranger.add(bi_encoder.encode(CORPUS[:2]), ids=["x", "y"])
    with pytest.raises(InvalidInputError, match="not in the corpus"):
        retrieve_and_rerank(QUERIES[0], reranker, CORPUS, index=stranger)


def test_rerank_bad_arguments(bi_encoder, reranker, nli):
    with pytest.raises(InvalidInputError, match="rows"):
        retrieve_and_rerank(
            QUERIES, reranker, CORPUS, corpus_embeddings=np.zeros((3, 32)), bi_encoder=bi_encoder
        )
    with pytest.raises(InvalidInputError, match="empty"):
        retrieve_and_rerank(QUERIES, reranker, [], bi_encoder=bi_encoder)
    with pytest.raises(InvalidInputError, match="retrieve_top_k"):
        retrieve_and_rerank(QUERIES, reranker, CORPUS, bi_encoder=bi_encoder, retrieve_top_k=0)
    with pytest.raises(ValueError, match="bi_encoder"):
        retrieve_and_rerank(QUERIES, reranker, CORPUS)
    with pytest.raises(InvalidInputError, match=r"index 1 .* retrieve_and_rerank\(queries=\.\.\.\)"):
        retrieve_and_rerank(["ok", None], reranker, CORPUS, bi_encoder=bi_encoder)
    with pytest.raises(ValueError, match="one label"):
        retrieve_and_rerank(QUERIES, nli, CORPUS, bi_encoder=bi_encoder)
    assert retrieve_and_rerank([], reranker, CORPUS, bi_encoder=bi_encoder) == []


def test_zero_shot_single_label_is_a_softmax_over_entailment(nli):
    labels = ["food", "music", "sports"]
    texts = ["A man is eating food.", "A monkey is playing drums."]
    results = zero_shot_classify(nli, texts, labels, hypothesis_template="It is about {}.")
    assert isinstance(results, list) and len(results) == 2
    for text, result in zip(texts, results, strict=True):
        logits = nli.predict(
            [(text, f"It is about {label}.") for label in labels], activation_fn=torch.nn.Identity()
        )
        expected = torch.softmax(torch.tensor(logits[:, 1]), dim=0).tolist()
        assert result["sequence"] == text
        assert result["labels"] == [labels[i] for i in np.argsort(-np.array(expected), kind="stable")]
        np.testing.assert_allclose(result["scores"], sorted(expected, reverse=True), atol=1e-6)
        assert sum(result["scores"]) == pytest.approx(1.0, abs=1e-5)


def test_zero_shot_multi_label_judges_each_label_alone(nli, reranker):
    text, labels = "A man is riding a horse.", ["animals", "travel"]
    result = zero_shot_classify(nli, text, labels, multi_label=True)
    assert isinstance(result, dict)
    for label, score in zip(result["labels"], result["scores"], strict=True):
        logits = nli.predict((text, f"This example is {label}."), activation_fn=torch.nn.Identity())
        assert score == pytest.approx(float(torch.softmax(torch.tensor(logits[[0, 1]]), 0)[1]), abs=1e-6)
    one_label = zero_shot_classify(reranker, text, labels, multi_label=True)
    for label, score in zip(one_label["labels"], one_label["scores"], strict=True):
        assert score == pytest.approx(float(reranker.predict((text, f"This example is {label}."))), abs=1e-6)


def test_zero_shot_bad_arguments(nli, tiny_hf_folder):
    with pytest.raises(InvalidInputError, match="at least one label"):
        zero_shot_classify(nli, "text", [])
    with pytest.raises(InvalidInputError, match=r"'\{\}'"):
        zero_shot_classify(nli, "text", ["a"], hypothesis_template="no slot")
    with pytest.raises(InvalidInputError, match="index 1"):
        zero_shot_classify(nli, "text", ["a", None])
    with pytest.raises(InvalidInputError, match=r"zero_shot_classify\(texts=\.\.\.\) got None"):
        zero_shot_classify(nli, None, ["a"])
    unnamed = CrossEncoder(tiny_hf_folder, num_labels=3, device="cpu")  # LABEL_0.. : no entailment class
    with pytest.raises(ValueError, match="entailment_label"):
        zero_shot_classify(unnamed, "text", ["a", "b"])
    assert zero_shot_classify(unnamed, "text", ["a", "b"], entailment_label=2)["labels"]
