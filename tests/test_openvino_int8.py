"""OpenVINO int8: the int8 weights file, its smoothing, and backend="auto" on VNNI CPUs without AMX.

All on the tiny random model of the fixtures.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from sentencekit import SentenceTransformer
from sentencekit.benchmarking.metrics import min_cosine

INT8_WEIGHTS = "onnx/model_int8_weights.onnx"

pytestmark = pytest.mark.skipif(
    any(importlib.util.find_spec(name) is None for name in ("onnx", "onnxruntime", "onnxscript", "openvino")),
    reason='needs the onnx and openvino extras (pip install "sentencekit[openvino]")',
)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTENCEKIT_HOME", str(tmp_path / "sentencekit_home"))


@pytest.fixture
def folder(tiny_hf_folder: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "model"
    shutil.copytree(tiny_hf_folder, copy)
    return copy


def _zen(monkeypatch: pytest.MonkeyPatch, module: object) -> None:
    """Pretend to be a CPU with AVX-512 VNNI and bf16 and no AMX (AMD Zen 4 / 5)."""
    from sentencekit.backends import cpu

    info = cpu.CpuInfo(
        physical_cores=2, native_bf16=True, int8_dot=True, flags=frozenset({"avx512_vnni", "avx512_bf16"})
    )
    monkeypatch.setattr(module, "cpu_info", lambda: info)


def _no_encoding(*_args: object) -> None:
    raise AssertionError("the probe texts were encoded although the check's result was stored")


def test_int8_weights_file_keeps_the_plain_graph_with_int8_weights_and_smoothing(
    folder: Path, texts: list[str]
) -> None:
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    model = SentenceTransformer(
        str(folder), device="cpu", backend="openvino", model_kwargs={"file_name": INT8_WEIGHTS}
    )
    path, plain = folder / INT8_WEIGHTS, folder / "onnx" / "model.onnx"
    assert model[0].onnx_path == path and plain.is_file()
    graph = onnx.load(str(path)).graph
    initializers = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    producers = {out: node for node in graph.node for out in node.output}
    matmuls = [n for n in graph.node if n.op_type == "MatMul" and n.input[1] in producers]
    weighted = [n for n in matmuls if producers[n.input[1]].op_type == "DequantizeLinear"]
    dequantized = [producers[n.input[1]] for n in weighted]
    assert len(dequantized) == 2 * 6  # 2 layers x (query, key, value, attention output, FFN in, FFN out)
    assert all(initializers[node.input[0]].dtype == np.int8 for node in dequantized)
    assert not any(n.op_type == "MatMul" and n.input[1] in initializers for n in graph.node)  # no fp32 weight
    # the FFN output projections read the GELU output through the smoothing Mul (one per layer)
    smoothed = [n for n in weighted if n.input[0] in producers and producers[n.input[0]].op_type == "Mul"]
    assert len(smoothed) == 2 and all(producers[n.input[0]].input[1] in initializers for n in smoothed)

    # run as plain ONNX, the file computes what the fp32 export does up to int8 weight rounding (a smoothing
    # that changed the product would be far off)
    feeds = model.tokenize(texts)
    names = {"input_ids", "attention_mask", "token_type_ids"}
    inputs = {k: v.numpy() for k, v in feeds.items() if k in names}
    mask = inputs["attention_mask"].astype(bool)
    outputs = []
    for file in (plain, path):
        session = ort.InferenceSession(str(file), providers=["CPUExecutionProvider"])
        wanted = {i.name for i in session.get_inputs()}
        outputs.append(session.run(None, {k: v for k, v in inputs.items() if k in wanted})[0][mask])
    assert min_cosine(outputs[0], outputs[1]) >= 0.999
    assert np.abs(outputs[0] - outputs[1]).max() > 1e-6  # really rounded


def test_openvino_int8_by_name_quantizes_activations_at_run_time(
    folder: Path, texts: list[str], torch_embeddings: np.ndarray
) -> None:
    model = SentenceTransformer(
        str(folder), device="cpu", backend="openvino", model_kwargs={"file_name": INT8_WEIGHTS}
    )
    assert (model.backend, model.inference_path) == ("openvino", "openvino int8")
    compiled = model[0].session.model
    assert int(compiled.get_property("DYNAMIC_QUANTIZATION_GROUP_SIZE")) == 128
    emb = model.encode(texts)
    assert min_cosine(emb, torch_embeddings) >= 0.98
    assert np.abs(emb - torch_embeddings).max() > 1e-5  # really approximate
    assert model[0].cache_identity()["backend"] == "openvino int8"

    options = {"file_name": INT8_WEIGHTS, "ov_config": {"DYNAMIC_QUANTIZATION_GROUP_SIZE": 32}}
    other = SentenceTransformer(str(folder), device="cpu", backend="openvino", model_kwargs=options)
    assert int(other[0].session.model.get_property("DYNAMIC_QUANTIZATION_GROUP_SIZE")) == 32  # the user's


def test_auto_on_vnni_without_amx_runs_openvino_int8_first(
    folder: Path, texts: list[str], torch_embeddings: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sentencekit.backends import openvino, probe

    _embed = probe._embed
    _zen(monkeypatch, probe)
    _zen(monkeypatch, openvino)
    model = SentenceTransformer(str(folder), device="cpu", backend="auto")
    assert (model.backend, model.inference_path) == ("openvino", "openvino int8")
    encoder = model[0]
    assert encoder.onnx_path.name == "model_int8_weights.onnx"
    # bf16 around the int8 products where the CPU has it (this one says so; OpenVINO keeps f32 without it)
    assert encoder.session.model.get_property("INFERENCE_PRECISION_HINT").get_type_name() in ("bf16", "f32")
    emb = model.encode(texts)
    assert min_cosine(emb, torch_embeddings) >= 0.98
    # the check's result is kept beside the file, for this runtime and CPU: the next load skips it
    sidecar = json.loads((folder / (INT8_WEIGHTS + ".sentencekit.json")).read_text())
    assert any(  # (other tests may have kept results for other CPUs in the same file)
        key.startswith("openvino int8 (")
        and "; openvino " in key
        and key.endswith("; avx512_bf16,avx512_vnni")
        for key in sidecar["probe"]
    )
    monkeypatch.setattr(probe, "_embed", _no_encoding)
    again = SentenceTransformer(str(folder), device="cpu", backend="auto")
    assert again.inference_path == "openvino int8"
    monkeypatch.setattr(probe, "_embed", _embed)

    monkeypatch.setattr(probe, "PROBE_MIN_COSINE", 1.01)  # too far from fp32: the next candidates, then exact
    exact = SentenceTransformer(str(folder), device="cpu", backend="auto")
    assert (exact.backend, exact.inference_path) == ("onnx", "onnx fp32")

    monkeypatch.undo()
    _zen(monkeypatch, probe)
    monkeypatch.setattr(probe, "openvino_installed", lambda: False)  # without the extra: ONNX Runtime int8
    model = SentenceTransformer(str(folder), device="cpu", backend="auto")
    assert (model.backend, model.inference_path) == ("onnx", "onnx int8")


def test_cross_encoder_openvino_int8_by_name_quantizes_activations_at_run_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sentencekit.backends import fast_scorer
    from sentencekit.cross_encoder import CrossEncoder
    from test_cross_encoder import write_tiny_cross_encoder
    from test_fast_inference import CE_PAIRS

    folder = write_tiny_cross_encoder(tmp_path / "ce", 1, seed=3)
    expected = CrossEncoder(folder, device="cpu", backend="torch").predict(CE_PAIRS)
    model = CrossEncoder(folder, device="cpu", backend="openvino", model_kwargs={"file_name": INT8_WEIGHTS})
    assert (model.backend, model.inference_path) == ("openvino", "openvino int8")
    scorer = model._scoring_model()
    assert int(scorer.session.model.get_property("DYNAMIC_QUANTIZATION_GROUP_SIZE")) == 128
    got = model.predict(CE_PAIRS)
    # the tiny model's widened layers make int8 move its logits by a few % of their spread
    assert np.abs(got - expected).max() <= 0.1 * (expected.max() - expected.min())
    assert np.abs(got - expected).max() > 1e-6  # really approximate

    # "auto" does not try it: on a trained MiniLM reranker it moved probe logits by ~2% of their spread,
    # twice the bound (docs/cross_encoder.md); a Zen-like CPU gets the torch bf16 copy
    _zen(monkeypatch, fast_scorer)
    monkeypatch.setattr(fast_scorer, "PROBE_MAX_LOGIT_ERROR", 0.1)
    auto = CrossEncoder(folder, device="cpu", backend="auto")
    assert (auto.backend, auto.inference_path) == ("torch", "torch bf16")
