"""Produce ONNX graphs from a model: fp32 export, transformer fusion, ahead-of-time optimization, int8.

These functions write one file each and know nothing about file names or caching, which
:mod:`sentencekit.backends.onnx_export` handles. onnxruntime, onnx and onnxscript (the ``onnx`` extra) are
imported when a function runs.

The exact graph is made in two steps. :func:`export_fp32` traces the model with ``torch.onnx``'s TorchScript
exporter (``dynamo=False``), whose graph ONNX Runtime's transformer optimizer recognizes; the dynamo
exporter's graph is used only when that exporter fails. :func:`fuse_file` then runs the optimizer, which
replaces each layer's attention and bias-plus-GELU subgraphs, and the embeddings' LayerNorm, by one fused
operator each (``Attention``, ``BiasGelu``, ``EmbedLayerNormalization``). The fused operators compute the
same arithmetic (max |diff| ~3e-7 on all-MiniLM-L6-v2 embeddings), and each file is checked against torch
before it is kept.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import os
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from sentencekit._optional import require
from sentencekit.backends.onnx_quantize import quantize_per_token
from sentencekit.backends.onnx_weights import compress_weights_int8
from sentencekit.errors import ModelFormatError
from sentencekit.modules import Transformer

__all__ = [
    "OPTIMIZATION_LEVELS",
    "QUANTIZATION_CONFIGS",
    "ExportSource",
    "check_file",
    "compress_file",
    "export_fp32",
    "fuse_file",
    "optimize_file",
    "quantize_file",
    "quiet_onnxruntime_tools",
]

logger = logging.getLogger(__name__)

# Optimization level of the reference's file names -> ONNX Runtime's GraphOptimizationLevel. O2 and O3 start
# from the fused graph (fuse_file); O1 does not fuse.
OPTIMIZATION_LEVELS = {"O1": "ORT_ENABLE_BASIC", "O2": "ORT_ENABLE_EXTENDED", "O3": "ORT_ENABLE_ALL"}
# config -> reduce_range. CPUs without VNNI multiply u8 x s8 pairs into int16 and can saturate, so their
# weights are kept to 7 bits; VNNI (and arm64's dot products) accumulate in int32 and use all 8.
QUANTIZATION_CONFIGS = {"arm64": False, "avx2": True, "avx512": True, "avx512_vnni": False}
# Models with more weight bytes than this keep their weights in an external ``.onnx.data`` file (protobuf's
# 2 GB limit).
_EXTERNAL_DATA_BYTES = 1_500_000_000
# Largest |difference| from torch, over real tokens, that an fp32 graph may show on its check inputs: float
# rounding of reordered sums stays near 1e-6 even for 24-layer models; a wrong graph is off by far more.
_EXPORT_TOLERANCE = 1e-4
# The TorchScript exporter's opset: 17 has LayerNormalization, which the fusions start from.
_OPSET = 17


@dataclass(frozen=True)
class ExportSource:
    """What to export: a Hugging Face model, the tensors it takes, and the output the graph returns.

    Attributes:
        model: The torch model (an encoder, or a sequence classifier).
        input_names: Among ``input_ids``, ``attention_mask``, ``token_type_ids``, in the model's order.
        output: ``"last_hidden_state"`` (graph output ``token_embeddings``) or ``"logits"``.
        example: Builds a small padded batch of those inputs, used for tracing and for the parity check.
        calibration: Builds real texts' inputs, one unpadded batch of one per text, from which int8 graphs
            measure activation ranges (see :func:`~sentencekit.backends.onnx_quantize.quantize_per_token`);
            ``None``: int8 graphs are made without.
        variant: Names a rewritten form of the model (``"first-token"``), so that its files and the plain
            model's do not mix (it is part of the fingerprint); ``""`` for the model as it is.
    """

    model: nn.Module
    input_names: tuple[str, ...]
    output: str
    example: Callable[[], dict[str, Tensor]]
    calibration: Callable[[], list[dict[str, Tensor]]] | None = None
    variant: str = ""

    @classmethod
    def of_transformer(cls, transformer: Transformer) -> ExportSource:
        """The encoder of a :class:`~sentencekit.modules.Transformer` module."""

        def example() -> dict[str, Tensor]:
            rows = _example_rows(transformer.config)
            types = [[0] * len(r) for r in rows] if "token_type_ids" in transformer.forward_inputs else None
            return transformer.collate(rows, types)

        def calibration() -> list[dict[str, Tensor]]:
            from sentencekit.backends.probe import PROBE_TEXTS

            return [transformer.tokenize([text]) for text in PROBE_TEXTS]

        names = tuple(transformer.forward_inputs)
        return cls(transformer.auto_model, names, "last_hidden_state", example, calibration)

    @property
    def graph_output(self) -> str:
        """Name of the graph's output."""
        return "token_embeddings" if self.output == "last_hidden_state" else self.output


