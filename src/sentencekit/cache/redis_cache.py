"""Embedding cache on a Redis server, shared by every process and machine that can reach it.

Needs the ``redis`` client: ``pip install 'sentencekit[redis]'``. Each vector is one Redis string under
``<namespace>:<key>``; its value is a 2-byte storage tag (``f4`` or ``f2``) followed by the raw little-endian
floats. ``put_many`` writes in one pipelined ``MSET`` (optionally with a time to live per key).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from sentencekit._optional import require
from sentencekit.cache import EmbeddingCache
from sentencekit.errors import CacheError

__all__ = ["RedisCache"]

logger = logging.getLogger(__name__)

_TAGS = {"float32": b"f4", "float16": b"f2"}
_DTYPES: dict[bytes, np.dtype[Any]] = {b"f4": np.dtype("<f4"), b"f2": np.dtype("<f2")}
_SCAN_BATCH = 1000


class RedisCache(EmbeddingCache):
    """Embedding cache in Redis.

    Args:
        url_or_client: A ``redis://host:port/db`` URL, or a ``redis.Redis`` client to use as it is.
        namespace: Prefix of every key, so that several caches (or other data) share one database.
        dtype: ``"float32"`` (exact, the default) or ``"float16"`` (half the memory, approximate).
        ttl_s: Expire entries this many seconds after they were written; ``None`` keeps them.

    Raises:
        MissingDependencyError: When the ``redis`` package is not installed.
        CacheError: When the server cannot be reached (at first use).
    """

    def __init__(
        self,
        url_or_client: Any = "redis://localhost:6379/0",
        *,
        namespace: str = "sentencekit:emb",
        dtype: str = "float32",
        ttl_s: int | None = None,
    ) -> None:
        super().__init__()
        if dtype not in _TAGS:
            raise ValueError(f"dtype={dtype!r} is not supported; use one of {sorted(_TAGS)}.")
        redis = require("redis", extra="redis", purpose="the Redis embedding cache")
        if isinstance(url_or_client, str):
            self._client = redis.Redis.from_url(url_or_client)
            self._where = url_or_client
        else:
            self._client = url_or_client
            self._where = repr(url_or_client)
        self._errors: tuple[type[BaseException], ...] = (redis.exceptions.RedisError,)
        self.namespace = namespace
        self.dtype = dtype
        self.ttl_s = ttl_s

    def _call(self, what: str, operation: Any) -> Any:
        try:
            return operation()
        except self._errors as exc:
            raise CacheError(
                f"Could not {what} the Redis embedding cache at {self._where}: {exc}. Check that the server "
                "is running and reachable, or pass another cache."
            ) from exc

    def _name(self, key: str) -> str:
        return f"{self.namespace}:{key}"

    def _get(self, keys: list[str]) -> dict[str, np.ndarray]:
        values = self._call("read", lambda: self._client.mget([self._name(k) for k in keys]))
        found: dict[str, np.ndarray] = {}
        for key, value in zip(keys, values, strict=True):
            if value is None:
                continue
            dtype = _DTYPES.get(bytes(value[:2]))
            if dtype is None:
                logger.warning("Ignoring an unreadable Redis cache entry %s", self._name(key))
                continue
            found[key] = np.frombuffer(value, dtype=dtype, offset=2)
        return found

    def _put(self, items: list[tuple[str, np.ndarray]]) -> None:
        tag = _TAGS[self.dtype]
        storage = _DTYPES[tag]
        mapping = {self._name(k): tag + np.ascontiguousarray(v, dtype=storage).tobytes() for k, v in items}

        def write() -> None:
            pipe = self._client.pipeline(transaction=True)
            pipe.mset(mapping)
            if self.ttl_s is not None:
                for name in mapping:
                    pipe.expire(name, self.ttl_s)
            pipe.execute()

        self._call("write", write)

    def _scan(self) -> Any:
        return self._client.scan_iter(match=f"{self.namespace}:*", count=_SCAN_BATCH)

    def _count(self) -> int:
        return int(self._call("read", lambda: sum(1 for _ in self._scan())))

    def clear(self) -> None:
        """Delete every key under this cache's namespace (other keys in the database are left alone)."""

        def wipe() -> None:
            batch: list[Any] = []
            for name in self._scan():
                batch.append(name)
                if len(batch) >= _SCAN_BATCH:
                    self._client.delete(*batch)
                    batch = []
            if batch:
                self._client.delete(*batch)

        self._call("clear", wipe)

    def close(self) -> None:
        """Close the client's connections; the client reconnects if used again."""
        self._call("close", self._client.close)

    def describe(self) -> dict[str, Any]:
        """Backend, server and entry count, for ``sentencekit cache stats``."""
        return {
            "backend": "redis",
            "server": self._where,
            "namespace": self.namespace,
            "entries": self._count(),
        }

    def __repr__(self) -> str:
        return f"RedisCache({self._where!r}, namespace={self.namespace!r}, dtype={self.dtype!r})"
