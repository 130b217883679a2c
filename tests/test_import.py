"""`import sentencekit` is cheap: no torch, no optional dependency, and the public surface is explicit."""

from __future__ import annotations

import json
import subprocess
import sys

import sentencekit

HEAVY = [
    "torch",
    "transformers",
    "tokenizers",
    "numpy",
    "onnxruntime",
    "faiss",
    "fastapi",
    "uvicorn",
    "datasets",
    "ray",
    "redis",
    "sentence_transformers",
    "scipy",
    "sklearn",
    "huggingface_hub",
]


def test_import_loads_no_heavy_or_optional_dependency():
    code = (
        f"import json, sys, sentencekit; print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == []


def test_all_is_sorted_and_every_name_resolves():
    assert sentencekit.__all__ == sorted(sentencekit.__all__)
    lazy = set(sentencekit._LAZY) | set(sentencekit._SUBMODULES) | {"__version__"}
    assert set(sentencekit.__all__) == lazy
    for name in sentencekit.__all__:
        assert getattr(sentencekit, name) is not None
    assert set(dir(sentencekit)) == set(sentencekit.__all__)


def test_unknown_attribute_raises_attribute_error():
    try:
        sentencekit.NoSuchThing  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:
        raise AssertionError("expected AttributeError")