def _example_rows(config: Any) -> list[list[int]]:
    vocab = max(int(getattr(config, "vocab_size", 100)), 10)
    generator = torch.Generator().manual_seed(0)
    return [torch.randint(5, vocab, (n,), generator=generator).tolist() for n in (11, 6, 3)]


class _Output(nn.Module):
    """The model as a function of its tensor inputs, returning one output."""

    def __init__(self, model: nn.Module, names: tuple[str, ...], output: str) -> None:
        super().__init__()
        self.model = model
        self.names = names
        self.output = output

    def forward(
        self, input_ids: Tensor, attention_mask: Tensor, token_type_ids: Tensor | None = None
    ) -> Tensor:
        given = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        inputs = {name: given[name] for name in self.names}
        result: Tensor = getattr(self.model(**inputs, return_dict=True), self.output)
        return result


def export_fp32(source: ExportSource, path: Path) -> None:
    """Export ``source`` to ``path`` in fp32, with dynamic batch and sequence axes, and check it.

    Exports a deep copy (tracing has left a live transformers 5 model giving wrong outputs), with plain
    (eager) attention, whose MatMul/Softmax graph ONNX Runtime fuses. Tries the TorchScript exporter
    first, then the dynamo exporter.

    Raises:
        ModelFormatError: When the model does not take ``input_ids`` and ``attention_mask`` first, or when no
            exporter produced a graph that agrees with torch.
    """
    require("onnx", extra="onnx", purpose="exporting a model to ONNX")
    names = source.input_names
    if names[:2] != ("input_ids", "attention_mask"):
        raise ModelFormatError(
            f"ONNX export needs a model taking input_ids and attention_mask; this one takes {list(names)}."
        )
    model: Any = copy.deepcopy(source.model).to("cpu", torch.float32).eval()
    with contextlib.suppress(AttributeError, ValueError):
        model.set_attn_implementation("eager")
    example = source.example()
    wrapper = _Output(model, names, source.output)
    failures = []
    for dynamo in (False, True):
        try:
            _run_exporter(wrapper, example, source, path, dynamo)
            check_file(source, path)
            logger.debug("Exported with the %s exporter", "dynamo" if dynamo else "TorchScript")
            return
        except Exception as exc:  # exporters raise many types; the next one may succeed
            failures.append(f"{'dynamo' if dynamo else 'TorchScript'} exporter: {type(exc).__name__}: {exc}")
            logger.debug("ONNX export failed: %s", failures[-1])
    raise ModelFormatError(f"ONNX export failed ({'; '.join(failures)}); use backend='torch' for this model.")


def _run_exporter(
    wrapper: nn.Module, example: dict[str, Tensor], source: ExportSource, path: Path, dynamo: bool
) -> None:
    names = list(source.input_names)
    args = tuple(example[name] for name in names)
    external = sum(p.numel() * 4 for p in wrapper.parameters()) > _EXTERNAL_DATA_BYTES
    output_axes = {0: "batch", 1: "sequence"} if source.output == "last_hidden_state" else {0: "batch"}
    # The exporters print progress to stdout and warn about internals we cannot act on; keep both quiet.
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), torch.no_grad():
        warnings.simplefilter("ignore")
        if dynamo:
            require("onnxscript", extra="onnx", purpose="exporting a model with torch.onnx's dynamo exporter")
            batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
            torch.onnx.export(
                wrapper,
                args,
                str(path),
                input_names=names,
                output_names=[source.graph_output],
                dynamic_shapes=tuple({0: batch, 1: sequence} for _ in names),
                external_data=external,
                dynamo=True,
                verbose=False,
            )
        else:
            if external:
                raise ModelFormatError("the TorchScript exporter cannot write weights over 2 GB")
            torch.onnx.export(
                wrapper,
                args,
                str(path),
                input_names=names,
                output_names=[source.graph_output],
                dynamic_axes={
                    **{n: {0: "batch", 1: "sequence"} for n in names},
                    source.graph_output: output_axes,
                },
                opset_version=_OPSET,
                do_constant_folding=True,
                dynamo=False,
            )


def check_file(source: ExportSource, path: Path, tolerance: float = _EXPORT_TOLERANCE) -> float:
    """Run ``path`` and the torch model on the example batch; return the largest |difference|.

    Only real (unpadded) tokens count for token outputs.

    Raises:
        ModelFormatError: When the difference exceeds ``tolerance`` (fp32 models) or 0.1 (half precision).
    """
    ort = require("onnxruntime", extra="onnx", purpose="checking an ONNX graph")
    example = source.example()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {i.name: example[i.name].numpy() for i in session.get_inputs()}
    got = torch.from_numpy(session.run(None, feeds)[0])
    model = source.model
    with torch.inference_mode():
        device = next(model.parameters()).device
        inputs = {name: example[name].to(device) for name in source.input_names}
        expected = getattr(model(**inputs, return_dict=True), source.output).float().cpu()
    difference = (got - expected).abs()
    if source.output == "last_hidden_state":
        difference = difference * example["attention_mask"].unsqueeze(-1)
    diff = float(difference.max())
    dtype = next(model.parameters()).dtype
    limit = tolerance if dtype == torch.float32 else 0.1
    if not diff <= limit:  # also catches NaN
        raise ModelFormatError(
            f"The ONNX graph {path.name} differs from torch by up to {diff:.2e} (limit {limit}); use "
            "backend='torch' for this model."
        )
    logger.debug("ONNX graph check %s: max |diff| vs torch %.2e", path.name, diff)
    return diff


