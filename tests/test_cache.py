"""The embedding cache: keys, backends, encode integration, concurrent writers, corrupted files, the CLI."""

from __future__ import annotations

import json
import logging
import shutil
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import _write_tiny_bert
from sentencekit import CacheError, SentenceTransformer
from sentencekit.cache import CacheStats, open_cache
from sentencekit.cache.keys import KeySettings, key_prefix, text_keys
from sentencekit.cache.memory import MemoryCache
from sentencekit.cache.sqlite import SQLiteCache

TEXTS = ["A man is eating food.", "hello world", "A man is eating food.", "", "the quick brown fox"]


@pytest.fixture(scope="module")
def model(tiny_hf_folder: Path) -> SentenceTransformer:
    return SentenceTransformer(str(tiny_hf_folder), device="cpu", prompts={"query": "query: "})


@pytest.fixture(scope="module")
def other_model(tmp_path_factory: pytest.TempPathFactory) -> SentenceTransformer:
    folder = _write_tiny_bert(tmp_path_factory.mktemp("tiny_bert_seed1"), seed=1)
    return SentenceTransformer(str(folder), device="cpu")


def _keys(model: SentenceTransformer, text: str = "hello world", **changes: object) -> str:
    settings = {"prompt": None, "truncate_dim": None, "normalize": False, "device_type": "cpu", **changes}
    return text_keys(key_prefix(model, KeySettings(**settings)), [text])[0]  # type: ignore[arg-type]


# --- keys ---------------------------------------------------------------------------------------------------


def test_everything_that_changes_the_vector_changes_the_key(model, other_model):
    base = _keys(model)
    variants = {
        "other text": _keys(model, "hello world!"),
        "other model": _keys(other_model),
        "prompt": _keys(model, prompt="query: "),
        "truncate_dim": _keys(model, truncate_dim=16),
        "normalize": _keys(model, normalize=True),
        "device": _keys(model, device_type="cuda"),
    }
    previous = model.max_seq_length
    model.max_seq_length = 16
    try:
        variants["max_seq_length"] = _keys(model)
    finally:
        model.max_seq_length = previous
    assert _keys(model) == base  # deterministic
    assert len({base, *variants.values()}) == len(variants) + 1


def test_fingerprint_follows_in_place_weight_changes(tiny_hf_folder):
    fresh = SentenceTransformer(str(tiny_hf_folder), device="cpu")
    before = _keys(fresh)
    with torch.no_grad():
        next(fresh.parameters()).add_(1.0)
    assert _keys(fresh) != before


def test_settings_never_share_an_entry_and_each_matches_the_uncached_result(model, other_model):
    cache = MemoryCache()
    calls = [
        (model, {}),
        (model, {"prompt_name": "query"}),
        (model, {"truncate_dim": 8}),
        (model, {"normalize_embeddings": True}),
        (other_model, {}),
    ]
    for which, kwargs in calls:
        cold = which.encode(["hello world"], **kwargs)
        cached = which.encode(["hello world"], cache=cache, **kwargs)
        again = which.encode(["hello world"], cache=cache, **kwargs)
        np.testing.assert_array_equal(cached, cold)
        np.testing.assert_array_equal(again, cold)
    assert cache.stats.entries == len(calls)


def test_precision_is_applied_after_the_cache(model):
    """int8 ranges depend on the whole call, so floats are cached and quantized afterwards."""
    cache = MemoryCache()
    texts = [f"the dog eats food {i}" for i in range(20)]
    expected = model.encode(texts, precision="int8")
    model.encode(texts[:7], cache=cache)  # a partly warm cache
    got = model.encode(texts, precision="int8", cache=cache)
    assert got.dtype == np.int8
    np.testing.assert_array_equal(got, expected)
    assert cache.stats.entries == len(texts)
    binary = model.encode(texts, precision="ubinary", cache=cache)
    np.testing.assert_array_equal(binary, model.encode(texts, precision="ubinary"))
    assert cache.stats.entries == len(texts)


# --- encode integration -------------------------------------------------------------------------------------


def test_hits_misses_and_bit_identical_warm_run(tiny_hf_folder, tmp_path):
    path = tmp_path / "emb.sqlite"
    cached_model = SentenceTransformer(str(tiny_hf_folder), device="cpu", cache=path)
    plain = SentenceTransformer(str(tiny_hf_folder), device="cpu")
    cold = cached_model.encode(TEXTS)
    assert cached_model.cache.stats == CacheStats(hits=0, misses=4, entries=4)  # 4 distinct texts
    warm = cached_model.encode(TEXTS)
    assert cached_model.cache.stats == CacheStats(hits=4, misses=4, entries=4)
    assert warm.dtype == cold.dtype == np.float32
    assert warm.tobytes() == cold.tobytes()
    np.testing.assert_array_equal(cold, plain.encode(TEXTS))
    # a new process-level object on the same file sees the same vectors
    reopened = SentenceTransformer(str(tiny_hf_folder), device="cpu", cache=str(path))
    assert reopened.encode(TEXTS).tobytes() == cold.tobytes()
    assert reopened.cache.stats.hits == 4
    # single strings and tensors go through the cache too
    single = cached_model.encode("hello world")
    assert single.shape == (32,) and single.tobytes() == cold[1].tobytes()
    tensor = cached_model.encode(TEXTS, convert_to_tensor=True)
    assert isinstance(tensor, torch.Tensor) and torch.equal(tensor, torch.from_numpy(cold))


