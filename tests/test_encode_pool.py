"""Multi-process encoding: ``start_multi_process_pool``, ``encode(pool=...)``, ``device=[...]``, tiny models.

Every pool spawns processes that import torch (seconds each), so the parity tests share one module-scoped
pool and only the lifecycle tests start pools of their own.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import shutil
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from conftest import SHORT_TEXTS, WORDS
from sentencekit import SentenceTransformer
from sentencekit.encoding import pool as process_pool
from sentencekit.encoding.loop import EncodePlan
from sentencekit.errors import PoolError
from sentencekit.models import Pooling, Transformer

TEXTS = [
    *SHORT_TEXTS,  # ends with ""
    "A man is eating food.",  # a duplicate
    " ".join(["quick brown fox jumps over the lazy dog"] * 12),  # truncated at 64 tokens
    *(f"{text} number {i}" * (1 + i % 4) for i, text in enumerate(SHORT_TEXTS * 3)),
    "hello world",
]


def _within(seconds: float, call: Callable[[], Any]) -> Any:
    """``call()``'s result (or its exception), failing the test rather than hanging past ``seconds``."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"no answer within {seconds} s: the call hangs"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _our_children() -> set[int | None]:
    """Pids of this process's live spawned workers, as the OS sees them (/proc) where it can."""
    proc = Path("/proc")
    if not (proc / "self" / "stat").is_file():
        return {p.pid for p in multiprocessing.active_children() if p.name.startswith("sentencekit-encode")}
    pids: set[int | None] = set()
    for stat in proc.glob("[0-9]*/stat"):
        try:
            state, parent = stat.read_text().rsplit(")", 1)[1].split()[:2]
            spawned = b"spawn_main" in (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError):  # ended while we looked
            continue
        if int(parent) == os.getpid() and state != "Z" and spawned:
            pids.add(int(stat.parent.name))
    return pids


def _assert_same(pooled: Any, single: Any) -> None:
    assert type(pooled) is type(single)
    a = pooled.numpy() if isinstance(pooled, torch.Tensor) else np.asarray(pooled)
    b = single.numpy() if isinstance(single, torch.Tensor) else np.asarray(single)
    assert a.shape == b.shape and a.dtype == b.dtype
    if a.size:
        assert np.abs(a.astype(np.float64) - b.astype(np.float64)).max() <= 1e-6


@pytest.fixture(scope="module")
def own_folder(tiny_hf_folder, tmp_path_factory):
    """A copy of the tiny BERT: the default load writes its ONNX export into the folder, and the shared
    fixture folder must stay as other tests expect it (without one)."""
    return Path(shutil.copytree(tiny_hf_folder, tmp_path_factory.mktemp("pool") / "model"))


@pytest.fixture(scope="module")
def model(own_folder):
    """The tiny BERT as a plain folder loads (ONNX Runtime when installed), with a named prompt."""
    return SentenceTransformer(str(own_folder), device="cpu", prompts={"query": "query: "})


@pytest.fixture(scope="module")
def pool(model):
    started = model.start_multi_process_pool(["cpu", "cpu"])
    yield started
    SentenceTransformer.stop_multi_process_pool(started)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"normalize_embeddings": True},
        {"truncate_dim": 8},
        {"prompt_name": "query"},
        {"prompt": "passage: ", "normalize_embeddings": True},
        {"convert_to_tensor": True},
        {"chunk_size": 3, "batch_size": 4},
        {"chunk_size": 1000},
    ],
    ids=str,
)
def test_pool_gives_the_single_process_result(model, pool, options):
    _assert_same(model.encode(TEXTS, pool=pool, **options), model.encode(TEXTS, **options))


@pytest.mark.parametrize("precision", ["int8", "ubinary"])
def test_quantized_over_all_chunks(model, pool, precision):
    # texts of one token length give the same floats in any batch, so rounding cannot differ by chance
    rng = random.Random(0)
    texts = [" ".join(rng.choice(WORDS) for _ in range(6)) for _ in range(24)]
    pooled = model.encode(texts, pool=pool, precision=precision, chunk_size=5, batch_size=4)
    _assert_same(pooled, model.encode(texts, precision=precision, batch_size=4))
    assert pooled.dtype == (np.int8 if precision == "int8" else np.uint8)


def test_order_duplicates_single_text_and_empty_input(model, pool):
    texts = ["b b b", "a", "b b b", "", "a", "c c", "a"]
    pooled = model.encode(texts, pool=pool, chunk_size=1)
    _assert_same(pooled, model.encode(texts))
    np.testing.assert_array_equal(pooled[0], pooled[2])
    np.testing.assert_array_equal(pooled[1], pooled[6])
    _assert_same(model.encode("a", pool=pool), model.encode("a"))
    empty = model.encode([], pool=pool)
    assert empty.shape == (0, model.get_sentence_embedding_dimension())
    _assert_same(empty, model.encode([]))


