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
        computed: dict[str, Tensor] = {}
        dtype = _float_dtype(model)
        if first_missing:
            fresh = run_encode(list(model), [texts[i] for i in first_missing.values()], plan)
            assert isinstance(fresh, Tensor)
            dtype = fresh.dtype
            computed = dict(zip(first_missing, fresh, strict=True))
            rows = fresh.detach().to("cpu", torch.float32).numpy()
            try:
                cache.put_many(zip(first_missing, rows, strict=True))
            except CacheError as exc:
                logger.warning("Could not store %d new embeddings in the cache: %s", len(rows), exc)
        logger.debug("Embedding cache: %d of %d texts found", len(keys) - len(first_missing), len(keys))
        return _assemble(keys, found, computed, dtype, torch.device("cpu") if plan.to_cpu else plan.device)
    finally:
        if owned:
            cache.close()


def _assemble(
    keys: list[str],
    found: dict[str, np.ndarray],
    computed: dict[str, Tensor],
    dtype: torch.dtype,
    device: torch.device,
) -> Tensor:
    """Stack cached and computed rows in the order of ``keys``."""
    rows: list[Tensor] = []
    for key in keys:
        row = computed.get(key)
        if row is None:
            row = torch.from_numpy(np.array(found[key], dtype=np.float32)).to(dtype)
        rows.append(row.to(device))
    return torch.stack(rows)
