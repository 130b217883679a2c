"""``sentencekit train CONFIG`` through the real entry point: a happy path and bad configurations."""

from __future__ import annotations

import csv
import json

import pytest

from conftest import _write_tiny_bert
from sentencekit import SentenceTransformer
from sentencekit.cli.main import main
from training_support import toy_pairs


@pytest.fixture(scope="module")
def project(tmp_path_factory, one_torch_thread):
    """A tiny model folder and headerless STS-style CSV files (scores 0-5) beside a config's place."""
    root = tmp_path_factory.mktemp("cli_train")
    _write_tiny_bert(root / "tiny", seed=31)
    for name, rows in (("train.csv", 16), ("dev.csv", 8)):
        data = toy_pairs(rows)
        with open(root / name, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            for a, b, s in zip(data["sentence1"], data["sentence2"], data["score"], strict=True):
                writer.writerow([a, b, 5 * s])
    return root


def _config(project, **overrides) -> dict:
    config = {
        "model": "tiny",
        "train": {
            "path": "train.csv",
            "columns": ["sentence1", "sentence2", "score"],
            "label": "score",
            "label_divisor": 5,
        },
        "loss": "CoSENTLoss",
        "epochs": 1,
        "batch_size": 4,
        "learning_rate": 1e-3,
        "warmup_ratio": 0.25,
        "evaluator": {"type": "sts", "path": "dev.csv"},
        "output_dir": "out",
    }
    config.update(overrides)
    return config


def test_train_from_json_config(project, capsys):
    path = project / "run.json"
    path.write_text(json.dumps(_config(project)))
    assert main(["-q", "train", str(path)]) == 0
    out = capsys.readouterr().out
    assert "Trained 4 steps" in out and "eval_sts-dev_spearman_cosine" in out
    model = SentenceTransformer(str(project / "out"), device="cpu")
    assert model.encode(["a dog"]).shape == (1, 32)
    card = (project / "out" / "README.md").read_text()
    assert "CoSENTLoss" in card and "| train | 16 | `sentence1`, `sentence2` | `label` |" in card


def test_train_from_yaml_config(project, capsys):
    yaml = pytest.importorskip("yaml")
    config = _config(project, output_dir="out_yaml", loss={"name": "CosineSimilarityLoss"}, evaluator=None)
    path = project / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["-q", "train", str(path)]) == 0
    assert (project / "out_yaml" / "README.md").is_file()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"epoch": 2}, "unknown setting(s) ['epoch']; valid settings: model, train, output_dir"),
        ({"model": None}, "model must be a str"),
        ({"loss": "NoSuchLoss"}, "unknown loss 'NoSuchLoss'; available: "),
        ({"batch_size": "16"}, "batch_size must be a int"),
        ({"train": {"path": "missing.csv"}}, "No such data file"),
        ({"train": {"path": "train.csv", "columns": ["a", "b", "c"], "label": "score"}}, "no label column"),
        ({"evaluator": {"type": "retrieval"}}, "evaluator: only {type: sts"),
    ],
)
def test_bad_config_is_one_line_and_exit_2(project, capsys, change, message):
    config = {k: v for k, v in _config(project, **change).items() if v is not None or k == "model"}
    path = project / "bad.json"
    path.write_text(json.dumps(config))
    assert main(["-q", "train", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("sentencekit: error: ") and message in err
    assert len(err.splitlines()) == 1


def test_unreadable_config_is_exit_2(project, capsys):
    path = project / "broken.json"
    path.write_text("{not json")
    assert main(["-q", "train", str(path)]) == 2
    assert "not valid JSON" in capsys.readouterr().err
    assert main(["-q", "train", str(project / "absent.json")]) == 2
