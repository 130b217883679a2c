"""Dynamic micro-batching: requests from many connections become one model call.

Request handlers run on the event loop; the model runs on one worker thread that owns it. A handler puts
its job (payload and token count) on a bounded queue and awaits an :class:`asyncio.Future`. The worker
takes jobs from the head of the queue until their tokens fill ``max_batch_tokens`` (or, when the queue
is short, until ``max_wait_s`` after the oldest job arrived), runs ``run_batch`` once over all of them and
hands each result back to its own event loop::

    handler ─┐                    ┌──────────── worker thread ───────────┐
    handler ─┼─> queue (bounded) ─┤ take <= budget tokens -> run_batch() ├─> future.set_result (per job)
    handler ─┘      full: 429     └──────────────────────────────────────┘

The queue refuses a job at once when it holds ``max_queue`` jobs (:class:`ServerBusyError`), so overload
costs the client one fast round trip instead of a timeout, and memory stays bounded. :meth:`close` lets
the worker finish every job already admitted before it stops.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sentencekit.server.errors import ServerBusyError, ShuttingDownError

__all__ = ["BatchStats", "MicroBatcher"]

logger = logging.getLogger(__name__)

P = TypeVar("P")
R = TypeVar("R")


@dataclass(frozen=True)
class BatchStats:
    """What one worker step did, for metrics."""

    requests: int
    tokens: int
    wait_s: float  # how long the oldest job of the step waited in the queue
    run_s: float  # how long run_batch took


@dataclass
class _Job:
    payload: Any
    cost: int
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    enqueued: float


def _deliver(future: asyncio.Future[Any], result: Any) -> None:
    """Runs on the job's event loop: set the outcome unless the waiter is gone."""
    if future.done():
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)


class MicroBatcher(Generic[P, R]):
    """Queues jobs from async handlers and runs them in token-budgeted batches on one worker thread.

    Args:
        run_batch: Called on the worker thread with the payloads of one step, in queue order; returns one
            result per payload. A result that is an exception is raised to that job's caller only; an
            exception raised by ``run_batch`` goes to every caller of the step.
        name: Used in the thread name, log lines and error messages.
        max_batch_tokens: Most tokens (sum of job costs) per step; a larger single job runs alone.
        max_wait_s: Longest wait for more jobs after the oldest queued job arrived.
        max_queue: Most jobs waiting; :meth:`submit` raises :class:`ServerBusyError` beyond it.
        on_batch: Called on the worker thread after each step (metrics).
        on_idle: Called on the worker thread after a step that left the queue empty.

    Example:
        >>> batcher = MicroBatcher(lambda texts: [t.upper() for t in texts], name="demo",
        ...                        max_batch_tokens=1000, max_wait_s=0.002, max_queue=10)
        >>> batcher.start()
        >>> asyncio.run(batcher.submit("hello", cost=1))
        'HELLO'
        >>> batcher.close()
    """

    def __init__(
        self,
        run_batch: Callable[[list[P]], Sequence[R | BaseException]],
        *,
        name: str,
        max_batch_tokens: int,
        max_wait_s: float,
        max_queue: int,
        on_batch: Callable[[BatchStats], None] | None = None,
        on_idle: Callable[[BatchStats], None] | None = None,
    ) -> None:
        self._run_batch = run_batch
        self.name = name
        self._budget = max_batch_tokens
        self._max_wait_s = max_wait_s
        self._max_queue = max_queue
        self._on_batch = on_batch
        self._on_idle = on_idle
        self._queue: collections.deque[_Job] = collections.deque()
        self._queued_cost = 0
        self._cond = threading.Condition()
        self._closing = False
        self._in_flight = 0
        self._thread: threading.Thread | None = None

    @property
    def depth(self) -> int:
        """Jobs waiting in the queue (not counting the step being run)."""
        return len(self._queue)

    @property
    def in_flight(self) -> int:
        """Jobs in the step the worker is running now."""
        return self._in_flight

    @property
    def closing(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closing

    def start(self) -> None:
        """Start the worker thread (once)."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._work, name=f"sentencekit-{self.name}", daemon=True)
        self._thread.start()

    def check_room(self) -> None:
        """Raise now if :meth:`submit` would refuse a job: lets a handler skip work it would throw away.

        Raises:
            ServerBusyError: The queue is full.
            ShuttingDownError: :meth:`close` was called.
        """
        if self._closing or self._thread is None:
            raise ShuttingDownError(f"The {self.name} worker is not running (the server is stopping).")
        if len(self._queue) >= self._max_queue:
            raise ServerBusyError(
                f"The {self.name} queue is full ({self._max_queue} requests waiting); retry after a "
                "short wait, or send fewer concurrent requests."
            )

    async def submit(self, payload: P, cost: int) -> R:
        """Queue ``payload`` (worth ``cost`` tokens) and wait for its result.

        Raises:
            ServerBusyError: The queue is full; nothing was queued.
            ShuttingDownError: :meth:`close` was called; nothing was queued.
        """
        loop = asyncio.get_running_loop()
        job = _Job(payload, max(int(cost), 1), loop.create_future(), loop, time.monotonic())
        with self._cond:
            self.check_room()
            self._queue.append(job)
            self._queued_cost += job.cost
            self._cond.notify()
        result: R = await job.future
        return result

    def close(self, timeout: float | None = None) -> None:
        """Admit no new jobs, finish the queued ones, and stop the worker.

        Args:
            timeout: Most seconds to wait for the worker; ``None`` waits until the queue is done.
        """
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                logger.warning("The %s worker did not finish within %s s", self.name, timeout)

    # ------------------------------------------------------------------------------------------ worker

    def _take(self) -> list[_Job] | None:
        """Block until a step's worth of jobs is ready; ``None`` once closing and drained."""
        with self._cond:
            while not self._queue and not self._closing:
                self._cond.wait()
            if not self._queue:
                return None
            deadline = self._queue[0].enqueued + self._max_wait_s
            while self._queued_cost < self._budget and not self._closing:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            batch: list[_Job] = []
            cost = 0
            while self._queue and (not batch or cost + self._queue[0].cost <= self._budget):
                job = self._queue.popleft()
                self._queued_cost -= job.cost
                if job.future.done():  # its caller went away (cancelled): do not compute it
                    continue
                batch.append(job)
                cost += job.cost
            self._in_flight = len(batch)
            return batch

    def _work(self) -> None:
        while True:
            batch = self._take()
            if batch is None:
                return
            if not batch:
                continue
            started = time.monotonic()
            try:
                results: Sequence[Any] = self._run_batch([job.payload for job in batch])
                if len(results) != len(batch):
                    raise RuntimeError(f"run_batch returned {len(results)} results for {len(batch)} jobs")
            except Exception as exc:  # every waiter of the step learns of it; the worker keeps going
                logger.exception("The %s worker failed on a step of %d requests", self.name, len(batch))
                results = [exc] * len(batch)
            finished = time.monotonic()
            for job, result in zip(batch, results, strict=True):
                # a closed event loop (RuntimeError) means nobody is waiting any more
                with contextlib.suppress(RuntimeError):
                    job.loop.call_soon_threadsafe(_deliver, job.future, result)
            self._in_flight = 0
            stats = BatchStats(
                requests=len(batch),
                tokens=sum(job.cost for job in batch),
                wait_s=started - batch[0].enqueued,
                run_s=finished - started,
            )
            callbacks = [self._on_batch, self._on_idle if not self._queue else None]
            for callback in callbacks:
                if callback is not None:
                    try:
                        callback(stats)
                    except Exception:
                        logger.exception("A %s worker callback failed", self.name)