def test_only_sentence_embeddings_are_cached(model):
    cache = MemoryCache()
    tokens = model.encode(TEXTS, output_value="token_embeddings", cache=cache)
    everything = model.encode(TEXTS, output_value=None, cache=cache)
    assert len(tokens) == len(everything) == len(TEXTS)
    assert cache.stats == CacheStats(hits=0, misses=0, entries=0)
    assert model.encode([], cache=cache).shape[0] == 0


def test_encode_argument_overrides_the_model_cache(tiny_hf_folder, tmp_path):
    own, override = MemoryCache(), MemoryCache()
    cached_model = SentenceTransformer(str(tiny_hf_folder), device="cpu", cache=own)
    cached_model.encode(TEXTS, cache=override)
    assert own.stats.entries == 0 and override.stats.entries == 4
    cached_model.encode(TEXTS, cache=tmp_path / "per-call.sqlite")  # opened and closed for the call
    assert SQLiteCache(tmp_path / "per-call.sqlite").stats.entries == 4


def test_float16_storage_is_approximate(model, tmp_path):
    cache = SQLiteCache(tmp_path / "half.sqlite", dtype="float16")
    cold = model.encode(TEXTS, cache=cache)
    warm = model.encode(TEXTS, cache=cache)
    assert warm.dtype == np.float32
    np.testing.assert_allclose(warm, cold, rtol=2e-3, atol=2e-3)


# --- backends -----------------------------------------------------------------------------------------------


def test_memory_cache_evicts_least_recently_used():
    cache = MemoryCache(max_entries=2)
    cache.put_many({"a": np.zeros(3), "b": np.ones(3)})
    cache.get_many(["a"])  # a is now the most recent
    cache.put_many([("c", np.full(3, 2.0))])
    assert sorted(cache.get_many(["a", "b", "c"])) == ["a", "c"]
    cache.clear()
    assert cache.stats.entries == 0


def test_open_cache_specs(tmp_path):
    assert isinstance(open_cache(":memory:"), MemoryCache)
    in_dir = open_cache(tmp_path)
    assert isinstance(in_dir, SQLiteCache) and in_dir.path == tmp_path / "embeddings.sqlite"
    custom = MemoryCache()
    assert open_cache(custom) is custom
    with pytest.raises(TypeError, match="not a cache"):
        open_cache(42)


def test_sqlite_rejects_a_newer_format_and_foreign_databases(tmp_path):
    path = tmp_path / "new.sqlite"
    SQLiteCache(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'format_version'")
    with pytest.raises(CacheError, match="format version 99"):
        SQLiteCache(path)
    foreign = tmp_path / "other.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE users (id INTEGER)")
    with pytest.raises(CacheError, match="not a sentencekit embedding cache"):
        SQLiteCache(foreign)


def _fill(path: Path, count: int, dim: int = 384) -> None:
    cache = SQLiteCache(path)
    rng = np.random.default_rng(0)
    cache.put_many((f"k{i}", rng.standard_normal(dim)) for i in range(count))
    cache.close()


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_damaged_file_is_set_aside_and_rebuilt(tmp_path, caplog, damage):
    path = tmp_path / "emb.sqlite"
    if damage == "truncated":
        _fill(path, 3000)
        size = path.stat().st_size
        with open(path, "r+b") as f:
            f.truncate(size // 2)
    else:
        path.write_bytes(np.random.default_rng(1).bytes(64 * 1024))
    with caplog.at_level(logging.WARNING, logger="sentencekit.cache.sqlite"):
        cache = SQLiteCache(path)
    assert "damaged" in caplog.text and "corrupt-" in caplog.text
    aside = list(tmp_path.glob("emb.sqlite.corrupt-*"))
    assert len([p for p in aside if not p.name.endswith("-wal")]) == 1
    assert cache.stats.entries == 0
    cache.put_many({"x": np.ones(4)})
    np.testing.assert_array_equal(cache.get_many(["x"])["x"], np.ones(4, dtype=np.float32))


WRITER = textwrap.dedent(
    """
    import sys
    import time
    from pathlib import Path

    import numpy as np
    from sentencekit.cache.sqlite import SQLiteCache

    path, tag, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    # start writing only when both writers are ready, so that their transactions really interleave
    Path(f"{path}.ready-{tag}").touch()
    deadline = time.monotonic() + 60
    while len(list(Path(path).parent.glob(Path(path).name + ".ready-*"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.005)
    # writer "a" does not wait for the lock at all, so its conflicts go through the retry-with-backoff path
    cache = SQLiteCache(path, busy_timeout_s=0.0 if tag == "a" else 5.0)
    for start in range(0, count, 20):
        cache.put_many((f"{tag}-{i}", np.full(8, i, dtype=np.float32)) for i in range(start, start + 20))
        cache.get_many([f"{tag}-{start}"])
    cache.close()
    """
)


def _run_two_writers(path: Path, count: int) -> None:
    """Start two writer processes at once (tags "a" and "b") and wait for both to succeed."""
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), tag, str(count)], stderr=subprocess.PIPE)
        for tag in ("a", "b")
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()


