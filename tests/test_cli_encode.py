"""``sentencekit encode | search | similarity | rerank`` through the real entry point, with a tiny model."""

from __future__ import annotations

import csv
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import DATA_DIR
from sentencekit import SentenceTransformer
from sentencekit.cli.main import main

COMMANDS = ("encode", "search", "similarity", "rerank", "serve")
TEXTS = ["a man is eating food", "the cat plays guitar", "red car on the street", "hello world", "a dog"]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "sentencekit.cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


@pytest.fixture(scope="module")
def model(tiny_hf_folder, one_torch_thread):
    return SentenceTransformer(str(tiny_hf_folder), device="cpu")


@pytest.fixture(scope="module")
def stsb_10k(tmp_path_factory) -> tuple[Path, list[str]]:
    """10,000 STSb sentences (both columns of the train split), one per line."""
    source = DATA_DIR / "stsb" / "stsb-en-train.csv"
    if not source.is_file():
        pytest.skip(f"{source} is missing (the shared benchmark data is not checked out beside the project)")
    with source.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    texts = [row[0] for row in rows] + [row[1] for row in rows]
    texts = [" ".join(t.split()) for t in texts][:10_000]
    path = tmp_path_factory.mktemp("stsb") / "stsb10k.txt"
    path.write_text("\n".join(texts) + "\n", encoding="utf-8")
    return path, texts


# ------------------------------------------------------------------------------------- encode


def test_encode_10k_stsb_sentences_equals_in_process_encode(stsb_10k, tiny_hf_folder, model, tmp_path):
    path, texts = stsb_10k
    out = tmp_path / "emb.npy"
    result = run_cli("encode", str(path), "--model", str(tiny_hf_folder), "--output", str(out))
    assert result.returncode == 0, result.stderr
    assert f"Wrote 10000 x 32 float32 embeddings to {out}" in result.stdout
    np.testing.assert_allclose(np.load(out), model.encode(texts, batch_size=64), atol=1e-6, rtol=0)


def test_encode_formats_in_and_out(tmp_path, tiny_hf_folder, model):
    import pyarrow as pa
    import pyarrow.parquet as pq

    expected = model.encode(TEXTS)
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text("".join(json.dumps({"id": i, "body": t}) + "\n" for i, t in enumerate(TEXTS)))
    assert (
        main(
            [
                "-q",
                "encode",
                str(jsonl),
                "--column",
                "body",
                "--model",
                str(tiny_hf_folder),
                "-o",
                str(tmp_path / "a.parquet"),
            ]
        )
        == 0
    )
    table = pq.read_table(tmp_path / "a.parquet")
    assert table.column("text").to_pylist() == TEXTS
    np.testing.assert_allclose(np.array(table.column("embedding").to_pylist()), expected, atol=1e-6)

    with (tmp_path / "in.csv").open("w", newline="") as f:
        csv.writer(f).writerows([["label", "sentence"], *[[i, t] for i, t in enumerate(TEXTS)]])
    assert (
        main(
            [
                "-q",
                "encode",
                str(tmp_path / "in.csv"),
                "--column",
                "sentence",
                "--model",
                str(tiny_hf_folder),
                "-o",
                str(tmp_path / "b.jsonl"),
            ]
        )
        == 0
    )
    rows = [json.loads(line) for line in (tmp_path / "b.jsonl").read_text().splitlines()]
    assert [r["text"] for r in rows] == TEXTS
    np.testing.assert_allclose([r["embedding"] for r in rows], expected, atol=1e-6)

    pq.write_table(pa.table({"text": TEXTS}), tmp_path / "in.parquet")
    assert (
        main(
            [
                "-q",
                "encode",
                str(tmp_path / "in.parquet"),
                "--model",
                str(tiny_hf_folder),
                "--normalize",
                "--precision",
                "int8",
            ]
        )
        == 0
    )
    got = np.load(tmp_path / "in.npy")  # default output: the input's name with .npy
    assert got.dtype == np.int8 and got.shape == expected.shape
    np.testing.assert_array_equal(got, model.encode(TEXTS, normalize_embeddings=True, precision="int8"))

    txt = tmp_path / "in.txt"
    txt.write_text("\n".join(TEXTS) + "\n")
    cache = tmp_path / "cache.sqlite"
    for _ in range(2):  # the second run reads every embedding from the cache
        assert (
            main(
                [
                    "-q",
                    "encode",
                    str(txt),
                    "--model",
                    str(tiny_hf_folder),
                    "--cache",
                    str(cache),
                    "-o",
                    str(tmp_path / "c.npy"),
                ]
            )
            == 0
        )
        np.testing.assert_allclose(np.load(tmp_path / "c.npy"), expected, atol=1e-6)
    assert cache.is_file()


