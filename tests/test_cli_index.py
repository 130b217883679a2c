"""``sentencekit index build|search|info`` through the real entry point, on the tiny model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sentencekit.corpus_files import read_corpus


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sentencekit.cli.main", *args], capture_output=True, text=True, timeout=120
    )


def test_build_search_info_from_beir_jsonl(tiny_hf_folder: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.jsonl"
    docs = [
        {"_id": "d1", "title": "Dogs", "text": "the dog eats food", "metadata": {}},
        {"_id": "d2", "title": "Cats", "text": "a cat plays guitar", "metadata": {}},
        {"_id": "d3", "title": "Foxes", "text": "the quick brown fox jumps", "metadata": {}},
    ]
    corpus.write_text("".join(json.dumps(d) + "\n" for d in docs))
    out = tmp_path / "ix"
    built = _cli("index", "build", str(corpus), "--model", str(tiny_hf_folder), "--out", str(out))
    assert built.returncode == 0, built.stderr
    assert json.loads(built.stdout)["count"] == 3

    # one process for the search (each loads torch): a filter that leaves one of the three documents
    found = _cli("index", "search", str(out), "dog", "-k", "2", "--json", "--filter", "title=Foxes")
    assert found.returncode == 0, found.stderr
    hits = json.loads(found.stdout)
    assert len(hits) == 1 and hits[0]["id"] == "d3"
    assert hits[0]["metadata"] == {"title": "Foxes", "metadata": {}}

    info = _cli("index", "info", str(out))
    assert json.loads(info.stdout)["backend"] == "exact"

    missing = _cli("index", "info", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "No index" in missing.stderr and "Traceback" not in missing.stderr


def test_read_corpus_txt_and_errors(tmp_path: Path) -> None:
    txt = tmp_path / "c.txt"
    txt.write_text("first\n\nthird\n")
    assert read_corpus(txt) == (["first", "third"], [0, 2], [None, None])
    bad = tmp_path / "c.jsonl"
    bad.write_text('{"body": "x"}\n')
    import pytest

    from sentencekit.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="--text-field"):
        read_corpus(bad)
    texts, ids, _ = read_corpus(bad, text_field="body")
    assert texts == ["x"] and ids == [0]


def test_build_fast_logs_the_auto_path(tiny_hf_folder: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the dog eats food\na cat plays guitar\nthe quick brown fox jumps\n")
    out = tmp_path / "ix"
    args = ("index", "build", str(corpus), "--model", str(tiny_hf_folder), "--out", str(out))
    built = _cli("-v", *args, "--fast")
    assert built.returncode == 0, built.stderr
    assert json.loads(built.stdout)["count"] == 3
    assert "backend='auto'" in built.stderr  # the path auto chose (or why it kept the exact one) is logged
    plain = _cli("-v", *args)
    assert "backend=None" in plain.stderr
