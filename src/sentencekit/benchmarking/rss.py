"""Resident memory of this process, read from ``/proc/self/statm`` and sampled on a background thread.

What the figures mean, and what they do not:

* RSS is the **whole process**: every model the benchmark loaded, Python, torch and ONNX Runtime. Paths share
  one process, so a path's peak includes the other paths' models; compare the *growth* figures between paths,
  and run one path alone (``--paths NAME``) for its full footprint.
* Growth is the peak minus a baseline taken once, with every model loaded and warmed up. Memory an earlier
  path freed but the allocator kept is reused by the next path without showing as growth, so growth is a
  lower bound of a path's working memory, and it depends a little on the order the paths ran in.
* A sample is taken every ``interval`` seconds (10 ms by default), plus one at start and one at stop: a spike
  shorter than the interval can be missed.
* Linux only: where ``/proc/self/statm`` cannot be read, every figure is ``None``. psutil is not used, to keep
  the dependencies light.
"""

from __future__ import annotations

import os
import threading
from types import TracebackType

__all__ = ["MIB", "RssSampler", "current_rss"]

MIB = 1024 * 1024
_STATM = "/proc/self/statm"


def current_rss() -> int | None:
    """This process's resident set size in bytes, or ``None`` where ``/proc/self/statm`` is unavailable."""
    try:
        with open(_STATM, encoding="ascii") as f:
            resident_pages = int(f.read().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


class RssSampler:
    """Context manager that records the highest RSS of the process while it is entered.

    Example::

        with RssSampler() as sampler:
            model.encode(texts)
        print(sampler.peak)  # bytes, or None off Linux

    Args:
        interval: Seconds between samples. Shorter catches shorter spikes; each sample reads one small file.
    """

    def __init__(self, interval: float = 0.01) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be positive, got {interval}")
        self.interval = interval
        self.peak: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        rss = current_rss()
        if rss is not None and (self.peak is None or rss > self.peak):
            self.peak = rss

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> RssSampler:
        self._stop.clear()
        self._sample()
        self._thread = threading.Thread(target=self._loop, name="sentencekit-rss-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._sample()
