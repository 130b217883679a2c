"""Sparse evaluators against sentence-transformers' on small slices of real benchmark data.

Both sides evaluate the same tiny random SPLADE model (``tiny_mlm_folder``: our SparseEncoder and the
reference's load it to the same vectors) on the same inputs. Every parity test requires the same keys in the
same order, the same primary metric, metrics within 1e-6, and the same CSV file names and headers with the
same values. Two kinds of values are float32 numbers and are compared relatively, to 1e-6 (a few float32
units in the last place): thresholds, which are scores (a dot-product threshold of 5.3 is 4.8e-7 per unit),
and ``active_dims``, which the reference averages in float32 (190.487495 for our 190.4875).

Our evaluators encode each distinct text once; the reference encodes a repeated text in several batches,
whose float noise (~1e-7) breaks ties that ours keep (a pair that occurs twice scores the same twice) and so
moves a rank correlation by ~6e-6. :class:`CachingSparseEncoder` hands the reference evaluators one vector
per text too, so that the comparison is about the metrics.
"""

from __future__ import annotations

import csv
import inspect
import json
from pathlib import Path

import pytest
import torch

from conftest import DATA_DIR, _write_tiny_bert
from sentencekit.readers import (
    read_beir,
    read_quora_duplicates,
    read_snli_pairs,
    read_sts_csv,
    read_triplet_tsv,
)
from sentencekit.sparse_encoder import evaluation as ours

st = pytest.importorskip("sentence_transformers")
ref = pytest.importorskip("sentence_transformers.sparse_encoder.evaluation")

TOLERANCE = 1e-6
FLOAT32_KEYS = ("active_dims", "threshold")  # float32 values on either side: compared relatively
ALL_FUNCTIONS = ["cosine", "dot", "euclidean", "manhattan"]

pytestmark = [
    pytest.mark.skipif(not DATA_DIR.is_dir(), reason=f"benchmark data folder {DATA_DIR} is missing"),
    pytest.mark.usefixtures("one_torch_thread"),
]


class CachingSparseEncoder:
    """The reference SparseEncoder, embedding each distinct text once per setting, as our evaluators do."""

    def __init__(self, model):
        self.model = model
        self.cache: dict[tuple, torch.Tensor] = {}

    def __getattr__(self, name):  # sparsity, similarity, similarity_fn_name, model_card_data, ...
        return getattr(self.model, name)

    def encode(self, sentences, **kwargs):
        return self._encode("encode", sentences, **kwargs)

    def encode_query(self, sentences, **kwargs):
        return self._encode("encode_query", sentences, **kwargs)

    def encode_document(self, sentences, **kwargs):
        return self._encode("encode_document", sentences, **kwargs)

    def _encode(
        self,
        method,
        sentences,
        batch_size=32,
        show_progress_bar=None,
        convert_to_tensor=True,
        convert_to_sparse_tensor=True,
        save_to_cpu=False,
        **settings,
    ):
        texts = list(sentences)
        key = (method, tuple(sorted(settings.items())))
        missing = [text for text in dict.fromkeys(texts) if (key, text) not in self.cache]
        if missing:
            rows = getattr(self.model, method)(
                missing, batch_size=batch_size, convert_to_tensor=False, **settings
            )
            self.cache.update({(key, text): row.coalesce() for text, row in zip(missing, rows, strict=True)})
        rows = [self.cache[(key, text)] for text in texts]
        if not convert_to_sparse_tensor:
            rows = [row.to_dense() for row in rows]
        if not convert_to_tensor:
            return rows
        stacked = torch.stack(rows)
        return stacked.coalesce() if convert_to_sparse_tensor else stacked


@pytest.fixture(scope="module")
def models(tiny_mlm_folder):
    """(our SparseEncoder, the reference's behind a CachingSparseEncoder), both from tiny_mlm_folder."""
    from sentencekit.sparse_encoder import SparseEncoder

    return (
        SparseEncoder(str(tiny_mlm_folder), device="cpu"),
        CachingSparseEncoder(st.SparseEncoder(str(tiny_mlm_folder), device="cpu")),
    )


def assert_same_results(expected: dict, got: dict) -> float:
    """Same keys in the same order and the same values; return the largest absolute difference of the rest."""
    assert list(got) == list(expected)
    largest = 0.0
    for key, value in expected.items():
        if key.endswith(FLOAT32_KEYS):
            assert got[key] == pytest.approx(value, rel=TOLERANCE), key
        else:
            assert got[key] == pytest.approx(value, abs=TOLERANCE), key
            largest = max(largest, abs(got[key] - value))
    return largest


