"""What ``encode`` returns: sentence embeddings converted as its arguments ask (precision, array, tensor)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["convert_embeddings"]


def convert_embeddings(
    emb: Tensor, single: bool, precision: str, to_numpy: bool, to_tensor: bool
) -> np.ndarray | Tensor | list[Tensor]:
    """``emb`` (one row per text) as ``encode`` returns it.

    Args:
        emb: The float embeddings, one row per text.
        single: The caller passed one string: return its row alone.
        precision: ``"float32"``, or a quantized precision (through ``quantize_embeddings``).
        to_numpy: Return a NumPy array (the default of ``encode``).
        to_tensor: Return one tensor (wins over ``to_numpy``); with neither, a list of row tensors.
    """
    out: Any = emb
    if precision != "float32":
        from sentencekit.quantization import quantize_embeddings

        quantized = np.asarray(quantize_embeddings(emb.float().cpu().numpy(), precision=precision))
        out = torch.from_numpy(quantized) if to_tensor or not to_numpy else quantized
    elif to_tensor:
        out = emb
    elif to_numpy:
        out = emb.float().numpy() if emb.dtype == torch.bfloat16 else emb.numpy()
    else:
        out = list(emb)
    if not to_tensor and not to_numpy and isinstance(out, Tensor):
        out = list(out)
    return out[0] if single else out
