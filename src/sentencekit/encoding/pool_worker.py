"""The worker processes of :mod:`sentencekit.encoding.pool`, and how the cores are shared out among them.

A worker takes its copy of the model from the jobs queue, says it is ready, then encodes chunks of texts until
it receives ``None`` (or the process that started it ends). Each chunk goes through the same loop as
``encode`` without a pool; results and errors go back on the results queue, tagged with their call.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import multiprocessing
import os
import pickle
import queue
import signal
import traceback
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sentencekit.backends.cpu import physical_cores
from sentencekit.encoding.gpu import autocast_dtype
from sentencekit.encoding.loop import run_encode

__all__ = ["cpu_layouts", "serve"]


def cpu_layouts(devices: list[torch.device]) -> list[tuple[int, list[int] | None]]:
    """For each worker: its torch threads, and the logical CPUs to pin it to (``None``: not pinned).

    CPU workers get near-equal slices of this process's physical cores (round-robin when there are more
    workers than cores; unpinned where the CPUs cannot be listed). Other workers run torch on their share.
    """
    share = max(1, physical_cores() // len(devices))
    on_cpu = sum(d.type == "cpu" for d in devices)
    cores: list[tuple[int, ...]] = []
    if on_cpu and hasattr(os, "sched_getaffinity") and hasattr(os, "sched_setaffinity"):
        allowed = os.sched_getaffinity(0)
        cores = sorted({_siblings(cpu, allowed) for cpu in allowed})
    layouts: list[tuple[int, list[int] | None]] = []
    for device in devices:
        if device.type != "cpu" or not cores:
            layouts.append((share, None))
            continue
        index = sum(layout[1] is not None for layout in layouts)  # this CPU worker's number
        if on_cpu >= len(cores):
            mine = [cores[index % len(cores)]]
        else:
            mine = cores[round(index * len(cores) / on_cpu) : round((index + 1) * len(cores) / on_cpu)]
        layouts.append((len(mine), sorted(cpu for core in mine for cpu in core)))
    return layouts


def _siblings(cpu: int, allowed: set[int]) -> tuple[int, ...]:
    """The allowed logical CPUs on ``cpu``'s physical core (hyper-threads), from sysfs; else ``(cpu,)``."""
    path = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list")
    try:
        text = path.read_text(encoding="ascii").strip()
    except OSError:
        return (cpu,)
    found: set[int] = set()
    for part in text.split(","):
        first, _, last = part.partition("-")
        found.update(range(int(first), int(last or first) + 1))
    return tuple(sorted((found & allowed) | {cpu}))


def serve(device: str, threads: int, cpus: list[int] | None, jobs: Any, results: Any) -> None:
    """A worker's life: take its copy of the model, say it is ready, then encode chunks until stopped."""
    name = multiprocessing.current_process().name
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the caller's to handle: it stops the pool
    try:
        if cpus is not None:
            os.sched_setaffinity(0, cpus)
        torch.set_num_threads(threads)
        payload = _next_job(jobs)
        if payload is None:
            return
        modules = _load_modules(payload, device, threads)
    except BaseException as exc:
        results.put(("failed", name, f"{type(exc).__name__}: {exc}"))
        return
    del payload
    results.put(("ready", name, None))
    place = torch.device(device)
    encoder_dtype = next((p.dtype for p in modules[0].parameters()), torch.float32)
    while (job := _next_job(jobs)) is not None:
        if not isinstance(job, tuple):  # the copy of the model meant for a worker that died at start
            continue
        call, chunk_id, texts, plan, gpu_precision = job
        try:
            half = autocast_dtype(gpu_precision, place, encoder_dtype)
            local = dataclasses.replace(
                plan, device=place, to_cpu=True, show_progress_bar=False, autocast_dtype=half
            )
            buffer = io.BytesIO()
            torch.save(run_encode(modules, texts, local), buffer)
            results.put(("done", call, chunk_id, buffer.getvalue()))
        except Exception as exc:
            results.put(("error", call, chunk_id, _portable(exc)))


def _next_job(jobs: Any) -> Any:
    """The next item from ``jobs``; ``None`` once the process that started this worker has ended."""
    parent = multiprocessing.parent_process()
    while True:
        with contextlib.suppress(queue.Empty):
            return jobs.get(timeout=1.0)
        if parent is not None and not parent.is_alive():
            return None


def _load_modules(payload: bytes, device: str, threads: int) -> list[nn.Module]:
    """The model's modules on ``device``, in eval mode, running batches on at most ``threads`` threads."""
    modules: list[nn.Module] = torch.load(io.BytesIO(payload), map_location=device, weights_only=False)
    for module in modules:
        module.to(device).eval()
        workers = getattr(module, "batch_workers", None)  # ONNX Runtime / OpenVINO: batches run at once
        if isinstance(workers, int):
            module.__dict__["batch_workers"] = max(1, min(workers, threads))
    return modules


def _portable(exc: Exception) -> tuple[Exception | None, str, str]:
    """``exc`` (or ``None`` when it cannot be pickled), a one-line description and its traceback."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    try:
        sendable: Exception | None = pickle.loads(pickle.dumps(exc))
    except Exception:
        sendable = None
    return sendable, f"{type(exc).__name__}: {exc}", text
