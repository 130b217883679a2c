"""sentencekit evaluators against sentence-transformers' on small slices of real benchmark data.

Every parity test runs the reference evaluator and ours on the same model and requires the same keys, the same
primary metric and values within 1e-4. To keep the file fast on a busy CPU, most tests share one
:class:`CachingEncoder`: it embeds each (text, prompt) once through the real all-MiniLM-L6-v2
(max_seq_length 64, which shortens the SciFact abstracts) and hands the same vectors to both evaluators, so
the comparison is about the metrics, not about batch-dependent float noise. The same wrapper counts the texts
each evaluator asks for, which checks that every evaluator encodes each distinct text once.
"""

from __future__ import annotations

import csv
import json
from collections import Counter

import numpy as np
import pytest
import torch

from conftest import DATA_DIR
from sentencekit import evaluation as ours
from sentencekit.readers import (
    read_beir,
    read_quora_duplicates,
    read_snli_pairs,
    read_sts_csv,
    read_triplet_tsv,
)

st = pytest.importorskip("sentence_transformers")
ref = pytest.importorskip("sentence_transformers.sentence_transformer.evaluation")

TOLERANCE = 1e-4
ALL_FUNCTIONS = ["cosine", "dot", "euclidean", "manhattan"]

pytestmark = [
    pytest.mark.skipif(not DATA_DIR.is_dir(), reason=f"benchmark data folder {DATA_DIR} is missing"),
]


class CachingEncoder:
    """A stand-in for a SentenceTransformer that embeds each text once and counts what it is asked for."""

    def __init__(self, model):
        self.model = model
        self.cache: dict[tuple, np.ndarray] = {}
        self.requests: Counter[str] = Counter()

    def __getattr__(self, name):  # similarity_fn_name, similarity, model_card_data, ...
        return getattr(self.model, name)

    def encode(
        self,
        sentences,
        batch_size=32,
        show_progress_bar=None,
        convert_to_numpy=True,
        convert_to_tensor=False,
        prompt=None,
        prompt_name=None,
        truncate_dim=None,
        precision=None,
        normalize_embeddings=False,
    ):
        assert prompt_name is None
        texts = [sentences] if isinstance(sentences, str) else list(sentences)
        self.requests.update(texts)
        missing = [text for text in dict.fromkeys(texts) if (prompt, text) not in self.cache]
        if missing:
            vectors = self.model.encode(missing, batch_size=64, prompt=prompt)
            self.cache.update(dict(zip([(prompt, text) for text in missing], vectors, strict=True)))
        out = np.stack([self.cache[(prompt, text)] for text in texts])[
            :, :truncate_dim
        ]  # as truncate_dim does
        if normalize_embeddings:
            out = out / np.linalg.norm(out, axis=1, keepdims=True)
        if precision not in (None, "float32"):  # what encode(precision=...) does after embedding
            return st.quantize_embeddings(out, precision=precision)
        if convert_to_tensor:
            return torch.from_numpy(out)
        return out if convert_to_numpy else list(torch.from_numpy(out))

    encode_query = encode  # all-MiniLM-L6-v2's query and document prompts are empty
    encode_document = encode


@pytest.fixture(scope="module")
def reference_model(minilm_path):
    # One intra-op thread: on a shared, oversubscribed CPU this halves the wall time of encoding. Restored
    # when the module is done, so other test files keep their setting.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    model = st.SentenceTransformer(str(minilm_path), device="cpu")
    model.max_seq_length = 64
    yield model
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def cached(reference_model):
    return CachingEncoder(reference_model)


@pytest.fixture
def encoder(cached):
    cached.requests.clear()
    return cached


def run_both(reference_evaluator, our_evaluator, model, our_model=None):
    """Call both evaluators; check keys, primary metric and values; return our results."""
    expected = reference_evaluator(model)
    got = our_evaluator(our_model or model)
    assert list(got) == list(expected)
    assert our_evaluator.primary_metric == reference_evaluator.primary_metric
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=TOLERANCE), key
    return got


