"""Produce ONNX graphs from a Transformer module: fp32 export, ahead-of-time optimization, int8 quantization.

These functions write one file each and know nothing about file names or caching, which
:mod:`sentencekit.backends.onnx_export` handles. onnxruntime, onnx and onnxscript (the ``onnx`` extra) are
imported when a function runs.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from sentencekit._optional import require
from sentencekit.errors import ModelFormatError
from sentencekit.modules import Transformer

__all__ = ["OPTIMIZATION_LEVELS", "QUANTIZATION_CONFIGS", "export_fp32", "optimize_file", "quantize_file"]

logger = logging.getLogger(__name__)

# Optimization level of the reference's file names -> ONNX Runtime's GraphOptimizationLevel.
OPTIMIZATION_LEVELS = {"O1": "ORT_ENABLE_BASIC", "O2": "ORT_ENABLE_EXTENDED", "O3": "ORT_ENABLE_ALL"}
# config -> reduce_range. CPUs without VNNI multiply u8 x s8 pairs into int16 and can saturate, so their
# weights are kept to 7 bits; VNNI (and arm64's dot products) accumulate in int32 and use all 8.
QUANTIZATION_CONFIGS = {"arm64": False, "avx2": True, "avx512": True, "avx512_vnni": False}
# Only MatMul weights are quantized: on all-MiniLM-L6-v2 (800 STSb sentences) quantizing the embedding Gather
# as well lowered the minimum cosine to fp32 from 0.987 to 0.982 and was no faster.
_QUANTIZED_OPERATORS = ["MatMul"]
# Models with more weight bytes than this keep their weights in an external ``.onnx.data`` file (protobuf's
# 2 GB limit).
_EXTERNAL_DATA_BYTES = 1_500_000_000
# Largest |difference| from torch, over real tokens, that an fp32 export may show on its check inputs.
_EXPORT_TOLERANCE = 1e-3


class _LastHiddenState(nn.Module):
    """The encoder as a function of its tensor inputs, returning the last hidden state only."""

    def __init__(self, model: nn.Module, names: list[str]) -> None:
        super().__init__()
        self.model = model
        self.names = names

    def forward(
        self, input_ids: Tensor, attention_mask: Tensor, token_type_ids: Tensor | None = None
    ) -> Tensor:
        given = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        inputs = {name: given[name] for name in self.names}
        return self.model(**inputs, return_dict=True).last_hidden_state


def export_fp32(transformer: Transformer, path: Path) -> None:
    """Export ``transformer``'s encoder to ``path`` in fp32, with dynamic batch and sequence axes.

    Exports a deep copy (tracing has left a live transformers 5 model giving wrong outputs), then checks the
    file against the torch model on two padded inputs.

    Raises:
        ModelFormatError: When the exported graph disagrees with torch.
    """
    require("onnxscript", extra="onnx", purpose="exporting a model to ONNX")
    names = list(transformer.forward_inputs)
    if names[:2] != ["input_ids", "attention_mask"]:
        raise ModelFormatError(
            f"ONNX export needs an encoder taking input_ids and attention_mask; this one takes {names}."
        )
    model = copy.deepcopy(transformer.auto_model).to("cpu", torch.float32).eval()
    # Plain attention exports as MatMul/Softmax, which ONNX Runtime runs faster than the graph torch's SDPA
    # decomposes into (SciFact abstracts on all-MiniLM-L6-v2: ~1.2x).
    with contextlib.suppress(AttributeError, ValueError):
        model.set_attn_implementation("eager")
    example = _example_inputs(transformer)
    args = tuple(example[name] for name in names)
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    dynamic = tuple({0: batch, 1: sequence} for _ in names)
    external = sum(p.numel() * 4 for p in model.parameters()) > _EXTERNAL_DATA_BYTES
    # The exporter prints progress to stdout and warns about internals we cannot act on; keep both quiet.
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _LastHiddenState(model, names),
            args,
            str(path),
            input_names=names,
            output_names=["token_embeddings"],
            dynamic_shapes=dynamic,
            external_data=external,
            dynamo=True,
            verbose=False,
        )
    del model
    _check_export(transformer, path, example)


def _example_inputs(transformer: Transformer) -> dict[str, Tensor]:
    vocab = max(int(getattr(transformer.config, "vocab_size", 100)), 10)
    generator = torch.Generator().manual_seed(0)
    rows = [torch.randint(5, vocab, (n,), generator=generator).tolist() for n in (11, 6, 3)]
    types = [[0] * len(r) for r in rows] if "token_type_ids" in transformer.forward_inputs else None
    return transformer.collate(rows, types)


def _check_export(transformer: Transformer, path: Path, example: dict[str, Tensor]) -> None:
    ort = require("onnxruntime", extra="onnx", purpose="checking an ONNX export")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {i.name: example[i.name].numpy() for i in session.get_inputs()}
    got = torch.from_numpy(session.run(None, feeds)[0])
    with torch.inference_mode():
        inputs = {name: example[name] for name in transformer.forward_inputs}
        model = transformer.auto_model
        expected = model(**{k: v.to(model.device) for k, v in inputs.items()}, return_dict=True)
    expected_tokens = expected.last_hidden_state.float().cpu()
    mask = example["attention_mask"].unsqueeze(-1).bool()
    diff = float(((got - expected_tokens).abs() * mask).max())
    tolerance = _EXPORT_TOLERANCE if model.dtype == torch.float32 else 0.1
    if diff > tolerance:
        raise ModelFormatError(
            f"The ONNX export of this model differs from torch by up to {diff:.2e} (limit {tolerance}); "
            "use backend='torch' for it."
        )
    logger.debug("ONNX export check: max |diff| vs torch %.2e", diff)


def optimize_file(source: Path, path: Path, level: str) -> None:
    """Write ``source`` optimized by ONNX Runtime at level ``"O1"``, ``"O2"`` or ``"O3"`` to ``path``."""
    ort = require("onnxruntime", extra="onnx", purpose="optimizing an ONNX model")
    options = ort.SessionOptions()
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, OPTIMIZATION_LEVELS[level])
    options.optimized_model_filepath = str(path)
    ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])


def quantize_file(source: Path, path: Path, config: str) -> None:
    """Quantize ``source``'s MatMul weights to int8 per output channel (activations: at run time)."""
    quantization = require("onnxruntime.quantization", extra="onnx", purpose="quantizing an ONNX model")
    quantization.quantize_dynamic(
        str(source),
        str(path),
        op_types_to_quantize=_QUANTIZED_OPERATORS,
        per_channel=True,
        reduce_range=QUANTIZATION_CONFIGS[config],
        weight_type=quantization.QuantType.QInt8,
    )