def fuse_file(source_file: Path, path: Path, source: ExportSource) -> None:
    """Write ``source_file`` with ONNX Runtime's transformer fusions to ``path``, checked against torch.

    The fused graph uses ONNX Runtime's contrib operators, so it runs on ONNX Runtime only. A model whose
    subgraphs the optimizer does not recognize comes out unfused (and as exact); which operators were fused is
    logged.

    Raises:
        ModelFormatError: When the fused graph does not agree with torch.
    """
    require("onnxruntime", extra="onnx", purpose="fusing an ONNX graph")
    optimizer = require("onnxruntime.transformers.optimizer", extra="onnx", purpose="fusing an ONNX graph")
    config = getattr(source.model, "config", None)
    heads = int(getattr(config, "num_attention_heads", 0) or 0)
    hidden = int(getattr(config, "hidden_size", 0) or 0)
    fusion_options = require(
        "onnxruntime.transformers.fusion_options", extra="onnx", purpose="fusing an ONNX graph"
    )
    options = fusion_options.FusionOptions("bert")
    # Residual Add + LayerNormalization stay two operators: ONNX Runtime 1.32's fused SkipLayerNormalization
    # CPU kernel is ~3x slower than the pair (all-MiniLM-L6-v2, STSb: 221 ms vs 65 ms of 2.3 s).
    options.enable_skip_layer_norm = False
    options.enable_bias_skip_layer_norm = False
    with quiet_onnxruntime_tools():
        fused = optimizer.optimize_model(
            str(source_file),
            model_type="bert",
            num_heads=heads,
            hidden_size=hidden,
            optimization_options=options,
            opt_level=0,
        )
        fused.save_model_to_file(str(path))
    counts = Counter(node.op_type for node in fused.model.graph.node)
    kinds = ("Attention", "LayerNormalization", "BiasGelu", "EmbedLayerNormalization")
    logger.info("Fused graph: %s", ", ".join(f"{counts.get(k, 0)} {k}" for k in kinds))
    check_file(source, path)


class _OnnxruntimeChatter(logging.Filter):
    """Drops the INFO and WARNING records of onnxruntime's Python tools.

    They log through the root logger or through loggers named after their modules: progress notes, and advice
    about pre-processing that sentencekit acts on itself. Errors pass.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        from_onnxruntime = f"{os.sep}onnxruntime{os.sep}" in record.pathname
        return not (from_onnxruntime and record.levelno <= logging.WARNING)


@contextlib.contextmanager
def quiet_onnxruntime_tools() -> Iterator[None]:
    """Silence onnxruntime's Python tools (optimizer, quantizer) for the duration of a call."""
    chatter = _OnnxruntimeChatter()
    root = logging.getLogger()
    targets: list[logging.Filterer] = [root, *root.handlers]
    for target in targets:
        target.addFilter(chatter)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for target in targets:
            target.removeFilter(chatter)


def optimize_file(source: Path, path: Path, level: str) -> None:
    """Write ``source`` optimized by ONNX Runtime at level ``"O1"``, ``"O2"`` or ``"O3"`` to ``path``."""
    ort = require("onnxruntime", extra="onnx", purpose="optimizing an ONNX model")
    options = ort.SessionOptions()
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, OPTIMIZATION_LEVELS[level])
    options.optimized_model_filepath = str(path)
    ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])


def _calibration_feeds(model: ExportSource | None) -> list[dict[str, np.ndarray]]:
    """``model``'s calibration inputs as ONNX feeds (none when it has no calibration texts)."""
    if model is None or model.calibration is None:
        return []
    return [{name: value.numpy() for name, value in batch.items()} for batch in model.calibration()]


def quantize_file(source: Path, path: Path, config: str, model: ExportSource | None = None) -> None:
    """Quantize ``source``'s MatMul weights to int8 per output channel, activations per token at run time.

    ``model``'s calibration texts, when it has them, set the smoothing of the feed-forward output projections.
    """
    with quiet_onnxruntime_tools():
        quantize_per_token(
            source, path, reduce_range=QUANTIZATION_CONFIGS[config], calibration=_calibration_feeds(model)
        )


def compress_file(source: Path, path: Path, model: ExportSource | None = None) -> None:
    """Store ``source``'s MatMul weights as int8 per output channel (for OpenVINO's dynamic quantization).

    ``model``'s calibration texts, when it has them, set the smoothing of the feed-forward output projections.
    """
    with quiet_onnxruntime_tools():
        compress_weights_int8(source, path, calibration=_calibration_feeds(model))