def assert_encodes_each_text_once(encoder, evaluator, *text_lists):
    """Run ``evaluator`` alone and check that it asked for every text of ``text_lists`` exactly once."""
    encoder.requests.clear()
    evaluator(encoder)
    distinct = {text for texts in text_lists for text in texts}
    assert set(encoder.requests) == distinct
    assert max(encoder.requests.values()) == 1


# ------------------------------------------------------------------------------------------------ data slices


@pytest.fixture(scope="session")
def sts():
    return [column[:200] for column in read_sts_csv(DATA_DIR / "stsb" / "stsb-en-test.csv")]


@pytest.fixture(scope="session")
def quora():
    return [column[:300] for column in read_quora_duplicates(DATA_DIR / "quora_duplicates" / "test.tsv")]


@pytest.fixture(scope="session")
def triplets():
    return [column[:200] for column in read_triplet_tsv(DATA_DIR / "snli" / "snli_test_triplets.tsv")]


@pytest.fixture(scope="session")
def scifact():
    """50 test queries, their relevant abstracts and 300 other abstracts (encoding them dominates the run)."""
    corpus, queries, relevant = read_beir(DATA_DIR / "scifact" / "beir", split="test")
    query_ids = list(queries)[:50]
    wanted = {doc for qid in query_ids for doc in relevant[qid]}
    others = [doc for doc in corpus if doc not in wanted][:300]
    keep = wanted | set(others)
    return (
        {qid: queries[qid] for qid in query_ids},
        {doc: text for doc, text in corpus.items() if doc in keep},
        {qid: relevant[qid] for qid in query_ids},
    )


# ------------------------------------------------------------------------------------------------ parity


def test_embedding_similarity_matches_reference(encoder, sts):
    got = run_both(
        ref.EmbeddingSimilarityEvaluator(*sts, similarity_fn_names=ALL_FUNCTIONS, name="sts"),
        ours.EmbeddingSimilarityEvaluator(*sts, similarity_fn_names=ALL_FUNCTIONS, name="sts"),
        encoder,
    )
    assert got["sts_spearman_cosine"] > 0.75  # all-MiniLM-L6-v2 is a good STS model
    assert "sts_spearman_max" in got


def test_embedding_similarity_default_function_and_main_similarity(encoder, sts):
    run_both(ref.EmbeddingSimilarityEvaluator(*sts), ours.EmbeddingSimilarityEvaluator(*sts), encoder)
    evaluator = ours.EmbeddingSimilarityEvaluator(*sts, main_similarity="manhattan")
    run_both(ref.EmbeddingSimilarityEvaluator(*sts, main_similarity="manhattan"), evaluator, encoder)
    assert_encodes_each_text_once(encoder, evaluator, sts[0], sts[1])


@pytest.mark.parametrize("precision", ["int8", "binary"])
def test_embedding_similarity_quantized_matches_reference(encoder, sts, precision):
    run_both(
        ref.EmbeddingSimilarityEvaluator(*sts, precision=precision),
        ours.EmbeddingSimilarityEvaluator(*sts, precision=precision),
        encoder,
    )


def test_information_retrieval_matches_reference(encoder, scifact):
    queries, corpus, relevant = scifact
    evaluator = ours.InformationRetrievalEvaluator(queries, corpus, relevant, name="scifact")
    got = run_both(
        ref.InformationRetrievalEvaluator(queries, corpus, relevant, name="scifact"), evaluator, encoder
    )
    assert got["scifact_cosine_ndcg@10"] > 0.5
    assert_encodes_each_text_once(encoder, evaluator, queries.values(), corpus.values())


