"""Run batches on a few threads at once, for encoders that do better that way than by threading each batch.

ONNX Runtime's CPU session runs one batch on one thread (see :func:`sentencekit.backends.onnx.open_session`)
and releases the GIL for the whole forward pass, so one thread per core keeps every core busy without the
synchronization that splitting each small operator across cores costs. The same holds for a bf16 torch
encoder on the CPU, whose operators release the GIL too: the pool's threads run torch on one thread each.

The threads live in one pool per worker count, made on first use and kept for the life of the process: a
new pool per call would start new threads every call, and glibc gives new threads new malloc arenas, which
a long-running server then keeps (an overload test grew ~60 MB over 10 bursts that way, ~35 MB with
reused threads).
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np
import torch
from tqdm.auto import tqdm

__all__ = ["run_batches"]

logger = logging.getLogger(__name__)

Result = TypeVar("Result")

# keyed by process id too: a forked child has the dict but not the threads
_POOLS: dict[tuple[int, int], ThreadPoolExecutor] = {}
_POOLS_LOCK = threading.Lock()


def _pool(workers: int) -> ThreadPoolExecutor:
    """This process's shared pool with ``workers`` threads (made on first use, see :func:`_start_threads`)."""
    key = (os.getpid(), workers)
    with _POOLS_LOCK:
        pool = _POOLS.get(key)
        if pool is None:
            pool = _POOLS[key] = ThreadPoolExecutor(
                max_workers=workers, thread_name_prefix=f"sentencekit-batch{workers}"
            )
            _start_threads(pool, workers)
        return pool


def _start_threads(pool: ThreadPoolExecutor, workers: int) -> None:
    """Start the pool's ``workers`` threads now, each set to run torch's operators on one thread.

    ``torch.set_num_threads`` sets the calling thread's OpenMP thread count, and also the count that threads
    started later begin with; the second is put back here, so that only the pool's own threads change.
    """
    before = torch.get_num_threads()
    arrived = threading.Barrier(workers)

    def one_thread() -> None:
        torch.set_num_threads(1)
        arrived.wait(timeout=60)  # every task waits for the others: each runs on a thread of its own

    try:
        for future in [pool.submit(one_thread) for _ in range(workers)]:
            future.result()
    except threading.BrokenBarrierError:  # threads slow to start: some may keep torch's default count
        logger.warning("Batch threads did not all start within 60 s; torch may use several threads in each.")
    finally:
        torch.set_num_threads(before)


def run_batches(
    batches: Sequence[np.ndarray],
    work: Callable[[np.ndarray], Result],
    workers: int,
    show_progress_bar: bool = False,
) -> Iterator[tuple[np.ndarray, Result]]:
    """Yield ``(batch, work(batch))`` for every batch, in order, computed on up to ``workers`` threads.

    Each call runs under ``torch.inference_mode`` (a per-thread setting, so it is entered in the worker).
    """

    def call(batch: np.ndarray) -> Result:
        with torch.inference_mode():
            return work(batch)

    pool = _pool(max(1, workers))
    # A future keeps its result alive: each is dropped once its batch is handed on, so that the results of
    # a long call are not all held until its end.
    pending = deque((batch, pool.submit(call, batch)) for batch in batches)
    try:
        with tqdm(total=len(batches), desc="Batches", disable=not show_progress_bar) as progress:
            while pending:
                batch, future = pending.popleft()
                items = future.result()
                del future
                progress.update(1)
                yield batch, items
                del items
    finally:  # an error or an abandoned generator: batches not started yet are dropped
        for _, future in pending:
            future.cancel()
