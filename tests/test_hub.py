"""Resolving model names to folders: local folders, a real Hugging Face cache layout, the Hub, packaged."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sentencekit import packaged
from sentencekit.errors import ModelNotFoundError, SentenceKitError
from sentencekit.hub import hf_cache_dir, resolve_model_path, select_hub_files
from sentencekit.registry import packaged_source

HF_ENV = ("SENTENCE_TRANSFORMERS_HOME", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "HF_HUB_OFFLINE")


@pytest.fixture(autouse=True)
def isolated_caches(monkeypatch, tmp_path):
    """Point every cache at empty folders under tmp_path, so the machine's caches never leak in."""
    for name in HF_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("SENTENCEKIT_HOME", str(tmp_path / "sentencekit-home"))
    monkeypatch.setenv("HF_HUB_ETAG_TIMEOUT", "3")
    return tmp_path


def make_hf_snapshot(cache: Path, repo_id: str, files: dict[str, str], *, ref: str = "main") -> Path:
    """Lay out a snapshot as huggingface_hub does: blobs, relative symlinks in snapshots/, refs/<ref>."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    commit = hashlib.sha1(f"{repo_id}@{ref}".encode()).hexdigest()
    snapshot = repo / "snapshots" / commit
    for relative, content in files.items():
        data = content.encode()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = snapshot / relative
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / ref).write_text(commit)
    return snapshot


MODEL_FILES = {"config.json": '{"model_type": "bert"}', "modules.json": "[]", "1_Pooling/config.json": "{}"}


def test_an_existing_folder_is_returned_as_it_is(tmp_path, monkeypatch):
    folder = tmp_path / "acme" / "tiny"
    folder.mkdir(parents=True)
    assert resolve_model_path(folder) == folder
    assert resolve_model_path(str(folder)) == folder
    monkeypatch.chdir(tmp_path)  # a relative folder wins over the Hub id it looks like
    assert resolve_model_path("acme/tiny") == Path("acme/tiny")


def test_a_file_is_not_a_model_folder(tmp_path):
    file = tmp_path / "model.safetensors"
    file.write_bytes(b"x")
    with pytest.raises(ModelNotFoundError, match="is a file, not a model folder"):
        resolve_model_path(file)


def test_a_missing_path_only_looks_on_disk(tmp_path):
    started = time.monotonic()
    with pytest.raises(ModelNotFoundError) as info:
        resolve_model_path(tmp_path / "no" / "such" / "model")
    assert time.monotonic() - started < 1.0
    message = str(info.value)
    assert "local folder" in message and "does not exist" in message
    assert "Hub:" not in message


def test_an_empty_name_is_rejected():
    with pytest.raises(ModelNotFoundError, match="empty"):
        resolve_model_path("")


def test_hf_cache_snapshot_is_found_with_cache_folder(tmp_path):
    cache = tmp_path / "elsewhere"
    snapshot = make_hf_snapshot(cache, "acme/tiny-model", MODEL_FILES)
    found = resolve_model_path("acme/tiny-model", cache_folder=cache, local_files_only=True)
    assert found == snapshot
    assert (found / "config.json").read_text() == MODEL_FILES["config.json"]
    assert (found / "1_Pooling" / "config.json").is_file()


def test_hf_cache_is_read_from_the_environment_at_call_time(tmp_path, monkeypatch):
    snapshot = make_hf_snapshot(tmp_path / "hf-home" / "hub", "acme/tiny-model", MODEL_FILES)
    monkeypatch.delenv("HF_HUB_CACHE")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    assert resolve_model_path("acme/tiny-model", local_files_only=True) == snapshot


def test_a_bare_name_is_looked_up_under_sentence_transformers(isolated_caches):
    snapshot = make_hf_snapshot(isolated_caches / "hf-cache", "sentence-transformers/tiny-st", MODEL_FILES)
    assert resolve_model_path("tiny-st", local_files_only=True) == snapshot


def test_a_revision_selects_the_snapshot(isolated_caches):
    cache = isolated_caches / "hf-cache"
    main = make_hf_snapshot(cache, "acme/tiny-model", MODEL_FILES)
    tagged = make_hf_snapshot(cache, "acme/tiny-model", {**MODEL_FILES, "README.md": "v1"}, ref="v1")
    assert resolve_model_path("acme/tiny-model", local_files_only=True) == main
    assert resolve_model_path("acme/tiny-model", revision="v1", local_files_only=True) == tagged
    assert resolve_model_path("acme/tiny-model", revision=main.name, local_files_only=True) == main
    with pytest.raises(ModelNotFoundError, match="at revision v2"):
        resolve_model_path("acme/tiny-model", revision="v2", local_files_only=True)


def test_an_incomplete_snapshot_is_not_used(isolated_caches):
    make_hf_snapshot(isolated_caches / "hf-cache", "acme/half", {"README.md": "only a card"})
    with pytest.raises(ModelNotFoundError, match="incomplete download"):
        resolve_model_path("acme/half", local_files_only=True)


def test_not_found_lists_every_place_and_the_fixes(isolated_caches):
    with pytest.raises(ModelNotFoundError) as info:
        resolve_model_path("acme/not-there", local_files_only=True)
    error = info.value
    assert isinstance(error, OSError) and isinstance(error, SentenceKitError)
    message = str(error)
    for expected in (
        "'acme/not-there' was not found",
        "local folder:",
        "packaged models: not a packaged model",
        f"Hugging Face cache ({isolated_caches / 'hf-cache'})",
        "Hugging Face Hub: skipped: local_files_only=True",
        "HF_TOKEN",
        "all-MiniLM-L6-v2, all-mpnet-base-v2",
    ):
        assert expected in message


def test_a_bare_name_error_names_the_expanded_id():
    with pytest.raises(
        ModelNotFoundError, match=r"'nope-model' \(Hub id 'sentence-transformers/nope-model'\)"
    ):
        resolve_model_path("nope-model", local_files_only=True)


def test_unknown_name_fails_fast_without_the_hub():
    """On this machine the Hub is unreachable; elsewhere it answers 'not found'. Either way: seconds."""
    started = time.monotonic()
    with pytest.raises(ModelNotFoundError) as info:
        resolve_model_path("sentencekit-tests/definitely-not-a-model-4f2a")
    elapsed = time.monotonic() - started
    assert elapsed < 10.0, f"took {elapsed:.1f} s"
    hub_line = next(line for line in str(info.value).splitlines() if "Hugging Face Hub:" in line)
    assert any(word in hub_line for word in ("unreachable", "no repository", "skipped")), hub_line


def test_offline_mode_skips_the_hub(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.monotonic()
    with pytest.raises(ModelNotFoundError, match="Hugging Face Hub: skipped: HF_HUB_OFFLINE is set"):
        resolve_model_path("acme/not-there")
    assert time.monotonic() - started < 2.0


def _fake_packaged_copy(name: str) -> Path:
    """Write a small folder with a valid manifest where the packaged cache keeps ``name``."""
    source = packaged_source(name)
    folder = packaged.default_cache_dir() / source.name
    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"model_type": "bert"}')
    (folder / "modules.json").write_text("[]")
    packaged._write_manifest(folder, source)
    return folder


def test_the_packaged_cache_comes_before_the_hf_cache(isolated_caches):
    packaged_folder = _fake_packaged_copy("all-MiniLM-L6-v2")
    hf_snapshot = make_hf_snapshot(
        isolated_caches / "hf-cache", "sentence-transformers/all-MiniLM-L6-v2", MODEL_FILES
    )
    assert resolve_model_path("all-MiniLM-L6-v2", local_files_only=True) == packaged_folder
    assert (
        resolve_model_path("sentence-transformers/all-MiniLM-L6-v2", local_files_only=True) == packaged_folder
    )
    # a pinned revision is a Hub commit: the packaged copy is not tied to one, so the HF cache answers
    assert (
        resolve_model_path("all-MiniLM-L6-v2", revision=hf_snapshot.name, local_files_only=True)
        == hf_snapshot
    )


def test_a_damaged_packaged_copy_is_skipped(isolated_caches):
    folder = _fake_packaged_copy("all-MiniLM-L6-v2")
    (folder / "config.json").write_text("{}")  # other size than in the manifest
    with pytest.raises(ModelNotFoundError) as info:
        resolve_model_path("all-MiniLM-L6-v2", local_files_only=True)
    message = str(info.value)
    assert "packaged cache: all-MiniLM-L6-v2 is not in" in message
    assert "packaged download (PyPI): skipped: local_files_only=True" in message


def test_select_hub_files_keeps_what_pytorch_needs():
    files = [
        "config.json",
        "modules.json",
        "model.safetensors",
        "pytorch_model.bin",
        "tf_model.h5",
        "flax_model.msgpack",
        "rust_model.ot",
        "onnx/model.onnx",
        "openvino/openvino_model.bin",
        "openvino/openvino_model.xml",
        "model.gguf",
        "tokenizer.json",
        "sentencepiece.bpe.model",
        "modeling_custom.py",
        "1_Pooling/config.json",
        "2_Dense/pytorch_model.bin",
        "2_Dense/config.json",
        "README.md",
    ]
    assert select_hub_files(files) == [
        "config.json",
        "modules.json",
        "model.safetensors",
        "tokenizer.json",
        "sentencepiece.bpe.model",
        "modeling_custom.py",
        "1_Pooling/config.json",
        "2_Dense/pytorch_model.bin",  # no safetensors beside it, so it is the only copy of these weights
        "2_Dense/config.json",
        "README.md",
    ]
    assert select_hub_files(["pytorch_model.bin", "config.json"]) == ["pytorch_model.bin", "config.json"]


def test_hf_cache_dir_precedence(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert hf_cache_dir() == tmp_path / "xdg" / "huggingface" / "hub"
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    assert hf_cache_dir() == tmp_path / "home" / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    assert hf_cache_dir() == tmp_path / "hub"
    monkeypatch.setenv("SENTENCE_TRANSFORMERS_HOME", str(tmp_path / "st"))
    assert hf_cache_dir() == tmp_path / "st"
    assert hf_cache_dir(tmp_path / "given") == tmp_path / "given"


def test_importing_hub_is_cheap():
    code = (
        "import sys, sentencekit.hub, sentencekit.packaged, sentencekit.registry; "
        "heavy = [m for m in ('torch', 'transformers', 'huggingface_hub') if m in sys.modules]; "
        "print(heavy)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_a_hub_that_never_answers_costs_about_the_timeout(tmp_path):
    """A real socket that accepts connections and never replies, standing in for a dropping firewall."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    code = (
        "import time\n"
        "from sentencekit.hub import resolve_model_path\n"
        "started = time.monotonic()\n"
        "try:\n"
        "    resolve_model_path('acme/never-answered')\n"
        "except OSError as exc:\n"
        "    print(round(time.monotonic() - started, 2))\n"
        "    print(exc)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in HF_ENV}
    env.update(
        HF_ENDPOINT=f"http://127.0.0.1:{server.getsockname()[1]}",
        HF_HUB_ETAG_TIMEOUT="1",
        HF_HUB_DISABLE_TELEMETRY="1",  # huggingface_hub would otherwise ask the endpoint for its agent list
        HF_HUB_CACHE=str(tmp_path / "hf"),
        SENTENCEKIT_HOME=str(tmp_path / "home"),
    )
    try:
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
        )
    finally:
        server.close()
    elapsed, *message = result.stdout.splitlines()
    assert float(elapsed) < 5.0, result.stdout
    assert any("Hugging Face Hub: unreachable (ReadTimeout" in line for line in message), result.stdout
