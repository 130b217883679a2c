"""`sentencekit models clean-onnx`: stale cache folders go; current ones and model folders stay."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sentencekit.backends.onnx_cache import stale_exports
from sentencekit.backends.onnx_export import EXPORT_LAYOUT, SIDECAR_SUFFIX


def _export(folder: Path, name: str, layout: str | None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(b"\0" * 1000)
    if layout is not None:
        sidecar = {"fingerprint": folder.name, "layout": layout, "recipe": ["export", None]}
        (folder / (name + SIDECAR_SUFFIX)).write_text(json.dumps(sidecar), encoding="utf-8")


def _clean(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SENTENCEKIT_HOME": str(home)}
    cmd = [sys.executable, "-m", "sentencekit.cli.main", "models", "clean-onnx", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, check=True)


def test_clean_onnx_removes_only_folders_no_current_file_uses(tmp_path: Path) -> None:
    home = tmp_path / "home"
    cache = home / "onnx"
    _export(cache / "old", "model_O2.onnx", "sentencekit-onnx/4")
    _export(cache / "old", "model_qint8_avx512_vnni.onnx", "sentencekit-onnx/4")
    _export(cache / "unrecorded", "model.onnx", None)
    _export(cache / "current", "model_O2.onnx", EXPORT_LAYOUT)
    _export(cache / "mixed", "model.onnx", "sentencekit-onnx/4")
    _export(cache / "mixed", "model_O2.onnx", EXPORT_LAYOUT)
    model_folder = tmp_path / "my-model" / "onnx"  # a model's own folder is not the cache
    _export(model_folder, "model.onnx", "sentencekit-onnx/4")

    found = {s.path.name: s for s in stale_exports(cache)}
    assert set(found) == {"old", "unrecorded"}
    assert found["old"].size_bytes > 2000 and found["old"].layouts == ("sentencekit-onnx/4",)
    assert found["unrecorded"].layouts == ("none",)

    dry = _clean(home, "--dry-run")
    assert "would delete 2 folder(s)" in dry.stdout
    assert (cache / "old").is_dir() and (cache / "unrecorded").is_dir()

    done = _clean(home)
    assert "deleted 2 folder(s)" in done.stdout
    assert sorted(p.name for p in cache.iterdir()) == ["current", "mixed"]
    assert (model_folder / "model.onnx").is_file()
    assert "deleted 0 folder(s)" in _clean(home).stdout  # nothing left to do


def test_clean_onnx_without_a_cache_does_nothing(tmp_path: Path) -> None:
    assert stale_exports(tmp_path / "missing") == []
    assert "deleted 0 folder(s), 0.0 MB" in _clean(tmp_path / "empty-home").stdout
