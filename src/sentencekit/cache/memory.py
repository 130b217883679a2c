"""In-process LRU embedding cache: fast, bounded, gone when the process ends."""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

from sentencekit.cache import EmbeddingCache

__all__ = ["MemoryCache"]


class MemoryCache(EmbeddingCache):
    """Keeps up to ``max_entries`` vectors in memory, evicting the least recently used.

    Args:
        max_entries: Most vectors kept; ``None`` for no bound. The default (100,000 vectors of 384 float32
            values, about 150 MB) suits a notebook or a server process.

    Example:
        >>> cache = MemoryCache(max_entries=2)
        >>> cache.put_many({"a": np.zeros(2), "b": np.ones(2), "c": np.ones(2)})
        >>> sorted(cache.get_many(["a", "b", "c"]))
        ['b', 'c']
    """

    def __init__(self, max_entries: int | None = 100_000) -> None:
        super().__init__()
        if max_entries is not None and max_entries <= 0:
            raise ValueError(f"max_entries must be a positive integer or None, got {max_entries!r}.")
        self.max_entries = max_entries
        self._data: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def _get(self, keys: list[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for key in keys:
                vector = self._data.get(key)
                if vector is not None:
                    self._data.move_to_end(key)
                    found[key] = vector
        return found

    def _put(self, items: list[tuple[str, np.ndarray]]) -> None:
        with self._lock:
            for key, vector in items:
                stored = np.array(vector, copy=True)
                stored.flags.writeable = False
                self._data[key] = stored
                self._data.move_to_end(key)
            while self.max_entries is not None and len(self._data) > self.max_entries:
                self._data.popitem(last=False)

    def _count(self) -> int:
        return len(self._data)

    def clear(self) -> None:
        """Drop every vector."""
        with self._lock:
            self._data.clear()

    def close(self) -> None:
        """Nothing to release; the vectors stay until :meth:`clear` or garbage collection."""

    def __getstate__(self) -> dict[str, object]:
        state = super().__getstate__()
        state.pop("_lock", None)
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        super().__setstate__(state)
        self._lock = threading.Lock()
