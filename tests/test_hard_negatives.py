"""mine_hard_negatives: parity with the reference on real SciFact pairs and all-MiniLM-L6-v2, and its rules.

The reference and sentencekit are given the *same* model object, whose ``encode_query`` / ``encode_document``
are memoized (each text set is embedded once per module), so the comparisons test the mining logic, not the
encoder. Negatives are compared per (anchor, positive) as sets: their order is the score order, which is
checked separately, so only the order of exactly tied scores is left free.
"""

from __future__ import annotations

import csv
import json
import logging
import random
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from conftest import DATA_DIR
from sentencekit.errors import InvalidInputError, MissingDependencyError
from sentencekit.hard_negatives import mine_hard_negatives

SCIFACT = DATA_DIR / "scifact" / "beir"
N_QUERIES, N_OTHER_DOCS = 40, 300

datasets = pytest.importorskip("datasets")
st = pytest.importorskip("sentence_transformers")
pytestmark = [
    pytest.mark.skipif(not SCIFACT.is_dir(), reason=f"{SCIFACT} is missing"),
]


class MemoizedModel:
    """A model whose encode_query/encode_document remember every text's embedding; the rest is delegated."""

    def __init__(self, model: Any) -> None:
        self._model = model
        self._cache: dict[tuple, np.ndarray] = {}
        self.encoded = 0  # texts actually embedded

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def _encode(self, role: str, texts: list[str], **kwargs: Any) -> Any:
        prompt, prompt_name = kwargs.get("prompt"), kwargs.get("prompt_name")
        keys = [(role, prompt, prompt_name, text) for text in texts]
        missing = list(dict.fromkeys(key for key in keys if key not in self._cache))
        if missing:
            self.encoded += len(missing)
            encode = getattr(self._model, f"encode_{role}")
            texts_to_encode = [key[-1] for key in missing]
            new = encode(texts_to_encode, prompt=prompt, prompt_name=prompt_name, show_progress_bar=False)
            self._cache.update(zip(missing, new, strict=True))
        embeddings = np.stack([self._cache[key] for key in keys])
        if kwargs.get("normalize_embeddings"):
            embeddings = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
        return torch.from_numpy(embeddings) if kwargs.get("convert_to_tensor") else embeddings

    def encode_query(self, texts: list[str], **kwargs: Any) -> Any:
        return self._encode("query", texts, **kwargs)

    def encode_document(self, texts: list[str], **kwargs: Any) -> Any:
        return self._encode("document", texts, **kwargs)


@pytest.fixture(scope="module")
def scifact() -> tuple[list[str], list[str], list[str]]:
    """Anchors and positives of the first 40 SciFact train queries, plus 300 other abstracts as corpus.

    Some queries have two positive abstracts; the first pair is repeated once, as real data sets do.
    """
    with open(SCIFACT / "corpus.jsonl", encoding="utf-8") as f:
        docs = {d["_id"]: f"{d['title']} {d['text']}".strip() for d in map(json.loads, f)}
    with open(SCIFACT / "queries.jsonl", encoding="utf-8") as f:
        queries = {q["_id"]: q["text"] for q in map(json.loads, f)}
    with open(SCIFACT / "qrels" / "train.tsv", encoding="utf-8", newline="") as f:
        qrels = [row for row in csv.reader(f, delimiter="\t")][1:]
    chosen = list(dict.fromkeys(qid for qid, _, _ in qrels))[:N_QUERIES]
    pairs = [(queries[qid], docs[did]) for qid, did, score in qrels if qid in chosen and int(score) > 0]
    pairs.append(pairs[0])
    positives = {p for _, p in pairs}
    corpus = [text for text in docs.values() if text not in positives][:N_OTHER_DOCS]
    return [a for a, _ in pairs], [p for _, p in pairs], corpus


@pytest.fixture(scope="module")
def model(minilm_path: Path) -> MemoizedModel:
    reference = st.SentenceTransformer(str(minilm_path), device="cpu")
    reference.max_seq_length = 64  # abstracts are long; their first 64 tokens keep the module fast
    return MemoizedModel(reference)


@pytest.fixture(scope="module")
def pairs_dataset(scifact):
    anchors, positives, _ = scifact
    return datasets.Dataset.from_dict({"query": anchors, "answer": positives})


