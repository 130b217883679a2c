"""Encode on several processes at once: the reference's multi-process pool (start, encode through it, stop).

A pool is the dict the reference returns (its ``"input"`` and ``"output"`` queues and its ``"processes"``),
so code written for sentence-transformers keeps working::

    if __name__ == "__main__":  # the workers are spawned: each imports this script again
        model = SentenceTransformer("all-MiniLM-L6-v2")
        pool = model.start_multi_process_pool()  # every CUDA GPU, else one CPU process per physical core
        try:
            embeddings = model.encode(texts, pool=pool)
        finally:
            SentenceTransformer.stop_multi_process_pool(pool)

How it works:

* **The model reaches the workers once**, at start: its modules are serialized with ``torch.save`` and each
  worker loads them straight onto its device. Every worker holds a copy of the weights of its own; the
  caller's model is neither moved nor put in shared memory (``/dev/shm`` is small in containers), and its
  embedding cache stays behind (a pooled call does not use it). Workers keep the model as it was at start:
  after changing it (weights, ``max_seq_length``), start a new pool.
* **CPU workers share the cores out**: on Linux each is pinned to its slice of this process's physical cores
  and runs torch with one thread per core of it, so that whatever sizes itself by the cores (torch, ONNX
  Runtime's batch threads, OpenVINO's streams, the tokenizer) stays within the slice. Other workers run
  torch on their share of the cores.
* **A call** de-duplicates the texts, sorts them longest first (each chunk's batches then waste little
  padding, and the slowest chunks start first), cuts them into chunks that idle workers take from one
  queue, and puts the results back in input order. Each chunk goes through the same loop as ``encode``
  without a pool, with the call's settings (prompt, normalization, truncation, batch size).
* **Errors**: an exception in a worker is raised in the caller, with the worker's traceback as its cause. A
  worker that dies is reported within a second; the pool must then be stopped and started again. Workers
  exit when the pool is stopped, and on their own when the process that started them ends.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import logging
import math
import multiprocessing
import pickle
import queue
import threading
import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from sentencekit.backends.cpu import physical_cores
from sentencekit.encoding.loop import EncodePlan
from sentencekit.encoding.pool_worker import cpu_layouts, serve
from sentencekit.errors import PoolError

__all__ = ["encode_multi_process", "encode_pooled", "start_multi_process_pool", "stop_multi_process_pool"]

logger = logging.getLogger(__name__)

# Worker process names start with this, which tells our pools from the reference's (another protocol).
_NAME = "sentencekit-encode"
# Seconds between checks that the workers are alive while waiting for them.
_POLL_S = 0.5
# Seconds a stopping worker gets to exit by itself (then SIGTERM), and then after SIGTERM (then SIGKILL).
_STOP_WAIT_S = 2.0
# Default chunks per worker: enough for idle workers to even out uneven chunks, few enough to batch well.
_CHUNKS_PER_WORKER = 10
# Largest default chunk: bounds the size of one message and of one worker's pending result.
_MAX_CHUNK = 5000
# One pooled call at a time in this process: results are matched to calls by id, and a second caller would
# drop the first one's results.
_CALLS = threading.Lock()
_call_ids = itertools.count()


class _WorkerTraceback(Exception):
    """The traceback of an exception raised in a worker, shown as the cause of the one raised here."""


# --- the caller's side ------------------------------------------------------------------------------------


def start_multi_process_pool(model: Any, target_devices: Sequence[str] | None = None) -> dict[str, Any]:
    """Start worker processes that encode with a copy of this model; use them with ``encode(..., pool=pool)``.

    Returns once every worker has loaded the model. Stop the pool with
    :meth:`SentenceTransformer.stop_multi_process_pool` when done (in a ``finally``: workers also end with
    this process, but hold memory until then). The workers are spawned, so a script that starts a pool must
    do it under ``if __name__ == "__main__":``. See :mod:`sentencekit.encoding.pool` for how it works.

    Args:
        model: The SentenceTransformer (this method's ``self``).
        target_devices: One device per worker, e.g. ``["cuda:0", "cuda:1"]`` or ``["cpu"] * 4``. ``None``
            (the default): every CUDA GPU, else one CPU worker per physical core (the reference starts 4),
            each pinned to its core with one torch thread. CPU workers split the cores among them.

    Returns:
        The pool: ``{"input": queue, "output": queue, "processes": [process, ...]}`` as in the reference.

    Raises:
        ValueError: For an empty list or a device that does not exist here.
        TypeError: When the model cannot be serialized for the workers.
        PoolError: When a worker cannot start or load the model (its error is in the message).
    """
    if target_devices is None:
        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        target_devices = [f"cuda:{i}" for i in range(gpus)] if gpus else ["cpu"] * physical_cores()
    devices = _checked_devices(list(target_devices))
    payload = _serialized_modules(list(model))
    context = multiprocessing.get_context("spawn")
    pool: dict[str, Any] = {"input": context.Queue(), "output": context.Queue(), "processes": []}
    logger.info("Starting %d encode processes on %s", len(devices), ", ".join(map(str, devices)))
    try:
        for index, (device, (threads, cpus)) in enumerate(zip(devices, cpu_layouts(devices), strict=True)):
            process = context.Process(
                target=serve,
                args=(str(device), threads, cpus, pool["input"], pool["output"]),
                name=f"{_NAME}-{index} ({device})",
                daemon=True,  # ended by multiprocessing when this process exits
            )
            process.start()
            pool["processes"].append(process)
        for _ in devices:  # each worker takes one copy of the model before any work is queued
            pool["input"].put(payload)
        del payload
        _wait_until_ready(pool)
    except BaseException:
        stop_multi_process_pool(pool)
        raise
    return pool


def stop_multi_process_pool(pool: dict[str, Any]) -> None:
    """Stop the pool's worker processes and close its queues; stopping twice is harmless.

    Args:
        pool: What :meth:`SentenceTransformer.start_multi_process_pool` returned.
    """
    processes = [p for p in pool.get("processes", []) if not _closed(p)]
    with contextlib.suppress(OSError, ValueError):  # a closed queue: SIGTERM below ends them instead
        for _ in processes:
            pool["input"].put(None)  # idle workers exit at once, through their clean-up
    deadline = time.monotonic() + _STOP_WAIT_S
    for process in processes:
        process.join(timeout=max(0.0, deadline - time.monotonic()))
    for process in processes:
        if process.is_alive():  # busy with a chunk nobody will read
            process.terminate()
            process.join(timeout=_STOP_WAIT_S)
        if process.is_alive():  # ignored SIGTERM (stuck in native code): SIGKILL cannot be ignored
            process.kill()
            process.join()
        process.close()
    for name in ("input", "output"):
        if pool.get(name) is not None:
            pool[name].cancel_join_thread()  # never wait at exit to flush jobs nobody will read
            pool[name].close()


def encode_multi_process(
    model: Any,
    sentences: list[str],
    pool: dict[str, Any],
    prompt_name: str | None = None,
    prompt: str | None = None,
    batch_size: int = 32,
    chunk_size: int | None = None,
    show_progress_bar: bool | None = None,
    precision: str = "float32",
    normalize_embeddings: bool = False,
    truncate_dim: int | None = None,
) -> np.ndarray:
    """Deprecated, as in the reference: ``encode(sentences, pool=pool, ...)`` with these arguments (numpy)."""
    warnings.warn(
        "encode_multi_process() is deprecated; call encode(sentences, pool=pool, ...) instead.",
        DeprecationWarning,
        stacklevel=2,
    )
    return np.asarray(
        model.encode(
            sentences,
            prompt_name=prompt_name,
            prompt=prompt,
            batch_size=batch_size,
            show_progress_bar=show_progress_bar,
            precision=precision,
            normalize_embeddings=normalize_embeddings,
            truncate_dim=truncate_dim,
            pool=pool,
            chunk_size=chunk_size,
        )
    )


def encode_pooled(
    model: Any,
    texts: list[str],
    plan: EncodePlan,
    pool: dict[str, Any] | None,
    devices: Sequence[str] | None,
    chunk_size: int | None,
) -> Tensor | list[Any]:
    """``encode``'s work, done by ``pool`` or by a pool on ``devices`` started for this call only.

    Args:
        model: The SentenceTransformer (its modules start a temporary pool; its ``gpu_precision`` applies).
        texts: The texts, without the prompt (``plan`` holds it).
        plan: The call's settings; each worker runs it on its own device.
        pool: A running pool, which wins over ``devices``.
        devices: A list of devices for a temporary pool (``encode(device=[...])``).
        chunk_size: Texts per job. ``None``: about ten jobs per worker, at least ``plan.batch_size`` and at
            most 5,000 texts each.

    Returns:
        What :func:`~sentencekit.encoding.loop.run_encode` returns for ``texts``, on the CPU.
    """
    if chunk_size is not None and (
        isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1
    ):
        raise ValueError(f"chunk_size must be a positive integer or None, got {chunk_size!r}.")
    if pool is not None:
        _check_pool(pool)
    elif devices is not None:
        _checked_devices(list(devices))
    if not texts:  # no processes started for nothing
        return torch.empty((0, 0)) if plan.output_value == "sentence_embedding" else []
    if pool is not None:
        return _encode_on(pool, texts, plan, str(model.gpu_precision), chunk_size)
    temporary = start_multi_process_pool(model, devices)
    try:
        return _encode_on(temporary, texts, plan, str(model.gpu_precision), chunk_size)
    finally:
        stop_multi_process_pool(temporary)


def _encode_on(
    pool: dict[str, Any], texts: list[str], plan: EncodePlan, gpu_precision: str, chunk_size: int | None
) -> Tensor | list[Any]:
    """Send ``texts`` to the pool in chunks and gather the results in input order."""
    unique: dict[str, int] = {}
    positions = [unique.setdefault(text, len(unique)) for text in texts]
    distinct = list(unique)
    order = sorted(range(len(distinct)), key=lambda i: -len(distinct[i]))  # stable: ties keep input order
    even = math.ceil(len(order) / (len(pool["processes"]) * _CHUNKS_PER_WORKER))
    size = chunk_size or max(plan.batch_size, min(even, _MAX_CHUNK))
    chunks = [order[start : start + size] for start in range(0, len(order), size)]
    with _CALLS:
        call = next(_call_ids)
        for chunk_id, chunk in enumerate(chunks):
            pool["input"].put((call, chunk_id, [distinct[i] for i in chunk], plan, gpu_precision))
        try:
            results = _gather(pool, call, len(chunks), plan.show_progress_bar)
        except BaseException:
            _drop_queued(pool)
            raise
    row = np.empty(len(distinct), dtype=np.int64)  # row[i]: where distinct text i is among the results
    row[np.asarray(order)] = np.arange(len(order))
    rows = row[np.asarray(positions)]
    if plan.output_value == "sentence_embedding":  # one matrix, dense or sparse COO (plan.sparse)
        merged = torch.cat(results).index_select(0, torch.from_numpy(rows))
        return merged.coalesce() if merged.is_sparse else merged
    items = [item for result in results for item in result]
    return [items[r] for r in rows.tolist()]


def _gather(pool: dict[str, Any], call: int, count: int, show_progress_bar: bool) -> list[Any]:
    """The results of call ``call``'s ``count`` chunks, by chunk id; raises a worker's error."""
    results: list[Any] = [None] * count
    with tqdm(total=count, desc="Chunks", disable=not show_progress_bar) as progress:
        for _ in range(count):
            message = _next_message(pool)
            while message[1] != call:  # left over from an earlier call that failed
                message = _next_message(pool)
            kind, _, chunk_id, body = message
            if kind == "error":
                raise _worker_error(body, f"(in an encode worker, chunk {chunk_id + 1} of {count})")
            results[chunk_id] = torch.load(io.BytesIO(body), weights_only=True)
            progress.update(1)
    return results


def _next_message(pool: dict[str, Any]) -> tuple[Any, ...]:
    """The next message from the workers, checking every :data:`_POLL_S` seconds that none has died."""
    while True:
        with contextlib.suppress(queue.Empty):
            message: tuple[Any, ...] = pool["output"].get(timeout=_POLL_S)
            return message
        dead = [p for p in pool["processes"] if not p.is_alive()]
        if dead:
            with contextlib.suppress(queue.Empty):  # what a worker said just before it ended comes first
                message = pool["output"].get(timeout=_POLL_S)
                return message
            raise _died(dead)


def _wait_until_ready(pool: dict[str, Any]) -> None:
    """Wait until every worker has loaded the model; raise the first start-up failure."""
    for _ in pool["processes"]:
        kind, name, error = _next_message(pool)
        if kind == "failed":
            raise PoolError(f"Encode worker {name} could not load the model: {error}")


def _drop_queued(pool: dict[str, Any]) -> None:
    """Take back the jobs no worker has started (best effort: the call they belong to has failed)."""
    with contextlib.suppress(queue.Empty, OSError, ValueError):
        while True:
            pool["input"].get_nowait()


def _check_pool(pool: Any) -> None:
    """Raise a clear error for anything but a running pool of ours."""
    if not isinstance(pool, dict) or not {"input", "output", "processes"} <= set(pool):
        raise ValueError(
            "pool must be the dict that model.start_multi_process_pool() returned (keys 'input', 'output', "
            f"'processes'), got {type(pool).__name__}."
        )
    if not pool["processes"] or not all(
        str(getattr(p, "name", "")).startswith(_NAME) for p in pool["processes"]
    ):
        raise ValueError(
            "This pool was not started by sentencekit; start one with model.start_multi_process_pool()."
        )
    if any(_closed(p) for p in pool["processes"]):
        raise ValueError(
            "This pool was stopped; start a new one with model.start_multi_process_pool() (and stop it with "
            "SentenceTransformer.stop_multi_process_pool(pool) when done)."
        )
    dead = [p for p in pool["processes"] if not p.is_alive()]
    if dead:
        raise _died(dead)


def _died(dead: list[Any]) -> PoolError:
    listed = ", ".join(f"{p.name} (pid {p.pid}, exit code {p.exitcode})" for p in dead)
    return PoolError(
        f"Encode worker {listed} died. Stop the pool with SentenceTransformer.stop_multi_process_pool(pool) "
        "and start a new one. Workers that die at start in a script: start the pool under "
        "`if __name__ == '__main__':` (each worker imports the script)."
    )


def _closed(process: Any) -> bool:
    """Whether ``process`` was closed (``Process.close``), as :func:`stop_multi_process_pool` leaves them."""
    try:
        process.is_alive()
    except ValueError:
        return True
    return False


def _worker_error(sent: tuple[BaseException | None, str, str], where: str) -> BaseException:
    """What to raise for a worker's exception: the exception itself if it came back, else a PoolError."""
    error, description, tb = sent
    if error is None:
        error = PoolError(f"{description} {where}")
    error.__cause__ = _WorkerTraceback(f"{where}\n\n{tb}")
    return error


def _checked_devices(devices: list[Any]) -> list[torch.device]:
    """The devices as ``torch.device``s, after checking they exist here."""
    if not devices:
        raise ValueError("No devices given for the pool; pass e.g. ['cpu', 'cpu'] or ['cuda:0', 'cuda:1'].")
    checked = []
    for device in devices:
        try:
            parsed = torch.device(device)
        except (RuntimeError, TypeError) as exc:
            raise ValueError(f"{device!r} is not a device; use e.g. 'cpu' or 'cuda:0' ({exc}).") from exc
        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if parsed.type == "cuda" and (parsed.index or 0) >= gpus:
            raise ValueError(f"{device!r} is not available here: this machine has {gpus} CUDA devices.")
        checked.append(parsed)
    return checked


def _serialized_modules(modules: list[nn.Module]) -> bytes:
    """The modules as ``torch.save`` bytes, which each worker loads onto its own device."""
    buffer = io.BytesIO()
    try:
        torch.save(modules, buffer)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        raise TypeError(
            f"The model cannot be sent to worker processes: a module cannot be pickled ({exc}). Use modules "
            "defined at the top level of an importable module, without lambdas or open files."
        ) from exc
    return buffer.getvalue()
