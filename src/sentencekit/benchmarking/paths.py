"""The inference paths the benchmark can time: sentencekit's, and the reference's when it is installed.

=============================  ======================================================================
path                           what runs
=============================  ======================================================================
``reference fp32``             sentence-transformers, as loaded by default (needs it installed)
``reference bf16``             sentence-transformers with ``model_kwargs={"torch_dtype": torch.bfloat16}``
``reference bf16 b128``        the same with 128 texts per batch: what larger batches alone give it
``sentencekit default``        sentencekit's default: the fastest exact path (ONNX fp32 with the extra)
``sentencekit torch fp32``     sentencekit with ``backend="torch"``
``sentencekit torch bf16``     sentencekit with a bf16 encoder
``sentencekit onnx int8``      sentencekit's int8 ONNX graph for this CPU (``backend="onnx"``)
``sentencekit auto``           ``backend="auto"``: the fastest path within cosine 0.98 of fp32 here
``sentencekit openvino``       ``backend="openvino"`` in f32 (exact); needs the openvino extra
``sentencekit openvino bf16``  the same with ``ov_config`` asking for bf16
``sentencekit openvino int8``  OpenVINO on ``onnx/model_int8_weights.onnx`` (int8 weights, activations
                               quantized at run time), asking for bf16 around the int8 products
=============================  ======================================================================

The baseline of the ratios and of the accuracy columns is ``reference fp32`` whenever sentence-transformers
is installed (it then always runs, as the baseline, unless the reference is switched off), else
``sentencekit torch fp32``, which then always runs. The OpenVINO paths run only when named (``--paths``):
``sentencekit auto`` already runs OpenVINO bf16 or int8 where that is the fastest. On the command line a
name may use ``-`` or ``_`` for its spaces (``sentencekit-torch-fp32``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sentencekit._optional import installed
from sentencekit.errors import InvalidInputError, MissingDependencyError

__all__ = [
    "PATH_NAMES",
    "PathSpec",
    "REFERENCE_FP32",
    "SENTENCEKIT_FP32",
    "batch_label",
    "load_path",
    "reference_available",
    "select_paths",
]

REFERENCE_FP32 = "reference fp32"
SENTENCEKIT_FP32 = "sentencekit torch fp32"
# sentence-transformers' encode default
REFERENCE_BATCH_SIZE = 32


@dataclass(frozen=True)
class PathSpec:
    """One inference path: which library loads the model, and with which options.

    Attributes:
        name: The name in tables and JSON, e.g. ``"sentencekit torch bf16"``.
        reference: Whether sentence-transformers runs it (the path is skipped when that is not installed).
        backend: sentencekit's ``backend`` argument (``None``: its default); unused by reference paths.
        bf16: Load the encoder in bfloat16.
        batch_size: Texts per batch for this path whatever the run's setting (``None``: the run's).
        int8: Run the int8 ONNX graph made for this CPU (``model_qint8_<cpu>.onnx``); with
            ``backend="openvino"``, the int8 weights file OpenVINO quantizes at run time.
        ov_bf16: Ask OpenVINO for bf16 (``ov_config={"INFERENCE_PRECISION_HINT": "bf16"}``).
        named_only: Run only when asked for by name, not in the default set.
    """

    name: str
    reference: bool
    backend: str | None = None
    bf16: bool = False
    batch_size: int | None = None
    int8: bool = False
    ov_bf16: bool = False
    named_only: bool = False


_SPECS = (
    PathSpec(REFERENCE_FP32, reference=True),
    PathSpec("reference bf16", reference=True, bf16=True),
    PathSpec("reference bf16 b128", reference=True, bf16=True, batch_size=128),
    PathSpec("sentencekit default", reference=False),
    PathSpec(SENTENCEKIT_FP32, reference=False, backend="torch"),
    PathSpec("sentencekit torch bf16", reference=False, bf16=True),
    PathSpec("sentencekit onnx int8", reference=False, backend="onnx", int8=True),
    PathSpec("sentencekit auto", reference=False, backend="auto"),
    PathSpec("sentencekit openvino", reference=False, backend="openvino", named_only=True),
    PathSpec("sentencekit openvino bf16", reference=False, backend="openvino", ov_bf16=True, named_only=True),
    PathSpec(
        "sentencekit openvino int8",
        reference=False,
        backend="openvino",
        int8=True,
        ov_bf16=True,
        named_only=True,
    ),
)
PATH_NAMES: tuple[str, ...] = tuple(spec.name for spec in _SPECS)
_BY_NAME = {spec.name: spec for spec in _SPECS}


def reference_available() -> bool:
    """Whether sentence-transformers can be imported (checked without importing it)."""
    return installed("sentence_transformers")


def _onnx_installed() -> bool:
    return installed("onnxruntime")


def _normalize(name: str) -> str:
    return " ".join(name.replace("-", " ").replace("_", " ").lower().split())


def select_paths(
    names: Sequence[str] | None, *, reference_installed: bool, use_reference: bool = True
) -> tuple[list[PathSpec], str]:
    """The paths to run, in table order, and the name of the baseline path.

    Args:
        names: Path names (``-``/``_`` accepted for spaces); ``None`` or empty: every path that can run.
        reference_installed: Whether sentence-transformers is installed.
        use_reference: ``False`` leaves the reference out even when it is installed.

    Raises:
        InvalidInputError: For an unknown name, or a reference path with ``use_reference=False``.
        MissingDependencyError: For a reference path when sentence-transformers is not installed.
    """
    with_reference = reference_installed and use_reference
    if names:
        wanted = set()
        for name in names:
            key = _normalize(name)
            if key not in _BY_NAME:
                raise InvalidInputError(f"Unknown path {name!r}: choose from {', '.join(PATH_NAMES)}.")
            if _BY_NAME[key].reference and reference_installed and not use_reference:
                raise InvalidInputError(f"Path {key!r} is the reference, which --no-reference leaves out.")
            if _BY_NAME[key].reference and not reference_installed:
                raise MissingDependencyError(
                    f"Path {key!r} runs sentence-transformers, which is not installed. "
                    "Install it with: pip install sentence-transformers (or leave out the reference paths)."
                )
            wanted.add(key)
    else:
        onnx = _onnx_installed()
        wanted = {
            spec.name
            for spec in _SPECS
            if (with_reference or not spec.reference) and (onnx or not spec.int8) and not spec.named_only
        }
    baseline = REFERENCE_FP32 if with_reference else SENTENCEKIT_FP32
    wanted.add(baseline)
    return [spec for spec in _SPECS if spec.name in wanted], baseline


def _texts_per_batch(spec: PathSpec, batch_size: int | None) -> int | None:
    """The ``batch_size`` ``spec`` encodes with in a run with ``batch_size`` (``None``: the path's plan)."""
    chosen = spec.batch_size or batch_size
    if chosen is None and spec.reference:
        return REFERENCE_BATCH_SIZE
    return chosen


def batch_label(spec: PathSpec, batch_size: int | None) -> str:
    """How ``spec`` batches its texts in a run with ``batch_size``: a count, or sentencekit's own plan."""
    chosen = _texts_per_batch(spec, batch_size)
    return "path plan" if chosen is None else str(chosen)


def load_path(spec: PathSpec, folder: str, batch_size: int | None) -> tuple[Callable[[list[str]], Any], str]:
    """Load ``spec``'s model from ``folder`` on the CPU.

    ``batch_size`` ``None`` gives each library its default: 32 for sentence-transformers, the inference
    path's own plan for sentencekit. ``spec.batch_size`` wins over it.

    Returns:
        ``(encode, inference_path)``: ``encode(texts)`` returns fp32 numpy embeddings, one row per text;
        ``inference_path`` says what sentencekit chose (``"reference"`` for sentence-transformers).
    """
    import torch

    model_kwargs: dict[str, Any] | None = {"torch_dtype": torch.bfloat16} if spec.bf16 else None
    if spec.int8 and spec.backend == "openvino":
        from sentencekit.backends.onnx_export import INT8_WEIGHTS_FILE

        model_kwargs = {"file_name": f"onnx/{INT8_WEIGHTS_FILE}"}
    elif spec.int8:
        from sentencekit.backends.cpu import cpu_info

        model_kwargs = {"file_name": cpu_info().int8_file}
    if spec.ov_bf16:
        model_kwargs = {**(model_kwargs or {}), "ov_config": {"INFERENCE_PRECISION_HINT": "bf16"}}
    model: Any
    if spec.reference:
        import sentence_transformers

        model = sentence_transformers.SentenceTransformer(folder, device="cpu", model_kwargs=model_kwargs)
        inference_path = "reference"
    else:
        from sentencekit import SentenceTransformer

        model = SentenceTransformer(folder, device="cpu", backend=spec.backend, model_kwargs=model_kwargs)
        inference_path = str(getattr(model, "inference_path", spec.backend or "default"))
    chosen = _texts_per_batch(spec, batch_size)

    def encode(texts: list[str]) -> Any:
        embeddings = model.encode(texts, batch_size=chosen, convert_to_tensor=True)
        return embeddings.float().cpu().numpy()

    return encode, inference_path