def _first_queries(dataset, n: int):
    """The rows of the first ``n`` distinct queries: a smaller slice for the slower comparisons."""
    keep = set(list(dict.fromkeys(dataset["query"]))[:n])
    return dataset.filter(lambda row: row["query"] in keep)


def _positives_of(anchors: list[str], positives: list[str]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for a, p in zip(anchors, positives, strict=True):
        out[a].add(p)
    return out


def _canonical(columns: dict[str, list], output_format: str) -> list[tuple]:
    """The rows without their scores, with each row's negatives as a sorted tuple, in a fixed order."""
    names = [c for c in columns if c not in ("scores", "score")]
    rows = []
    for values in zip(*(columns[c] for c in names), strict=True):
        if output_format == "n-tuple":
            values = (*values[:2], tuple(sorted(values[2:])))
        elif output_format == "labeled-list":
            values = (values[0], values[1][0], tuple(sorted(values[1][1:])), *map(tuple, values[2:]))
        rows.append(values)
    return sorted(rows)


def _flat(column: list) -> list[float]:
    return sorted(x for value in column for x in (value if isinstance(value, list) else [value]))


def _assert_same_output(ours: dict[str, list], ref: dict[str, list], output_format: str) -> None:
    assert list(ours) == list(ref)  # the same columns in the same order
    assert _canonical(ours, output_format) == _canonical(ref, output_format)
    for name in ("scores", "score"):
        if name in ref:
            assert _flat(ours[name]) == pytest.approx(_flat(ref[name]), abs=1e-5)


PARITY_CASES = {
    "defaults": {},
    "absolute-margin": {"absolute_margin": 0.0, "num_negatives": 5},
    "relative-margin-n-tuple-scores": {
        "relative_margin": 0.05,
        "num_negatives": 4,
        "output_format": "n-tuple",
        "output_scores": True,
    },
    "range-labeled-pair": {
        "range_min": 5,
        "range_max": 20,
        "num_negatives": 4,
        "output_format": "labeled-pair",
    },
    "score-window-labeled-list-scores": {
        "max_score": 0.6,
        "min_score": 0.25,
        "output_format": "labeled-list",
        "output_scores": True,
    },
    "tight-window-n-tuple": {"range_min": 3, "range_max": 8, "num_negatives": 5, "output_format": "n-tuple"},
    "labeled-list": {"output_format": "labeled-list", "num_negatives": 2},
    "labeled-pair-scores": {"output_format": "labeled-pair", "output_scores": True, "absolute_margin": 0.05},
    "triplet-scores-filters": {"output_scores": True, "relative_margin": 0.1, "max_score": 0.7},
    "include-positives": {"include_positives": True, "num_negatives": 4},
    "positives-only-corpus": {"corpus": None, "num_negatives": 2, "max_score": 0.65},
}


@pytest.mark.parametrize("case", list(PARITY_CASES))
def test_matches_reference(case, model, scifact, pairs_dataset):
    kwargs = {"corpus": scifact[2], **PARITY_CASES[case]}
    output_format = "n-tuple" if kwargs.get("include_positives") else kwargs.get("output_format", "triplet")
    ref = st.util.mine_hard_negatives(pairs_dataset, model, verbose=False, **kwargs)
    ours = mine_hard_negatives(pairs_dataset, model, verbose=False, **kwargs)
    assert isinstance(ours, datasets.Dataset)
    assert len(ours) > 0
    _assert_same_output(ours.to_dict(), ref.to_dict(), output_format)


def test_random_sampling_matches_reference_under_the_same_seed(model, scifact, pairs_dataset):
    kwargs = {"corpus": scifact[2], "sampling_strategy": "random", "range_max": 15, "output_scores": True}
    random.seed(7)
    ref = st.util.mine_hard_negatives(pairs_dataset, model, verbose=False, **kwargs)
    random.seed(7)
    ours = mine_hard_negatives(pairs_dataset, model, verbose=False, **kwargs)
    _assert_same_output(ours.to_dict(), ref.to_dict(), "triplet")
    # and the draw really is random: not simply the top three
    top = mine_hard_negatives(pairs_dataset, model, verbose=False, **{**kwargs, "sampling_strategy": "top"})
    assert _canonical(ours.to_dict(), "triplet") != _canonical(top.to_dict(), "triplet")


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"absolute_margin": 0.02, "num_negatives": 5, "output_scores": True},
        {"relative_margin": 0.05, "sampling_strategy": "random", "output_scores": True},
        {"range_min": 2, "range_max": 12, "num_negatives": 6},
    ],
)
def test_negatives_are_never_positives_and_never_too_many(kwargs, model, scifact):
    anchors, positives, corpus = scifact
    num_negatives = kwargs.get("num_negatives", 3)
    out = mine_hard_negatives({"q": anchors, "p": positives}, model, corpus=corpus, verbose=False, **kwargs)
    assert isinstance(out, dict)
    positives_of = _positives_of(anchors, positives)
    per_pair: dict[tuple[str, str], list[str]] = defaultdict(list)
    for i, (anchor, positive, negative) in enumerate(zip(out["q"], out["p"], out["negative"], strict=True)):
        assert negative not in positives_of[anchor]
        per_pair[anchor, positive].append(negative)
        if "scores" in out:
            pos_score, neg_score = out["scores"][i]
            if "absolute_margin" in kwargs:  # the margin is measured from the anchor's hardest positive
                assert neg_score + kwargs["absolute_margin"] <= pos_score + 1e-6
    assert all(len(negs) == len(set(negs)) <= num_negatives for negs in per_pair.values())
    # every anchor's positives share one list of negatives
    for anchor in positives_of:
        assert len({tuple(negs) for (a, _), negs in per_pair.items() if a == anchor}) <= 1
    if "scores" in out:  # best first within each (anchor, positive)
        for anchor, positive in per_pair:
            scores = [
                s[1]
                for a, p, s in zip(out["q"], out["p"], out["scores"], strict=True)
                if (a, p) == (anchor, positive)
            ]
            assert scores == sorted(scores, reverse=True)


