"""sentencekit: dense text embeddings, API-compatible with sentence-transformers.

Switch by changing one import::

    from sentencekit import SentenceTransformer

    model = SentenceTransformer("all-MiniLM-L6-v2")
    embeddings = model.encode(["A man is eating food.", "A man is riding a horse."])

Importing this package is cheap: torch, transformers and every optional dependency are imported only when a
name that needs them is first used (PEP 562 lazy attributes).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it (imported on first access)
_LAZY: dict[str, str] = {
    "CacheError": "sentencekit.errors",
    "CrossEncoder": "sentencekit.cross_encoder",
    "CrossEncoderModelCardData": "sentencekit.model_card",
    "CrossEncoderTrainer": "sentencekit.training.trainer",
    "CrossEncoderTrainingArguments": "sentencekit.training.arguments",
    "HubError": "sentencekit.errors",
    "Index": "sentencekit.index",
    "IndexCorruptedError": "sentencekit.errors",
    "InputExample": "sentencekit.training.input_example",
    "InvalidInputError": "sentencekit.errors",
    "LoggingHandler": "sentencekit.util.tools",
    "MissingDependencyError": "sentencekit.errors",
    "ModelFormatError": "sentencekit.errors",
    "ModelNotFoundError": "sentencekit.errors",
    "PackagedModelError": "sentencekit.errors",
    "PoolError": "sentencekit.errors",
    "SentenceKitError": "sentencekit.errors",
    "SentenceTransformer": "sentencekit.sentence_transformer",
    "SentenceTransformerModelCardData": "sentencekit.model_card",
    "SentenceTransformerTrainer": "sentencekit.training.trainer",
    "SentenceTransformerTrainingArguments": "sentencekit.training.arguments",
    "SimilarityFunction": "sentencekit.types",
    "SparseEncoder": "sentencekit.sparse_encoder.model",
    "SparseEncoderModelCardData": "sentencekit.model_card",
    "SparseEncoderTrainer": "sentencekit.sparse_encoder.trainer",
    "SparseEncoderTrainingArguments": "sentencekit.sparse_encoder.training_args",
    "export_dynamic_quantized_onnx_model": "sentencekit.backends.onnx_export",
    "export_optimized_onnx_model": "sentencekit.backends.onnx_export",
    "mine_hard_negatives": "sentencekit.hard_negatives",
    "quantize_embeddings": "sentencekit.quantization",
}
# the reference's module paths (similarity_functions, trainer, training_args) are submodules here too
_SUBMODULES = (
    "cache",
    "cross_encoder",
    "evaluation",
    "losses",
    "model_card",
    "models",
    "readers",
    "similarity_functions",
    "sparse_encoder",
    "trainer",
    "training_args",
    "util",
)

__all__ = [
    "CacheError",
    "CrossEncoder",
    "CrossEncoderModelCardData",
    "CrossEncoderTrainer",
    "CrossEncoderTrainingArguments",
    "HubError",
    "Index",
    "IndexCorruptedError",
    "InputExample",
    "InvalidInputError",
    "LoggingHandler",
    "MissingDependencyError",
    "ModelFormatError",
    "ModelNotFoundError",
    "PackagedModelError",
    "PoolError",
    "SentenceKitError",
    "SentenceTransformer",
    "SentenceTransformerModelCardData",
    "SentenceTransformerTrainer",
    "SentenceTransformerTrainingArguments",
    "SimilarityFunction",
    "SparseEncoder",
    "SparseEncoderModelCardData",
    "SparseEncoderTrainer",
    "SparseEncoderTrainingArguments",
    "__version__",
    "cache",
    "cross_encoder",
    "evaluation",
    "export_dynamic_quantized_onnx_model",
    "export_optimized_onnx_model",
    "losses",
    "mine_hard_negatives",
    "model_card",
    "models",
    "quantize_embeddings",
    "readers",
    "similarity_functions",
    "sparse_encoder",
    "trainer",
    "training_args",
    "util",
]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from sentencekit import (
        cache,
        cross_encoder,
        evaluation,
        losses,
        model_card,
        models,
        readers,
        similarity_functions,
        sparse_encoder,
        trainer,
        training_args,
        util,
    )
    from sentencekit.backends.onnx_export import (
        export_dynamic_quantized_onnx_model,
        export_optimized_onnx_model,
    )
    from sentencekit.cross_encoder import CrossEncoder
    from sentencekit.errors import (
        CacheError,
        HubError,
        IndexCorruptedError,
        InvalidInputError,
        MissingDependencyError,
        ModelFormatError,
        ModelNotFoundError,
        PackagedModelError,
        PoolError,
        SentenceKitError,
    )
    from sentencekit.hard_negatives import mine_hard_negatives
    from sentencekit.index import Index
    from sentencekit.model_card import (
        CrossEncoderModelCardData,
        SentenceTransformerModelCardData,
        SparseEncoderModelCardData,
    )
    from sentencekit.quantization import quantize_embeddings
    from sentencekit.sentence_transformer import SentenceTransformer
    from sentencekit.sparse_encoder import SparseEncoder, SparseEncoderTrainer, SparseEncoderTrainingArguments
    from sentencekit.training.arguments import (
        CrossEncoderTrainingArguments,
        SentenceTransformerTrainingArguments,
    )
    from sentencekit.training.input_example import InputExample
    from sentencekit.training.trainer import CrossEncoderTrainer, SentenceTransformerTrainer
    from sentencekit.types import SimilarityFunction
    from sentencekit.util.tools import LoggingHandler


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"sentencekit.{name}")
    else:
        raise AttributeError(f"module 'sentencekit' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