def run_both(reference_evaluator, our_evaluator, models, tmp_path: Path | None = None) -> dict:
    """Call both evaluators (writing their CSV files under ``tmp_path``), compare results and files."""
    ours_model, reference_model = models
    ref_folder = ours_folder = None
    if tmp_path is not None:
        ref_folder, ours_folder = tmp_path / "ref", tmp_path / "ours"
    expected = reference_evaluator(reference_model, output_path=ref_folder and str(ref_folder))
    got = our_evaluator(ours_model, output_path=ours_folder and str(ours_folder))
    assert_same_results(expected, got)
    assert our_evaluator.primary_metric == reference_evaluator.primary_metric
    assert our_evaluator.get_config_dict() == reference_evaluator.get_config_dict()
    if tmp_path is not None:
        assert_same_csv_files(ref_folder, ours_folder)
    return got


def assert_same_csv_files(ref_folder: Path, ours_folder: Path) -> None:
    expected_files = sorted(path.name for path in ref_folder.glob("*.csv"))
    assert expected_files and sorted(path.name for path in ours_folder.glob("*.csv")) == expected_files
    for file_name in expected_files:
        expected = list(csv.reader((ref_folder / file_name).open(encoding="utf-8")))
        got = list(csv.reader((ours_folder / file_name).open(encoding="utf-8")))
        assert got[0] == expected[0], file_name
        assert len(got) == len(expected)
        for expected_row, got_row in zip(expected[1:], got[1:], strict=True):
            assert_same_results(
                dict(zip(expected[0], map(float, expected_row), strict=True)),
                dict(zip(got[0], map(float, got_row), strict=True)),
            )


# ------------------------------------------------------------------------------------------------ data slices


@pytest.fixture(scope="module")
def scifact():
    """40 test queries, their relevant abstracts and 200 other abstracts."""
    corpus, queries, relevant = read_beir(DATA_DIR / "scifact" / "beir", split="test")
    query_ids = list(queries)[:40]
    wanted = {doc for qid in query_ids for doc in relevant[qid]}
    keep = wanted | set([doc for doc in corpus if doc not in wanted][:200])
    return (
        {qid: queries[qid] for qid in query_ids},
        {doc: text for doc, text in corpus.items() if doc in keep},
        {qid: relevant[qid] for qid in query_ids},
    )


@pytest.fixture(scope="module")
def sts():
    return [column[:200] for column in read_sts_csv(DATA_DIR / "stsb" / "stsb-en-test.csv")]


# ------------------------------------------------------------------------------------------------ parity


def test_information_retrieval_matches_reference(models, scifact, tmp_path):
    queries, corpus, relevant = scifact
    evaluator = ours.SparseInformationRetrievalEvaluator(
        queries, corpus, relevant, name="scifact", write_predictions=True
    )
    got = run_both(
        ref.SparseInformationRetrievalEvaluator(
            queries, corpus, relevant, name="scifact", write_predictions=True
        ),
        evaluator,
        models,
        tmp_path,
    )
    assert evaluator.primary_metric == "scifact_dot_ndcg@10"
    assert got["scifact_avg_flops"] > 0
    [predictions] = (tmp_path / "ref").glob("*.jsonl")
    assert predictions.name == "Information-Retrieval_evaluation_scifact_predictions_dot.jsonl"
    expected_lines = predictions.read_text().splitlines()
    got_lines = (tmp_path / "ours" / predictions.name).read_text().splitlines()
    assert len(got_lines) == len(expected_lines) == len(queries)
    for expected_line, got_line in zip(
        map(json.loads, expected_lines), map(json.loads, got_lines), strict=True
    ):
        assert got_line["query_id"] == expected_line["query_id"]
        assert [hit["corpus_id"] for hit in got_line["results"]] == [
            hit["corpus_id"] for hit in expected_line["results"]
        ]