def test_information_retrieval_several_functions_cutoffs_and_chunks(encoder, scifact):
    queries, corpus, relevant = scifact
    options = {
        "mrr_at_k": [1, 10, 100],
        "ndcg_at_k": [5, 10, 100],
        "precision_recall_at_k": [1, 10, 100],
        "map_at_k": [10, 100],
        "truncate_dim": 128,
        "query_prompt": "query: ",
    }
    functions = {"cosine": st.util.cos_sim, "dot": st.util.dot_score}
    from sentencekit.similarity import cos_sim, dot_score

    reference = ref.InformationRetrievalEvaluator(
        queries, corpus, relevant, score_functions=functions, **options
    )
    mine = ours.InformationRetrievalEvaluator(
        queries, corpus, relevant, score_functions={"cosine": cos_sim, "dot": dot_score}, **options
    )
    got = run_both(reference, mine, encoder)
    chunked = ours.InformationRetrievalEvaluator(
        queries,
        corpus,
        relevant,
        corpus_chunk_size=97,
        score_functions={"cosine": cos_sim, "dot": dot_score},
        **options,
    )(encoder)
    assert chunked == pytest.approx(got, abs=1e-9)


def test_information_retrieval_breaks_ties_by_document_id():
    class Constant:
        def encode(self, texts, **_):
            return torch.ones(len(texts), 3)

    corpus = {f"d{i}": f"doc {i}" for i in range(10)}
    evaluator = ours.InformationRetrievalEvaluator(
        {"q": "query"},
        corpus,
        {"q": {"d0"}},
        accuracy_at_k=[1],
        precision_recall_at_k=[1],
        corpus_chunk_size=3,
    )
    results = evaluator(Constant())
    assert results["cosine_accuracy@1"] == 1.0  # every score ties, "d0" sorts first
    assert results["cosine_mrr@10"] == 1.0


def test_binary_classification_matches_reference(encoder, quora):
    got = run_both(
        ref.BinaryClassificationEvaluator(*quora, similarity_fn_names=ALL_FUNCTIONS, name="quora"),
        ours.BinaryClassificationEvaluator(*quora, similarity_fn_names=ALL_FUNCTIONS, name="quora"),
        encoder,
    )
    assert got["quora_cosine_ap"] > 0.8
    run_both(ref.BinaryClassificationEvaluator(*quora), ours.BinaryClassificationEvaluator(*quora), encoder)


def test_binary_classification_best_threshold_on_toy_scores():
    from sentencekit.evaluation.binary_classification import classification_metrics

    scores = np.array([0.9, 0.8, 0.8, 0.3, 0.1], dtype=np.float32)
    labels = np.array([True, True, False, False, False])
    metrics = classification_metrics(scores, labels, is_distance=False)
    # the tie at 0.8 cannot be split: cutting below it is right for 4 of 5, above it too
    assert metrics["accuracy"] == pytest.approx(0.8)
    assert metrics["f1"] == pytest.approx(0.8)  # precision 2/3, recall 1
    assert metrics["f1_threshold"] == pytest.approx(0.55)
    distances = classification_metrics(-scores, labels, is_distance=True)
    assert distances["f1_threshold"] == pytest.approx(-0.55)


def test_paraphrase_mining_matches_reference(encoder, quora):
    ids = {}
    for text in quora[0] + quora[1]:
        ids.setdefault(text, f"q{len(ids)}")
    sentences = {qid: text for text, qid in ids.items()}
    duplicates = [(ids[a], ids[b]) for a, b, label in zip(*quora, strict=True) if label == 1]
    evaluator = ours.ParaphraseMiningEvaluator(sentences, duplicates, top_k=10, name="quora")
    got = run_both(
        ref.ParaphraseMiningEvaluator(sentences, duplicates, top_k=10, name="quora"), evaluator, encoder
    )
    assert 0.3 < got["quora_average_precision"] <= 1.0
    assert_encodes_each_text_once(encoder, evaluator, sentences.values())
    closure = ours.ParaphraseMiningEvaluator(sentences, duplicates, add_transitive_closure=True)
    assert closure.total_num_duplicates >= len(set(map(frozenset, duplicates)))


def test_paraphrase_mining_pairs_ids_that_share_a_text(encoder):
    sentences = {"1": "How do I learn Python?", "2": "How do I learn Python?", "3": "Where is Paris?"}
    evaluator = ours.ParaphraseMiningEvaluator(sentences, [("2", "1")])
    results = evaluator(encoder)
    assert encoder.requests == Counter({"How do I learn Python?": 1, "Where is Paris?": 1})
    assert results["average_precision"] == 1.0 and results["f1"] == 1.0


