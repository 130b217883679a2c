"""Dynamic int8 quantization with one activation scale per token, written as plain ONNX Runtime operators.

ONNX Runtime's own dynamic quantization (``quantize_dynamic``) gives each activation matrix one scale and zero
point for the whole batch. Transformer activations have a few very large channels and rows of very different
range, so one scale per batch wastes most of the 256 levels: on all-MiniLM-L6-v2 the worst STSb sentence keeps
a cosine of only 0.965 to its fp32 embedding. Here each row (token) gets its own range instead:

* weights: int8, symmetric, one scale per output column (as ``quantize_dynamic(per_channel=True)``);
* a MatMul whose input comes from a GELU (a feed-forward output projection), when calibration inputs are
  given: smoothed as in SmoothQuant. Channel ``j`` of the GELU output is divided by
  ``s_j = range_j ** 0.5 / weight_range_j ** 0.5`` (``range_j``: its largest ``|value|`` on the calibration
  inputs) and row ``j`` of the weight multiplied by it, so the product is unchanged while the channels'
  ranges move closer together; the result is quantized per row as below (asymmetric). On
  all-mpnet-base-v2 this lifts the worst STSb sentence from cosine 0.966 to 0.991, with no speed change
  beyond run-to-run noise in ``benchmarks/inference_speed.py``;
* without calibration, a MatMul whose input comes from a GELU: the input is shifted by the GELU's minimum
  (-0.17) so it is never negative, and quantized to uint8 with one scale per row and zero point 0. The
  shift times the weights' column sums is a constant, folded into the next bias;
* any other MatMul with constant weights: asymmetric uint8 per row (min and max of the row). The row's zero
  point times the weights' column sums is subtracted from the product;
* fused ``Attention`` nodes (query, key and value projections in one operator): ONNX Runtime's ``QAttention``
  with one scale per batch, which is faster, and accurate enough there.

The products run in ``MatMulIntegerToFloat`` (ONNX Runtime's u8 x s8 kernel, VNNI where the CPU has it), which
takes the per-row activation scales directly. Inputs shared by several MatMuls (the query, key and value of an
unfused attention) are quantized once. all-MiniLM-L6-v2: minimum cosine to fp32 0.989 on the STSb sentences
(0.965 with ``quantize_dynamic``), for ~7% more time than ``quantize_dynamic``'s graph.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sentencekit._optional import require

__all__ = [
    "SMOOTHING_ALPHA",
    "constant_weight",
    "drop_unused_initializers",
    "gelu_channel_ranges",
    "index_graph",
    "quantize_columns",
    "quantize_per_token",
    "smoothing_factors",
]

logger = logging.getLogger(__name__)

# Smallest value of the exact GELU, x * Phi(x) (at x ~ -0.75): -0.16997. The tanh approximation's is the same
# to 4 decimals. Inputs that come out of a GELU plus this shift are >= 0.
_GELU_SHIFT = 0.17
_GELU_OPS = frozenset({"Gelu", "BiasGelu", "FastGelu"})
# Fused operators whose bias input (index) can absorb a constant added to the MatMul output they consume
# (besides a plain Add of a bias vector).
_BIAS_INPUT = {"SkipLayerNormalization": 4, "BiasGelu": 1}
# Keeps a row of zeros from dividing by zero; any positive scale gives them back as zeros.
_MIN_SCALE = 1e-8
# SmoothQuant's migration strength: how much of an activation channel's range moves into the weights
# (all-mpnet-base-v2's worst STSb sentence: 0.9914 at 0.4, 0.9909 at 0.5, 0.9885 at 0.6, 0.9677 at 0.8).
SMOOTHING_ALPHA = 0.5


@dataclass
class _Graph:
    """The mutable pieces of a graph being rewritten, with name bookkeeping."""

    model: Any
    initializers: dict[str, Any]
    producers: dict[str, Any]
    consumers: dict[str, list[Any]]
    nodes: list[Any] = field(default_factory=list)
    counter: int = 0

    def fresh(self, stem: str) -> str:
        self.counter += 1
        return f"sk_q{self.counter}_{stem}"

    def constant(self, value: np.ndarray, stem: str) -> str:
        numpy_helper = require("onnx.numpy_helper", extra="onnx", purpose="quantizing an ONNX model")
        name = self.fresh(stem)
        self.model.graph.initializer.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def add(self, op: str, inputs: list[str], stem: str, domain: str = "", **attributes: Any) -> str:
        helper = require("onnx.helper", extra="onnx", purpose="quantizing an ONNX model")
        output = self.fresh(stem)
        self.nodes.append(helper.make_node(op, inputs, [output], domain=domain, **attributes))
        return output


@dataclass(frozen=True)
class _Quantized:
    """A 2-D uint8 activation with its per-row scale ``(rows, 1)`` and zero point (``None`` when 0)."""

    values: str
    scale: str
    zero_point: str | None


def quantize_per_token(
    source: Path,
    path: Path,
    reduce_range: bool = False,
    calibration: Sequence[dict[str, np.ndarray]] = (),
) -> None:
    """Write ``source`` with int8 weights and per-token dynamic activation quantization to ``path``.

    Args:
        source: An fp32 graph, best one already fused by ONNX Runtime's transformer optimizer.
        path: Where to write the quantized graph.
        reduce_range: Keep weights to 7 bits (CPUs without VNNI multiply u8 x s8 pairs into int16, which can
            saturate with 8-bit weights).
        calibration: Inputs of ``source`` (one feed dict per text, unpadded) that measure each GELU output
            channel's range, for smoothing the feed-forward output projections; none: no smoothing.
    """
    onnx = require("onnx", extra="onnx", purpose="quantizing an ONNX model")
    model = onnx.load(str(source))
    ranges = gelu_channel_ranges(model, calibration) if calibration else {}
    if any(node.op_type == "Attention" for node in model.graph.node):
        model = _quantize_attention(model, reduce_range)
    graph = index_graph(model)
    quantized_inputs: dict[tuple[str, str], _Quantized] = {}
    rewritten = 0
    for node in list(model.graph.node):
        weight = constant_weight(graph, node)
        if weight is None:
            graph.nodes.append(node)
            continue
        smoothing = None
        # smoothing changes the weight, so the input it divides must feed this MatMul alone
        if node.input[0] in ranges and len(graph.consumers[node.input[0]]) == 1:
            smoothing = smoothing_factors(ranges[node.input[0]], weight)
            weight = weight * smoothing[:, None]
            mode = "smoothed"
        elif _input_is_gelu(graph, node.input[0]) and _bias_slot(graph, node.output[0]) is not None:
            mode = "shifted"
        else:
            mode = "asymmetric"
        key = (node.input[0], mode)
        if key not in quantized_inputs:
            width = int(weight.shape[0])
            quantized_inputs[key] = (
                _quantize_shifted(graph, node.input[0], width)
                if mode == "shifted"
                else _quantize_asymmetric(graph, node.input[0], width, smoothing)
            )
        _replace_matmul(graph, node, weight, quantized_inputs[key], reduce_range)
        rewritten += 1
    del model.graph.node[:]
    model.graph.node.extend(graph.nodes)
    if not any(opset.domain == "com.microsoft" for opset in model.opset_import):
        model.opset_import.append(onnx.helper.make_opsetid("com.microsoft", 1))
    drop_unused_initializers(model)
    onnx.save(model, str(path))
    logger.info("Quantized %d MatMuls with per-token activation scales", rewritten)


def _quantize_attention(model: Any, reduce_range: bool) -> Any:
    """Fused Attention nodes -> ONNX Runtime's QAttention (per-batch activation scale, per-column weights)."""
    import tempfile

    onnx = require("onnx", extra="onnx", purpose="quantizing an ONNX model")
    quantization = require("onnxruntime.quantization", extra="onnx", purpose="quantizing an ONNX model")
    with tempfile.TemporaryDirectory() as folder:
        source, target = Path(folder) / "in.onnx", Path(folder) / "out.onnx"
        onnx.save(model, str(source))
        quantization.quantize_dynamic(
            str(source),
            str(target),
            op_types_to_quantize=["Attention"],
            per_channel=True,
            reduce_range=reduce_range,
            weight_type=quantization.QuantType.QInt8,
            # contrib operators defeat shape inference; everything unknown here is float
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
        return onnx.load(str(target))


def index_graph(model: Any) -> _Graph:
    """``model``'s nodes by output and by input, and its initializers, for a rewrite that appends nodes."""
    producers: dict[str, Any] = {}
    consumers: dict[str, list[Any]] = defaultdict(list)
    for node in model.graph.node:
        for name in node.output:
            producers[name] = node
        for name in node.input:
            consumers[name].append(node)
    initializers = {init.name: init for init in model.graph.initializer}
    return _Graph(model, initializers, producers, consumers)


def constant_weight(graph: _Graph, node: Any) -> np.ndarray | None:
    """The fp32 weight matrix of a ``MatMul(activation, constant 2-D weight)``, else ``None``."""
    if node.op_type != "MatMul" or node.input[1] not in graph.initializers:
        return None
    if node.input[0] in graph.initializers:
        return None
    numpy_helper = require("onnx.numpy_helper", extra="onnx", purpose="quantizing an ONNX model")
    weight = numpy_helper.to_array(graph.initializers[node.input[1]])
    if weight.ndim != 2 or weight.dtype != np.float32:
        return None
    return weight


def _input_is_gelu(graph: _Graph, name: str) -> bool:
    """Whether ``name`` is a GELU's output: a fused GELU operator, or the exact GELU as torch exports it.

    torch writes ``x * 0.5 * (1 + erf(x / sqrt(2)))`` as a few ``Mul``/``Add`` nodes around one ``Erf``: the
    output is a ``Mul`` with the ``Erf`` at most three nodes above it.
    """
    producer = graph.producers.get(name)
    if producer is None:
        return False
    if producer.op_type in _GELU_OPS:
        return True
    if producer.op_type != "Mul":
        return False
    frontier = [producer]
    for _ in range(3):
        frontier = [graph.producers[i] for node in frontier for i in node.input if i in graph.producers]
        if any(node.op_type == "Erf" for node in frontier):
            return True
    return False


def _bias_slot(graph: _Graph, output: str) -> tuple[Any, int] | None:
    """The single consumer of ``output`` whose constant bias can absorb a per-column constant."""
    users = graph.consumers.get(output, [])
    if len(users) != 1:
        return None
    user = users[0]
    if user.op_type == "Add" and len(user.input) == 2:  # MatMul -> Add(bias), as exported
        index: int | None = 1 if user.input[0] == output else 0
    else:
        index = _BIAS_INPUT.get(user.op_type)
    if index is None or len(user.input) <= index or user.input[index] not in graph.initializers:
        return None
    if len(graph.initializers[user.input[index]].dims) != 1:  # a per-column bias vector only
        return None
    if len(graph.consumers.get(user.input[index], [])) != 1:  # a shared bias cannot be changed for one user
        return None
    return user, index


def gelu_channel_ranges(model: Any, calibration: Sequence[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Largest ``|value|`` of each channel of every GELU output that a constant-weight MatMul reads."""
    onnx = require("onnx", extra="onnx", purpose="quantizing an ONNX model")
    ort = require("onnxruntime", extra="onnx", purpose="quantizing an ONNX model")
    graph = index_graph(model)
    names = sorted(
        {
            node.input[0]
            for node in model.graph.node
            if constant_weight(graph, node) is not None and _input_is_gelu(graph, node.input[0])
        }
    )
    if not names:
        return {}
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    for name in names:
        probe.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    options = ort.SessionOptions()
    options.log_severity_level = 3  # outputs without shapes are fine here; no warnings
    session = ort.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
    wanted = {i.name for i in session.get_inputs()}
    ranges: dict[str, np.ndarray] = {}
    for feeds in calibration:
        outputs = session.run(names, {k: v for k, v in feeds.items() if k in wanted})
        for name, value in zip(names, outputs, strict=True):
            peak = np.abs(value.reshape(-1, value.shape[-1])).max(axis=0)
            ranges[name] = np.maximum(ranges[name], peak) if name in ranges else peak
    return ranges


def smoothing_factors(
    channel_range: np.ndarray, weight: np.ndarray, alpha: float = SMOOTHING_ALPHA
) -> np.ndarray:
    """SmoothQuant's per-channel factors: the activation is divided by them, the weight's rows multiplied.

    ``alpha``: the migration strength (0: no smoothing; 1: the activation's whole range moves to the weights).
    """
    weight_range = np.abs(weight).max(axis=1)
    floor = 1e-5  # a channel (or weight row) that is all zeros keeps factor ~1 instead of 0 or infinity
    factors = np.maximum(channel_range, floor) ** alpha
    factors = factors / np.maximum(weight_range, floor) ** (1 - alpha)
    return np.asarray(factors, np.float32)


def _as_rows(graph: _Graph, name: str, width: int) -> str:
    return graph.add("Reshape", [name, graph.constant(np.array([-1, width], np.int64), "rows")], "x2d")


def _quantize_shifted(graph: _Graph, name: str, width: int) -> _Quantized:
    """A GELU output (>= -0.17) as uint8 rows of ``x + 0.17``, one scale per row, zero point 0."""
    rows = _as_rows(graph, name, width)
    shifted = graph.add("Add", [rows, graph.constant(np.array(_GELU_SHIFT, np.float32), "shift")], "xs")
    high = graph.add("ReduceMax", [shifted], "hi", axes=[1], keepdims=1)
    scale = graph.add("Div", [high, graph.constant(np.array(255.0, np.float32), "levels")], "s")
    scale = graph.add("Max", [scale, graph.constant(np.array(_MIN_SCALE, np.float32), "eps")], "s")
    flat = graph.add("Reshape", [scale, graph.constant(np.array([-1], np.int64), "flat")], "s1d")
    values = graph.add("QuantizeLinear", [shifted, flat], "q", axis=0)
    return _Quantized(values, scale, None)


def _quantize_asymmetric(
    graph: _Graph, name: str, width: int, smoothing: np.ndarray | None = None
) -> _Quantized:
    """Activation ``name`` (..., width) as uint8 rows from each row's own range (scale and zero point).

    With ``smoothing``, each channel is first divided by its factor (the weights were multiplied by it).
    """
    rows = _as_rows(graph, name, width)
    if smoothing is not None:
        inverse = (1.0 / smoothing).astype(np.float32)
        rows = graph.add("Mul", [rows, graph.constant(inverse, "inv_s")], "xsm")
    zero = graph.constant(np.array(0.0, np.float32), "zero")
    high = graph.add("Max", [graph.add("ReduceMax", [rows], "hi", axes=[1], keepdims=1), zero], "hi0")
    low = graph.add("Min", [graph.add("ReduceMin", [rows], "lo", axes=[1], keepdims=1), zero], "lo0")
    span = graph.add("Sub", [high, low], "span")
    scale = graph.add("Div", [span, graph.constant(np.array(255.0, np.float32), "levels")], "s")
    scale = graph.add("Max", [scale, graph.constant(np.array(_MIN_SCALE, np.float32), "eps")], "s")
    zero_point = graph.add("Round", [graph.add("Neg", [graph.add("Div", [low, scale], "lo_s")], "z")], "zr")
    as_uint8 = graph.add("Cast", [zero_point], "zu8", to=2)  # TensorProto.UINT8
    flat_scale = graph.add("Reshape", [scale, graph.constant(np.array([-1], np.int64), "flat")], "s1d")
    flat_zero = graph.add("Reshape", [as_uint8, graph.constant(np.array([-1], np.int64), "flat")], "z1d")
    values = graph.add("QuantizeLinear", [rows, flat_scale, flat_zero], "q", axis=0)
    return _Quantized(values, scale, zero_point)


def _replace_matmul(
    graph: _Graph, node: Any, weight: np.ndarray, source: _Quantized, reduce_range: bool
) -> None:
    """Emit the int8 product for ``node`` and give its output back its original shape and name."""
    helper = require("onnx.helper", extra="onnx", purpose="quantizing an ONNX model")
    weight_int8, column_scale = quantize_columns(weight, 63 if reduce_range else 127)
    # Column sums of the weights as the kernel sees them (dequantized), for the zero-point and shift terms.
    column_sums = (weight_int8.astype(np.float32).sum(axis=0) * column_scale).astype(np.float32)
    product = graph.add(
        "MatMulIntegerToFloat",
        [
            source.values,
            graph.constant(weight_int8, "w"),
            source.scale,
            graph.constant(column_scale.astype(np.float32), "ws"),
        ],
        "mm",
        domain="com.microsoft",
    )
    if source.zero_point is not None:
        # (q - z) W = q W - z * colsum(W), with both sides scaled by the row's scale
        offset = graph.add("Mul", [source.scale, source.zero_point], "sz")
        correction = graph.add("Mul", [offset, graph.constant(column_sums, "cs")], "corr")
        product = graph.add("Sub", [product, correction], "mm")
    else:
        # (x + shift) W = x W + shift * colsum(W): take the constant back out in the next bias
        slot = _bias_slot(graph, node.output[0])
        if slot is None:  # guarded by the caller; kept as an assertion of that contract
            raise AssertionError(f"no bias to fold the GELU shift into after {node.name}")
        user, index = slot
        _add_to_initializer(graph, user.input[index], -_GELU_SHIFT * column_sums)
    shape = graph.add("Shape", [node.input[0]], "shape")
    leading = graph.add(
        "Slice",
        [shape, graph.constant(np.array([0], np.int64), "0"), graph.constant(np.array([-1], np.int64), "-1")],
        "lead",
    )
    target = graph.add(
        "Concat", [leading, graph.constant(np.array([weight.shape[1]], np.int64), "n")], "oshape", axis=0
    )
    graph.nodes.append(helper.make_node("Reshape", [product, target], [node.output[0]], name=node.name))


def quantize_columns(weight: np.ndarray, limit: int = 127) -> tuple[np.ndarray, np.ndarray]:
    """``weight`` as symmetric int8 in ``[-limit, limit]`` with one fp32 scale per output column."""
    column_scale = np.abs(weight).max(axis=0) / limit
    column_scale[column_scale == 0] = 1.0
    values = np.clip(np.round(weight / column_scale), -limit, limit).astype(np.int8)
    return values, column_scale.astype(np.float32)


def _add_to_initializer(graph: _Graph, name: str, delta: np.ndarray) -> None:
    numpy_helper = require("onnx.numpy_helper", extra="onnx", purpose="quantizing an ONNX model")
    tensor = graph.initializers[name]
    updated = (numpy_helper.to_array(tensor).astype(np.float32) + delta).astype(np.float32)
    tensor.CopyFrom(numpy_helper.from_array(updated, name))


def drop_unused_initializers(model: Any) -> None:
    """Remove the initializers no node reads any more (the fp32 weights a rewrite replaced)."""
    used = {name for node in model.graph.node for name in node.input}
    used |= {output.name for output in model.graph.output}
    keep = [init for init in model.graph.initializer if init.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)