def test_information_retrieval_sparse_chunks_functions_and_shared_texts(models, scifact, tmp_path):
    """16 active dims (many tied scores), 3 corpus chunks, two score functions, one text under two ids."""
    from sentencekit.similarity import cos_sim, dot_score

    queries, corpus, relevant = scifact
    corpus = {**corpus, "copy-of-first": next(iter(corpus.values()))}
    options = {
        "max_active_dims": 16,
        "corpus_chunk_size": 97,
        "query_prompt": "query: ",
        "ndcg_at_k": [5, 10],
    }
    got = run_both(
        ref.SparseInformationRetrievalEvaluator(
            queries,
            corpus,
            relevant,
            score_functions={"cosine": st.util.cos_sim, "dot": st.util.dot_score},
            **options,
        ),
        ours.SparseInformationRetrievalEvaluator(
            queries, corpus, relevant, score_functions={"cosine": cos_sim, "dot": dot_score}, **options
        ),
        models,
        tmp_path,
    )
    assert got["query_active_dims"] <= 16 and got["corpus_active_dims"] <= 16


def test_embedding_similarity_matches_reference(models, sts, tmp_path):
    got = run_both(
        ref.SparseEmbeddingSimilarityEvaluator(*sts, name="sts"),
        ours.SparseEmbeddingSimilarityEvaluator(*sts, name="sts"),
        models,
        tmp_path,
    )
    assert set(got) >= {"sts_spearman_dot", "sts_active_dims", "sts_sparsity_ratio"}
    run_both(
        ref.SparseEmbeddingSimilarityEvaluator(*sts, similarity_fn_names=ALL_FUNCTIONS, max_active_dims=16),
        ours.SparseEmbeddingSimilarityEvaluator(*sts, similarity_fn_names=ALL_FUNCTIONS, max_active_dims=16),
        models,
        tmp_path / "four",
    )


def test_binary_classification_matches_reference(models, tmp_path):
    first, second, labels = (
        column[:300] for column in read_quora_duplicates(DATA_DIR / "quora_duplicates" / "test.tsv")
    )
    # 50 mismatched pairs of texts already there: the reference counts a text's sparsity once (it encodes
    # the distinct texts). Not the same pairs again: a sparse row sum depends on the row's position, so a
    # repeated pair's scores tie in one implementation and differ by 1e-7 in the other, which moves AP.
    quora = [first + first[:50], second + second[1:51], labels + [0] * 50]
    run_both(
        ref.SparseBinaryClassificationEvaluator(*quora, name="quora", max_active_dims=16),
        ours.SparseBinaryClassificationEvaluator(*quora, name="quora", max_active_dims=16),
        models,
        tmp_path,
    )
    run_both(
        ref.SparseBinaryClassificationEvaluator(*quora, similarity_fn_names=ALL_FUNCTIONS),
        ours.SparseBinaryClassificationEvaluator(*quora, similarity_fn_names=ALL_FUNCTIONS),
        models,
        tmp_path / "four",
    )


def test_triplet_matches_reference(models, tmp_path):
    triplets = [column[:200] for column in read_triplet_tsv(DATA_DIR / "snli" / "snli_test_triplets.tsv")]
    got = run_both(
        ref.SparseTripletEvaluator(*triplets, similarity_fn_names=ALL_FUNCTIONS, max_active_dims=16),
        ours.SparseTripletEvaluator(*triplets, similarity_fn_names=ALL_FUNCTIONS, max_active_dims=16),
        models,
        tmp_path,
    )
    assert "anchor_active_dims" in got and "negative_sparsity_ratio" in got
    run_both(
        ref.SparseTripletEvaluator(*triplets, main_similarity_function="cosine", margin=0.01, name="snli"),
        ours.SparseTripletEvaluator(*triplets, main_similarity_function="cosine", margin=0.01, name="snli"),
        models,
    )


def test_reranking_matches_reference(models, tmp_path):
    pairs = read_snli_pairs(DATA_DIR / "snli" / "snli_test_pairs.tsv")
    samples: dict[str, dict] = {}
    for premise, hypothesis, label in zip(*pairs, strict=True):
        sample = samples.setdefault(premise, {"query": premise, "positive": [], "negative": []})
        sample["positive" if label == 0 else "negative"].append(hypothesis)
    data = [sample for sample in samples.values() if sample["positive"] and sample["negative"]][:80]
    run_both(
        ref.SparseRerankingEvaluator(data, at_k=3, name="snli", max_active_dims=16),
        ours.SparseRerankingEvaluator(data, at_k=3, name="snli", max_active_dims=16),
        models,
        tmp_path,
    )
    # sample by sample, the reference averages the candidates' sparsity per sample
    run_both(
        ref.SparseRerankingEvaluator(data, use_batched_encoding=False),
        ours.SparseRerankingEvaluator(data, use_batched_encoding=False),
        models,
    )


