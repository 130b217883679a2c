"""Helpers for working with embeddings: similarity, search, mining and quantization.

The same names as ``sentence_transformers.util``, so ``from sentencekit import util`` is a drop-in switch.
"""

from __future__ import annotations

from sentencekit.hard_negatives import mine_hard_negatives
from sentencekit.quantization import quantize_embeddings, semantic_search_quantized
from sentencekit.search import (
    community_detection,
    paraphrase_mining,
    paraphrase_mining_embeddings,
    semantic_search,
)
from sentencekit.similarity import (
    cos_sim,
    dot_score,
    euclidean_sim,
    manhattan_sim,
    normalize_embeddings,
    pairwise_angle_sim,
    pairwise_cos_sim,
    pairwise_dot_score,
    pairwise_euclidean_sim,
    pairwise_manhattan_sim,
)
from sentencekit.types import SimilarityFunction
from sentencekit.util.tools import (
    LoggingHandler,
    batch_to_device,
    fullname,
    get_device_name,
    import_from_string,
    pytorch_cos_sim,
    select_max_active_dims,
    truncate_embeddings,
)

__all__ = [
    "LoggingHandler",
    "SimilarityFunction",
    "batch_to_device",
    "community_detection",
    "cos_sim",
    "dot_score",
    "euclidean_sim",
    "fullname",
    "get_device_name",
    "import_from_string",
    "manhattan_sim",
    "mine_hard_negatives",
    "normalize_embeddings",
    "pairwise_angle_sim",
    "pairwise_cos_sim",
    "pairwise_dot_score",
    "pairwise_euclidean_sim",
    "pairwise_manhattan_sim",
    "paraphrase_mining",
    "paraphrase_mining_embeddings",
    "pytorch_cos_sim",
    "quantize_embeddings",
    "select_max_active_dims",
    "semantic_search",
    "semantic_search_quantized",
    "truncate_embeddings",
]