def test_paraphrase_mining_counts_a_self_pair_as_a_missed_duplicate(encoder):
    # Quora's test split holds a pair whose two questions are the same text, hence the same id: the
    # reference counts it among the duplicates (a miss, since mining never pairs a sentence with itself)
    sentences = {"1": "How do I learn Python?", "2": "Best way to learn Python?", "3": "Where is Paris?"}
    duplicates = [("1", "2"), ("3", "3")]
    for closure in (False, True):
        got = run_both(
            ref.ParaphraseMiningEvaluator(sentences, duplicates, add_transitive_closure=closure),
            ours.ParaphraseMiningEvaluator(sentences, duplicates, add_transitive_closure=closure),
            encoder,
        )
        assert got["recall"] <= 0.5


def test_triplet_matches_reference(encoder, triplets):
    got = run_both(
        ref.TripletEvaluator(*triplets, similarity_fn_names=ALL_FUNCTIONS, name="snli"),
        ours.TripletEvaluator(*triplets, similarity_fn_names=ALL_FUNCTIONS, name="snli"),
        encoder,
    )
    assert got["snli_max_accuracy"] > 0.7
    run_both(
        ref.TripletEvaluator(*triplets, main_similarity_function="dot", margin=0.05),
        ours.TripletEvaluator(*triplets, main_similarity_function="dot", margin=0.05),
        encoder,
    )


def test_reranking_matches_reference(encoder):
    pairs = read_snli_pairs(DATA_DIR / "snli" / "snli_test_pairs.tsv")
    samples: dict[str, dict] = {}
    for premise, hypothesis, label in zip(*pairs, strict=True):
        sample = samples.setdefault(premise, {"query": premise, "positive": [], "negative": []})
        sample["positive" if label == 0 else "negative"].append(hypothesis)
    data = [sample for sample in samples.values() if sample["positive"] and sample["negative"]][:80]
    evaluator = ours.RerankingEvaluator(data, at_k=3, name="snli")
    run_both(ref.RerankingEvaluator(data, at_k=3, name="snli"), evaluator, encoder)
    queries = [sample["query"] for sample in data]
    documents = [doc for sample in data for doc in sample["positive"] + sample["negative"]]
    assert_encodes_each_text_once(encoder, evaluator, queries, documents)


def test_mse_and_translation_match_reference(encoder):
    english = read_sts_csv(DATA_DIR / "stsb" / "stsb-en-test.csv").sentences1[:120]
    german = read_sts_csv(DATA_DIR / "stsb" / "stsb-de-test.csv").sentences1[:120]
    got = run_both(
        ref.MSEEvaluator(english, german, teacher_model=encoder, name="en-de"),
        ours.MSEEvaluator(english, german, teacher_model=encoder, name="en-de"),
        encoder,
    )
    assert got["en-de_negative_mse"] < 0  # an English-only model maps German elsewhere
    run_both(ref.TranslationEvaluator(english, german), ours.TranslationEvaluator(english, german), encoder)