def test_translation_and_mse_match_reference(models, tmp_path_factory):
    from sentencekit.sparse_encoder import SparseEncoder

    english = read_sts_csv(DATA_DIR / "stsb" / "stsb-en-test.csv").sentences1[:120]
    german = read_sts_csv(DATA_DIR / "stsb" / "stsb-de-test.csv").sentences1[:120]
    run_both(
        ref.SparseTranslationEvaluator(english, german, name="en-de"),
        ours.SparseTranslationEvaluator(english, german, name="en-de"),
        models,
        tmp_path_factory.mktemp("translation"),
    )
    teacher_folder = _write_tiny_bert(tmp_path_factory.mktemp("teacher"), seed=2, masked_lm=True)
    got = run_both(
        ref.SparseMSEEvaluator(
            english,
            english,
            teacher_model=st.SparseEncoder(str(teacher_folder), device="cpu"),
            max_active_dims=32,
        ),
        ours.SparseMSEEvaluator(
            english,
            english,
            teacher_model=SparseEncoder(str(teacher_folder), device="cpu"),
            max_active_dims=32,
        ),
        models,
        tmp_path_factory.mktemp("mse"),
    )
    assert got["negative_mse"] < 0 and got["active_dims"] <= 32


def test_reciprocal_rank_fusion_of_dense_and_sparse_search(models, scifact, tiny_hf_folder, tmp_path):
    """Rankings from semantic_search over real sparse (and dense) embeddings, fused by both evaluators."""
    from sentencekit import SentenceTransformer
    from sentencekit.search import semantic_search
    from sentencekit.similarity import dot_score

    queries, corpus, relevant = scifact
    corpus_ids = list(corpus)
    sparse_model, _ = models
    query_embeddings = sparse_model.encode_query(list(queries.values()), max_active_dims=24)
    corpus_embeddings = sparse_model.encode_document(list(corpus.values()), max_active_dims=24)
    assert query_embeddings.is_sparse and corpus_embeddings.is_sparse
    sparse_hits = semantic_search(
        query_embeddings, corpus_embeddings, top_k=20, corpus_chunk_size=64, score_function=dot_score
    )
    expected_hits = st.util.semantic_search(
        query_embeddings, corpus_embeddings, top_k=20, corpus_chunk_size=64, score_function=st.util.dot_score
    )
    for got_list, expected_list in zip(sparse_hits, expected_hits, strict=True):
        assert [hit["score"] for hit in got_list] == pytest.approx([hit["score"] for hit in expected_list])
        assert {hit["corpus_id"] for hit in got_list} == {hit["corpus_id"] for hit in expected_list}

    dense_model = SentenceTransformer(str(tiny_hf_folder), device="cpu")
    dense_hits = semantic_search(
        dense_model.encode(list(queries.values()), convert_to_tensor=True),
        dense_model.encode(list(corpus.values()), convert_to_tensor=True),
        top_k=20,
    )

    def samples(hits):
        return [
            {
                "query_id": query_id,
                "query": queries[query_id],
                "positive": sorted(relevant[query_id]),
                "documents": [corpus_ids[hit["corpus_id"]] for hit in per_query],
            }
            for query_id, per_query in zip(queries, hits, strict=True)
        ]

    options = {"at_k": 5, "rrf_k": 20, "name": "scifact", "write_predictions": True}
    reference = ref.ReciprocalRankFusionEvaluator(samples(dense_hits), samples(sparse_hits), **options)
    evaluator = ours.ReciprocalRankFusionEvaluator(samples(dense_hits), samples(sparse_hits), **options)
    expected = reference(output_path=str(tmp_path / "ref"))
    got = evaluator(output_path=str(tmp_path / "ours"))
    assert_same_results(expected, got)
    assert evaluator.primary_metric == reference.primary_metric == "scifact_ndcg@5"
    assert got["scifact_sparse_map"] > 0  # the tiny model's rankings find some relevant abstracts
    assert_same_csv_files(tmp_path / "ref", tmp_path / "ours")
    name = "ReciprocalRankFusion_evaluation_scifact_predictions.jsonl"
    assert (tmp_path / "ours" / name).read_text() == (tmp_path / "ref" / name).read_text()


# ------------------------------------------------------------------------------------------------ behaviour


