"""Embedding cache: never embed the same text with the same model and settings twice.

A cache maps a key (see :mod:`sentencekit.cache.keys`: a sha256 over the model's weights, its module
configuration, the prompt, the output settings and the text) to one float vector. ``encode`` looks every text
up, runs only the misses through the model and stores what it computed::

    from sentencekit import SentenceTransformer

    model = SentenceTransformer("all-MiniLM-L6-v2", cache="embeddings.sqlite")
    model.encode(texts)  # computes and stores
    model.encode(texts)  # reads back, bit-identical

Backends:

=================  ==========================================================================================
``SQLiteCache``    the default for a path: one file, WAL mode, safe for several processes writing at once
``MemoryCache``    an in-process LRU (``":memory:"``), bounded by ``max_entries``
``RedisCache``     a shared Redis server (``"redis://host:6379/0"``), needs ``pip install sentencekit[redis]``
=================  ==========================================================================================

Any object with ``get_many``, ``put_many``, ``stats``, ``clear`` and ``close`` can be passed instead.
"""

from __future__ import annotations

import logging
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["CacheStats", "EmbeddingCache", "open_cache"]

logger = logging.getLogger(__name__)

# file name used when open_cache() is given an existing directory
DEFAULT_FILE_NAME = "embeddings.sqlite"


@dataclass(frozen=True)
class CacheStats:
    """Counters of one cache object; ``hits`` and ``misses`` count lookups made through this object."""

    hits: int
    misses: int
    entries: int

    @property
    def hit_rate(self) -> float:
        """Fraction of lookups answered from the cache (0.0 before any lookup)."""
        total = self.hits + self.misses
        return self.hits / total if total else 0.0


class EmbeddingCache(ABC):
    """Base class of the cache backends: key -> float vector, with hit and miss counters.

    Subclasses implement :meth:`_get`, :meth:`_put`, :meth:`_count`, :meth:`clear` and :meth:`close`; the
    public methods add counting and validation. Vectors come back as read-only 1-D numpy arrays.
    """

    def __init__(self) -> None:
        self._hits = 0
        self._misses = 0
        self._counter_lock = threading.Lock()

    def get_many(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        """Return the vectors found for ``keys`` (missing keys are absent from the dict)."""
        unique = list(dict.fromkeys(keys))
        found = self._get(unique) if unique else {}
        with self._counter_lock:
            self._hits += len(found)
            self._misses += len(unique) - len(found)
        return found

    def put_many(self, items: Mapping[str, np.ndarray] | Iterable[tuple[str, np.ndarray]]) -> None:
        """Store vectors (replacing any already stored under the same key)."""
        pairs = list(items.items() if isinstance(items, Mapping) else items)
        if pairs:
            self._put([(key, np.asarray(vector).reshape(-1)) for key, vector in pairs])

    @property
    def stats(self) -> CacheStats:
        """Hits and misses of this object's lookups, and the entries stored in the backend."""
        return CacheStats(hits=self._hits, misses=self._misses, entries=self._count())

    def __len__(self) -> int:
        return self._count()

    def __enter__(self) -> EmbeddingCache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_counter_lock", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._counter_lock = threading.Lock()

    @abstractmethod
    def _get(self, keys: list[str]) -> dict[str, np.ndarray]:
        """Look up distinct keys."""

    @abstractmethod
    def _put(self, items: list[tuple[str, np.ndarray]]) -> None:
        """Store 1-D vectors."""

    @abstractmethod
    def _count(self) -> int:
        """Number of stored entries."""

    @abstractmethod
    def clear(self) -> None:
        """Remove every entry (the counters are kept)."""

    @abstractmethod
    def close(self) -> None:
        """Release connections and files; the object reopens them if used again."""


def open_cache(spec: str | os.PathLike[str] | Any) -> Any:
    """Turn what a user passed as ``cache=`` into a cache object.

    Args:
        spec: ``":memory:"`` for an in-process LRU; ``"redis://..."`` for Redis; any other string or path for
            a SQLite file (an existing directory gets ``embeddings.sqlite`` inside it); or a cache object,
            returned as it is.

    Raises:
        TypeError: For anything else, naming what is accepted.
        CacheError: When the SQLite file cannot be created (e.g. the folder is read-only).
    """
    if isinstance(spec, (str, os.PathLike)):
        text = os.fspath(spec)
        if text == ":memory:":
            from sentencekit.cache.memory import MemoryCache

            return MemoryCache()
        if text.startswith(("redis://", "rediss://", "unix://")):
            from sentencekit.cache.redis_cache import RedisCache

            return RedisCache(text)
        from sentencekit.cache.sqlite import SQLiteCache

        path = Path(text).expanduser()
        if path.is_dir():
            path = path / DEFAULT_FILE_NAME
        return SQLiteCache(path)
    if all(hasattr(spec, name) for name in ("get_many", "put_many")):
        return spec
    raise TypeError(
        f"cache={spec!r} is not a cache: pass a file path (SQLite), ':memory:', a 'redis://' URL, or an "
        "object with get_many(keys) and put_many(items) such as sentencekit.cache.memory.MemoryCache()."
    )