def test_two_processes_writing_at_once_lose_nothing(tmp_path):
    path = tmp_path / "shared.sqlite"
    SQLiteCache(path).close()  # both writers open an existing file; creating it at once is tested below
    _run_two_writers(path, 2000)
    cache = SQLiteCache(path)
    assert cache.stats.entries == 4000
    for tag in ("a", "b"):
        found = cache.get_many([f"{tag}-{i}" for i in range(2000)])
        assert len(found) == 2000
        assert all(float(found[f"{tag}-{i}"][0]) == i for i in (0, 999, 1999))


def test_two_processes_creating_the_file_at_once(tmp_path):
    path = tmp_path / "fresh.sqlite"
    _run_two_writers(path, 100)
    assert SQLiteCache(path).stats.entries == 200


# --- Redis --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory):
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    pytest.importorskip("redis", reason="the redis client is missing (pip install 'sentencekit[redis]')")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    folder = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder), "--save", ""],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    import redis

    deadline = time.monotonic() + 10
    while True:
        try:
            redis.Redis.from_url(url).ping()
            break
        except redis.exceptions.ConnectionError:
            if time.monotonic() > deadline:
                proc.kill()
                pytest.fail("redis-server did not start within 10 s")
            time.sleep(0.05)
    yield url
    proc.terminate()
    proc.wait(timeout=10)


def test_redis_backend(model, redis_url):
    from sentencekit.cache.redis_cache import RedisCache

    cache = open_cache(redis_url)
    assert isinstance(cache, RedisCache)
    other = RedisCache(redis_url, namespace="elsewhere")
    cold = model.encode(TEXTS, cache=cache)
    warm = model.encode(TEXTS, cache=cache)
    assert warm.tobytes() == cold.tobytes()
    assert cache.stats == CacheStats(hits=4, misses=4, entries=4)
    assert other.stats.entries == 0
    cache.clear()
    assert cache.stats.entries == 0
    cache.close()


def test_redis_unreachable_is_a_cache_error_and_encode_goes_on(model, caplog):
    from sentencekit.cache.redis_cache import RedisCache

    pytest.importorskip("redis")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cache = RedisCache(f"redis://127.0.0.1:{port}/0")
    with pytest.raises(CacheError, match="Check that the server"):
        cache.get_many(["x"])
    with caplog.at_level(logging.WARNING):
        out = model.encode(TEXTS, cache=cache)
    np.testing.assert_array_equal(out, model.encode(TEXTS))
    assert "lookup failed" in caplog.text


# --- CLI ----------------------------------------------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sentencekit.cli.main", "cache", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_stats_and_clear(tmp_path):
    path = tmp_path / "emb.sqlite"
    _fill(path, 10, dim=4)
    stats = _cli("stats", str(path), "--json")
    assert stats.returncode == 0, stats.stderr
    info = json.loads(stats.stdout)
    assert info["entries"] == 10 and info["format_version"] == 1
    cleared = _cli("clear", str(path))
    assert cleared.returncode == 0 and "Removed 10 entries" in cleared.stdout
    assert json.loads(_cli("stats", str(path), "--json").stdout)["entries"] == 0
    missing = _cli("stats", str(tmp_path / "typo.sqlite"))
    assert missing.returncode == 2 and "No embedding cache" in missing.stderr
    assert not (tmp_path / "typo.sqlite").exists()


def test_damage_found_during_use_is_recovered(tmp_path, caplog):
    cache = SQLiteCache(tmp_path / "emb.sqlite")
    cache.put_many({"x": np.ones(4)})
    calls = []

    def fails_once(conn: sqlite3.Connection) -> int:
        calls.append(conn)
        if len(calls) == 1:
            raise sqlite3.DatabaseError("database disk image is malformed")
        return int(conn.execute("SELECT COUNT(*) FROM entries").fetchone()[0])

    with caplog.at_level(logging.WARNING, logger="sentencekit.cache.sqlite"):
        assert cache._run(fails_once, what="read") == 0  # set aside, then an empty cache answers
    assert "damaged" in caplog.text
    assert len(list(tmp_path.glob("emb.sqlite.corrupt-*"))) >= 1


def test_a_model_with_a_cache_can_be_copied(tiny_hf_folder, tmp_path):
    import copy
    import pickle

    cached_model = SentenceTransformer(str(tiny_hf_folder), device="cpu", cache=tmp_path / "emb.sqlite")
    cold = cached_model.encode(TEXTS)
    for clone in (copy.deepcopy(cached_model), pickle.loads(pickle.dumps(cached_model))):
        assert clone.encode(TEXTS).tobytes() == cold.tobytes()
        assert clone.cache.stats.entries == 4