def test_plain_inputs_give_the_same_rows_as_a_dataset(model, scifact, pairs_dataset):
    anchors, positives, corpus = scifact
    from_dataset = mine_hard_negatives(pairs_dataset, model, corpus=corpus, verbose=False).to_dict()
    from_dict = mine_hard_negatives(
        {"query": anchors, "answer": positives}, model, corpus=corpus, verbose=False
    )
    assert from_dict == from_dataset
    from_list = mine_hard_negatives(
        list(zip(anchors, positives, strict=True)), model, corpus=corpus, verbose=False
    )
    assert list(from_list) == ["anchor", "positive", "negative"]
    assert list(from_list.values()) == list(from_dataset.values())
    # named columns may come in any order; the others are ignored
    shuffled = {"id": list(range(len(anchors))), "answer": positives, "query": anchors}
    named = mine_hard_negatives(
        shuffled,
        model,
        anchor_column_name="query",
        positive_column_name="answer",
        corpus=corpus,
        verbose=False,
    )
    assert named == from_dataset


class OverlapScorer:
    """A stand-in cross-encoder: the share of the query's words found in the text."""

    def __init__(self) -> None:
        self.calls = 0

    def predict(self, pairs, batch_size=32):
        self.calls += 1
        scores = []
        for query, text in pairs:
            words = set(query.lower().split())
            scores.append(len(words & set(text.lower().split())) / len(words))
        return np.array(scores)


def test_cross_encoder_scores_drive_the_filters(model, scifact):
    anchors, positives, corpus = scifact
    scorer = OverlapScorer()
    out = mine_hard_negatives(
        {"q": anchors, "p": positives}, model, corpus=corpus, cross_encoder=scorer, absolute_margin=0.1,
        output_format="labeled-pair", output_scores=True, verbose=False,
    )  # fmt: skip
    assert scorer.calls == 1  # every pair in one call, so the cross-encoder fills its batches
    hardest: dict[str, float] = {}
    for anchor, text, score in zip(out["q"], out["p"], out["score"], strict=True):
        assert score == pytest.approx(OverlapScorer().predict([(anchor, text)])[0], abs=1e-6)
        if text in _positives_of(anchors, positives)[anchor]:
            hardest[anchor] = min(hardest.get(anchor, 1.0), score)
    negatives = [
        (a, s) for a, t, s in zip(out["q"], out["p"], out["score"], strict=True) if t not in positives
    ]
    assert negatives and all(s + 0.1 <= hardest[a] + 1e-6 for a, s in negatives)
    # without a filter the cross-encoder is not used, as in the reference
    plain = mine_hard_negatives(
        {"q": anchors, "p": positives}, model, corpus=corpus, cross_encoder=scorer, verbose=False
    )
    assert scorer.calls == 1
    assert plain == mine_hard_negatives({"q": anchors, "p": positives}, model, corpus=corpus, verbose=False)


