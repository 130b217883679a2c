"""The fastest an fp32 path could run on this machine: the model's work per token over the CPU's matmul rate.

An exact path (max |diff| <= 1e-5 against fp32) has to do the encoder's matrix products in fp32: bf16
splits such as bf16x3 leave errors near 1e-3 on normalized embeddings (see docs/fast_inference.md). So
no exact path encodes faster than

    tokens / (sum over texts of the FLOPs of one unpadded forward pass / the best fp32 matmul rate measured)

which assumes zero padding, no time outside matrix products, and every product at the best rate this CPU
reached on the model's own shapes. It is an upper bound, not a forecast. The benchmark reports it next to the
baseline's speed, so a target above it shows as out of reach on this machine.

FLOPs are counted, not estimated from the config: torch's ``FlopCounterMode`` runs the encoder at three
lengths with eager attention (whose matrix products it can see), and a quadratic in the length is fitted
exactly through the three counts: a constant (a pooler), a per-token part (the linear layers) and a
per-token-pair part (attention).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from sentencekit.modules import Transformer

__all__ = ["FlopModel", "count_flops", "matmul_rate", "ceiling_for", "measure_ceiling"]

logger = logging.getLogger(__name__)

_LENGTHS = (16, 32, 64)  # three lengths determine the quadratic exactly
_ROWS = 512  # rows of a batch's activations in the timed products: 32 texts of 16 tokens, or 2 of 256


@dataclass(frozen=True)
class FlopModel:
    """FLOPs of one unpadded pass over ``n`` tokens: ``constant + linear * n + pairs * n**2``.

    Attributes:
        constant: Work done once per text (a pooler on the first token).
        linear: Work per token (the linear layers: about twice the encoder's weight count).
        pairs: Work per pair of tokens (attention's two products over all layers and heads); 0 where
            the attention could not be counted.
        attention_counted: Whether ``pairs`` holds attention's products.
    """

    constant: float
    linear: float
    pairs: float
    attention_counted: bool

    def flops(self, lengths: Sequence[int]) -> float:
        """Total FLOPs of encoding texts of these token counts, each as its own unpadded batch."""
        return sum(self.constant + self.linear * n + self.pairs * n * n for n in lengths)


def _forward_flops(transformer: Transformer, length: int) -> int:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    ids = torch.zeros((1, length), dtype=torch.long)  # the count does not depend on the ids
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    if "token_type_ids" in transformer.forward_inputs:
        inputs["token_type_ids"] = torch.zeros_like(ids)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        transformer(inputs)
    return int(counter.get_total_flops())


def count_flops(transformer: Transformer) -> FlopModel:
    """Count the encoder's FLOPs at three lengths and fit :class:`FlopModel` through them.

    The encoder runs with eager attention for the count, where the model offers it, and is set back after.
    """
    import numpy as np

    model = transformer.auto_model
    before = getattr(model.config, "_attn_implementation", None)
    eager = False
    if hasattr(model, "set_attn_implementation"):
        try:
            model.set_attn_implementation("eager")
            eager = True
        except (ValueError, NotImplementedError) as exc:
            logger.info("Counting FLOPs without attention's products: %s", exc)
    try:
        counts = [_forward_flops(transformer, n) for n in _LENGTHS]
    finally:
        if eager and before is not None:
            model.set_attn_implementation(before)
    lengths = np.array(_LENGTHS, dtype=np.float64)
    constant, linear, pairs = np.linalg.solve(
        np.stack([np.ones_like(lengths), lengths, lengths**2], axis=1), np.array(counts, dtype=np.float64)
    )
    return FlopModel(float(constant), float(linear), float(max(pairs, 0.0)), bool(eager and pairs > 0))


def _best_rate(a: torch.Tensor, b: torch.Tensor, seconds: float) -> float:
    import torch

    flops = 2 * a.shape[0] * a.shape[1] * b.shape[1]
    torch.mm(a, b)  # first call: allocations and kernel choice
    best = float("inf")
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return flops / best


def matmul_rate(shapes: Sequence[tuple[int, int]], dtype: torch.dtype, seconds: float = 0.3) -> float:
    """The best FLOP/s of ``torch.mm`` on ``(512 x k) @ (k x n)`` for each ``(k, n)`` in ``shapes``.

    Runs on torch's current thread count (all cores by default), each shape for about ``seconds``.
    """
    import torch

    generator = torch.Generator().manual_seed(0)
    rates = []
    for k, n in shapes:
        a = torch.randn(_ROWS, k, generator=generator).to(dtype)
        b = torch.randn(k, n, generator=generator).to(dtype)
        rates.append(_best_rate(a, b, seconds))
    return max(rates)


def _model_shapes(transformer: Transformer) -> list[tuple[int, int]]:
    config = transformer.auto_model.config
    hidden = int(getattr(config, "hidden_size", transformer.get_word_embedding_dimension()))
    inner = int(getattr(config, "intermediate_size", 4 * hidden))
    return [(hidden, hidden), (hidden, inner), (inner, hidden)]


def measure_ceiling(transformer: Transformer) -> dict[str, Any]:
    """The model's FLOP counts and this CPU's best fp32 and bf16 matmul rates on the model's shapes.

    Returns:
        A JSON-ready dict: ``flops`` (the fitted :class:`FlopModel` fields), ``fp32_matmul_gflops`` and
        ``bf16_matmul_gflops``.
    """
    import torch

    model = count_flops(transformer)
    shapes = _model_shapes(transformer)
    return {
        "flops": {
            "constant": round(model.constant),
            "per_token": round(model.linear),
            "per_token_pair": round(model.pairs),
            "attention_counted": model.attention_counted,
        },
        "fp32_matmul_gflops": round(matmul_rate(shapes, torch.float32) / 1e9, 1),
        "bf16_matmul_gflops": round(matmul_rate(shapes, torch.bfloat16) / 1e9, 1),
    }


def ceiling_for(
    ceiling: dict[str, Any], lengths: Sequence[int], baseline_tokens_per_s: float
) -> dict[str, Any]:
    """The fp32 bound for one text set: tokens/s and its ratio to the baseline's measured tokens/s."""
    flops = ceiling["flops"]
    model = FlopModel(
        flops["constant"], flops["per_token"], flops["per_token_pair"], flops["attention_counted"]
    )
    total, tokens = model.flops(lengths), sum(lengths)
    tokens_per_s = tokens / (total / (ceiling["fp32_matmul_gflops"] * 1e9))
    return {
        "fp32_ceiling_tokens_per_s": round(tokens_per_s),
        "fp32_ceiling_vs_baseline": round(tokens_per_s / baseline_tokens_per_s, 2),
        "flops_per_token": round(total / tokens),
    }
