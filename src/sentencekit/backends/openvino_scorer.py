"""The cross-encoder's OpenVINO scorer: the classifier's ONNX export or IR compiled by OpenVINO.

Used by ``CrossEncoder(backend="openvino")`` (f32 unless ``ov_config`` says otherwise;
``model_kwargs={"file_name": "onnx/model_int8_weights.onnx"}`` runs int8 weights with the activations
quantized at run time) and by ``backend="auto"`` on CPUs with AMX (bf16, after the check in
:mod:`sentencekit.backends.fast_scorer`).
The torch model stays loaded and takes over whenever the scorer declines (training, changed weights, off the
CPU), as with the ONNX Runtime scorer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from sentencekit.backends.cpu import physical_cores
from sentencekit.backends.onnx import BATCH_TOKENS
from sentencekit.backends.onnx_export import INT8_WEIGHTS_FILE
from sentencekit.backends.onnx_scorer import OnnxScorer
from sentencekit.backends.openvino import PROVIDER, CompiledEncoder
from sentencekit.modules.transformer import HALF_CPU_BATCH_TOKENS

__all__ = ["OpenVinoScorer"]


class OpenVinoScorer(OnnxScorer):
    """An :class:`~sentencekit.backends.onnx_scorer.OnnxScorer` whose graph OpenVINO runs.

    In f32 unless ``ov_config`` (OpenVINO compile options) says otherwise; ``backend="auto"`` asks for bf16.
    """

    runtime_name = "OpenVINO"

    def __init__(
        self, model: torch.nn.Module, onnx_path: Path, ov_config: dict[str, Any] | None = None
    ) -> None:
        self.ov_config = dict(ov_config or {})
        super().__init__(model, onnx_path, provider=PROVIDER)
        self.batch_workers = physical_cores()

    def _open_session(self) -> CompiledEncoder:
        return CompiledEncoder(self.onnx_path, physical_cores(), self.ov_config, output_ndim=2)

    @property
    def default_batch_tokens(self) -> int | None:
        """2,048 padded tokens per batch in bf16, as the bf16 encoders on the CPU; 512 in f32."""
        return HALF_CPU_BATCH_TOKENS if getattr(self.session, "half", False) else BATCH_TOKENS

    @property
    def inference_path(self) -> str:
        """``"openvino int8"`` for the int8 weights file; else ``"openvino bf16"`` or ``"openvino f32"``."""
        if self.onnx_path.name == INT8_WEIGHTS_FILE:
            return "openvino int8"
        return f"openvino {getattr(self.session, 'precision', 'unknown')}"
