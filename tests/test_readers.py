"""Readers: the real benchmark files (row counts from their SOURCE.md) and small files for each failure."""

from __future__ import annotations

import json

import pytest

from conftest import DATA_DIR
from sentencekit import readers
from sentencekit.readers import (
    SNLI_LABELS,
    read_beir,
    read_labeled_texts_csv,
    read_mrpc,
    read_pair_tsv,
    read_quora_duplicates,
    read_snli_pairs,
    read_sts_csv,
    read_triplet_tsv,
)

needs_data = pytest.mark.skipif(not DATA_DIR.is_dir(), reason=f"benchmark data folder {DATA_DIR} is missing")


def write_beir(folder, qrels="query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\t0\nq2\td2\t2\n"):
    folder.mkdir(parents=True, exist_ok=True)
    docs = [
        {"_id": "d1", "title": "Title one", "text": "Body one."},
        {"_id": "d2", "title": "", "text": "Body two."},
        {"_id": 3, "text": "Numeric id."},
    ]
    (folder / "corpus.jsonl").write_text("\n".join(json.dumps(d) for d in docs) + "\n", encoding="utf-8")
    queries = [
        {"_id": "q1", "text": "first?"},
        {"_id": "q2", "text": "second?"},
        {"_id": "q3", "text": "unjudged"},
    ]
    (folder / "queries.jsonl").write_text("\n".join(json.dumps(q) for q in queries), encoding="utf-8")
    (folder / "qrels").mkdir(exist_ok=True)
    (folder / "qrels" / "test.tsv").write_text(qrels, encoding="utf-8")
    return folder


# ------------------------------------------------------------------------------------------------ BEIR


def test_read_beir_joins_title_and_text_and_keeps_judged_queries(tmp_path):
    corpus, queries, relevant = read_beir(write_beir(tmp_path / "beir"))
    assert corpus == {"d1": "Title one Body one.", "d2": "Body two.", "3": "Numeric id."}
    assert queries == {"q1": "first?", "q2": "second?"}  # q3 has no judgment in this split
    assert relevant == {"q1": {"d1"}, "q2": {"d2"}}  # score 0 is not relevant


def test_read_beir_min_score(tmp_path):
    data = read_beir(write_beir(tmp_path / "beir"), min_score=2)
    assert data.relevant_docs == {"q2": {"d2"}} and list(data.queries) == ["q2"]