def test_mse_from_dataframe_matches_reference(encoder, tmp_path):
    languages = ("en", "de", "es", "fr")
    columns = {
        lang: read_sts_csv(DATA_DIR / "stsb" / f"stsb-{lang}-test.csv").sentences1[:60] for lang in languages
    }
    rows = [dict(zip(languages, texts, strict=True)) for texts in zip(*columns.values(), strict=True)]
    rows[3]["de"] = "  "  # a blank translation leaves that row out of en-de only
    combinations = [("en", "de"), ("en", "es"), ("en", "fr")]
    reference = ref.MSEEvaluatorFromDataFrame(rows, encoder, combinations, name="stsb")
    evaluator = ours.MSEEvaluatorFromDataFrame(rows, encoder, combinations, name="stsb")
    assert [len(evaluator.data[c][0]) for c in combinations] == [59, 60, 60]
    got = run_both(reference, evaluator, encoder)
    assert got["stsb_negative_mse"] < 0
    reference(encoder, output_path=str(tmp_path / "ref"))
    evaluator(encoder, output_path=str(tmp_path / "ours"))
    expected = (tmp_path / "ref" / reference.csv_file).read_text().splitlines()
    written = (tmp_path / "ours" / evaluator.csv_file).read_text().splitlines()
    assert (
        evaluator.csv_file == reference.csv_file
        and written[0] == expected[0] == "epoch,steps,en-de,en-es,en-fr"
    )
    assert [float(v) for v in written[1].split(",")] == pytest.approx(
        [float(v) for v in expected[1].split(",")]
    )
    with pytest.raises(ValueError, match=r"Row 0 has no sentence for \['it'\]"):
        ours.MSEEvaluatorFromDataFrame(rows, encoder, [("en", "it")])


def test_label_accuracy_matches_reference(reference_model):
    from sentence_transformers import InputExample
    from sentence_transformers.sentence_transformer.losses import SoftmaxLoss
    from torch.utils.data import DataLoader

    pairs = read_snli_pairs(DATA_DIR / "snli" / "snli_test_pairs.tsv")
    examples = [InputExample(texts=[a, b], label=y) for a, b, y in zip(*[c[:64] for c in pairs], strict=True)]
    torch.manual_seed(0)
    head = SoftmaxLoss(reference_model, embedding_dimension=384, num_labels=3)
    with torch.no_grad():  # a "trained" head: nudge it towards entailment = high cosine
        head.classifier.weight.normal_(0, 0.2)
    run_both(
        ref.LabelAccuracyEvaluator(DataLoader(examples, batch_size=16), softmax_model=head, name="nli"),
        ours.LabelAccuracyEvaluator(DataLoader(examples, batch_size=16), softmax_model=head, name="nli"),
        reference_model,
    )


def test_sentencekit_model_gives_the_reference_numbers(
    encoder, reference_model, sts, triplets, scifact, minilm_path
):
    """The whole stack: our evaluators on sentencekit's SentenceTransformer, against the reference's."""
    from sentencekit import SentenceTransformer

    model = SentenceTransformer(str(minilm_path), device="cpu")
    model.max_seq_length = reference_model.max_seq_length
    queries, corpus, relevant = scifact
    few_queries = dict(list(queries.items())[:10])
    few_docs = {doc: corpus[doc] for doc in list(corpus)[:60]}
    few_docs |= {doc: corpus[doc] for qid in few_queries for doc in relevant[qid]}
    for make in [
        lambda module: module.EmbeddingSimilarityEvaluator(*[column[:100] for column in sts]),
        lambda module: module.TripletEvaluator(*[column[:40] for column in triplets]),
        lambda module: module.InformationRetrievalEvaluator(
            few_queries, few_docs, relevant, query_prompt="q: "
        ),
    ]:
        expected = make(ref)(encoder)
        got = make(ours)(model)
        assert got == pytest.approx(expected, abs=TOLERANCE)


def test_sequential_merges_results(encoder, sts, triplets):
    evaluators = [
        ours.EmbeddingSimilarityEvaluator(*sts, name="sts"),
        ours.TripletEvaluator(*triplets, name="nli"),
    ]
    results = ours.SequentialEvaluator(evaluators, main_score_function=lambda scores: sum(scores) / 2)(
        encoder
    )
    assert set(results) == {
        "sts_spearman_cosine",
        "sts_pearson_cosine",
        "nli_cosine_accuracy",
        "sequential_score",
    }
    assert results["sequential_score"] == pytest.approx(
        (results["sts_spearman_cosine"] + results["nli_cosine_accuracy"]) / 2
    )


# ------------------------------------------------------------------------------------------------ behaviour


