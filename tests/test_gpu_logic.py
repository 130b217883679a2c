"""The GPU-side logic of the encode loop (autocast choice, out-of-memory back-off), exercised on CPU."""

from __future__ import annotations

import weakref
from pathlib import Path
from typing import Any

import pytest
import torch

from sentencekit import SentenceTransformer
from sentencekit.encoding.gpu import autocast_dtype, forward_with_backoff, run_modules, split_rows


def test_autocast_only_for_an_fp32_encoder_on_cuda() -> None:
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert autocast_dtype("float16", cuda, torch.float32) is torch.float16
    assert autocast_dtype("bfloat16", cuda, torch.float32) is torch.bfloat16
    assert autocast_dtype("float32", cuda, torch.float32) is None
    assert autocast_dtype("float16", cpu, torch.float32) is None
    assert autocast_dtype("float16", cuda, torch.bfloat16) is None  # loaded in bf16 on purpose: as loaded
    with pytest.raises(ValueError, match="gpu_precision must be one of"):
        autocast_dtype("fp8", cpu, torch.float32)


def test_split_rows_keeps_non_row_values() -> None:
    features = {"input_ids": torch.arange(10).view(5, 2), "prompt_length": 3}
    head, tail = split_rows(features, 2)
    assert head["input_ids"].tolist() == [[0, 1], [2, 3]]
    assert tail["input_ids"].shape == (3, 2)
    assert head["prompt_length"] == tail["prompt_length"] == 3


def _oom_above(limit: int, modules: Any, calls: list[int]) -> Any:
    def forward(features: dict[str, Any]) -> dict[str, Any]:
        rows = int(features["input_ids"].shape[0])
        calls.append(rows)
        if rows > limit:
            raise torch.cuda.OutOfMemoryError(f"fake: {rows} rows do not fit")
        return dict(run_modules(modules, features, None))

    return forward


def test_backoff_splits_until_batches_fit_and_matches_one_pass(
    tiny_hf_folder: Path, sample_texts: list[str]
) -> None:
    model = SentenceTransformer(str(tiny_hf_folder), device="cpu").eval()
    modules = list(model)
    features = model.tokenize(sample_texts[:11])
    with torch.inference_mode():
        whole = run_modules(modules, dict(features), None)["sentence_embedding"]
        calls: list[int] = []
        pieces = list(forward_with_backoff(_oom_above(3, modules, calls), dict(features)))
    assert calls == [11, 5, 2, 3, 6, 3, 3]  # halves, recursively, until every piece fits
    assert [(first, rows) for first, rows, _ in pieces] == [(0, 2), (2, 3), (5, 3), (8, 3)]
    split = torch.cat([outputs["sentence_embedding"] for _, _, outputs in pieces])
    torch.testing.assert_close(split, whole, atol=1e-6, rtol=0)


def test_backoff_gives_up_on_a_single_row(tiny_hf_folder: Path) -> None:
    model = SentenceTransformer(str(tiny_hf_folder), device="cpu").eval()
    features = model.tokenize(["one text", "another text"])
    with torch.inference_mode(), pytest.raises(torch.cuda.OutOfMemoryError, match="1 rows do not fit"):
        list(forward_with_backoff(_oom_above(0, list(model), []), dict(features)))


def test_gpu_precision_is_validated_and_ignored_on_cpu(tiny_hf_folder: Path, sample_texts: list[str]) -> None:
    model = SentenceTransformer(str(tiny_hf_folder), device="cpu")
    assert model.gpu_precision == "float16"
    default = model.encode(sample_texts[:5])
    model.gpu_precision = "float32"
    assert (model.encode(sample_texts[:5]) == default).all()
    model.gpu_precision = "half"
    with pytest.raises(ValueError, match="gpu_precision must be one of"):
        model.encode(sample_texts[:5])


def test_backoff_frees_the_failed_pass_before_retrying(tiny_hf_folder: Path, sample_texts: list[str]) -> None:
    """A retry made while the error is being handled would keep the failed pass's activations alive."""
    model = SentenceTransformer(str(tiny_hf_folder), device="cpu").eval()
    refs: list[weakref.ref[torch.Tensor]] = []
    alive_at_call: list[int] = []

    def forward(features: dict[str, Any]) -> dict[str, Any]:
        alive_at_call.append(sum(ref() is not None for ref in refs))
        activation = torch.empty(int(features["input_ids"].shape[0]), 1024)  # what a real pass would hold
        refs.append(weakref.ref(activation))
        if activation.shape[0] > 2:
            raise torch.cuda.OutOfMemoryError("fake")
        return dict(run_modules(list(model), features, None))

    with torch.inference_mode():
        for _ in forward_with_backoff(forward, dict(model.tokenize(sample_texts[:8]))):
            pass
    assert len(alive_at_call) == 7 and max(alive_at_call) == 0  # nothing of an earlier pass is left


def test_encode_survives_out_of_memory_with_the_same_vectors(
    tiny_hf_folder: Path, sample_texts: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sentencekit.encoding.loop as loop

    model = SentenceTransformer(str(tiny_hf_folder), device="cpu")
    expected = model.encode(sample_texts, batch_size=16)
    real = loop.run_modules

    def small_memory(modules: Any, features: dict[str, Any], dtype: Any) -> Any:
        if features["input_ids"].shape[0] > 3:
            raise torch.cuda.OutOfMemoryError("fake: more than 3 rows")
        return real(modules, features, dtype)

    monkeypatch.setattr(loop, "run_modules", small_memory)
    got = model.encode(sample_texts, batch_size=16)
    assert got.shape == expected.shape
    assert abs(got - expected).max() < 1e-6
