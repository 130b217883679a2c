"""Fast CPU paths: bf16 encoder, ONNX Runtime fp32 and int8, export caching, and their errors (tiny model)."""

from __future__ import annotations

import copy
import importlib.util
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import SHORT_TEXTS, _write_tiny_bert
from sentencekit import SentenceTransformer
from sentencekit.benchmarking.metrics import min_cosine
from sentencekit.errors import MissingDependencyError, ModelFormatError

ONNX_FILE = "onnx/model_O2.onnx"  # what backend="onnx" runs by default: the fused fp32 graph
EXPORT_FILE = "onnx/model.onnx"  # the plain export it is made from
INT8_FILE = "onnx/model_qint8_avx512_vnni.onnx"


def _has_onnx_extra() -> bool:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        return False
    return True


needs_onnx = pytest.mark.skipif(
    not _has_onnx_extra(), reason='the onnx extra is not installed (pip install "sentencekit[onnx]")'
)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Exports that cannot go into a model folder land in a per-test cache, never the user's."""
    monkeypatch.setenv("SENTENCEKIT_HOME", str(tmp_path / "sentencekit_home"))


@pytest.fixture(scope="module")
def exported_folder(tiny_hf_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the tiny model whose onnx/model.onnx and int8 file are exported once for the module."""
    if not _has_onnx_extra():
        pytest.skip('the onnx extra is not installed (pip install "sentencekit[onnx]")')
    folder = tmp_path_factory.mktemp("exported") / "model"
    shutil.copytree(tiny_hf_folder, folder)
    SentenceTransformer(str(folder), device="cpu", backend="onnx")
    SentenceTransformer(str(folder), device="cpu", backend="onnx", model_kwargs={"file_name": INT8_FILE})
    return folder


# --- bf16 -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["torch_dtype", "dtype"])
def test_bf16_encoder_returns_fp32_close_to_fp32(
    tiny_hf_folder: Path, texts: list[str], torch_embeddings: np.ndarray, key: str
) -> None:
    model = SentenceTransformer(str(tiny_hf_folder), device="cpu", model_kwargs={key: torch.bfloat16})
    assert model.transformer.auto_model.dtype == torch.bfloat16
    assert (model.backend, model.inference_path) == ("torch", "torch bf16")  # a dtype asked for: torch
    as_tensor = model.encode(texts, batch_size=4, convert_to_tensor=True)
    assert as_tensor.dtype == torch.float32  # pooled and returned in fp32, not bf16
    tokens = model.encode(texts[:2], output_value="token_embeddings")
    assert all(t.dtype == torch.float32 for t in tokens)
    emb = model.encode(texts, batch_size=4)
    assert emb.dtype == np.float32
    assert not np.array_equal(emb, torch_embeddings)  # it really ran in bf16
    assert min_cosine(emb, torch_embeddings) >= 0.98


def _forward_rows(
    model: SentenceTransformer, texts: list[str], **encode_kwargs: object
) -> list[tuple[int, int]]:
    """The (rows, width) of every batch the encoder ran while encoding ``texts``."""
    shapes: list[tuple[int, int]] = []
    hook = model.transformer.auto_model.register_forward_hook(
        lambda _module, _args, kwargs, _out: shapes.append(tuple(kwargs["input_ids"].shape)),
        with_kwargs=True,
    )
    try:
        model.encode(texts, **encode_kwargs)
    finally:
        hook.remove()
    return shapes


def test_half_encoder_on_cpu_takes_large_token_budget_batches(tiny_hf_folder: Path) -> None:
    from sentencekit.modules.transformer import HALF_CPU_BATCH_SIZE, HALF_CPU_BATCH_TOKENS

    many = [f"a {i}" + " b" * (i % 3) for i in range(600)]  # a few tokens each
    long = ["long " * 200 + str(i) for i in range(40)]
    half = SentenceTransformer(
        str(tiny_hf_folder), device="cpu", model_kwargs={"torch_dtype": torch.bfloat16}
    )
    assert (half[0].default_batch_size, half[0].default_batch_tokens) == (
        HALF_CPU_BATCH_SIZE,
        HALF_CPU_BATCH_TOKENS,
    )
    shapes = _forward_rows(half, many)
    assert max(rows for rows, _ in shapes) == HALF_CPU_BATCH_SIZE  # short texts: the row limit binds
    assert sum(rows for rows, _ in shapes) == len(many)
    shapes = _forward_rows(half, long)
    assert all(rows * width <= HALF_CPU_BATCH_TOKENS for rows, width in shapes)  # long ones: the budget
    assert max(rows for rows, _ in shapes) > 1
    assert max(rows for rows, _ in _forward_rows(half, many, batch_size=32)) == 32  # a given size wins
    rows = [rows for rows, _ in _forward_rows(half, long, max_batch_tokens=100_000)]  # and a given budget:
    assert sum(rows) == 40 and len(rows) == max(1, half[0].parallel_batches)  # one batch, split per core

    full = SentenceTransformer(str(tiny_hf_folder), device="cpu", backend="torch")
    assert (full[0].default_batch_size, full[0].default_batch_tokens) == (32, None)
    assert max(rows for rows, _ in _forward_rows(full, many)) == 32  # fp32 keeps the reference's 32
    same = np.abs(half.encode(many[:64]) - half.encode(many[:64], batch_size=1)).max()
    assert same < 0.02  # the batch plan moves bf16 results only by bf16 rounding


def test_half_encoder_runs_batches_side_by_side_without_changing_torch_threads(tiny_hf_folder: Path) -> None:
    import threading

    from sentencekit.backends.cpu import physical_cores

    bf16 = {"torch_dtype": torch.bfloat16}
    half = SentenceTransformer(str(tiny_hf_folder), device="cpu", model_kwargs=bf16)
    full = SentenceTransformer(str(tiny_hf_folder), device="cpu", backend="torch")
    assert half[0].parallel_batches == physical_cores()
    assert full[0].parallel_batches == 1
    texts = [f"text {i} " + "word " * (i % 40) for i in range(300)]
    before = torch.get_num_threads()
    side_by_side = half.encode(texts)
    assert torch.get_num_threads() == before  # the caller's thread count is untouched
    counts: list[int] = []
    later = threading.Thread(target=lambda: counts.append(torch.get_num_threads()))
    later.start()
    later.join()
    assert counts == [before]  # and so is the count threads started later begin with
    one_at_a_time = np.concatenate([half.encode(texts[i : i + 1]) for i in range(0, 300, 30)])
    assert np.abs(side_by_side[::30] - one_at_a_time).max() < 0.02  # same vectors up to bf16 rounding


@pytest.mark.parametrize("bad", [0, -1, 2.5, "32"])
def test_encode_rejects_a_bad_batch_size(tiny_hf_folder: Path, bad: object) -> None:
    model = SentenceTransformer(str(tiny_hf_folder), device="cpu", backend="torch")
    with pytest.raises(ValueError, match="batch_size must be a positive integer or None"):
        model.encode(["a"], batch_size=bad)  # type: ignore[arg-type]


# --- ONNX Runtime -----------------------------------------------------------------------------------------


@needs_onnx
def test_onnx_fp32_matches_torch(
    exported_folder: Path, texts: list[str], torch_embeddings: np.ndarray
) -> None:
    model = SentenceTransformer(str(exported_folder), device="cpu", backend="onnx")
    assert (model.backend, model.inference_path) == ("onnx", "onnx fp32")
    assert type(model[0]).__name__ == "OnnxTransformer"
    assert model[0].onnx_path == exported_folder / ONNX_FILE
    ops = {node.op_type for node in __import__("onnx").load(str(model[0].onnx_path)).graph.node}
    assert {"Attention", "BiasGelu", "EmbedLayerNormalization"} <= ops  # fused by ONNX Runtime's optimizer
    assert "SkipLayerNormalization" not in ops  # its CPU kernel is slower than Add + LayerNormalization
    plain = SentenceTransformer(
        str(exported_folder), device="cpu", backend="onnx", model_kwargs={"file_name": EXPORT_FILE}
    )
    for batch_size in (1, 4, 32):  # dynamic batch and sequence axes
        for onnx_model in (model, plain):
            emb = onnx_model.encode(texts, batch_size=batch_size)
            assert emb.dtype == np.float32
            assert float(np.abs(emb - torch_embeddings).max()) <= 1e-5
    single = model.encode(texts[0], normalize_embeddings=True)
    assert single.shape == (torch_embeddings.shape[1],)
    assert np.isclose(np.linalg.norm(single), 1.0, atol=1e-5)


@needs_onnx
def test_onnx_int8_is_close_and_different(
    exported_folder: Path, texts: list[str], torch_embeddings: np.ndarray
) -> None:
    model = SentenceTransformer(
        str(exported_folder), device="cpu", backend="onnx", model_kwargs={"file_name": INT8_FILE}
    )
    assert model[0].onnx_path == exported_folder / INT8_FILE
    emb = model.encode(texts, batch_size=4)
    assert float(np.abs(emb - torch_embeddings).max()) > 1e-5  # quantized: not the fp32 graph
    assert min_cosine(emb, torch_embeddings) >= 0.98
    fp32_size = (exported_folder / ONNX_FILE).stat().st_size
    assert (exported_folder / INT8_FILE).stat().st_size < fp32_size


@needs_onnx
def test_second_load_does_not_export_again(exported_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sentencekit.backends import onnx_export

    names = (EXPORT_FILE, ONNX_FILE, INT8_FILE)
    before = {name: (exported_folder / name).stat().st_mtime_ns for name in names}

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("exported again")

    for step in ("export_fp32", "fuse_file", "quantize_file"):
        monkeypatch.setattr(onnx_export, step, fail)
    SentenceTransformer(str(exported_folder), device="cpu", backend="onnx")
    SentenceTransformer(str(exported_folder), device="cpu")  # the default exact path: the same file
    SentenceTransformer(
        str(exported_folder), device="cpu", backend="onnx", model_kwargs={"file_name": INT8_FILE}
    )
    after = {name: (exported_folder / name).stat().st_mtime_ns for name in names}
    assert after == before


@needs_onnx
def test_stale_export_is_redone(exported_folder: Path, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    shutil.copytree(exported_folder, folder)
    for name in (EXPORT_FILE, ONNX_FILE):
        sidecar = folder / (name + ".sentencekit.json")
        recorded = json.loads(sidecar.read_text())
        sidecar.write_text(json.dumps({**recorded, "fingerprint": "0" * 64}))
        (folder / name).write_bytes(b"not an onnx graph")
    model = SentenceTransformer(str(folder), device="cpu", backend="onnx")
    for name in (EXPORT_FILE, ONNX_FILE):
        sidecar = folder / (name + ".sentencekit.json")
        assert json.loads(sidecar.read_text())["fingerprint"] == recorded["fingerprint"]
    assert model.encode(["hello world"]).shape[0] == 1


@needs_onnx
def test_read_only_model_folder_exports_to_the_sentencekit_cache(
    exported_folder: Path, tmp_path: Path
) -> None:
    from sentencekit.packaged import MANIFEST_NAME

    folder = tmp_path / "packaged"
    shutil.copytree(exported_folder, folder, ignore=shutil.ignore_patterns("onnx"))
    (folder / MANIFEST_NAME).write_text("{}")  # a packaged model: sentencekit must not add files to it
    model = SentenceTransformer(str(folder), device="cpu", backend="onnx")
    assert not (folder / "onnx").exists()
    cache_root = tmp_path / "sentencekit_home" / "onnx"
    assert model[0].onnx_path.is_relative_to(cache_root)
    # the cached file is found again by fingerprint
    again = SentenceTransformer(str(folder), device="cpu", backend="onnx")
    assert again[0].onnx_path == model[0].onnx_path


@needs_onnx
def test_foreign_file_without_sidecar_is_used_as_is(
    exported_folder: Path, tmp_path: Path, texts: list[str], torch_embeddings: np.ndarray
) -> None:
    folder = tmp_path / "model"
    shutil.copytree(exported_folder, folder)
    shutil.copy(folder / ONNX_FILE, folder / "onnx" / "custom.onnx")
    model = SentenceTransformer(
        str(folder), device="cpu", backend="onnx", model_kwargs={"file_name": "custom.onnx"}
    )
    assert model[0].onnx_path == folder / "onnx" / "custom.onnx"
    assert float(np.abs(model.encode(texts) - torch_embeddings).max()) <= 1e-5

    (folder / "onnx" / "broken.onnx").write_bytes(b"garbage")
    with pytest.raises(ModelFormatError, match="cannot load"):
        SentenceTransformer(
            str(folder), device="cpu", backend="onnx", model_kwargs={"file_name": "broken.onnx"}
        )


@needs_onnx
def test_default_path_ignores_a_foreign_file_from_other_weights(
    exported_folder: Path, tmp_path: Path, texts: list[str], torch_embeddings: np.ndarray
) -> None:
    # a folder that holds a foreign export (no sidecar) of *other* weights: what a model fine-tuned and saved
    # over an old export looks like
    folder = tmp_path / "model"
    shutil.copytree(exported_folder, folder)
    for name in (EXPORT_FILE, ONNX_FILE):
        (folder / (name + ".sentencekit.json")).unlink()
    other = SentenceTransformer(str(folder), device="cpu", backend="torch")
    with torch.no_grad():
        for parameter in other.transformer.auto_model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    other.save(str(tmp_path / "other"))
    stale = SentenceTransformer(str(tmp_path / "other"), device="cpu", backend="onnx")
    shutil.copy(stale[0].onnx_path, folder / ONNX_FILE)
    foreign_bytes = (folder / ONNX_FILE).read_bytes()

    # asked for by name, the file is used as it is (and gives the other weights' vectors)
    named = SentenceTransformer(str(folder), device="cpu", backend="onnx")
    assert named[0].onnx_path == folder / ONNX_FILE
    assert float(np.abs(named.encode(texts, batch_size=4) - torch_embeddings).max()) > 1e-3
    # the default exact path makes its own file in the cache and stays exact; the foreign file is untouched
    default = SentenceTransformer(str(folder), device="cpu")
    assert default.inference_path == "onnx fp32"
    assert default[0].onnx_path.is_relative_to(tmp_path / "sentencekit_home" / "onnx")
    assert float(np.abs(default.encode(texts, batch_size=4) - torch_embeddings).max()) <= 1e-5
    assert (folder / ONNX_FILE).read_bytes() == foreign_bytes
    assert not (folder / (ONNX_FILE + ".sentencekit.json")).exists()


@needs_onnx
def test_missing_file_and_bad_arguments(exported_folder: Path) -> None:
    with pytest.raises(ModelFormatError, match=r"model_nothere\.onnx.*not found.*model\.onnx"):
        SentenceTransformer(
            str(exported_folder), backend="onnx", model_kwargs={"file_name": "onnx/model_nothere.onnx"}
        )
    with pytest.raises(ValueError, match="not an ONNX file"):
        SentenceTransformer(str(exported_folder), backend="onnx", model_kwargs={"file_name": "model.bin"})
    with pytest.raises(ValueError, match=r"do not apply to backend='onnx'.*file_name"):
        SentenceTransformer(
            str(exported_folder), backend="onnx", model_kwargs={"torch_dtype": torch.bfloat16}
        )
    with pytest.raises(ValueError, match="backend='torch', 'onnx', 'openvino' or 'auto'"):
        SentenceTransformer(str(exported_folder), backend="tensorrt")
    with pytest.raises(ValueError, match="num_threads"):
        SentenceTransformer(str(exported_folder), backend="onnx", model_kwargs={"num_threads": 0})


@needs_onnx
def test_export_functions_write_reference_file_names(exported_folder: Path, tmp_path: Path) -> None:
    from sentencekit import export_dynamic_quantized_onnx_model, export_optimized_onnx_model

    model = SentenceTransformer(str(exported_folder), device="cpu", backend="torch")
    before = model.encode(["a dog plays with a red ball", "hello"])
    target = tmp_path / "saved"
    written = export_dynamic_quantized_onnx_model(model, "avx512_vnni", target)
    assert written == target / INT8_FILE and written.is_file()
    optimized = export_optimized_onnx_model(model, "O2", str(target))
    assert optimized == target / "onnx" / "model_O2.onnx" and optimized.is_file()
    # exporting traces a copy: the live torch model gives the same vectors afterwards
    np.testing.assert_array_equal(model.encode(["a dog plays with a red ball", "hello"]), before)
    with pytest.raises(ValueError, match="O1"):
        export_optimized_onnx_model(model, "O4", target)
    with pytest.raises(ValueError, match="avx512_vnni"):
        export_dynamic_quantized_onnx_model(model, "sse", target)
    with pytest.raises(ValueError, match="push_to_hub"):
        export_dynamic_quantized_onnx_model(model, "avx2", target, push_to_hub=True)


@needs_onnx
def test_save_keeps_the_onnx_file(
    exported_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sentencekit.backends import onnx_export

    model = SentenceTransformer(
        str(exported_folder), device="cpu", backend="onnx", model_kwargs={"file_name": INT8_FILE}
    )
    model.save(tmp_path / "saved")
    assert (tmp_path / "saved" / INT8_FILE).read_bytes() == (exported_folder / INT8_FILE).read_bytes()

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("exported again")

    for step in ("export_fp32", "fuse_file", "quantize_file"):
        monkeypatch.setattr(onnx_export, step, fail)
    again = SentenceTransformer(
        str(tmp_path / "saved"), device="cpu", backend="onnx", model_kwargs={"file_name": INT8_FILE}
    )
    assert again[0].onnx_path == tmp_path / "saved" / INT8_FILE
    np.testing.assert_array_equal(again.encode(["hello world"]), model.encode(["hello world"]))


@needs_onnx
def test_embedding_cache_keys_tell_onnx_graphs_apart(exported_folder: Path) -> None:
    from sentencekit.cache.keys import KeySettings, key_prefix

    settings = KeySettings(prompt=None, truncate_dim=None, normalize=False, device_type="cpu")
    prefixes = {
        key_prefix(SentenceTransformer(str(exported_folder), device="cpu", **kwargs), settings).hexdigest()
        for kwargs in (
            {"backend": "torch"},
            {"backend": "onnx"},
            {"backend": "onnx", "model_kwargs": {"file_name": INT8_FILE}},
        )
    }
    assert len(prefixes) == 3


def test_missing_onnx_extra_names_the_pip_command(
    tiny_hf_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "model"
    shutil.copytree(tiny_hf_folder, folder)
    for module in ("onnxruntime", "onnxscript", "onnx"):
        monkeypatch.setitem(sys.modules, module, None)  # import of it raises ImportError
    with pytest.raises(MissingDependencyError, match=r"sentencekit\[onnx\]"):
        SentenceTransformer(str(folder), device="cpu", backend="onnx")
    # the default exact path steps aside without the extra: torch, and loading still works
    model = SentenceTransformer(str(folder), device="cpu")
    assert (model.backend, model.inference_path) == ("torch", "torch fp32")


# --- the default exact path -------------------------------------------------------------------------------


@needs_onnx
def test_default_is_the_exact_onnx_path(
    exported_folder: Path, texts: list[str], torch_embeddings: np.ndarray
) -> None:
    model = SentenceTransformer(str(exported_folder), device="cpu")
    assert (model.backend, model.inference_path) == ("onnx", "onnx fp32")
    assert model[0].onnx_path == exported_folder / ONNX_FILE and model[0].implicit
    assert float(np.abs(model.encode(texts, batch_size=4) - torch_embeddings).max()) <= 1e-5
    tokens = model.encode(texts[:3], output_value="token_embeddings")
    expected = SentenceTransformer(str(exported_folder), device="cpu", backend="torch").encode(
        texts[:3], output_value="token_embeddings"
    )
    for got, want in zip(tokens, expected, strict=True):
        assert got.shape == want.shape and float((got - want).abs().max()) <= 1e-5


@needs_onnx
def test_default_falls_back_to_torch_when_export_fails(
    tiny_hf_folder: Path,
    tmp_path: Path,
    texts: list[str],
    torch_embeddings: np.ndarray,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from sentencekit.backends import onnx_export

    folder = tmp_path / "model"
    shutil.copytree(tiny_hf_folder, folder)

    def broken(*args: object, **kwargs: object) -> None:
        raise ModelFormatError("this architecture does not export")

    monkeypatch.setattr(onnx_export, "export_fp32", broken)
    with caplog.at_level("WARNING", logger="sentencekit.backends.select"):
        model = SentenceTransformer(str(folder), device="cpu")
    assert (model.backend, model.inference_path) == ("torch", "torch fp32")
    assert "does not export" in caplog.text
    np.testing.assert_allclose(model.encode(texts, batch_size=4), torch_embeddings, atol=1e-6)
    with pytest.raises(ModelFormatError, match="does not export"):  # asked for by name: an error
        SentenceTransformer(str(folder), device="cpu", backend="onnx")


def test_default_stays_torch_where_onnx_does_not_apply(tiny_hf_folder: Path) -> None:
    from sentencekit.models import Pooling, Transformer

    built = SentenceTransformer(modules=[Transformer(str(tiny_hf_folder)), Pooling(32)], device="cpu")
    assert built.inference_path == "torch fp32"  # built from modules: about to be trained, keep torch
    meta = SentenceTransformer(str(tiny_hf_folder), device="meta")
    assert meta.backend == "torch"  # not a CPU


@needs_onnx
def test_onnx_encoder_hands_over_to_torch_when_weights_change(
    exported_folder: Path, texts: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    model = SentenceTransformer(str(exported_folder), device="cpu")
    encoder = model[0]
    assert encoder.uses_session() is False  # gradients are on outside encode()
    with torch.inference_mode():
        assert encoder.uses_session()
    # training mode or gradients: torch, so that a loss can back-propagate
    model.train()
    features = model.tokenize(texts[:2])
    out = model(features)["sentence_embedding"]
    assert out.requires_grad
    model.eval()
    # weights changed after export (a training step, load_state_dict): torch from then on, exactly
    with torch.no_grad():
        encoder.auto_model.embeddings.word_embeddings.weight.mul_(1.5)
    with caplog.at_level("WARNING", logger="sentencekit.backends.onnx"):
        changed = model.encode(texts, batch_size=4)
    assert "weights changed" in caplog.text
    reference = SentenceTransformer(str(exported_folder), device="cpu", backend="torch")
    with torch.no_grad():
        reference[0].auto_model.embeddings.word_embeddings.weight.mul_(1.5)
    np.testing.assert_allclose(changed, reference.encode(texts, batch_size=4), atol=1e-6)
    with torch.inference_mode():
        assert not encoder.uses_session()


@needs_onnx
def test_a_fused_optimizer_step_is_seen_as_a_weight_change(
    exported_folder: Path, texts: list[str], torch_embeddings: np.ndarray
) -> None:
    # fused AdamW writes the weights without bumping their in-place version: a user's own loop with it
    model = SentenceTransformer(str(exported_folder), device="cpu")
    before = model.encode(texts, batch_size=4)
    assert float(np.abs(before - torch_embeddings).max()) <= 1e-5
    parameters = list(model.parameters())
    optimizer = torch.optim.AdamW(parameters, lr=1e-2, fused=True)
    versions = [p._version for p in parameters]
    for p in parameters:
        p.grad = torch.ones_like(p)
    optimizer.step()
    assert [p._version for p in parameters] == versions  # why the version alone is not enough
    after = model.encode(texts, batch_size=4)
    with torch.inference_mode():
        assert not model[0].uses_session()
    expected = model[0].auto_model  # the torch encoder holds the stepped weights
    reference = SentenceTransformer(str(exported_folder), device="cpu", backend="torch")
    reference[0].auto_model.load_state_dict(expected.state_dict())
    np.testing.assert_allclose(after, reference.encode(texts, batch_size=4), atol=1e-6)
    assert float(np.abs(after - before).max()) > 1e-3


@needs_onnx
def test_onnx_models_deep_copy_and_pickle(exported_folder: Path, texts: list[str]) -> None:
    import copy
    import pickle

    model = SentenceTransformer(str(exported_folder), device="cpu")
    expected = model.encode(texts)
    for clone in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        assert clone[0].session is None  # reopened on first use
        np.testing.assert_allclose(clone.encode(texts), expected, atol=1e-6)
        with torch.inference_mode():
            assert clone[0].uses_session()


@needs_onnx
def test_parallel_batches_give_the_sequential_result(exported_folder: Path, texts: list[str]) -> None:
    from sentencekit.encoding.batching import split_for_workers

    model = SentenceTransformer(str(exported_folder), device="cpu", backend="onnx")
    assert model[0].parallel_batches >= 1
    model[0].batch_workers = 1
    sequential = model.encode(texts, batch_size=3)
    model[0].batch_workers = 3
    assert model[0].parallel_batches == 3
    np.testing.assert_allclose(model.encode(texts, batch_size=3), sequential, atol=1e-6)
    np.testing.assert_allclose(model.encode(texts, batch_size=64), sequential, atol=1e-6)  # one batch, split
    assert model.encode(texts[0]).shape == sequential[0].shape
    # a token budget per batch unless the caller sets one (small batches stay in cache on one thread)
    from sentencekit.backends.onnx import BATCH_TOKENS
    from sentencekit.encoding import loop

    budgets: list[int | None] = []
    real = loop.length_sorted_batches

    def spy(lengths: list[int], batch_size: int, max_batch_tokens: int | None = None) -> list[np.ndarray]:
        budgets.append(max_batch_tokens)
        return real(lengths, batch_size, max_batch_tokens)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(loop, "length_sorted_batches", spy)
        model.encode(texts)
        model.encode(texts, max_batch_tokens=64)
        SentenceTransformer(str(exported_folder), device="cpu", backend="torch").encode(texts)
    assert budgets == [BATCH_TOKENS, 64, None]
    halves = split_for_workers([np.arange(7), np.arange(7, 9)], 4)
    assert [len(b) for b in halves] == [2, 2, 3, 2]
    assert sorted(np.concatenate(halves).tolist()) == list(range(9))
    assert [len(b) for b in split_for_workers([np.arange(1)], 4)] == [1]  # an input is never split


# --- int8 per token and backend="auto" ----------------------------------------------------------------------


@needs_onnx
def test_int8_graph_quantizes_per_token(exported_folder: Path) -> None:
    import onnx

    ops = [node.op_type for node in onnx.load(str(exported_folder / INT8_FILE)).graph.node]
    assert "QAttention" in ops  # the fused attention: ONNX Runtime's int8 attention
    assert ops.count("MatMulIntegerToFloat") >= 4  # 2 layers x (attention output, FFN in, FFN out)
    assert "MatMul" not in ops  # no fp32 weight product left


@needs_onnx
def test_auto_picks_the_fastest_close_path(
    exported_folder: Path,
    texts: list[str],
    torch_embeddings: np.ndarray,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sentencekit.backends import cpu, probe

    def machine(int8: bool, bf16: bool, amx: bool = False) -> None:
        flags = frozenset({"avx512_vnni", *(["amx_bf16", "amx_int8"] if amx else [])})
        info = cpu.CpuInfo(physical_cores=2, native_bf16=bf16, int8_dot=int8, flags=flags)
        monkeypatch.setattr(probe, "cpu_info", lambda: info)

    machine(int8=True, bf16=True)
    monkeypatch.setattr(probe, "openvino_installed", lambda: False)  # (OpenVINO int8 first: its own tests)
    model = SentenceTransformer(str(exported_folder), device="cpu", backend="auto")
    assert (model.backend, model.inference_path) == ("onnx", "onnx int8")
    assert model[0].onnx_path.name == "model_qint8_avx512_vnni.onnx"
    emb = model.encode(texts, batch_size=4)
    assert float(np.abs(emb - torch_embeddings).max()) > 1e-5  # really int8
    assert min_cosine(emb, torch_embeddings) >= 0.98
    stored = json.loads((exported_folder / (INT8_FILE + ".sentencekit.json")).read_text())["probe"]
    # the check ran once and was kept, for this runtime and CPU (beside results other tests kept)
    (result,) = [
        v
        for k, v in stored.items()
        if k.startswith("onnx int8; onnxruntime ") and k.endswith("; avx512_vnni")
    ]
    assert result["min_cosine"] >= probe.PROBE_MIN_COSINE

    machine(int8=False, bf16=True)
    model = SentenceTransformer(str(exported_folder), device="cpu", backend="auto")
    assert (model.backend, model.inference_path) == ("torch", "torch bf16")
    assert min_cosine(model.encode(texts, batch_size=4), torch_embeddings) >= 0.98

    machine(int8=True, bf16=True, amx=True)  # AMX: bf16 is tried first, as it was the faster there
    monkeypatch.setattr(probe, "openvino_installed", lambda: False)  # (OpenVINO first: its own test)
    model = SentenceTransformer(str(exported_folder), device="cpu", backend="auto")
    assert (model.backend, model.inference_path) == ("torch", "torch bf16")
    assert model[0].default_batch_size == 256  # with its own batch plan
    monkeypatch.undo()

    machine(int8=True, bf16=True)
    monkeypatch.setattr(probe, "openvino_installed", lambda: False)
    monkeypatch.setattr(probe, "PROBE_MIN_COSINE", 1.01)  # nothing approximate is close enough
    model = SentenceTransformer(str(exported_folder), device="cpu", backend="auto")
    assert (model.backend, model.inference_path) == ("onnx", "onnx fp32")
    assert float(np.abs(model.encode(texts, batch_size=4) - torch_embeddings).max()) <= 1e-5


needs_openvino = pytest.mark.skipif(
    importlib.util.find_spec("openvino") is None,
    reason='OpenVINO is not installed (pip install "sentencekit[openvino]")',
)


@needs_onnx
@needs_openvino
def test_auto_on_amx_runs_openvino_first(
    exported_folder: Path,
    texts: list[str],
    torch_embeddings: np.ndarray,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sentencekit.backends import cpu, probe
    from sentencekit.backends.openvino import OpenVinoTransformer

    amx = cpu.CpuInfo(
        physical_cores=2, native_bf16=True, int8_dot=True, flags=frozenset({"amx_bf16", "avx512_vnni"})
    )
    monkeypatch.setattr(probe, "cpu_info", lambda: amx)
    model = SentenceTransformer(str(exported_folder), device="cpu", backend="auto")
    # bf16 where this CPU multiplies bf16 in hardware; OpenVINO compiles f32 elsewhere
    assert model.backend == "openvino" and model.inference_path in ("openvino bf16", "openvino f32")
    encoder = model[0]
    assert isinstance(encoder, OpenVinoTransformer) and encoder.onnx_path.name == "model.onnx"
    assert (encoder.default_batch_size, encoder.default_batch_tokens) == (256, 2048)
    assert encoder.parallel_batches == cpu.physical_cores()
    emb = model.encode(texts)
    assert min_cosine(emb, torch_embeddings) >= 0.98
    if model.inference_path == "openvino bf16":
        assert float(np.abs(emb - torch_embeddings).max()) > 1e-5  # really bf16
    copied = copy.deepcopy(model)  # the compiled model is not copied: the copy compiles its own
    assert np.abs(copied.encode(texts) - emb).max() < 1e-6
    assert encoder.cache_identity()["backend"] == model.inference_path  # "openvino bf16" or "openvino f32"

    with torch.no_grad():  # changed weights: torch takes over, exact again
        encoder.auto_model.embeddings.word_embeddings.weight[5] += 0.5
    changed = SentenceTransformer(str(exported_folder), device="cpu", backend="torch")
    with torch.no_grad():
        changed[0].auto_model.embeddings.word_embeddings.weight[5] += 0.5
    assert np.abs(model.encode(texts) - changed.encode(texts)).max() < 1e-5


@needs_onnx
@needs_openvino
def test_openvino_backend_by_name_is_exact_and_reads_the_references_file(
    exported_folder: Path, texts: list[str], torch_embeddings: np.ndarray, tmp_path: Path
) -> None:
    import openvino as ov

    from sentencekit.backends.openvino import OpenVinoTransformer

    model = SentenceTransformer(str(exported_folder), device="cpu", backend="openvino")
    assert (model.backend, model.inference_path) == ("openvino", "openvino f32")
    encoder = model[0]
    assert isinstance(encoder, OpenVinoTransformer) and encoder.onnx_path.name == "model.onnx"
    assert (encoder.default_batch_size, encoder.default_batch_tokens) == (32, 512)  # ONNX Runtime's fp32 plan
    emb = model.encode(texts)
    assert float(np.abs(emb - torch_embeddings).max()) <= 1e-5  # f32 unless asked: exact

    hint = {"ov_config": {"INFERENCE_PRECISION_HINT": "bf16"}}
    bf16 = SentenceTransformer(str(exported_folder), device="cpu", backend="openvino", model_kwargs=hint)
    assert bf16.inference_path in ("openvino bf16", "openvino f32")  # f32 where the CPU has no bf16
    assert min_cosine(bf16.encode(texts), torch_embeddings) >= 0.98

    # the reference's file: openvino/openvino_model.xml and .bin, used when the folder has it
    folder = tmp_path / "with_ir"
    shutil.copytree(exported_folder, folder)
    (folder / "openvino").mkdir()
    ir_model = ov.convert_model(str(encoder.onnx_path))
    ov.save_model(ir_model, str(folder / "openvino" / "openvino_model.xml"), compress_to_fp16=False)
    ir = SentenceTransformer(str(folder), device="cpu", backend="openvino")
    assert ir[0].onnx_path == folder / "openvino" / "openvino_model.xml"
    assert float(np.abs(ir.encode(texts) - torch_embeddings).max()) <= 1e-5
    assert ir[0].cache_identity() != encoder.cache_identity()  # another graph file
    ir.save(str(tmp_path / "saved"))  # asked for by name: the IR goes with the model
    assert {p.name for p in (tmp_path / "saved" / "openvino").iterdir()} == {
        "openvino_model.xml",
        "openvino_model.bin",
    }
    again = SentenceTransformer(str(tmp_path / "saved"), device="cpu", backend="openvino")
    assert again[0].onnx_path.parent == tmp_path / "saved" / "openvino"
    assert float(np.abs(again.encode(texts) - torch_embeddings).max()) <= 1e-5

    with pytest.raises(ModelFormatError, match=r"nothere\.xml \(with its \.bin beside it\) is not in"):
        SentenceTransformer(
            str(folder), backend="openvino", model_kwargs={"file_name": "openvino/nothere.xml"}
        )
    with pytest.raises(ValueError, match=r"neither an OpenVINO \.xml nor an \.onnx file"):
        SentenceTransformer(str(folder), backend="openvino", model_kwargs={"file_name": "model.bin"})
    with pytest.raises(ValueError, match="must be a dict"):
        SentenceTransformer(str(folder), backend="openvino", model_kwargs={"ov_config": "bf16"})
    with pytest.raises(ValueError, match=r"do not apply to backend='openvino'.*ov_config"):
        SentenceTransformer(str(folder), backend="openvino", model_kwargs={"num_threads": 2})


def test_openvino_missing_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sentencekit.backends.openvino import CompiledEncoder

    monkeypatch.setitem(sys.modules, "openvino", None)
    with pytest.raises(MissingDependencyError, match=r"sentencekit\[openvino\]"):
        CompiledEncoder(tmp_path / "model.onnx", streams=2)


# --- CrossEncoder -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ce_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from test_cross_encoder import write_tiny_cross_encoder

    return write_tiny_cross_encoder(tmp_path_factory.mktemp("ce_onnx"), 3, seed=3)


@pytest.fixture
def ce_copy(ce_folder: Path, tmp_path: Path) -> Path:
    """A copy of the tiny cross-encoder's folder, where a test may write ONNX files."""
    return Path(shutil.copytree(ce_folder, tmp_path / "ce"))


CE_PAIRS = [
    ("A man is eating food.", "A man eats a piece of bread."),
    ("hello", "world"),
    ("the red car", " ".join(["a quick brown fox jumps over the lazy dog"] * 10)),  # truncated
    ("", "an empty first text"),
] * 3


@needs_onnx
def test_cross_encoder_default_is_the_exact_onnx_path(ce_copy: Path) -> None:
    from sentencekit.cross_encoder import CrossEncoder

    folder = ce_copy
    torch_model = CrossEncoder(folder, device="cpu", backend="torch")
    assert (torch_model.backend, torch_model.inference_path) == ("torch", "torch fp32")
    expected = torch_model.predict(CE_PAIRS, batch_size=2)
    model = CrossEncoder(folder, device="cpu")
    assert (model.backend, model.inference_path) == ("onnx", "onnx fp32")
    assert (folder / ONNX_FILE).is_file()
    for batch_size in (1, 2, 32):  # 32: one batch, split between the workers
        np.testing.assert_allclose(
            model.predict(CE_PAIRS, batch_size=batch_size), expected, atol=1e-5, rtol=0
        )
    int8 = CrossEncoder(folder, device="cpu", backend="onnx", model_kwargs={"file_name": INT8_FILE})
    assert int8.inference_path == "onnx int8"
    got = int8.predict(CE_PAIRS)
    assert not np.array_equal(got, expected)  # approximate: within 5% of the logits' range
    assert np.abs(got - expected).max() < 0.05 * np.abs(expected).max()
    # training changes the weights: predict goes back to torch, exactly
    with torch.no_grad():
        model.model.classifier.bias.add_(1.0)
        torch_model.model.classifier.bias.add_(1.0)
    np.testing.assert_allclose(model.predict(CE_PAIRS), torch_model.predict(CE_PAIRS), atol=1e-6, rtol=0)


@needs_onnx
def test_cross_encoder_exports_the_first_token_view_and_keeps_the_full_models_logits(
    ce_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sentencekit.backends import onnx_scorer
    from sentencekit.backends.onnx_export import model_fingerprint
    from sentencekit.cross_encoder import CrossEncoder

    folder = ce_copy
    model = CrossEncoder(folder, device="cpu")
    inputs = ["input_ids", "attention_mask"] + (["token_type_ids"] if model._with_token_types else [])
    source = onnx_scorer.classifier_source(model.model, inputs)
    assert source.variant == "first-token" and source.model is not model.model
    sidecar = json.loads((folder / (ONNX_FILE + ".sentencekit.json")).read_text())
    assert sidecar["fingerprint"] == model_fingerprint(source)  # the graph is the view's
    # the full model's own logits (not the torch path's, which runs a first-token view too)
    features = model.tokenizer(
        [a for a, _ in CE_PAIRS], [b for _, b in CE_PAIRS], padding=True, truncation=True, return_tensors="pt"
    )
    with torch.inference_mode():
        full = model.model(**features).logits.numpy()
    np.testing.assert_allclose(model.predict(CE_PAIRS, activation_fn=torch.nn.Identity()), full, atol=1e-5)

    # a model whose view does not agree is exported whole, under the plain fingerprint
    monkeypatch.setattr("sentencekit.cross_encoder.first_token.views_agree", lambda *args: False)
    plain = onnx_scorer.classifier_source(model.model, inputs)
    assert plain.variant == "" and plain.model is model.model
    assert model_fingerprint(plain) != model_fingerprint(source)


@needs_onnx
@needs_openvino
def test_cross_encoder_auto_on_amx_runs_openvino_within_its_bound(
    ce_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import copy

    from sentencekit.backends import cpu, fast_scorer, openvino_scorer
    from sentencekit.cross_encoder import CrossEncoder

    folder = ce_copy
    expected = CrossEncoder(folder, device="cpu", backend="torch").predict(CE_PAIRS)
    flags = frozenset({"amx_bf16", "avx512_bf16", "avx512_vnni"})
    amx = cpu.CpuInfo(physical_cores=2, native_bf16=True, int8_dot=True, flags=flags)
    monkeypatch.setattr(fast_scorer, "cpu_info", lambda: amx)
    # this tiny model's widened layers move its bf16 logits by ~3% of their spread on the probe pairs, which
    # the default bound (1%) refuses: allow 10% to see the path run, and hold it to that on other pairs
    monkeypatch.setattr(fast_scorer, "PROBE_MAX_LOGIT_ERROR", 0.1)
    model = CrossEncoder(folder, device="cpu", backend="auto")
    # bf16 where this CPU multiplies bf16 in hardware; OpenVINO compiles f32 elsewhere
    assert model.backend == "openvino" and model.inference_path in ("openvino bf16", "openvino f32")
    scorer = model._scoring_model()
    assert isinstance(scorer, openvino_scorer.OpenVinoScorer) and scorer.onnx_path.name == "model.onnx"
    assert scorer.parallel_batches == cpu.physical_cores()
    got = model.predict(CE_PAIRS)
    spread = expected.max(axis=0) - expected.min(axis=0)
    assert (np.abs(got - expected).max(axis=0) <= 0.1 * spread).all()
    if model.inference_path == "openvino bf16":
        assert np.abs(got - expected).max() > 1e-6  # really bf16
    clone = copy.deepcopy(model)  # the compiled model is not copied: the copy compiles its own
    np.testing.assert_allclose(clone.predict(CE_PAIRS), got, atol=1e-6)

    with torch.no_grad():  # changed weights: torch takes over, exact again
        model.model.classifier.bias.add_(1.0)
    np.testing.assert_allclose(model.predict(CE_PAIRS), expected + 1.0, atol=1e-5)

    monkeypatch.setattr(fast_scorer, "PROBE_MAX_LOGIT_ERROR", -1.0)  # nothing approximate passes
    exact = CrossEncoder(folder, device="cpu", backend="auto")
    assert (exact.backend, exact.inference_path) == ("onnx", "onnx fp32")
    no_bf16 = cpu.CpuInfo(physical_cores=2, native_bf16=False, int8_dot=True, flags=frozenset({"avx2"}))
    monkeypatch.setattr(fast_scorer, "cpu_info", lambda: no_bf16)
    monkeypatch.setattr(fast_scorer, "PROBE_MAX_LOGIT_ERROR", 0.1)
    other = CrossEncoder(folder, device="cpu", backend="auto")
    assert (other.backend, other.inference_path) == ("onnx", "onnx fp32")  # nothing faster to try


@needs_onnx
def test_cross_encoder_auto_with_bf16_and_no_amx_runs_a_torch_bf16_copy(
    ce_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import copy

    from sentencekit.backends import cpu, fast_scorer
    from sentencekit.cross_encoder import CrossEncoder

    folder = ce_copy
    torch_model = CrossEncoder(folder, device="cpu", backend="torch")
    expected = torch_model.predict(CE_PAIRS)
    zen = cpu.CpuInfo(physical_cores=2, native_bf16=True, int8_dot=True, flags=frozenset({"avx512_bf16"}))
    monkeypatch.setattr(fast_scorer, "cpu_info", lambda: zen)
    monkeypatch.setattr(fast_scorer, "PROBE_MAX_LOGIT_ERROR", 0.1)  # as above: this tiny model moves ~3%
    model = CrossEncoder(folder, device="cpu", backend="auto")
    assert (model.backend, model.inference_path) == ("torch", "torch bf16")
    scorer = model._scoring_model()
    assert isinstance(scorer, fast_scorer.TorchHalfScorer)
    assert (scorer.parallel_batches, scorer.default_batch_tokens) == (cpu.physical_cores(), 2048)
    assert next(model.model.parameters()).dtype == torch.float32  # the copy is bf16, the model is not
    half = scorer.session.model  # the copy scores through its first-token view
    assert type(half.bert.encoder.layer[-1]).__name__ == "_FirstTokenLayer"
    got = model.predict(CE_PAIRS, batch_size=2)  # several batches, side by side
    spread = expected.max(axis=0) - expected.min(axis=0)
    assert (np.abs(got - expected).max(axis=0) <= 0.1 * spread).all()
    assert np.abs(got - expected).max() > 1e-6  # really bf16
    np.testing.assert_allclose(model.predict(CE_PAIRS, batch_size=32), got, atol=0.02 * spread.max())
    clone = copy.deepcopy(model)  # the copy makes its own bf16 copy
    np.testing.assert_allclose(clone.predict(CE_PAIRS, batch_size=2), got, atol=1e-6)
    with torch.no_grad():  # changed weights: the fp32 model takes over, exact again
        model.model.classifier.bias.add_(1.0)
    np.testing.assert_allclose(model.predict(CE_PAIRS), expected + 1.0, atol=1e-5)


@needs_onnx
@needs_openvino
def test_cross_encoder_openvino_backend_by_name_is_exact(ce_copy: Path) -> None:
    from sentencekit.cross_encoder import CrossEncoder

    folder = ce_copy
    expected = CrossEncoder(folder, device="cpu", backend="torch").predict(CE_PAIRS)
    model = CrossEncoder(folder, device="cpu", backend="openvino")
    assert (model.backend, model.inference_path) == ("openvino", "openvino f32")
    np.testing.assert_allclose(model.predict(CE_PAIRS), expected, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="do not apply to backend='openvino'"):
        CrossEncoder(folder, device="cpu", backend="openvino", model_kwargs={"provider": "x"})
    # an encoder's graph given to a cross-encoder: its output is no logits
    import openvino as ov

    encoder_graph = SentenceTransformer(str(folder), device="cpu", backend="openvino")[0].onnx_path
    (folder / "openvino").mkdir()
    ov.save_model(ov.convert_model(str(encoder_graph)), str(folder / "openvino" / "encoder.xml"))
    with pytest.raises(ModelFormatError, match=r"expected logits \(batch, labels\)"):
        CrossEncoder(folder, backend="openvino", model_kwargs={"file_name": "openvino/encoder.xml"})


def test_logit_error_is_relative_to_each_labels_spread() -> None:
    from sentencekit.backends.fast_scorer import logit_error

    reference = torch.tensor([[0.0, 10.0], [1.0, 30.0], [2.0, 20.0]])
    assert logit_error(reference, reference) == 0.0
    moved = reference + torch.tensor([[0.1, 0.0], [0.0, -0.4], [0.0, 0.0]])
    assert logit_error(moved, reference) == pytest.approx(0.05)  # 0.1 of 2 beats 0.4 of 20
    constant = torch.ones(3, 1)
    assert logit_error(constant, constant) == 0.0
    assert logit_error(constant + 1e-3, constant) == float("inf")


@needs_onnx
def test_cross_encoder_falls_back_to_torch_when_export_fails(
    ce_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import copy

    from sentencekit.backends import onnx_export
    from sentencekit.cross_encoder import CrossEncoder

    folder = ce_copy
    model = CrossEncoder(folder, device="cpu")
    clone = copy.deepcopy(model)  # the session is dropped and reopened on first use
    np.testing.assert_allclose(clone.predict(CE_PAIRS), model.predict(CE_PAIRS), atol=1e-6)

    def broken(*args: object, **kwargs: object) -> None:
        raise ModelFormatError("this architecture does not export")

    shutil.rmtree(folder / "onnx")
    monkeypatch.setattr(onnx_export, "export_fp32", broken)
    fallback = CrossEncoder(folder, device="cpu")
    assert (fallback.backend, fallback.inference_path) == ("torch", "torch fp32")
    with pytest.raises(ModelFormatError, match="does not export"):
        CrossEncoder(folder, device="cpu", backend="onnx")


@needs_onnx
def test_smoothing_shrinks_the_int8_error_of_outlier_channels(tmp_path: Path, one_torch_thread: None) -> None:
    """Feed-forward channels far larger than the rest (as in all-mpnet-base-v2) waste int8 levels; smoothing
    with calibration moves their range into the weights and brings the graph closer to fp32."""
    from transformers import BertModel

    from sentencekit.backends.onnx import open_session
    from sentencekit.backends.onnx_quantize import quantize_per_token

    folder = _write_tiny_bert(tmp_path / "outliers")
    encoder = BertModel.from_pretrained(str(folder))
    with torch.no_grad():
        for layer in encoder.encoder.layer:
            for channel in (3, 17):  # two GELU outputs tens of times larger than the others
                layer.intermediate.dense.weight[channel] *= 40
                layer.intermediate.dense.bias[channel] += 20
    encoder.save_pretrained(str(folder))
    transformer = SentenceTransformer(str(folder), device="cpu", backend="onnx")[0]
    fp32_path = transformer.onnx_path
    feeds = [
        {name: value.numpy() for name, value in transformer.tokenize([text]).items()}
        for text in [*SHORT_TEXTS, "a", "the red car and the blue car"]
    ]
    quantize_per_token(fp32_path, tmp_path / "plain.onnx")
    quantize_per_token(fp32_path, tmp_path / "smoothed.onnx", calibration=feeds)

    def worst_cosine(path: Path) -> float:
        exact, candidate = open_session(fp32_path), open_session(path)
        worst = 1.0
        for feed in feeds:
            a, b = exact.run(None, feed)[0][0], candidate.run(None, feed)[0][0]
            cosine = (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)
            worst = min(worst, float(cosine.min()))
        return worst

    import onnx

    def smoothing_nodes(path: Path) -> int:
        return sum(1 for n in onnx.load(str(path)).graph.node if n.op_type == "Mul" and "xsm" in n.output[0])

    assert smoothing_nodes(tmp_path / "plain.onnx") == 0
    assert smoothing_nodes(tmp_path / "smoothed.onnx") == 2  # one per layer's feed-forward output
    plain_error, smoothed_error = (
        1 - worst_cosine(tmp_path / "plain.onnx"),
        1 - worst_cosine(tmp_path / "smoothed.onnx"),
    )
    assert smoothed_error < plain_error / 2, (plain_error, smoothed_error)


@needs_onnx
def test_default_int8_file_is_smoothed_on_the_probe_texts(exported_folder: Path) -> None:
    import onnx

    nodes = onnx.load(str(exported_folder / INT8_FILE)).graph.node
    assert sum(1 for n in nodes if n.op_type == "Mul" and "xsm" in n.output[0]) == 2  # tiny model: 2 layers
