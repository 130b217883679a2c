"""``backend="auto"``: the fastest path on this CPU whose embeddings stay close to fp32, checked per model.

Candidates, fastest first as measured with all-MiniLM-L6-v2 (see :meth:`CpuInfo.bf16_before_int8`):

1. **openvino bf16** (:mod:`sentencekit.backends.openvino`), on CPUs with AMX when the ``openvino`` extra is
   installed: the plain ONNX export compiled by OpenVINO in bf16;
2. **openvino int8**, on x86 CPUs with int8 dot products (AVX-512 VNNI, AVX-VNNI) and no AMX when the
   ``openvino`` extra is installed: int8 weights (``model_int8_weights.onnx``), activations quantized by
   OpenVINO at run time. On a 2-core AMD Zen 4 it was within noise of onnx int8 on sentences and 19-42%
   faster on abstracts;
3. **onnx int8** (``model_qint8_<cpu>.onnx``, per-token activation scales), where the CPU has int8 dot
   products (VNNI, AMX, arm64 dotprod) and the ``onnx`` extra is installed;
4. **torch bf16**, where the CPU multiplies bf16 in hardware (avx512_bf16, AMX), with its own batch plan
   (up to 256 texts within 2,048 tokens, one batch per core); on CPUs with AMX it comes before int8;
5. the exact path (ONNX fp32 fused, else torch fp32), which needs no check.

A candidate is kept when, on :data:`PROBE_TEXTS`, its embeddings' minimum cosine to the torch fp32 embeddings
is at least :data:`PROBE_MIN_COSINE`. That is stricter than the 0.98 promised on any text, because a minimum
over a few dozen texts is less extreme than one over a corpus (all-MiniLM-L6-v2 int8: 0.993 here, 0.989 over
the 2,552 STSb test sentences). The OpenVINO and onnx int8 results are stored in their file's sidecar, keyed
by the path, the runtime's version and the CPU's flags, so each check runs once per file and machine kind
(for all-MiniLM-L6-v2 it took about a second of every load before); the torch bf16 check runs at each load.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from sentencekit.backends.cpu import cpu_info
from sentencekit.backends.openvino import openvino_installed

__all__ = ["PROBE_MIN_COSINE", "PROBE_TEXTS", "choose_fast_path", "min_cosine"]

logger = logging.getLogger(__name__)

# What the fast paths promise on any text is 0.98; the margin covers texts the probe does not contain.
PROBE_MIN_COSINE = 0.985
# Bumped when the probe texts or the rule change, so stored results are not reused.
_PROBE_VERSION = 2
_SENTENCES = (
    "A man is playing a guitar on stage.",
    "The cat sleeps.",
    "hello",
    "Stocks fell sharply on Monday after the central bank raised interest rates by half a point.",
    "How do I reset my password if I no longer have access to my email account?",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "The quick brown fox jumps over the lazy dog.",
    "Ein Mann fährt mit dem Fahrrad durch die Stadt.",
    "Le gouvernement a annoncé de nouvelles mesures pour le logement.",
    "El niño come una manzana roja en el parque.",
    "def add(a, b): return a + b",
    "SELECT name, count(*) FROM users GROUP BY name HAVING count(*) > 1;",
    "Call 555-0199 before 5 p.m. on 12/03/2024 for a 20% discount!!!",
    "what is the capital of australia",
    "Two dogs are running through a field of tall grass.",
    "The patient presented with fever, cough and shortness of breath for three days.",
    "I love this product, it works perfectly and arrived early.",
    "Terrible service. Never again.",
    "Quantum entanglement links the states of two particles regardless of distance.",
    "Mix the flour and butter, then add cold water a spoonful at a time.",
    "a",
    "The results were not statistically significant (p = 0.21, n = 48).",
    "Please find attached the invoice for October.",
    "A woman is slicing an onion in a kitchen.",
)
PROBE_TEXTS: tuple[str, ...] = (
    *_SENTENCES,
    # paragraphs of 60 to 120 tokens (within every common max_seq_length, so nothing is truncated)
    " ".join(_SENTENCES[3:10]),
    " ".join(_SENTENCES[13:22]),
    " ".join(reversed(_SENTENCES[:9])),
    "In this study we measured the effect of a low-sodium diet on blood pressure in 1,204 adults over two "
    "years. Participants were randomly assigned to the intervention or to usual care; systolic pressure fell "
    "by 6.1 mmHg more in the intervention group, an effect that persisted after adjusting for age, sex, "
    "body-mass index and baseline medication. Adherence, measured by urinary sodium, was moderate.",
)


def min_cosine(a: Tensor, b: Tensor) -> float:
    """Smallest cosine similarity between matching rows of ``a`` and ``b``."""
    return float(torch.nn.functional.cosine_similarity(a.float(), b.float(), dim=1).min())


def _embed(modules: list[nn.Module], texts: tuple[str, ...]) -> Tensor:
    from sentencekit.encoding.loop import EncodePlan, run_encode

    plan = EncodePlan(batch_size=16, device=torch.device("cpu"))
    out = run_encode(modules, list(texts), plan)
    assert isinstance(out, Tensor)
    return out


def choose_fast_path(modules: nn.Sequential, folder: Path | None) -> tuple[str, str]:
    """Put the fastest acceptable encoder in ``modules[0]`` (see the module docstring); return its names."""
    from sentencekit.backends.select import _exact_onnx

    info = cpu_info()
    rest = list(modules)[1:]
    reference: Tensor | None = None

    def baseline() -> Tensor:
        nonlocal reference
        if reference is None:
            reference = _embed([modules[0], *rest], PROBE_TEXTS)
        return reference

    int8 = partial(_try_int8, modules, folder, info.int8_file, rest, baseline) if info.int8_dot else None
    bf16 = partial(_try_bf16, modules, rest, baseline) if info.native_bf16 else None
    order: list[Callable[[], tuple[str, str] | None] | None]
    if info.bf16_before_int8:
        with_openvino = openvino_installed()
        openvino = partial(_try_openvino, modules, folder, rest, baseline) if with_openvino else None
        order = [openvino, bf16, int8]
    else:
        with_openvino = openvino_installed() and info.quantization_config == "avx512_vnni"
        openvino = partial(_try_openvino, modules, folder, rest, baseline, True) if with_openvino else None
        order = [openvino, int8, bf16]
    for candidate in order:
        chosen = candidate() if candidate is not None else None
        if chosen is not None:
            return chosen
    return _exact_onnx(modules, folder)


def _accepted(path: str, score: float) -> bool:
    """Whether ``score`` (min cosine to fp32 on the probe texts) keeps candidate ``path``; logs either way."""
    if score < PROBE_MIN_COSINE:
        logger.info(
            "backend='auto': %s min cosine %.4f < %.3f on the probe texts; not used",
            path,
            score,
            PROBE_MIN_COSINE,
        )
        return False
    logger.info("backend='auto': %s (min cosine to fp32 on the probe texts %.4f)", path, score)
    return True


def _try_openvino(
    modules: nn.Sequential, folder: Path | None, rest: list[nn.Module], baseline: Any, int8: bool = False
) -> tuple[str, str] | None:
    from sentencekit.backends.openvino import to_openvino
    from sentencekit.modules import Transformer

    transformer = modules[0]
    assert isinstance(transformer, Transformer)  # checked by the caller
    try:
        candidate = to_openvino(transformer, folder, int8=int8)
    except Exception as exc:  # any failure: the next candidate
        logger.info("backend='auto': OpenVINO is not available (%s: %s)", type(exc).__name__, exc)
        return None
    precision = getattr(candidate.session, "precision", "")
    key = _probe_key(f"{candidate.inference_path} ({precision})", "openvino")
    if not _accepted(candidate.inference_path, _probe_score(candidate, key, rest, baseline)):
        return None
    modules[0] = candidate
    return "openvino", candidate.inference_path


def _try_int8(
    modules: nn.Sequential, folder: Path | None, file_name: str, rest: list[nn.Module], baseline: Any
) -> tuple[str, str] | None:
    from sentencekit.backends.onnx import to_onnx
    from sentencekit.modules import Transformer

    transformer = modules[0]
    assert isinstance(transformer, Transformer)  # checked by the caller
    try:
        candidate = to_onnx(transformer, folder, {"file_name": file_name}, implicit=True)
    except Exception as exc:  # any failure: the next candidate
        logger.info("backend='auto': int8 ONNX is not available (%s: %s)", type(exc).__name__, exc)
        return None
    score = _probe_score(candidate, _probe_key("onnx int8", "onnxruntime"), rest, baseline)
    if not _accepted("onnx int8", score):
        return None
    candidate.implicit = True
    modules[0] = candidate
    return "onnx", "onnx int8"


def _try_bf16(modules: nn.Sequential, rest: list[nn.Module], baseline: Any) -> tuple[str, str] | None:
    transformer = modules[0]
    candidate = copy.copy(transformer)  # shares the tokenizer and settings; only the encoder is replaced
    candidate._modules = dict(transformer._modules)
    candidate.auto_model = copy.deepcopy(transformer.auto_model).to(torch.bfloat16)
    score = min_cosine(_embed([candidate, *rest], PROBE_TEXTS), baseline())
    del candidate
    if not _accepted("torch bf16", score):
        return None
    transformer.auto_model.to(torch.bfloat16)
    return "torch", "torch bf16"


def _sidecar(path: Path) -> Path:
    from sentencekit.backends.onnx_export import SIDECAR_SUFFIX

    return path.with_name(path.name + SIDECAR_SUFFIX)


def _probe_key(path: str, package: str) -> str:
    """What a stored probe result holds for: the path, its runtime's version and this CPU's flags."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        runtime = f"{package} {version(package)}"
    except PackageNotFoundError:
        runtime = package
    return f"{path}; {runtime}; {','.join(sorted(cpu_info().flags))}"