def test_split_rows_cuts_sparse_tensors_like_dense_ones():
    from sentencekit.evaluation._embeddings import split_rows

    torch.manual_seed(0)
    dense = torch.rand(9, 30) * (torch.rand(9, 30) > 0.8)
    sizes = [1, 0, 5, 3]
    for got, expected in zip(split_rows(dense.to_sparse(), sizes), torch.split(dense, sizes), strict=True):
        assert got.is_sparse and torch.equal(got.to_dense(), expected)


def test_sparse_evaluators_encode_each_distinct_text_once(models):
    from collections import Counter

    our_model, _ = models
    asked: Counter[str] = Counter()

    class Counting:
        def __getattr__(self, name):
            return getattr(our_model, name)

        def encode(self, sentences, **kwargs):
            asked.update(sentences)
            return our_model.encode(sentences, **kwargs)

    texts = ["a man eats food", "a dog runs", "a man eats food", "the cat"]
    ours.SparseEmbeddingSimilarityEvaluator(texts, texts[::-1], [1, 2, 3, 4])(Counting())
    assert asked == Counter(set(texts))


class DenseModel:
    """A dense model: it can encode, but not report sparsity."""

    def encode(self, sentences, **_):
        return torch.ones(len(sentences), 4)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda: ours.SparseInformationRetrievalEvaluator(
                {"q": "a"}, {"d": "b"}, {"q": ["d"]}, max_active_dims=0
            ),
            ValueError,
            "max_active_dims must be a positive integer or None, got 0",
        ),
        (
            lambda: ours.SparseTripletEvaluator(["a"], ["b"], ["c"])(DenseModel()),
            TypeError,
            r"SparseTripletEvaluator evaluates sparse models .* got DenseModel. Use "
            r"sentencekit.evaluation.TripletEvaluator",
        ),
        (
            lambda: ours.SparseEmbeddingSimilarityEvaluator(["a"], ["b", "c"], [1.0]),
            ValueError,
            "sentences1, sentences2 and scores must have the same length",
        ),
        (
            lambda: ours.SparseInformationRetrievalEvaluator({1: "query"}, {"d": "doc"}, {"1": {"d"}}),
            ValueError,
            "same ids and id type",
        ),
        (
            lambda: ours.SparseRerankingEvaluator([{"query": "q", "positive": "p", "negative": []}]),
            ValueError,
            "one positive and one negative",
        ),
        (
            lambda: ours.SparseMSEEvaluator(["a"], ["b"]),
            ValueError,
            "needs a teacher_model",
        ),
        (
            lambda: ours.ReciprocalRankFusionEvaluator([{}], []),
            ValueError,
            "same length .* got 1 and 0",
        ),
        (
            lambda: ours.ReciprocalRankFusionEvaluator([], []),
            ValueError,
            "needs at least one query",
        ),
        (
            lambda: ours.ReciprocalRankFusionEvaluator(
                [{"query_id": "q1", "query": "a", "positive": "d"}],
                [{"query_id": "q1", "query": "a", "positive": "d", "documents": []}],
            ),
            ValueError,
            r"dense_samples\[0\] lacks \['documents'\]",
        ),
        (
            lambda: ours.ReciprocalRankFusionEvaluator(
                [{"query_id": "q1", "query": "a", "positive": "d", "documents": []}],
                [{"query_id": "q2", "query": "a", "positive": "d", "documents": []}],
            ),
            ValueError,
            "query ids differ at index 0: 'q1' .dense. vs 'q2'",
        ),
        (
            lambda: ours.ReciprocalRankFusionEvaluator(
                [{"query_id": "q1", "query": "a", "positive": "d", "documents": ["d"]}] * 2,
                [{"query_id": "q1", "query": "a", "positive": "d", "documents": ["d"]}] * 2,
            )(DenseModel()),
            TypeError,
            "takes no model",
        ),
    ],
)
def test_bad_input_gives_a_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_public_names_and_signatures_follow_the_reference():
    assert ours.__all__ == sorted(ours.__all__)
    assert set(ours.__all__) == set(ref.__all__) - {"SparseNanoBEIREvaluator"}
    for name in ours.__all__:
        expected = inspect.signature(getattr(ref, name)).parameters
        got = inspect.signature(getattr(ours, name)).parameters
        assert list(got) == list(expected), name
        for parameter, value in expected.items():
            default = got[parameter].default
            assert (list(default) if isinstance(default, tuple) else default) == value.default, (
                name,
                parameter,
            )
