"""``encode`` through a cache: look texts up, compute only the misses, store them, keep the input order."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
from torch import Tensor

from sentencekit.cache import open_cache
from sentencekit.cache.keys import KeySettings, key_prefix, text_keys
from sentencekit.encoding.loop import EncodePlan, run_encode
from sentencekit.errors import CacheError
from sentencekit.modules import Router

__all__ = ["encode_cached"]

logger = logging.getLogger(__name__)


def _float_dtype(model: Any) -> torch.dtype:
    for parameter in model.parameters():
        if parameter.is_floating_point():
            return parameter.dtype
    return torch.float32


def encode_cached(model: Any, cache_spec: Any, texts: list[str], plan: EncodePlan) -> Tensor:
    """Sentence embeddings of ``texts`` (one row each, in order), computing only what ``cache_spec`` lacks.

    The misses go through :func:`run_encode` with ``plan`` as one call, so they are batched as without a
    cache. Vectors are stored as float32 rows (exact for float32, float16 and bfloat16 models). A cache that
    cannot be read or written logs a warning and the call goes on uncached: a cache is an optimization.

    Args:
        model: The SentenceTransformer (an iterable of modules with parameters).
        cache_spec: A cache object, or a path / ``":memory:"`` / URL, opened for this call and closed after.
        texts: The texts, without the prompt (the prompt is part of the key).
        plan: The validated settings of this ``encode`` call; ``output_value`` must be sentence embeddings.
    """
    owned = not hasattr(cache_spec, "get_many")
    cache = open_cache(cache_spec)
    try:
        settings = KeySettings(
            prompt=plan.prompt,
            truncate_dim=plan.truncate_dim,
            normalize=plan.normalize,
            device_type=plan.device.type,
            task=plan.task if any(isinstance(m, Router) for m in model) else None,
        )
        keys = text_keys(key_prefix(model, settings), texts)
        try:
            found = cache.get_many(keys)
        except CacheError as exc:
            logger.warning("Embedding cache lookup failed, computing every vector: %s", exc)
            found = {}
        first_missing: dict[str, int] = {}
        for index, key in enumerate(keys):
            if key not in found:
                first_missing.setdefault(key, index)
        fresh: Tensor | None = None
        if first_missing:
            encoded = run_encode(list(model), [texts[i] for i in first_missing.values()], plan)
            assert isinstance(encoded, Tensor)
            fresh = encoded
            rows = fresh.detach().to("cpu", torch.float32).numpy()
            try:
                cache.put_many(zip(first_missing, rows, strict=True))
            except CacheError as exc:
                logger.warning("Could not store %d new embeddings in the cache: %s", len(rows), exc)
        logger.debug("Embedding cache: %d of %d texts found", len(keys) - len(first_missing), len(keys))
        device = torch.device("cpu") if plan.to_cpu else plan.device
        return _assemble(keys, found, list(first_missing), fresh, _float_dtype(model), device)
    finally:
        if owned:
            cache.close()


def _assemble(
    keys: list[str],
    found: dict[str, np.ndarray],
    fresh_keys: list[str],
    fresh: Tensor | None,
    model_dtype: torch.dtype,
    device: torch.device,
) -> Tensor:
    """Rows in ``keys`` order: cached ones from ``found``, the others from ``fresh`` (one per fresh key).

    Cached rows are converted in one block (not row by row: 10,000 small tensors cost more than the lookup).
    """
    dtype = fresh.dtype if fresh is not None else model_dtype
    if fresh is None:  # all cached: one block, no scatter
        block = np.stack([found[key] for key in keys]).astype(np.float32, copy=False)
        return torch.from_numpy(block).to(device=device, dtype=dtype)
    fresh_row = {key: row for row, key in enumerate(fresh_keys)}
    hit_positions = [i for i, key in enumerate(keys) if key not in fresh_row]
    out = torch.empty((len(keys), fresh.shape[1]), dtype=dtype, device=device)
    if hit_positions:
        block = np.stack([found[keys[i]] for i in hit_positions]).astype(np.float32, copy=False)
        out[torch.tensor(hit_positions, device=device)] = torch.from_numpy(block).to(
            device=device, dtype=dtype
        )
    fresh_positions = [i for i, key in enumerate(keys) if key in fresh_row]
    rows = torch.tensor([fresh_row[keys[i]] for i in fresh_positions], device=fresh.device)
    out[torch.tensor(fresh_positions, device=device)] = fresh[rows].to(device)
    return out