def test_token_embeddings_and_every_output(model, pool):
    pooled = model.encode(TEXTS[:6], pool=pool, output_value="token_embeddings", chunk_size=2)
    single = model.encode(TEXTS[:6], output_value="token_embeddings")
    assert [tuple(t.shape) for t in pooled] == [tuple(t.shape) for t in single]
    assert max(float((a - b).abs().max()) for a, b in zip(pooled, single, strict=True)) <= 1e-6
    every = model.encode(TEXTS[:3], pool=pool, output_value=None)
    assert {"sentence_embedding", "token_embeddings", "attention_mask"} <= set(every[0])


def test_encode_multi_process_is_deprecated_and_works(model, pool):
    with pytest.warns(DeprecationWarning, match="encode_multi_process"):
        out = model.encode_multi_process(TEXTS, pool, normalize_embeddings=True, chunk_size=4)
    assert isinstance(out, np.ndarray)
    _assert_same(out, model.encode(TEXTS, normalize_embeddings=True))


def test_the_parent_model_is_left_as_it_was(model, pool):
    assert model.device == torch.device("cpu")
    if hasattr(model[0], "uses_session"):  # the ONNX encoder still trusts its graph: weights untouched
        with torch.inference_mode():
            assert model[0].uses_session()


def test_a_worker_error_is_raised_here_and_the_pool_goes_on(model, pool):
    bad = EncodePlan(batch_size=0, device=torch.device("cpu"))  # encode() never lets this through
    with pytest.raises(ValueError, match="batch_size") as caught:
        _within(60, lambda: process_pool.encode_pooled(model, TEXTS, bad, pool, None, 4))
    assert "in an encode worker" in str(caught.value.__cause__)
    # the failed call's other chunks are still answered; the next call must not take their results
    _assert_same(model.encode(TEXTS, pool=pool, chunk_size=4), model.encode(TEXTS))


def test_bad_pools_and_arguments_say_what_to_do(model, pool):
    with pytest.raises(ValueError, match="start_multi_process_pool"):
        model.encode(TEXTS, pool={"processes": []})
    with pytest.raises(ValueError, match="chunk_size"):
        model.encode(TEXTS, pool=pool, chunk_size=0)
    with pytest.raises(ValueError, match="No devices"):
        model.start_multi_process_pool([])
    with pytest.raises(ValueError, match="not a device"):
        model.start_multi_process_pool(["nonsense"])
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="0 CUDA devices"):
            model.encode(TEXTS, device=["cuda:0", "cuda:1"])


def test_a_list_of_devices_encodes_on_a_temporary_pool(tiny_hf_folder):
    torch_model = SentenceTransformer(modules=[Transformer(tiny_hf_folder), Pooling(32)], device="cpu")
    single = torch_model.encode(TEXTS, convert_to_tensor=True)
    before = _our_children()
    pooled = _within(120, lambda: torch_model.encode(TEXTS, device=["cpu", "cpu"], convert_to_tensor=True))
    _assert_same(pooled, single)
    assert _our_children() == before
    assert torch_model.encode([], device=["cpu", "cpu"]).shape == (0, 32)  # starts nothing


def test_a_dead_worker_is_reported_and_stop_leaves_no_process(model, own_folder, tmp_path):
    # a SQLite embedding cache cannot be pickled: it must stay with the caller, and a pooled call skips it
    cached = SentenceTransformer(str(own_folder), device="cpu", cache=tmp_path / "cache.sqlite")
    before = _our_children()
    started = _within(120, lambda: cached.start_multi_process_pool(["cpu"]))
    processes = list(started["processes"])
    try:
        assert [p.is_alive() for p in processes] == [True]
        assert _our_children() == before | {processes[0].pid}
        _assert_same(cached.encode(TEXTS, pool=started), model.encode(TEXTS))
        assert cached.cache.stats.entries == 0
        os.kill(processes[0].pid, signal.SIGKILL)
        processes[0].join(30)
        with pytest.raises(PoolError, match="died"):
            _within(30, lambda: cached.encode(TEXTS, pool=started))
    finally:
        SentenceTransformer.stop_multi_process_pool(started)
    assert _our_children() == before
    SentenceTransformer.stop_multi_process_pool(started)  # twice is harmless
    with pytest.raises(ValueError, match="stopped"):
        cached.encode(TEXTS, pool=started)


class _FailsInWorker(nn.Module):
    """Loads in the test process, fails to load in a pool's worker."""

    def forward(self, features: dict[str, Any]) -> dict[str, Any]:
        return features

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        if multiprocessing.parent_process() is not None:
            raise RuntimeError("refusing to load in a worker")


def test_a_worker_that_cannot_start_fails_the_start(tiny_hf_folder):
    failing = SentenceTransformer(
        modules=[Transformer(tiny_hf_folder), Pooling(32), _FailsInWorker()], device="cpu"
    )
    before = _our_children()
    with pytest.raises(PoolError, match="refusing to load in a worker"):
        _within(120, lambda: failing.start_multi_process_pool(["cpu"]))
    assert _our_children() == before