def _negatives_by_pair(out: dict[str, list]) -> dict[tuple[str, str], dict[str, float]]:
    groups: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    for anchor, positive, negative, scores in zip(*out.values(), strict=True):
        groups[anchor, positive][negative] = scores[1]
    return groups


def _assert_same_triplets_up_to_ties(ours: dict[str, list], ref: dict[str, list], atol: float) -> None:
    """The same negatives per (anchor, positive), except that texts tied at the cut-off may trade places."""
    assert list(ours) == list(ref)
    by_ours, by_ref = _negatives_by_pair(ours), _negatives_by_pair(ref)
    assert by_ours.keys() == by_ref.keys()
    for pair, ref_negatives in by_ref.items():
        ours_negatives = by_ours[pair]
        assert sorted(ours_negatives.values()) == pytest.approx(sorted(ref_negatives.values()), abs=atol)
        cut = min(ref_negatives.values())
        for text in ours_negatives.keys() ^ ref_negatives.keys():
            assert {**ours_negatives, **ref_negatives}[text] == pytest.approx(cut, abs=atol)


def test_reference_cross_encoder_matches_reference(model, scifact, pairs_dataset, tiny_hf_folder):
    torch.manual_seed(0)
    cross_encoder = st.CrossEncoder(
        str(tiny_hf_folder), num_labels=1, device="cpu", activation_fn=torch.nn.Identity()
    )
    with torch.no_grad():  # a random head scores everything alike: spread its logits out
        cross_encoder.model.classifier.weight.mul_(1000)
    kwargs = {"corpus": scifact[2][:50], "cross_encoder": cross_encoder, "absolute_margin": 0.0}
    pairs = _first_queries(pairs_dataset, 6)
    ref = st.util.mine_hard_negatives(pairs, model, verbose=False, output_scores=True, **kwargs).to_dict()
    ours = mine_hard_negatives(pairs, model, verbose=False, output_scores=True, **kwargs).to_dict()
    assert len(ours["query"]) > 0
    # the tiny model reads only the first 64 (mostly one-character) tokens, so some texts score exactly
    # alike; and the reference scores one anchor's pairs per call, we all pairs in one: padding differs
    _assert_same_triplets_up_to_ties(ours, ref, atol=1e-4)


def test_sentencekit_model_finds_the_reference_negatives(model, scifact, pairs_dataset, minilm_path):
    from sentencekit import SentenceTransformer

    ours_model = SentenceTransformer(str(minilm_path), device="cpu")
    ours_model.max_seq_length = 64
    kwargs = {"corpus": scifact[2][:100], "output_scores": True, "verbose": False}
    pairs = _first_queries(pairs_dataset, 20)
    ref = st.util.mine_hard_negatives(pairs, model, **kwargs).to_dict()
    ours = mine_hard_negatives(pairs, ours_model, **kwargs).to_dict()
    # the two encoders agree to ~1e-6, so negatives may only trade places where scores (nearly) tie
    _assert_same_triplets_up_to_ties(ours, ref, atol=1e-4)


def test_cache_folder_skips_encoding_the_second_time(model, scifact, tmp_path):
    anchors, positives, corpus = scifact
    counting = MemoizedModel(model)
    first = mine_hard_negatives(
        {"q": anchors, "p": positives}, counting, corpus=corpus, cache_folder=str(tmp_path), verbose=False
    )
    encoded = counting.encoded
    assert encoded > 0 and len(list(tmp_path.glob("*.npy"))) == 2
    second = mine_hard_negatives(
        {"q": anchors, "p": positives}, counting, corpus=corpus, cache_folder=str(tmp_path), verbose=False
    )
    assert counting.encoded == encoded and second == first
    # another prompt is another cache entry
    mine_hard_negatives(
        {"q": anchors, "p": positives},
        counting,
        corpus=corpus,
        cache_folder=str(tmp_path),
        query_prompt="query: ",
        verbose=False,
    )
    assert counting.encoded > encoded


