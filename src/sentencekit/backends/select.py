"""Which inference path a SentenceTransformer runs, chosen at load time.

=====================  ================================================================================
``backend``            what runs
=====================  ================================================================================
``None`` (default)     the fastest **exact** path: on CPU, ONNX Runtime with the fused fp32 graph when the
                       ``onnx`` extra is installed and the model exports (max |diff| to torch ~3e-7);
                       torch otherwise, and always on GPU or with a half-precision ``torch_dtype``
``"torch"``            torch, as loaded
``"onnx"``             ONNX Runtime with ``model_kwargs["file_name"]`` (default: the fused fp32 graph)
``"openvino"``         OpenVINO with the folder's ``openvino/openvino_model.xml`` or the ONNX export, in f32
                       unless ``model_kwargs["ov_config"]`` asks for bf16 (see
                       :mod:`sentencekit.backends.openvino`)
``"auto"``             the fastest path on this CPU whose embeddings stay within cosine 0.98 of fp32, checked
                       on this model (see :mod:`sentencekit.backends.probe`): ONNX int8, then torch bf16
                       where the CPU has native bf16, then the exact paths; on CPUs with AMX, OpenVINO bf16
                       (with the ``openvino`` extra), then torch bf16, then int8
=====================  ================================================================================

The chosen path is logged and kept in ``model.inference_path`` (e.g. ``"onnx int8"``). The default never
fails to load because of ONNX: when an export, a check or a session fails, the reason is logged and torch is
used.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sentencekit._optional import installed

__all__ = ["BACKENDS", "BackendPlan", "plan_backend", "torch_path", "why_not_onnx"]

logger = logging.getLogger(__name__)

BACKENDS = ("torch", "onnx", "openvino", "auto")
# model_kwargs keys that select the encoder's dtype (transformers 5 reads "dtype", older ones "torch_dtype").
_DTYPE_KEYS = ("torch_dtype", "dtype")


def _onnx_extra_installed() -> bool:
    return installed("onnxruntime", "onnx")


def _half_dtype_requested(model_kwargs: dict[str, Any] | None) -> bool:
    for key in _DTYPE_KEYS:
        value = (model_kwargs or {}).get(key)
        if value is not None and value not in (torch.float32, "float32", "auto"):
            return True
    return False


@dataclass(frozen=True)
class BackendPlan:
    """The backend request, validated before loading; :meth:`apply` sets it up on the loaded modules.

    Attributes:
        backend: ``None``, ``"torch"``, ``"onnx"``, ``"openvino"`` or ``"auto"``.
        torch_model_kwargs: What the torch loading gets (``None`` for ``"onnx"`` and ``"openvino"``, whose
            options differ).
        onnx_options: ``file_name``, ``provider``, ``num_threads`` for ``backend="onnx"``; ``file_name``,
            ``ov_config`` for ``backend="openvino"``.
    """

    backend: str | None
    torch_model_kwargs: dict[str, Any] | None
    onnx_options: dict[str, Any] = field(default_factory=dict)

    def apply(self, modules: nn.Sequential, folder: Path | None, device: str) -> tuple[str, str]:
        """Replace ``modules[0]`` as the plan says; return ``(backend, inference_path)``.

        Raises:
            Whatever loading ``backend="onnx"`` raises (the other backends fall back to torch instead).
        """
        from sentencekit.modules import Transformer

        first = modules[0] if len(modules) else None
        if not isinstance(first, Transformer):
            return self._torch_only("torch", "the first module is not a Transformer")
        if self.backend == "torch":
            return "torch", torch_path(first.auto_model)
        if self.backend == "onnx":
            from sentencekit.backends.onnx import to_onnx

            modules[0] = to_onnx(first, folder, self.onnx_options)
            return "onnx", _onnx_path(modules[0])
        if self.backend == "openvino":
            from sentencekit.backends.openvino import to_openvino

            encoder = to_openvino(first, folder, implicit=False, **self.onnx_options)
            modules[0] = encoder
            return "openvino", encoder.inference_path
        why_not = why_not_onnx(device, self.torch_model_kwargs)
        if first.output_hidden_states:
            why_not = "the model needs every layer's hidden states"
        if why_not:
            return self._torch_only(self.backend, why_not, first)
        if self.backend == "auto":
            from sentencekit.backends.probe import choose_fast_path

            backend, path = choose_fast_path(modules, folder)
        else:
            backend, path = _exact_onnx(modules, folder)
        logger.info("Inference path: %s (backend=%r)", path, self.backend)
        return backend, path

    @staticmethod
    def _torch_only(backend: str | None, reason: str, transformer: Any = None) -> tuple[str, str]:
        path = torch_path(transformer.auto_model) if transformer is not None else "torch"
        logger.info("Inference path: %s (backend=%r: %s)", path, backend, reason)
        return "torch", path


def plan_backend(
    backend: str | None, model_kwargs: dict[str, Any] | None, from_folder: bool = True
) -> BackendPlan:
    """Validate ``backend`` and split ``model_kwargs`` between torch loading and the ONNX options.

    A model built from modules (``from_folder=False``) keeps torch unless a backend is named: it is usually
    about to be trained.

    Raises:
        ValueError: For an unknown backend, or ``model_kwargs`` that ``backend="onnx"`` does not take.
    """
    if backend is not None and backend not in BACKENDS:
        raise ValueError(
            f"backend={backend!r} is not available; use backend='torch', 'onnx', 'openvino' or 'auto' (or "
            "leave it out for the fastest exact path)."
        )
    if backend == "onnx":
        from sentencekit.backends.onnx import split_onnx_kwargs

        return BackendPlan(backend, None, split_onnx_kwargs(model_kwargs))
    if backend == "openvino":
        from sentencekit.backends.openvino import split_openvino_kwargs

        return BackendPlan(backend, None, split_openvino_kwargs(model_kwargs))
    if backend is None and not from_folder:
        backend = "torch"
    return BackendPlan(backend, model_kwargs)


def why_not_onnx(device: str, model_kwargs: dict[str, Any] | None) -> str:
    """Why the default or automatic choice stays with torch, or ``""`` when ONNX Runtime may be tried."""
    if torch.device(device).type != "cpu":
        return f"device {device!r} (the ONNX paths are for CPUs)"
    if _half_dtype_requested(model_kwargs):
        return "a half-precision torch_dtype was asked for"
    if not _onnx_extra_installed():
        return "the onnx extra is not installed (pip install 'sentencekit[onnx]' for the faster exact path)"
    return ""


def _exact_onnx(modules: nn.Sequential, folder: Path | None) -> tuple[str, str]:
    """Put the fused fp32 ONNX encoder in place, or leave torch there and say why."""
    from sentencekit.backends.onnx import to_onnx
    from sentencekit.modules import Transformer

    transformer = modules[0]
    assert isinstance(transformer, Transformer)  # checked by the caller
    try:
        encoder = to_onnx(transformer, folder, {}, implicit=True)
    except Exception as exc:  # any failure to export, check or open: torch is exact and always there
        logger.warning(
            "The faster exact path (ONNX Runtime) is not available for this model, using torch: %s: %s",
            type(exc).__name__,
            exc,
        )
        return "torch", "torch fp32"
    encoder.implicit = True
    modules[0] = encoder
    return "onnx", _onnx_path(encoder)


def torch_path(model: nn.Module) -> str:
    """``"torch fp32"``, ``"torch bf16"``, ... for a torch model."""
    dtype = next(model.parameters()).dtype
    return f"torch {str(dtype).removeprefix('torch.').replace('float32', 'fp32').replace('bfloat16', 'bf16')}"


def _onnx_path(transformer: Any) -> str:
    from sentencekit.backends.onnx_export import EXPORT_FILE, producible_files

    name = transformer.onnx_path.name
    if "qint8" in name:
        return "onnx int8"
    return "onnx fp32" if name == EXPORT_FILE or name in producible_files() else f"onnx ({name})"
