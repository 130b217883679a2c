"""GPU helpers for the encode loop: half-precision autocast around the encoder and out-of-memory back-off.

Both are plain logic over torch calls, so they run (and are tested) on CPU too: autocast is simply off there,
and the back-off splits any batch whose forward pass raises ``torch.cuda.OutOfMemoryError``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from sentencekit.encoding.batching import batch_rows, slice_flat

__all__ = [
    "GPU_PRECISIONS",
    "autocast_dtype",
    "autocast_region",
    "default_device",
    "forward_with_backoff",
    "run_modules",
    "split_rows",
]

logger = logging.getLogger(__name__)


def default_device() -> str:
    """Where a model goes when no device is given: ``"cuda"``, else ``"mps"``, else ``"cpu"``."""
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


# Name -> dtype of the encoder's matrix products on CUDA. "float32" turns autocast off (exact results).
GPU_PRECISIONS: dict[str, torch.dtype | None] = {
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float32": None,
}


def autocast_dtype(precision: str, device: torch.device, encoder_dtype: torch.dtype) -> torch.dtype | None:
    """The autocast dtype for the encoder, or ``None`` to run it as loaded.

    Autocast applies only on CUDA, and only to an fp32 encoder: a model loaded in a half dtype on purpose
    (``model_kwargs={"torch_dtype": ...}``) runs as loaded.

    Raises:
        ValueError: For a precision name that is not in :data:`GPU_PRECISIONS`.
    """
    if precision not in GPU_PRECISIONS:
        raise ValueError(f"gpu_precision must be one of {sorted(GPU_PRECISIONS)}, got {precision!r}.")
    if device.type != "cuda" or encoder_dtype != torch.float32:
        return None
    return GPU_PRECISIONS[precision]


def split_rows(features: dict[str, Any], rows: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split a batch's features into its first ``rows`` rows and the rest; non-row values go to both."""
    size = batch_rows(features)
    if isinstance(features.get("offsets"), Tensor):
        return slice_flat(features, 0, rows), slice_flat(features, rows, size)
    head: dict[str, Any] = {}
    tail: dict[str, Any] = {}
    for name, value in features.items():
        if isinstance(value, Tensor) and value.ndim > 0 and value.shape[0] == size:
            head[name], tail[name] = value[:rows], value[rows:]
        else:
            head[name] = tail[name] = value
    return head, tail


@contextlib.contextmanager
def autocast_region(dtype: torch.dtype | None) -> Iterator[None]:
    """Autocast the encoder to ``dtype`` on CUDA; a no-op for ``None``.

    Wrap a whole encode call in one region: autocast keeps its fp16 copies of the weights until the
    outermost region exits, so the weights are cast once per call rather than once per batch.
    """
    if dtype is None:
        yield
    else:
        with torch.autocast(device_type="cuda", dtype=dtype):
            yield


def run_modules(modules: Sequence[nn.Module], features: dict[str, Any], dtype: torch.dtype | None) -> Any:
    """Run the encoder (first module) under autocast when ``dtype`` is set, the rest (pooling...) in fp32."""
    with autocast_region(dtype):
        features = modules[0](dict(features))  # a copy: a failed pass must not leave outputs in the input
        rest = (
            torch.autocast(device_type="cuda", enabled=False)
            if dtype is not None
            else contextlib.nullcontext()
        )
        with rest:
            for module in modules[1:]:
                features = module(features)
    return features


def forward_with_backoff(
    forward: Callable[[dict[str, Any]], dict[str, Any]],
    features: dict[str, Any],
    on_oom: Callable[[], None] | None = None,
) -> Iterator[tuple[int, int, dict[str, Any]]]:
    """Run ``forward`` on a batch; on CUDA out-of-memory, on each half instead (recursively).

    Yields ``(first_row, rows, outputs)`` pieces that together cover the batch in order, so that the caller
    keeps only what it needs of each piece before the next one runs. A single row that still does not fit
    re-raises the error.

    Args:
        forward: Maps a batch's features to its outputs (row-aligned with the inputs).
        features: The batch; every tensor whose first dimension is the batch size is split.
        on_oom: Called after an out-of-memory error, before retrying (e.g. ``torch.cuda.empty_cache``).
    """
    pending = [(0, features)]
    while pending:
        first_row, piece = pending.pop()
        size = batch_rows(piece)
        try:
            outputs = forward(piece)
        except torch.cuda.OutOfMemoryError:
            if size <= 1:
                raise
        else:
            yield first_row, size, outputs
            del outputs  # free this piece's outputs before the next forward pass
            continue
        # Split outside the except block: the error's traceback holds the failed pass's frames, and with
        # them its activations; retrying while handling it would keep that memory allocated.
        if on_oom is not None:
            on_oom()
        half = size // 2
        logger.warning(
            "Out of GPU memory on a batch of %d texts; retrying as %d + %d.", size, half, size - half
        )
        head, tail = split_rows(piece, half)
        del piece
        pending += [(first_row + half, tail), (first_row, head)]