def test_deprecated_arguments_still_work(model, scifact):
    anchors, positives, corpus = scifact
    pairs = {"q": anchors, "p": positives}
    new = mine_hard_negatives(
        pairs, model, corpus=corpus, absolute_margin=0.05, output_format="n-tuple", verbose=False
    )
    old = mine_hard_negatives(pairs, model, corpus=corpus, margin=0.05, as_triplets=False, verbose=False)
    assert old == new


def test_use_faiss_matches_reference(model, scifact, pairs_dataset):
    pytest.importorskip("faiss")
    kwargs = {"corpus": scifact[2], "use_faiss": True, "relative_margin": 0.05, "verbose": False}
    ref = st.util.mine_hard_negatives(pairs_dataset, model, **kwargs)
    ours = mine_hard_negatives(pairs_dataset, model, **kwargs)
    _assert_same_output(ours.to_dict(), ref.to_dict(), "triplet")


def test_use_faiss_without_faiss_names_the_install(model, scifact, monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)  # makes `import faiss` fail
    anchors, positives, _ = scifact
    with pytest.raises(MissingDependencyError, match=r"faiss.*pip install"):
        mine_hard_negatives({"q": anchors, "p": positives}, model, use_faiss=True, verbose=False)


def test_verbose_logs_a_summary_and_anchors_left_short(model, scifact, caplog):
    anchors, positives, corpus = scifact
    with caplog.at_level(logging.INFO, logger="sentencekit.hard_negatives"):
        mine_hard_negatives(
            {"q": anchors, "p": positives}, model, corpus=corpus, max_score=0.3, range_max=6, verbose=True
        )
    text = caplog.text
    assert "Mean positive score" in text and "because of max_score=0.3" in text
    assert "anchors found fewer than 3 negatives" in text


# -------------------------------------------------------------------------------------- bad input, no model


GOOD = {"anchor": ["a", "b", "c"], "positive": ["x", "y", "z"]}


@pytest.mark.parametrize(
    ("data", "kwargs", "error", "match"),
    [
        (
            GOOD,
            {"anchor_column_name": "question"},
            ValueError,
            r"'question' is not a column.*\['anchor', 'positive'\]",
        ),
        (GOOD, {"positive_column_name": "answer"}, ValueError, "positive_column_name"),
        ({"anchor": ["a"]}, {}, ValueError, "needs two"),
        ({"anchor": [], "positive": []}, {}, ValueError, "no rows"),
        ([], {}, ValueError, "no rows"),
        (GOOD, {"num_negatives": 0}, ValueError, "num_negatives must be a positive integer"),
        (GOOD, {"range_min": 10, "range_max": 5}, ValueError, "range_min < range_max"),
        (GOOD, {"range_min": 0, "range_max": 2, "num_negatives": 3}, ValueError, "raise range_max"),
        (GOOD, {"range_min": -1}, ValueError, "0 <= range_min"),
        (
            GOOD,
            {"output_format": "quadruplet"},
            ValueError,
            "output_format='quadruplet' is unknown.*labeled-list",
        ),
        (GOOD, {"sampling_strategy": "best"}, ValueError, "sampling_strategy"),
        (GOOD, {"batch_size": 0}, ValueError, "batch_size"),
        ({"anchor": ["a", None], "positive": ["x", "y"]}, {}, InvalidInputError, r"anchor\[1\] is NoneType"),
        (GOOD, {"corpus": ["fine", 3]}, InvalidInputError, r"corpus\[1\]"),
        ([("a", "x", "extra")], {}, InvalidInputError, "pairs"),
        ("a string", {}, InvalidInputError, "datasets.Dataset"),
    ],
)
def test_bad_input_is_rejected_before_any_encoding(data, kwargs, error, match):
    with pytest.raises(error, match=match):
        mine_hard_negatives(data, model=None, verbose=False, **kwargs)


def test_import_does_not_load_datasets():
    code = "import sys, sentencekit.hard_negatives, sentencekit.util; print('datasets' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
