"""int8 weights in a plain ONNX graph, for OpenVINO's dynamic quantization (``onnx/model_int8_weights.onnx``).

The file keeps the plain export's operators and stores every constant MatMul weight as int8 with one scale
per output column, behind a ``DequantizeLinear``. OpenVINO's CPU plugin reads that pattern as a fully
connected layer with compressed weights and, with ``DYNAMIC_QUANTIZATION_GROUP_SIZE`` set, quantizes the
activations at run time (one scale per group of input channels per token) and multiplies in int8 (VNNI).
Attention, layer norms and GELU stay in the compiled precision (bf16 where the CPU has it, else f32).

As in :mod:`sentencekit.backends.onnx_quantize`, the feed-forward output projections are smoothed first when
calibration inputs are given: the GELU output's channel ``j`` is divided by a factor (a ``Mul`` before the
MatMul) and row ``j`` of the weight multiplied by it, so the product is unchanged and the channels' ranges,
which the run-time quantization must cover, move closer together. The strength here is
:data:`SMOOTHING_ALPHA` = 0.3, not ONNX Runtime int8's 0.5: on all-mpnet-base-v2's 2,552 STSb test
sentences (OpenVINO bf16, 128 channels per scale) the worst cosine to fp32 was 0.983 without smoothing, 0.994
at 0.2, 0.996 at 0.3, 0.995 at 0.4 and 0.967 at 0.5 (one sentence; the others stayed above 0.995).
all-MiniLM-L6-v2 stayed at 0.991-0.992 for every strength from 0 to 0.5.

Measured on a 2-core AMD EPYC (Zen 4: avx512_vnni, avx512_bf16, no AMX), same process, alternating runs
against the ONNX Runtime int8 graph (``model_qint8_avx512_vnni.onnx``), see docs/fast_inference.md.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sentencekit._optional import require
from sentencekit.backends.onnx_quantize import (
    constant_weight,
    drop_unused_initializers,
    gelu_channel_ranges,
    index_graph,
    quantize_columns,
    smoothing_factors,
)

__all__ = ["SMOOTHING_ALPHA", "compress_weights_int8"]

logger = logging.getLogger(__name__)

# How much of a GELU output channel's range moves into the weights (see the module docstring).
SMOOTHING_ALPHA = 0.3


def compress_weights_int8(
    source: Path, path: Path, calibration: Sequence[dict[str, np.ndarray]] = ()
) -> None:
    """Write ``source`` to ``path`` with each constant MatMul weight as int8 + ``DequantizeLinear``.

    Args:
        source: A plain fp32 graph (standard ONNX operators; OpenVINO cannot read ONNX Runtime's fused ones).
        path: Where to write the graph.
        calibration: Inputs of ``source`` (one feed dict per text) that measure each GELU output channel's
            range, for smoothing the feed-forward output projections; none: no smoothing.
    """
    onnx = require("onnx", extra="onnx", purpose="compressing an ONNX model's weights")
    helper = onnx.helper
    model = onnx.load(str(source))
    ranges = gelu_channel_ranges(model, calibration) if calibration else {}
    graph = index_graph(model)
    for opset in model.opset_import:  # DequantizeLinear with a per-column axis needs opset 13
        if opset.domain in ("", "ai.onnx") and opset.version < 13:
            opset.version = 13
    compressed = smoothed = 0
    for node in list(model.graph.node):
        weight = constant_weight(graph, node)
        if weight is None:
            graph.nodes.append(node)
            continue
        activation = node.input[0]
        # smoothing changes the weight, so the input it divides must feed this MatMul alone
        if activation in ranges and len(graph.consumers[activation]) == 1:
            factors = smoothing_factors(ranges[activation], weight, SMOOTHING_ALPHA)
            weight = weight * factors[:, None]
            inverse = graph.constant((1.0 / factors).astype(np.float32), "inv_s")
            activation = graph.add("Mul", [activation, inverse], "xsm")
            smoothed += 1
        values, scale = quantize_columns(weight)
        dequantized = graph.add(
            "DequantizeLinear",
            [graph.constant(values, "w8"), graph.constant(scale, "ws")],
            "w",
            axis=1,
        )
        graph.nodes.append(
            helper.make_node("MatMul", [activation, dequantized], list(node.output), name=node.name)
        )
        compressed += 1
    del model.graph.node[:]
    model.graph.node.extend(graph.nodes)
    drop_unused_initializers(model)
    onnx.save(model, str(path))
    logger.info("Stored %d MatMul weights as int8 (%d smoothed)", compressed, smoothed)
