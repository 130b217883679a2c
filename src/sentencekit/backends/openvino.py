"""OpenVinoTransformer: the encoder run by OpenVINO on the CPU, in fp32 (exact) or bf16.

Two ways in:

* ``backend="openvino"``, asked for by name as in the reference: the model folder's
  ``openvino/openvino_model.xml`` (the reference's OpenVINO file) when there is one, else sentencekit's plain
  ONNX export (``onnx/model.onnx``, made once per model); ``model_kwargs={"file_name": ...}`` names another
  ``.xml`` or ``.onnx`` file and ``{"ov_config": {...}}`` adds OpenVINO compile options. It runs in f32 and
  gives the torch vectors up to float rounding unless ``ov_config`` asks for
  ``{"INFERENCE_PRECISION_HINT": "bf16"}`` (the reference leaves OpenVINO's own default, which is bf16 on
  CPUs with AMX).
* ``backend="auto"`` when the ``openvino`` extra is installed (``pip install "sentencekit[openvino]"``), kept
  when it passes the probe: on CPUs with AMX, the plain export in bf16; on CPUs with int8 dot products and no
  AMX (AVX-512 VNNI, as AMD Zen 4 and 5), ``onnx/model_int8_weights.onnx`` (int8 weights, see
  :mod:`sentencekit.backends.onnx_weights`) with OpenVINO's dynamic quantization of the activations
  (:data:`INT8_GROUP_SIZE` input channels per scale), in bf16 where the CPU has it, else f32.

Only the encoder's forward pass changes: tokenization, batching, pooling and normalization are those of the
other paths, and everything :class:`~sentencekit.backends.onnx.OnnxTransformer` does around its session (torch
taking over in training, after the weights changed, off the CPU) holds here too. OpenVINO compiles the graph
with one stream per physical core; the encode loop runs one batch per core side by side, each thread with its
own inference request (``infer`` releases the GIL). Measured on a 2-core Xeon with AMX, all-MiniLM-L6-v2 in
bf16 on STSb sentences: ~37,600 tokens/s of kernel time with two threads, ~19,800 with one; end to end
~34,700 tokens/s, where torch bf16 runs ~27,000.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from sentencekit._optional import installed, require
from sentencekit.backends.cpu import cpu_info, physical_cores
from sentencekit.backends.onnx import BATCH_TOKENS, OnnxTransformer, known_kwargs
from sentencekit.backends.onnx_export import EXPORT_FILE, INT8_WEIGHTS_FILE, find_or_export
from sentencekit.errors import ModelFormatError
from sentencekit.modules import Transformer
from sentencekit.modules.transformer import HALF_CPU_BATCH_SIZE, HALF_CPU_BATCH_TOKENS

__all__ = [
    "INT8_GROUP_SIZE",
    "OPENVINO_FILE",
    "OPENVINO_MODEL_KWARGS",
    "PROVIDER",
    "OpenVinoTransformer",
    "openvino_file",
    "openvino_installed",
    "split_openvino_kwargs",
    "to_openvino",
]

logger = logging.getLogger(__name__)

# The ``provider`` recorded on the module (ONNX Runtime's provider names do not apply).
PROVIDER = "openvino"
# The reference's OpenVINO file in a model folder (an OpenVINO IR: this .xml beside its .bin weights).
OPENVINO_FILE = "openvino/openvino_model.xml"
# What model_kwargs may hold with backend="openvino".
OPENVINO_MODEL_KWARGS = {
    "file_name": f"an OpenVINO .xml or an ONNX file in the model folder (default: {OPENVINO_FILE} when it is "
    f"there, else the ONNX export onnx/{EXPORT_FILE})",
    "ov_config": "OpenVINO compile options, e.g. {'INFERENCE_PRECISION_HINT': 'bf16'} (default: f32, exact)",
}
_HALF = ("bf16", "f16")
# Input channels that share one activation scale per token in OpenVINO's dynamic quantization of the int8
# weights file. all-MiniLM-L6-v2 on the 2,552 STSb test sentences, AMD Zen 4, bf16 (min cosine to fp32,
# tokens/s): 32 -> 0.9958, 15,900; 64 -> 0.9953, 16,900; 128 -> 0.9912, 17,600-19,600; 384 -> 0.9815, 18,600.
INT8_GROUP_SIZE = 128
_GROUP_KEY = "DYNAMIC_QUANTIZATION_GROUP_SIZE"


def openvino_installed() -> bool:
    """Whether the ``openvino`` package can be imported (checked without importing it)."""
    return installed("openvino")


def split_openvino_kwargs(model_kwargs: dict[str, Any] | None) -> dict[str, Any]:
    """Check ``model_kwargs`` given with ``backend="openvino"`` and return them.

    Raises:
        ValueError: For keys the OpenVINO backend does not take (listing the valid ones), a ``file_name`` that
            is neither ``.xml`` nor ``.onnx``, or an ``ov_config`` that is not a dict.
    """
    options = known_kwargs(model_kwargs, OPENVINO_MODEL_KWARGS, "openvino")
    name = options.get("file_name")
    if name is not None and Path(str(name)).suffix not in (".xml", ".onnx"):
        raise ValueError(
            f"model_kwargs['file_name']={name!r} is neither an OpenVINO .xml nor an .onnx file; for example "
            f"{OPENVINO_FILE!r} or 'onnx/{EXPORT_FILE}'."
        )
    config = options.get("ov_config")
    if config is not None and not isinstance(config, dict):
        raise ValueError(f"model_kwargs['ov_config'] must be a dict of OpenVINO options, got {config!r}.")
    return options


class CompiledEncoder:
    """An OpenVINO compiled model with the two methods of an ONNX Runtime session the module uses.

    Compiled for throughput with ``streams`` streams, in f32 unless ``config`` (OpenVINO compile options,
    which win over these defaults) says otherwise; the int8 weights file with :data:`INT8_GROUP_SIZE`
    input channels per activation scale. Each calling thread gets an inference request of its own,
    so batches run side by side. The first output must have ``output_ndim`` dimensions: 3 for an encoder's
    token embeddings, 2 for a classifier's logits.

    Attributes:
        precision: The inference precision OpenVINO compiled: ``"f32"``, or ``"bf16"`` where asked for and
            the CPU multiplies bf16 in hardware.
    """

    def __init__(
        self, path: Path, streams: int, config: dict[str, Any] | None = None, output_ndim: int = 3
    ) -> None:
        ov = require("openvino", extra="openvino", purpose="the OpenVINO path")
        options: dict[str, Any] = {
            "INFERENCE_PRECISION_HINT": "f32",
            "PERFORMANCE_HINT": "THROUGHPUT",
            "NUM_STREAMS": streams,
        }
        if path.name == INT8_WEIGHTS_FILE:  # int8 products need the activations quantized at run time
            options[_GROUP_KEY] = INT8_GROUP_SIZE
        options.update(config or {})
        try:
            self.model = ov.Core().compile_model(str(path), "CPU", {k: str(v) for k, v in options.items()})
        except Exception as exc:  # OpenVINO raises its own untyped errors for graphs it cannot compile
            raise ModelFormatError(f"OpenVINO cannot compile {path} ({type(exc).__name__}: {exc}).") from exc
        hint = self.model.get_property("INFERENCE_PRECISION_HINT")
        # "bf16" where asked for and the CPU multiplies bf16 in hardware; OpenVINO keeps "f32" elsewhere
        self.precision = hint.get_type_name() if hasattr(hint, "get_type_name") else str(hint)
        self._names = [port.get_any_name() for port in self.model.inputs]
        self._local = threading.local()
        # One inference on this thread first: OpenVINO's Python bindings set up their NumPy interface on the
        # first array they convert, and two batch threads doing that at once can deadlock (seen in testing).
        (out,) = self.run(None, {name: np.ones((1, 1), dtype=np.int64) for name in self._names})
        if out.ndim != output_ndim:
            what = "token embeddings (batch, tokens, width)" if output_ndim == 3 else "logits (batch, labels)"
            raise ModelFormatError(f"{path}'s first output has shape {out.shape}; expected {what}.")

    @property
    def half(self) -> bool:
        """Whether OpenVINO compiled a half precision (bf16 or f16)."""
        return self.precision in _HALF

    def get_inputs(self) -> list[SimpleNamespace]:
        """The graph's inputs, each with a ``name``."""
        return [SimpleNamespace(name=name) for name in self._names]

    def run(self, _output_names: Any, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Run one batch on this thread's request; returns ``[first output]`` (a copy it owns)."""
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self.model.create_infer_request()
        return [np.array(request.infer(feeds)[0], copy=True)]


def _weights_file(path: Path) -> Path | None:
    """An OpenVINO IR's weights (``model.bin`` beside ``model.xml``); ``None`` for an ONNX file."""
    return path.with_suffix(".bin") if path.suffix == ".xml" else None


class OpenVinoTransformer(OnnxTransformer):
    """A :class:`~sentencekit.backends.onnx.OnnxTransformer` whose graph OpenVINO runs, in f32 or bf16."""

    @classmethod
    def _open_session(cls, path: Path, provider: str, options: dict[str, str] | None) -> CompiledEncoder:
        return CompiledEncoder(path, physical_cores(), options)

    @classmethod
    def _batch_workers(cls, provider: str, num_threads: int | None) -> int:
        return num_threads or physical_cores()

    def _half(self) -> bool:
        return self._session_ready() and bool(getattr(self.session, "half", False))

    @property
    def default_batch_size(self) -> int:
        """In bf16 up to 256 texts per batch, as torch bf16 on the CPU; else (f32, or torch) 32."""
        return HALF_CPU_BATCH_SIZE if self._half() else super().default_batch_size

    @property
    def default_batch_tokens(self) -> int | None:
        """2,048 padded tokens per batch in bf16; in f32 ONNX Runtime's 512; none once torch took over."""
        if not self._session_ready():
            return None
        return HALF_CPU_BATCH_TOKENS if self._half() else BATCH_TOKENS

    @property
    def inference_path(self) -> str:
        """``"openvino int8"`` for the int8 weights file; else ``"openvino bf16"`` or ``"openvino f32"``."""
        if self.onnx_path.name == INT8_WEIGHTS_FILE:
            return "openvino int8"
        if self.session is None:
            self._session_ready()  # reopens it after a copy
        return f"openvino {getattr(self.session, 'precision', 'unknown')}"

    def cache_identity(self) -> dict[str, str]:
        """The graph's identity (the .xml and its .bin weights), marked with OpenVINO's precision.

        OpenVINO's vectors differ from ONNX Runtime's, and its bf16 ones from its f32 ones.
        """
        if self._onnx_sha256 is None:
            digest = hashlib.sha256()
            for part in (self.onnx_path, _weights_file(self.onnx_path)):
                if part is not None:
                    with open(part, "rb") as handle:
                        while chunk := handle.read(1 << 20):
                            digest.update(chunk)
            self._onnx_sha256 = digest.hexdigest()
        return {"backend": self.inference_path, "onnx_sha256": self._onnx_sha256}

    def save(self, path: str | Path) -> None:
        """Save the torch model; a file asked for by name goes with it (an IR to ``openvino/``)."""
        weights = _weights_file(self.onnx_path)
        if weights is None:
            super().save(path)  # an ONNX file: copied into onnx/ unless sentencekit chose it
            return
        Transformer.save(self, path)
        if self.implicit:
            return
        target = Path(path) / "openvino"
        target.mkdir(parents=True, exist_ok=True)
        for source in (self.onnx_path, weights):
            if source.is_file() and source.resolve() != (target / source.name).resolve():
                shutil.copyfile(source, target / source.name)

    def __repr__(self) -> str:
        return (
            f"OpenVinoTransformer({{'max_seq_length': {self.max_seq_length}, "
            f"'do_lower_case': {self.do_lower_case}, 'file': '{self.onnx_path.name}'}})"
        )


def openvino_file(source: Any, folder: Path | None, file_name: str | None) -> Path:
    """The file ``backend="openvino"`` compiles.

    ``file_name`` if given, else the folder's :data:`OPENVINO_FILE`, else the plain ONNX export (made when
    missing). ``source`` is what an ONNX file is exported from (a Transformer or an ExportSource).

    Raises:
        ModelFormatError: When a named ``.xml`` file (or its ``.bin``) is not in the folder.
    """
    if file_name is None and folder is not None and (folder / OPENVINO_FILE).is_file():
        file_name = OPENVINO_FILE
    if file_name is None:
        return find_or_export(source, folder, EXPORT_FILE)
    if Path(file_name).suffix == ".onnx":
        return find_or_export(source, folder, file_name)
    path = Path(file_name) if Path(file_name).is_absolute() or folder is None else folder / file_name
    weights = _weights_file(path)
    if not path.is_file() or weights is None or not weights.is_file():
        raise ModelFormatError(
            f"{file_name} (with its .bin beside it) is not in {folder}. Leave file_name out to have the ONNX "
            f"export compiled instead (onnx/{EXPORT_FILE}, made on first use)."
        )
    return path


def to_openvino(
    transformer: Transformer,
    folder: Path | None,
    *,
    implicit: bool = True,
    int8: bool = False,
    file_name: str | None = None,
    ov_config: dict[str, Any] | None = None,
) -> OpenVinoTransformer:
    """Compile the encoder with OpenVINO and wrap it.

    ``implicit`` (``backend="auto"``): the plain ONNX export sentencekit made for these weights, in bf16; with
    ``int8``, the int8 weights file instead, its activations quantized at run time. Otherwise
    (``backend="openvino"``): :func:`openvino_file` picks the file, compiled in f32 unless ``ov_config`` says
    otherwise (the int8 weights file gets dynamic quantization unless ``ov_config`` sets its group size).

    Raises:
        MissingDependencyError: When ``openvino`` is not installed.
        ModelFormatError: When the file is missing or cannot be exported or compiled.
    """
    if implicit:
        name = INT8_WEIGHTS_FILE if int8 else EXPORT_FILE
        path = find_or_export(transformer, folder, name, trust_unrecorded=False)
        hint = "bf16" if not int8 or cpu_info().native_bf16 else "f32"
        config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": hint, **(ov_config or {})}
    else:
        path = openvino_file(transformer, folder, file_name)
        config = dict(ov_config or {})
    logger.info("OpenVINO backend: %s", path)
    module = OpenVinoTransformer.from_transformer(
        transformer, path, provider=PROVIDER, session_options=config
    )
    assert isinstance(module, OpenVinoTransformer)  # from_transformer builds the class it is called on
    module.implicit = implicit
    return module
