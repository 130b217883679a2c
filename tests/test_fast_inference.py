"""Fast CPU paths: bf16 encoder, ONNX Runtime fp32 and int8, export caching, and their errors (tiny model)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from sentencekit import SentenceTransformer
from sentencekit.errors import MissingDependencyError, ModelFormatError

ONNX_FILE = "onnx/model.onnx"
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


def _min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return float((a * b).sum(axis=1).min())


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Exports that cannot go into a model folder land in a per-test cache, never the user's."""
    monkeypatch.setenv("SENTENCEKIT_HOME", str(tmp_path / "sentencekit_home"))


@pytest.fixture(scope="module")
def texts(sample_texts: list[str]) -> list[str]:
    # varied lengths and batch shapes: padded batches, a one-token-long text, a truncated one
    return [*sample_texts, "a", "dog", "the red car and the blue car"]


@pytest.fixture(scope="module")
def torch_embeddings(tiny_hf_folder: Path, texts: list[str], one_torch_thread: None) -> np.ndarray:
    return SentenceTransformer(str(tiny_hf_folder), device="cpu").encode(texts, batch_size=4)


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
    as_tensor = model.encode(texts, batch_size=4, convert_to_tensor=True)
    assert as_tensor.dtype == torch.float32  # pooled and returned in fp32, not bf16
    tokens = model.encode(texts[:2], output_value="token_embeddings")
    assert all(t.dtype == torch.float32 for t in tokens)
    emb = model.encode(texts, batch_size=4)
    assert emb.dtype == np.float32
    assert not np.array_equal(emb, torch_embeddings)  # it really ran in bf16
    assert _min_cosine(emb, torch_embeddings) >= 0.98


# --- ONNX Runtime -----------------------------------------------------------------------------------------


@needs_onnx
def test_onnx_fp32_matches_torch(
    exported_folder: Path, texts: list[str], torch_embeddings: np.ndarray
) -> None:
    model = SentenceTransformer(str(exported_folder), device="cpu", backend="onnx")
    assert model.backend == "onnx"
    assert type(model[0]).__name__ == "OnnxTransformer"
    assert model[0].onnx_path == exported_folder / ONNX_FILE
    for batch_size in (1, 4, 32):  # dynamic batch and sequence axes
        emb = model.encode(texts, batch_size=batch_size)
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
    assert _min_cosine(emb, torch_embeddings) >= 0.98
    fp32_size = (exported_folder / ONNX_FILE).stat().st_size
    assert (exported_folder / INT8_FILE).stat().st_size < fp32_size


@needs_onnx
def test_second_load_does_not_export_again(exported_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sentencekit.backends import onnx_export

    before = {name: (exported_folder / name).stat().st_mtime_ns for name in (ONNX_FILE, INT8_FILE)}

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("exported again")

    monkeypatch.setattr(onnx_export, "export_fp32", fail)
    monkeypatch.setattr(onnx_export, "quantize_file", fail)
    SentenceTransformer(str(exported_folder), device="cpu", backend="onnx")
    SentenceTransformer(
        str(exported_folder), device="cpu", backend="onnx", model_kwargs={"file_name": INT8_FILE}
    )
    after = {name: (exported_folder / name).stat().st_mtime_ns for name in (ONNX_FILE, INT8_FILE)}
    assert after == before


@needs_onnx
def test_stale_export_is_redone(exported_folder: Path, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    shutil.copytree(exported_folder, folder)
    sidecar = folder / (ONNX_FILE + ".sentencekit.json")
    recorded = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps({**recorded, "fingerprint": "0" * 64}))
    (folder / ONNX_FILE).write_bytes(b"not an onnx graph")
    model = SentenceTransformer(str(folder), device="cpu", backend="onnx")
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
    with pytest.raises(ValueError, match="backend='torch' or backend='onnx'"):
        SentenceTransformer(str(exported_folder), backend="openvino")


@needs_onnx
def test_export_functions_write_reference_file_names(exported_folder: Path, tmp_path: Path) -> None:
    from sentencekit import export_dynamic_quantized_onnx_model, export_optimized_onnx_model

    model = SentenceTransformer(str(exported_folder), device="cpu")
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

    monkeypatch.setattr(onnx_export, "export_fp32", fail)
    monkeypatch.setattr(onnx_export, "quantize_file", fail)
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
            {},
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