def test_each_evaluator_encodes_each_distinct_text_once(encoder, triplets, quora):
    anchors, positives, negatives = triplets
    assert len(set(anchors)) < len(anchors)  # SNLI premises recur: the check is not vacuous
    encoder.requests.clear()
    ours.TripletEvaluator(*triplets)(encoder)
    # anchors are encoded as queries, positives and negatives together as documents
    assert encoder.requests == Counter(set(anchors)) + Counter(set(positives) | set(negatives))
    for evaluator, texts in [
        (ours.BinaryClassificationEvaluator(*quora), quora[0] + quora[1]),
        (ours.EmbeddingSimilarityEvaluator(quora[0], quora[0][::-1], list(range(300))), quora[0]),
        (ours.TranslationEvaluator(quora[0], quora[1]), quora[0] + quora[1]),
    ]:
        assert_encodes_each_text_once(encoder, evaluator, texts)


def test_csv_matches_reference_layout(encoder, quora, tmp_path):
    for name, factory in [
        (
            "binary",
            lambda module: module.BinaryClassificationEvaluator(
                *quora, similarity_fn_names=["cosine", "dot"]
            ),
        ),
        ("sts", lambda module: module.EmbeddingSimilarityEvaluator(quora[0], quora[1], quora[2], name="q")),
        ("triplet", lambda module: module.TripletEvaluator(quora[0], quora[1], quora[1][::-1])),
    ]:
        for module, folder in [(ref, tmp_path / name / "ref"), (ours, tmp_path / name / "ours")]:
            evaluator = factory(module)
            evaluator(encoder, output_path=str(folder), epoch=1, steps=10)
            evaluator(encoder, output_path=str(folder), epoch=2, steps=-1)
        [expected_file] = (tmp_path / name / "ref").iterdir()
        got_file = tmp_path / name / "ours" / expected_file.name
        expected_rows = list(csv.reader(expected_file.open()))
        got_rows = list(csv.reader(got_file.open()))
        assert got_rows[0] == expected_rows[0] and len(got_rows) == 3
        for got_row, expected_row in zip(got_rows[1:], expected_rows[1:], strict=True):
            assert [float(v) for v in got_row] == pytest.approx(
                [float(v) for v in expected_row], abs=TOLERANCE
            )


def test_prefixing_and_validation():
    evaluator = ours.EmbeddingSimilarityEvaluator(["a"], ["b"], [1.0], name="dev")
    evaluator.primary_metric = "spearman_cosine"
    assert evaluator.prefix_name_to_metrics({"spearman_cosine": np.float32(0.5)}, "dev") == {
        "dev_spearman_cosine": 0.5
    }
    assert evaluator.primary_metric == "dev_spearman_cosine"
    assert evaluator.description == "Semantic Similarity"
    assert ours.TripletEvaluator(["a"], ["b"], ["c"]).description == "Triplet"
    with pytest.raises(ValueError, match="same length"):
        ours.BinaryClassificationEvaluator(["a"], ["b", "c"], [1])
    with pytest.raises(ValueError, match="0 or 1"):
        ours.BinaryClassificationEvaluator(["a"], ["b"], [2])
    with pytest.raises(ValueError, match="unknown similarity"):
        ours.TripletEvaluator(["a"], ["b"], ["c"], margin={"cosin": 0.1})
    with pytest.raises(ValueError, match="same ids and id type"):
        ours.InformationRetrievalEvaluator({1: "query"}, {"d": "doc"}, {"1": {"d"}})
    with pytest.raises(ValueError, match="one positive and one negative"):
        ours.RerankingEvaluator([{"query": "q", "positive": "p", "negative": []}])
    with pytest.raises(ValueError, match="at least one triplet"):
        ours.TripletEvaluator([], [], [])
    with pytest.raises(ValueError, match="not a valid SimilarityFunction"):
        ours.EmbeddingSimilarityEvaluator(["a"], ["b"], [1.0], similarity_fn_names=["cos"])