BAD = [
    (["encode", "{tmp}/missing.txt"], "No such file: {tmp}/missing.txt"),
    (
        ["encode", "{tmp}/in.csv", "--column", "body"],
        "has no column 'body' (its header has: 'label', 'sentence')",
    ),
    (["encode", "{tmp}/in.csv", "--no-header", "--column", "body"], "pass the column's number"),
    (["encode", "{tmp}/in.jsonl", "--column", "body"], "in.jsonl:1 has no field 'body' (it has: id, text)"),
    (["encode", "{tmp}/bad.jsonl"], "bad.jsonl:2 is not valid JSON"),
    (["encode", "{tmp}/in.txt", "--column", "x"], "it has no columns; drop --column"),
    (["encode", "{tmp}/in.txt", "-o", "{tmp}/out.bin"], "use one of .npy, .jsonl, .parquet"),
    (["encode", "{tmp}/in.txt", "-o", "{tmp}/no/such/folder/out.npy"], "does not exist"),
    (["encode", "{tmp}/in.doc"], "use one of .txt, .jsonl, .csv, .tsv, .parquet"),
    (["search", "q", "--corpus", "{tmp}/missing.txt"], "No such file"),
    (["similarity", "--files", "{tmp}/in.txt", "{tmp}/three.txt"], "pass --matrix"),
    (["rerank", "q", "{tmp}/in.csv", "--column", "nope", "--model", "x"], "has no column 'nope'"),
]


def test_encode_fast_runs_the_auto_backend(tmp_path, tiny_hf_folder, model, monkeypatch):
    from sentencekit.backends import cpu, probe

    bf16_cpu = cpu.CpuInfo(physical_cores=2, native_bf16=True, int8_dot=False, flags=frozenset({"amx_bf16"}))
    monkeypatch.setattr(probe, "cpu_info", lambda: bf16_cpu)  # auto's choice does not depend on the CI CPU
    path = tmp_path / "in.txt"
    path.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    out = tmp_path / "fast.npy"
    assert main(["-q", "encode", str(path), "--model", str(tiny_hf_folder), "--fast", "-o", str(out)]) == 0
    fast, exact = np.load(out), model.encode(TEXTS)
    cosine = (fast * exact).sum(1) / np.linalg.norm(fast, axis=1) / np.linalg.norm(exact, axis=1)
    assert not np.array_equal(fast, exact)  # really bf16, not the exact default
    assert cosine.min() >= 0.98


