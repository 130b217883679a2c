"""Shared plumbing of the evaluators: encode each distinct text once, look similarity functions up by name.

Evaluation data repeats itself: an SNLI premise anchors several triplets, a Quora question sits in
several pairs, and re-ranking candidates recur across queries. :func:`encode_texts` encodes the union of its
text lists once and hands back one row per input, so every evaluator pays for each distinct text once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from sentencekit.encoding.sparse_rows import split_rows
from sentencekit.similarity import similarity_fn
from sentencekit.types import SimilarityFunction

__all__ = [
    "check_similarity_names",
    "encode_texts",
    "model_similarity_name",
    "pairwise_similarity",
    "similarity_matrix",
    "split_rows",
]

logger = logging.getLogger(__name__)

Role = Literal["query", "document"]
QUANTIZED = ("int8", "uint8", "binary", "ubinary")


def encode_texts(
    model: Any,
    *text_lists: Sequence[Any],
    batch_size: int,
    show_progress_bar: bool = False,
    role: Role | None = None,
    prompt: str | None = None,
    prompt_name: str | None = None,
    truncate_dim: int | None = None,
    precision: str | None = None,
    options: Mapping[str, Any] | None = None,
) -> list[Tensor]:
    """Encode the distinct texts of ``text_lists`` in one call and return one float tensor per list.

    Args:
        model: Anything with the ``SentenceTransformer.encode`` signature.
        *text_lists: One or more lists of texts; row ``i`` of the ``k``-th result embeds ``text_lists[k][i]``.
        batch_size: Passed to ``encode``.
        show_progress_bar: Passed to ``encode``.
        role: ``"query"`` or ``"document"`` calls ``model.encode_query`` / ``model.encode_document`` when the
            model has them (they apply the model's own query/document prompts); ``None`` calls ``encode``.
        prompt: A literal prompt prepended to every text; ``None`` for none.
        prompt_name: Name of one of the model's stored prompts; ``None`` for none.
        truncate_dim: Keep only the first ``truncate_dim`` dimensions; ``None`` keeps the model's setting.
        precision: ``"int8"``, ``"uint8"``, ``"binary"`` or ``"ubinary"`` to evaluate quantized (normalized)
            embeddings, unpacked to one float per dimension; ``None`` for float32.
        options: Further keyword arguments for ``encode``, e.g. a sparse model's ``max_active_dims``.

    Returns:
        One ``(len(text_list), dim)`` float tensor per list, on the device the model returned; sparse COO
        when the model returns sparse embeddings.

    """
    all_texts = [text for texts in text_lists for text in texts]
    try:
        positions: dict[Any, int] = {}
        index = [positions.setdefault(text, len(positions)) for text in all_texts]
        distinct = list(positions)
    except TypeError:  # unhashable inputs (e.g. images as arrays): encode everything as given
        distinct, index = all_texts, list(range(len(all_texts)))
    logger.debug("Encoding %d distinct of %d texts", len(distinct), len(all_texts))

    encode = getattr(model, f"encode_{role}", None) if role else None
    options = {**(options or {}), "batch_size": batch_size, "show_progress_bar": show_progress_bar}
    for key, value in (("prompt", prompt), ("prompt_name", prompt_name), ("truncate_dim", truncate_dim)):
        if value is not None:
            options[key] = value
    if precision is not None and precision != "float32":
        if precision not in QUANTIZED:
            raise ValueError(f"precision must be one of {('float32', *QUANTIZED)}, got {precision!r}")
        options.update(precision=precision, normalize_embeddings=True, convert_to_numpy=True)
        embeddings = _unpack(np.asarray((encode or model.encode)(distinct, **options)), precision)
    else:
        options["convert_to_tensor"] = True
        embeddings = _as_tensor((encode or model.encode)(distinct, **options))

    if index != list(range(len(index))):  # some text recurs: one row per input (index_select: sparse too)
        embeddings = embeddings.index_select(0, torch.as_tensor(index, device=embeddings.device))
    return split_rows(embeddings, [len(texts) for texts in text_lists])


def _as_tensor(embeddings: Any) -> Tensor:
    if isinstance(embeddings, Tensor):
        tensor = embeddings
    elif isinstance(embeddings, list):  # a list of per-text tensors
        tensor = torch.stack([torch.as_tensor(row) for row in embeddings])
    else:
        tensor = torch.as_tensor(np.asarray(embeddings))
    return tensor if tensor.is_floating_point() else tensor.float()


def _unpack(embeddings: np.ndarray, precision: str) -> Tensor:
    """Turn quantized embeddings into float32 vectors the similarity functions can compare."""
    if precision == "binary":  # signed bytes: shift into 0..255 before reading the bits
        embeddings = embeddings.astype(np.int16) + 128
    if precision in ("binary", "ubinary"):
        embeddings = np.unpackbits(embeddings.astype(np.uint8), axis=1)
    return torch.from_numpy(embeddings.astype(np.float32))


def _canonical(name: str | SimilarityFunction) -> str:
    return str(SimilarityFunction.parse(name))


def similarity_matrix(name: str | SimilarityFunction) -> Callable[[Tensor, Tensor], Tensor]:
    """Return the ``(n, m)`` score-matrix function for a similarity name (higher is more similar for all)."""
    return similarity_fn(name)


def pairwise_similarity(name: str | SimilarityFunction) -> Callable[[Tensor, Tensor], Tensor]:
    """Return the row-by-row score function for a similarity name (distances come back negated)."""
    return similarity_fn(name, pairwise=True)


def model_similarity_name(model: Any) -> str:
    """Return the model's ``similarity_fn_name``, or ``"cosine"`` for models without one."""
    name = getattr(model, "similarity_fn_name", None)
    return _canonical(name) if name else "cosine"


def check_similarity_names(names: Sequence[str | SimilarityFunction]) -> list[str]:
    """Validate similarity names and return them as canonical strings; unknown names raise ``ValueError``."""
    return [_canonical(name) for name in names]
