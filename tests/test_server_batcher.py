"""MicroBatcher on its own: packing under the token budget, the wait, 429 when full, per-job errors, drain."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from sentencekit.server.batcher import MicroBatcher
from sentencekit.server.errors import ServerBusyError, ShuttingDownError


def make(run, **kw):
    settings = {"name": "test", "max_batch_tokens": 100, "max_wait_s": 0.05, "max_queue": 100, **kw}
    batcher = MicroBatcher(run, **settings)
    batcher.start()
    return batcher


def test_concurrent_jobs_share_steps_within_the_token_budget():
    steps = []

    def run(payloads):
        steps.append(list(payloads))
        return [p * 10 for p in payloads]

    batcher = make(run, max_batch_tokens=30)

    async def main():
        return await asyncio.gather(*(batcher.submit(i, cost=10) for i in range(9)))

    assert asyncio.run(main()) == [i * 10 for i in range(9)]
    batcher.close()
    assert sorted(p for step in steps for p in step) == list(range(9))
    assert all(len(step) <= 3 for step in steps)  # 3 x 10 tokens fill the budget of 30
    assert len(steps) == 3  # and the jobs were packed, not run one by one


def test_a_job_over_the_budget_runs_alone():
    steps = []
    batcher = make(lambda p: steps.append(p) or p, max_batch_tokens=5)

    async def main():
        return await asyncio.gather(batcher.submit("big", cost=50), batcher.submit("small", cost=1))

    assert asyncio.run(main()) == ["big", "small"]
    batcher.close()
    assert ["big"] in steps


def test_the_worker_waits_at_most_max_wait_for_company():
    batcher = make(lambda p: p, max_wait_s=0.2, max_batch_tokens=1000)

    async def main():
        start = time.perf_counter()
        await batcher.submit("alone", cost=1)
        return time.perf_counter() - start

    elapsed = asyncio.run(main())
    batcher.close()
    assert 0.15 <= elapsed < 2.0


def test_full_queue_refuses_at_once_and_admitted_jobs_finish():
    gate = threading.Event()

    def run(payloads):
        gate.wait(10)
        return payloads

    batcher = make(run, max_queue=3, max_wait_s=0.0, max_batch_tokens=1)

    async def main():
        first = asyncio.ensure_future(batcher.submit(0, cost=1))
        while batcher.in_flight == 0:  # the worker holds job 0
            await asyncio.sleep(0.005)
        admitted = [asyncio.ensure_future(batcher.submit(i, cost=1)) for i in (1, 2, 3)]
        await asyncio.sleep(0)
        start = time.perf_counter()
        with pytest.raises(ServerBusyError, match="queue is full"):
            await batcher.submit(4, cost=1)
        refused_in = time.perf_counter() - start
        gate.set()
        return await asyncio.gather(first, *admitted), refused_in

    results, refused_in = asyncio.run(main())
    batcher.close()
    assert results == [0, 1, 2, 3]
    assert refused_in < 0.1


def test_a_failing_job_fails_alone_and_a_failing_step_fails_its_jobs():
    def run(payloads):
        if "crash" in payloads:
            raise RuntimeError("boom")
        return [ValueError("bad one") if p == "bad" else p for p in payloads]

    batcher = make(run, max_wait_s=0.05)

    async def main():
        good, bad = await asyncio.gather(
            batcher.submit("good", 1), batcher.submit("bad", 1), return_exceptions=True
        )
        crashed = await asyncio.gather(batcher.submit("crash", 1), return_exceptions=True)
        after = await batcher.submit("after", 1)
        return good, bad, crashed[0], after

    good, bad, crashed, after = asyncio.run(main())
    batcher.close()
    assert good == "good" and isinstance(bad, ValueError)
    assert isinstance(crashed, RuntimeError)
    assert after == "after"  # the worker survived


def test_close_finishes_admitted_jobs_then_refuses_new_ones():
    gate = threading.Event()

    def run(payloads):
        gate.wait(10)
        return payloads

    batcher = make(run, max_wait_s=0.0, max_batch_tokens=1)

    async def main():
        jobs = [asyncio.ensure_future(batcher.submit(i, cost=1)) for i in range(4)]
        await asyncio.sleep(0.05)
        closer = threading.Thread(target=batcher.close)
        closer.start()
        await asyncio.sleep(0.05)
        with pytest.raises(ShuttingDownError):
            await batcher.submit(99, cost=1)
        gate.set()
        done = await asyncio.gather(*jobs)
        closer.join(5)
        return done

    assert asyncio.run(main()) == [0, 1, 2, 3]


def test_on_idle_runs_when_a_step_empties_the_queue():
    idle = []
    batcher = make(lambda p: p, on_idle=idle.append, max_wait_s=0.0)

    async def main():
        await asyncio.gather(*(batcher.submit(i, cost=1) for i in range(5)))

    asyncio.run(main())
    batcher.close()
    assert idle and idle[-1].requests >= 1


def test_memory_releaser_trims_after_large_steps_only_or_once_a_second():
    from sentencekit.server.batcher import BatchStats
    from sentencekit.server.memory import MemoryReleaser

    calls = []
    releaser = MemoryReleaser(large_step_tokens=100, min_interval_s=60)
    releaser._trim = calls.append  # count the calls instead of trimming
    small, large = BatchStats(1, 10, 0.0, 0.0), BatchStats(9, 500, 0.0, 0.0)
    for stats in (small, small, large, small, large):
        releaser(stats)
    assert len(calls) == 3  # the first small step (no trim yet), then each large step
