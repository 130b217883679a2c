"""Give memory freed after a burst back to the operating system.

A step of many requests allocates large activation buffers; glibc keeps freed memory in its heap, so a
server's resident size would stay at its busiest level. When the worker goes idle after a large step (or
after a second of smaller ones) :class:`MemoryReleaser` calls glibc's ``malloc_trim(0)``, which returns
free heap pages to the system (0.1-5 ms). On other C libraries it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys
import time
from collections.abc import Callable

from sentencekit.server.batcher import BatchStats

__all__ = ["MemoryReleaser"]

logger = logging.getLogger(__name__)


def _find_malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim  # glibc only (musl has none)
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


class MemoryReleaser:
    """An ``on_idle`` callback for :class:`~sentencekit.server.batcher.MicroBatcher`.

    Args:
        large_step_tokens: A step of at least this many tokens is trimmed after at once.
        min_interval_s: After smaller steps, trim at most this often.
    """

    def __init__(self, large_step_tokens: int, min_interval_s: float = 1.0) -> None:
        self._trim = _find_malloc_trim()
        self._large = large_step_tokens
        self._interval = min_interval_s
        self._last = 0.0

    def __call__(self, stats: BatchStats) -> None:
        """Trim if the step was large or the last trim is long enough ago."""
        if self._trim is None:
            return
        now = time.monotonic()
        if stats.tokens >= self._large or now - self._last >= self._interval:
            self._trim(0)
            self._last = now