@pytest.mark.parametrize(("argv", "message"), BAD, ids=[m for _, m in BAD])
def test_bad_files_are_one_line_and_exit_2(tmp_path, argv, message):
    (tmp_path / "in.csv").write_text("label,sentence\n0,hello\n")
    (tmp_path / "in.jsonl").write_text('{"id": 1, "text": "a"}\n')
    (tmp_path / "bad.jsonl").write_text('{"text": "a"}\n{"text": \n')
    (tmp_path / "in.txt").write_text("a\nb\n")
    (tmp_path / "three.txt").write_text("a\nb\nc\n")
    (tmp_path / "in.doc").write_text("a\n")
    result = run_cli(*(a.format(tmp=tmp_path) for a in argv))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("sentencekit: error: ")
    assert message.format(tmp=tmp_path) in lines[0]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_is_plain_and_imports_no_torch(command):
    code = (
        "import sys\nfrom sentencekit.cli.main import main\n"
        f"try:\n    main([{command!r}, '--help'])\nexcept SystemExit:\n    pass\n"
        "print('HEAVY', [m for m in ('torch', 'fastapi', 'numpy') if m in sys.modules], file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "HEAVY []" in result.stderr
    assert "Examples:\n" in result.stdout and "``" not in result.stdout and "::" not in result.stdout


# ------------------------------------------------------------------------ search, similarity, rerank


def test_search_over_a_corpus_file(tmp_path, tiny_hf_folder, model, capsys):
    corpus = tmp_path / "docs.txt"
    corpus.write_text("\n".join(TEXTS) + "\n")
    assert (
        main(
            [
                "search",
                "a man eats",
                "guitar",
                "--corpus",
                str(corpus),
                "-k",
                "3",
                "--model",
                str(tiny_hf_folder),
                "--json",
            ]
        )
        == 0
    )
    results = json.loads(capsys.readouterr().out)
    scores = model.similarity(model.encode(["a man eats", "guitar"]), model.encode(TEXTS)).numpy()
    for q, result in enumerate(results):
        order = np.argsort(-scores[q], kind="stable")[:3]
        assert [h["id"] for h in result["hits"]] == order.tolist()
        assert [h["text"] for h in result["hits"]] == [TEXTS[i] for i in order]
    assert (
        main(["search", "a man eats", "--corpus", str(corpus), "-k", "2", "--model", str(tiny_hf_folder)])
        == 0
    )
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Query: a man eats" and len(out) == 3 and out[1].lstrip().startswith("1. ")


def test_search_over_a_saved_index(tmp_path, tiny_hf_folder, model, capsys):
    from sentencekit.index import Index

    index = Index(model, model_name=str(tiny_hf_folder))
    index.add(TEXTS, metadata=[{"title": t.upper()} for t in TEXTS])
    index.save(tmp_path / "idx")
    assert main(["search", "a man eats", "--index", str(tmp_path / "idx"), "-k", "2", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)[0]["hits"]
    assert [h["id"] for h in hits] == [h["id"] for h in index.search("a man eats", k=2)[0]]
    assert hits[0]["metadata"]["title"] == TEXTS[hits[0]["id"]].upper()


def test_similarity_of_two_texts_and_two_files(tmp_path, tiny_hf_folder, model, capsys):
    assert main(["similarity", TEXTS[0], TEXTS[1], "--model", str(tiny_hf_folder)]) == 0
    expected = float(model.similarity(model.encode([TEXTS[0]]), model.encode([TEXTS[1]]))[0, 0])
    assert float(capsys.readouterr().out) == pytest.approx(expected, abs=1e-4)
    (tmp_path / "a.txt").write_text("\n".join(TEXTS[:3]))
    (tmp_path / "b.txt").write_text("\n".join(TEXTS[2:]))
    argv = [
        "similarity",
        "--files",
        str(tmp_path / "a.txt"),
        str(tmp_path / "b.txt"),
        "--model",
        str(tiny_hf_folder),
    ]
    assert main([*argv, "--json"]) == 0
    pairwise = json.loads(capsys.readouterr().out)["scores"]
    np.testing.assert_allclose(
        pairwise, model.similarity_pairwise(model.encode(TEXTS[:3]), model.encode(TEXTS[2:])), atol=1e-5
    )
    assert main([*argv, "--matrix", "-o", str(tmp_path / "m.npy")]) == 0
    matrix = model.similarity(model.encode(TEXTS[:3]), model.encode(TEXTS[2:])).numpy()
    np.testing.assert_allclose(np.load(tmp_path / "m.npy"), matrix, atol=1e-5)
    assert len(capsys.readouterr().out.splitlines()) == 3


def test_rerank_a_file(tmp_path, tiny_hf_folder, capsys, caplog, one_torch_thread):
    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification

    from sentencekit import CrossEncoder

    folder = tmp_path / "ce"
    torch.manual_seed(3)
    BertForSequenceClassification.from_pretrained(str(tiny_hf_folder), num_labels=1).save_pretrained(
        str(folder)
    )
    AutoTokenizer.from_pretrained(str(tiny_hf_folder)).save_pretrained(str(folder))
    (tmp_path / "docs.txt").write_text("\n".join(TEXTS))
    assert (
        main(["rerank", "a man", str(tmp_path / "docs.txt"), "--model", str(folder), "-k", "3", "--json"])
        == 0
    )
    got = json.loads(capsys.readouterr().out)
    expected = CrossEncoder(str(folder), device="cpu").rank("a man", TEXTS, top_k=3)
    assert [h["index"] for h in got] == [h["corpus_id"] for h in expected]
    assert [h["text"] for h in got] == [TEXTS[h["corpus_id"]] for h in expected]
    scores = [h["score"] for h in got]

    docs, rerank = str(tmp_path / "docs.txt"), ["rerank", "a man"]
    caplog.set_level(logging.INFO, logger="sentencekit")
    assert main([*rerank, docs, "--model", str(folder), "-k", "3", "--json", "--fast"]) == 0
    assert "backend='auto'" in caplog.text  # auto made its choice (OpenVINO where it can, else exact)
    fast = json.loads(capsys.readouterr().out)
    assert [h["index"] for h in fast] == [h["index"] for h in got]
    np.testing.assert_allclose([h["score"] for h in fast], scores, atol=0.02)


@pytest.mark.slow
def test_encode_10k_stsb_sentences_with_minilm_equals_in_process_encode(
    stsb_10k, minilm_path, tmp_path, one_torch_thread
):
    path, texts = stsb_10k
    out = tmp_path / "emb.parquet"
    result = run_cli("encode", str(path), "--model", str(minilm_path), "--output", str(out))
    assert result.returncode == 0, result.stderr
    import pyarrow.parquet as pq

    table = pq.read_table(out)
    assert table.column("text").to_pylist() == texts
    got = np.array(table.column("embedding").to_pylist(), dtype=np.float32)
    expected = SentenceTransformer(str(minilm_path), device="cpu").encode(texts)
    np.testing.assert_allclose(got, expected, atol=1e-6, rtol=0)