def _probe_score(candidate: Any, key: str, rest: list[nn.Module], baseline: Any) -> float:
    """``candidate``'s min cosine to fp32 on the probe texts: stored in its file's sidecar, else measured."""
    score = _stored_score(candidate.onnx_path, key)
    if score is None:
        score = min_cosine(_embed([candidate, *rest], PROBE_TEXTS), baseline())
        _store_score(candidate.onnx_path, key, score)
    return score


def _stored_score(path: Path, key: str) -> float | None:
    try:
        recorded = json.loads(_sidecar(path).read_text(encoding="utf-8"))["probe"][key]
        if recorded.get("version") == _PROBE_VERSION:
            return float(recorded["min_cosine"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    return None


def _store_score(path: Path, key: str, score: float) -> None:
    """Add the probe result to the file's sidecar (only to sidecars sentencekit wrote), beside others."""
    sidecar = _sidecar(path)
    try:
        data = json.loads(sidecar.read_text(encoding="utf-8"))
        probes = data.get("probe")
        if not isinstance(probes, dict) or not all(isinstance(v, dict) for v in probes.values()):
            probes = {}  # none yet, or version 1's single result
        probes[key] = {"version": _PROBE_VERSION, "min_cosine": round(score, 6)}
        data["probe"] = probes
        sidecar.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    except (OSError, ValueError) as exc:
        logger.debug("Probe result not stored for %s: %s", path.name, exc)