def test_public_names():
    import sentence_transformers.cross_encoder.evaluation as ref_cross_encoder

    import sentencekit.evaluation as module

    assert module.__all__ == sorted(module.__all__)
    bi_encoder = set(ref.__all__) - {"NanoBEIREvaluator"}
    # the current cross-encoder evaluators; not the deprecated CE* aliases nor the NanoBEIR download
    cross_encoder = {name for name in ref_cross_encoder.__all__ if name.startswith("CrossEncoder")}
    assert set(module.__all__) == bi_encoder | cross_encoder - {"CrossEncoderNanoBEIREvaluator"}
    assert module.SimilarityFunction("dot") is module.SimilarityFunction.DOT_PRODUCT


# ------------------------------------------------------------------------------------------------ CLI


@pytest.fixture
def cli(monkeypatch, encoder, capsys):
    from sentencekit.cli import eval as eval_command
    from sentencekit.cli.main import main

    monkeypatch.setattr(eval_command, "load_model", lambda name, device: encoder)

    def run(*argv):
        code = main(["eval", *map(str, argv)])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_cli_sts_prints_a_table_and_writes_json(cli, encoder, sts, tmp_path):
    path = DATA_DIR / "stsb" / "stsb-en-test.csv"
    code, out, _ = cli("sts", path, "--model", "m", "--limit", 200, "--output", tmp_path / "r.json")
    assert code == 0
    assert "* spearman_cosine" in out
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["primary_metric"] == "spearman_cosine" and report["pairs"] == 200
    assert report["metrics"] == pytest.approx(ours.EmbeddingSimilarityEvaluator(*sts)(encoder))


def test_cli_retrieval_pairs_triplets_and_mining(cli, tmp_path):
    beir = tmp_path / "beir"
    (beir / "qrels").mkdir(parents=True)
    docs = {"d1": "A man is playing a guitar.", "d2": "A dog runs in the park.", "d3": "Stocks fell sharply."}
    (beir / "corpus.jsonl").write_text("\n".join(json.dumps({"_id": k, "text": v}) for k, v in docs.items()))
    (beir / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "Someone plays music."}))
    (beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    code, out, _ = cli("retrieval", beir, "--model", "m", "--name", "toy")
    assert code == 0 and "* toy_cosine_ndcg@10" in out and "toy_cosine_recall@100" in out

    quora = DATA_DIR / "quora_duplicates" / "test.tsv"
    code, out, _ = cli(
        "pairs", quora, "--model", "m", "--limit", 300, "--similarity", "cosine", "--similarity", "dot"
    )
    assert code == 0 and "* max_ap" in out
    code, out, _ = cli("paraphrase-mining", quora, "--model", "m", "--limit", 300, "--top-k", 10)
    assert code == 0 and "* average_precision" in out
    triplets = DATA_DIR / "snli" / "snli_test_triplets.tsv"
    code, out, _ = cli("triplets", triplets, "--model", "m", "--limit", 200)
    assert code == 0 and "* cosine_accuracy" in out


def test_cli_reports_bad_input(cli, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,1\nc,d,high\n")
    code, _, err = cli("sts", bad, "--model", "m")
    assert code == 2 and "score 'high' is not a number" in err
    code, _, err = cli("sts", tmp_path / "missing.csv", "--model", "m")
    assert code == 2 and "not found" in err
    with pytest.raises(SystemExit):
        cli("sts", bad, "--model", "m", "--limit", 0)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: ours.EmbeddingSimilarityEvaluator(["a"], ["b", "c"], [1.0]),
            r"sentences1, sentences2 and scores",
        ),
        (lambda: ours.BinaryClassificationEvaluator(["a"], ["b"], [1, 0]), r"got 1, 1 and 2"),
        (lambda: ours.TripletEvaluator([], [], []), "TripletEvaluator needs at least one triplet"),
        (lambda: ours.TranslationEvaluator(["a", "b"], ["c"]), r"source_sentences and target_sentences"),
        (
            lambda: ours.MSEEvaluator([], [], teacher_model=object()),
            "MSEEvaluator needs at least one sentence",
        ),
    ],
)
def test_mismatched_or_empty_columns_are_named(build, message):
    with pytest.raises(ValueError, match=message):
        build()
