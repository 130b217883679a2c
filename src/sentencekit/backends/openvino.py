"""OpenVinoTransformer: the encoder's plain ONNX export compiled by OpenVINO for the CPU, in bf16.

An approximate path for CPUs that multiply bf16 in hardware, which ``backend="auto"`` tries first on CPUs
with AMX when the ``openvino`` extra is installed (``pip install "sentencekit[openvino]"``). Only the
encoder's forward pass changes: tokenization, batching, pooling and normalization are those of the other
paths, and everything :class:`~sentencekit.backends.onnx.OnnxTransformer` does around its session (torch
taking over in training, after the weights changed, off the CPU; saving the torch model) holds here too.

OpenVINO compiles the graph with one stream per physical core; the encode loop runs one batch per core side
by side, each thread with its own inference request (``infer`` releases the GIL). Measured on a 2-core Xeon
with AMX, all-MiniLM-L6-v2 on STSb sentences: ~37,600 tokens/s of kernel time with two threads, ~19,800
with one; end to end ~34,700 tokens/s, where torch bf16 runs ~27,000.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from sentencekit._optional import installed, require
from sentencekit.backends.cpu import physical_cores
from sentencekit.backends.onnx import OnnxTransformer
from sentencekit.backends.onnx_export import EXPORT_FILE, find_or_export
from sentencekit.errors import ModelFormatError
from sentencekit.modules import Transformer
from sentencekit.modules.transformer import HALF_CPU_BATCH_SIZE, HALF_CPU_BATCH_TOKENS

__all__ = ["PROVIDER", "OpenVinoTransformer", "openvino_installed", "to_openvino"]

logger = logging.getLogger(__name__)

# The ``provider`` recorded on the module (ONNX Runtime's provider names do not apply).
PROVIDER = "openvino"


def openvino_installed() -> bool:
    """Whether the ``openvino`` package can be imported (checked without importing it)."""
    return installed("openvino")


class CompiledEncoder:
    """An OpenVINO compiled model with the two methods of an ONNX Runtime session the module uses.

    Each calling thread gets an inference request of its own, so batches run side by side.
    """

    def __init__(self, path: Path, streams: int) -> None:
        ov = require("openvino", extra="openvino", purpose="the OpenVINO path")
        try:
            self.model = ov.Core().compile_model(
                str(path),
                "CPU",
                {
                    "INFERENCE_PRECISION_HINT": "bf16",
                    "PERFORMANCE_HINT": "THROUGHPUT",
                    "NUM_STREAMS": str(streams),
                },
            )
        except Exception as exc:  # OpenVINO raises its own untyped errors for graphs it cannot compile
            raise ModelFormatError(f"OpenVINO cannot compile {path} ({type(exc).__name__}: {exc}).") from exc
        hint = self.model.get_property("INFERENCE_PRECISION_HINT")
        # "bf16" where the CPU multiplies bf16 in hardware; OpenVINO keeps "f32" elsewhere
        self.precision = hint.get_type_name() if hasattr(hint, "get_type_name") else str(hint)
        self._names = [port.get_any_name() for port in self.model.inputs]
        self._local = threading.local()
        # One inference on this thread first: OpenVINO's Python bindings set up their NumPy interface on the
        # first array they convert, and two batch threads doing that at once can deadlock (seen in testing).
        self.run(None, {name: np.ones((1, 1), dtype=np.int64) for name in self._names})

    def get_inputs(self) -> list[SimpleNamespace]:
        """The graph's inputs, each with a ``name``."""
        return [SimpleNamespace(name=name) for name in self._names]

    def run(self, _output_names: Any, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Run one batch on this thread's request; returns ``[token_embeddings]`` (a copy it owns)."""
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self.model.create_infer_request()
        return [np.array(request.infer(feeds)[0], copy=True)]


class OpenVinoTransformer(OnnxTransformer):
    """A :class:`~sentencekit.backends.onnx.OnnxTransformer` whose graph OpenVINO runs in bf16."""

    @classmethod
    def _open_session(cls, path: Path, provider: str) -> CompiledEncoder:
        return CompiledEncoder(path, physical_cores())

    @classmethod
    def _batch_workers(cls, provider: str, num_threads: int | None) -> int:
        return num_threads or physical_cores()

    @property
    def default_batch_size(self) -> int:
        """Up to 256 texts per batch, as torch bf16 on the CPU (then 32 once torch has taken over)."""
        return HALF_CPU_BATCH_SIZE if self._session_ready() else super().default_batch_size

    @property
    def default_batch_tokens(self) -> int | None:
        """2,048 padded tokens per batch, as torch bf16 on the CPU (none once torch has taken over)."""
        return HALF_CPU_BATCH_TOKENS if self._session_ready() else None

    def cache_identity(self) -> dict[str, str]:
        """The ONNX graph's identity, marked as run by OpenVINO at its precision (``"openvino bf16"``).

        OpenVINO's vectors differ from ONNX Runtime's, and its bf16 ones from its f32 ones.
        """
        if self.session is None:
            self._session_ready()  # reopens it after a copy
        precision = getattr(self.session, "precision", "unknown")
        return {**super().cache_identity(), "backend": f"openvino {precision}"}

    def __repr__(self) -> str:
        return (
            f"OpenVinoTransformer({{'max_seq_length': {self.max_seq_length}, "
            f"'do_lower_case': {self.do_lower_case}, 'onnx_file': '{self.onnx_path.name}'}})"
        )


def to_openvino(
    transformer: Transformer, folder: Path | None, *, implicit: bool = True
) -> OpenVinoTransformer:
    """Find (or export) the plain ONNX export of ``transformer`` and compile it with OpenVINO.

    The plain export (``onnx/model.onnx``), not the fused graph: the fused one holds ONNX Runtime's own
    operators, which OpenVINO does not read.

    Raises:
        MissingDependencyError: When ``openvino`` is not installed.
        ModelFormatError: When the graph cannot be exported or compiled.
    """
    path = find_or_export(transformer, folder, EXPORT_FILE, trust_unrecorded=not implicit)
    logger.info("OpenVINO backend: %s", path)
    module = OpenVinoTransformer.from_transformer(transformer, path, provider=PROVIDER)
    assert isinstance(module, OpenVinoTransformer)  # from_transformer builds the class it is called on
    module.implicit = implicit
    return module