def test_read_beir_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_beir(tmp_path / "nowhere")
    folder = write_beir(tmp_path / "beir")
    with pytest.raises(FileNotFoundError, match=r"splits available .*\['test'\]"):
        read_beir(folder, split="dev")
    (folder / "queries.jsonl").unlink()
    with pytest.raises(FileNotFoundError, match=r"queries\.jsonl"):
        read_beir(folder)
    bad = write_beir(tmp_path / "bad", qrels="q9\td1\t1\n")
    with pytest.raises(ValueError, match=r"missing from queries.jsonl: \['q9'\]"):
        read_beir(bad)
    short = write_beir(tmp_path / "short", qrels="q1\td1\n")
    with pytest.raises(ValueError, match=r"test.tsv:1: expected"):
        read_beir(short)
    broken = write_beir(tmp_path / "broken")
    (broken / "corpus.jsonl").write_text('{"_id": "d1", "text": "ok"}\n{not json\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"corpus.jsonl:2: not valid JSON"):
        read_beir(broken)


@needs_data
def test_read_beir_real_collections():
    scifact = read_beir(DATA_DIR / "scifact" / "beir", split="test")
    assert (len(scifact.corpus), len(scifact.queries)) == (5183, 300)
    assert sum(map(len, scifact.relevant_docs.values())) == 339
    train = read_beir(DATA_DIR / "scifact" / "beir", split="train")
    assert (len(train.queries), sum(map(len, train.relevant_docs.values()))) == (809, 919)
    cranfield = read_beir(DATA_DIR / "cranfield" / "beir")
    assert (len(cranfield.corpus), len(cranfield.queries)) == (1400, 225)
    assert sum(map(len, cranfield.relevant_docs.values())) == 1837
    most_relevant = read_beir(DATA_DIR / "cranfield" / "beir", min_score=4)  # graded 1-4; 4 = complete answer
    assert sum(map(len, most_relevant.relevant_docs.values())) == 353


# ------------------------------------------------------------------------------------------------ CSV


def test_read_sts_csv_with_and_without_header(tmp_path):
    body = '"A, quoted sentence.",Another one.,4.5\nShort.,"He said ""hi"".",0\n'
    plain = tmp_path / "plain.csv"
    plain.write_text(body, encoding="utf-8")
    assert read_sts_csv(plain) == (
        ["A, quoted sentence.", "Short."],
        ["Another one.", 'He said "hi".'],
        [4.5, 0.0],
    )
    named = tmp_path / "named.csv"
    named.write_text("score,s2,s1\n3,b,a\n", encoding="utf-8-sig")
    assert read_sts_csv(named, columns=("s1", "s2", "score")) == (["a"], ["b"], [3.0])


def test_read_sts_csv_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_sts_csv(tmp_path / "missing.csv")
    header = tmp_path / "header.csv"
    header.write_text("sentence1,sentence2,label\na,b,1\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no column 'score'"):
        read_sts_csv(header)
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,1\nc,d,high\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.csv:2: score 'high' is not a number"):
        read_sts_csv(bad)
    short = tmp_path / "short.csv"
    short.write_text("a,b,1\nc,d\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"short.csv:2: expected at least 3 columns"):
        read_sts_csv(short, has_header=False)


@needs_data
def test_read_sts_real_files():
    english = read_sts_csv(DATA_DIR / "stsb" / "stsb-en-test.csv")
    assert len(english.scores) == 1379 and min(english.scores) >= 0 and max(english.scores) <= 5
    assert english.sentences1[0] == "A girl is styling her hair."
    german = read_sts_csv(DATA_DIR / "stsb" / "stsb-de-test.csv")
    assert german.scores == english.scores  # the translations keep the order and the gold scores


@needs_data
def test_read_labeled_texts_real_banking77():
    data = read_labeled_texts_csv(DATA_DIR / "banking77" / "test.csv")
    assert len(data.texts) == 3080 and len(set(data.labels)) == 77
    with pytest.raises(ValueError, match="no column 'label'"):
        read_labeled_texts_csv(DATA_DIR / "banking77" / "test.csv", label_column="label")


# ------------------------------------------------------------------------------------------------ TSV


def test_read_pair_tsv_by_index_and_by_name(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text('label\tleft\tright\n1\tSays "hi\tSays hello\n0\ta\tb\n', encoding="utf-8")
    by_name = read_pair_tsv(path, columns=("left", "right", "label"), has_header=True)
    assert by_name == (['Says "hi', "a"], ["Says hello", "b"], [1, 0])  # bare quotes are kept
    assert read_pair_tsv(path, columns=(1, 2, 0), has_header=True) == by_name


def test_read_pair_tsv_errors(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text("text1\ttext2\tlabel\na\tb\tentailment\nc\td\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no column 'sentence2'"):
        read_pair_tsv(path, columns=("text1", "sentence2", "label"), has_header=True)
    with pytest.raises(
        ValueError, match=r"pairs.tsv:2: label 'entailment' is not an integer; pass label_map"
    ):
        read_pair_tsv(path, columns=(0, 1, 2), has_header=True)
    with pytest.raises(ValueError, match=r"pairs.tsv:3: expected at least 3 tab-separated fields"):
        read_pair_tsv(path, columns=(0, 1, 2), has_header=True, label_map=SNLI_LABELS)
    with pytest.raises(ValueError, match="without a header"):
        read_pair_tsv(path, columns=("text1", "text2", "label"), has_header=False)
    with pytest.raises(ValueError, match="3 columns"):
        read_pair_tsv(path, columns=(0, 1), has_header=True)
    path.write_text("premise\thypothesis\tlabel\na\tb\tmaybe\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"label 'maybe' is not one of"):
        read_snli_pairs(path, label_map={"yes": 1})


@needs_data
def test_read_real_pair_files():
    quora = read_quora_duplicates(DATA_DIR / "quora_duplicates" / "test.tsv")
    assert len(quora.labels) == 10000 and sum(quora.labels) == 5000
    mrpc = read_mrpc(DATA_DIR / "mrpc" / "msr_paraphrase_test.txt")
    assert len(mrpc.labels) == 1725 and sum(mrpc.labels) == 1147
    assert any('"' in text for text in mrpc.sentences1)  # why MRPC must not be read as quoted CSV
    snli = read_snli_pairs(DATA_DIR / "snli" / "snli_test_pairs.tsv")
    counts = [snli.labels.count(SNLI_LABELS[name]) for name in ("entailment", "contradiction", "neutral")]
    assert counts == [3368, 3237, 3219]


@needs_data
def test_read_real_triplets():
    triplets = read_triplet_tsv(DATA_DIR / "snli" / "snli_test_triplets.tsv")
    assert len(triplets.anchors) == len(triplets.positives) == len(triplets.negatives) == 3247
    with pytest.raises(ValueError, match="no column 'hard_negative'"):
        read_triplet_tsv(
            DATA_DIR / "snli" / "snli_test_triplets.tsv", columns=("anchor", "positive", "hard_negative")
        )


def test_public_names():
    public = {name for name in vars(readers) if not name.startswith("_")} - {
        "annotations",
        "csv",
        "json",
        "logging",
        "logger",
        "Iterator",
        "Mapping",
        "Sequence",
        "Path",
        "NamedTuple",
    }
    assert set(readers.__all__) == public
    assert readers.__all__ == sorted(readers.__all__, key=lambda name: (not name.isupper(), name))
