"""Run batches on a few threads at once, for encoders that do better that way than by threading each batch.

ONNX Runtime's CPU session runs one batch on one thread (see :func:`sentencekit.backends.onnx.open_session`)
and releases the GIL for the whole forward pass, so one thread per core keeps every core busy without the
synchronization that splitting each small operator across cores costs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np
import torch
from tqdm.auto import tqdm

__all__ = ["run_batches"]

Result = TypeVar("Result")


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

    progress = tqdm(total=len(batches), desc="Batches", disable=not show_progress_bar)
    with (
        progress,
        ThreadPoolExecutor(
            max_workers=max(1, min(workers, len(batches))), thread_name_prefix="sentencekit-batch"
        ) as pool,
    ):
        for batch, items in zip(batches, pool.map(call, batches), strict=True):
            progress.update(1)
            yield batch, items
