"""Prometheus metrics of one app, in a registry of its own (several apps in one process do not clash).

==========================================  =========  =====================================================
name                                        type       what
==========================================  =========  =====================================================
``sentencekit_requests_total``              counter    HTTP requests by ``endpoint``, ``method``, ``status``
``sentencekit_request_duration_seconds``    histogram  request latency by ``endpoint``
``sentencekit_batch_requests``              histogram  requests per worker step, by ``model``
``sentencekit_batch_tokens``                histogram  tokens per worker step, by ``model``
``sentencekit_batch_duration_seconds``      histogram  time of one step's model call, by ``model``
``sentencekit_queue_wait_seconds``          histogram  time the oldest request of a step waited
``sentencekit_queue_depth``                 gauge      requests waiting, by ``model``
``sentencekit_tokens_total``                counter    tokens processed, by ``model``
==========================================  =========  =====================================================
"""

from __future__ import annotations

from collections.abc import Callable

from sentencekit._optional import require
from sentencekit.server.batcher import BatchStats

__all__ = ["ServerMetrics"]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_COUNT_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
_TOKEN_BUCKETS = (16, 64, 256, 1024, 4096, 16384, 65536)


class ServerMetrics:
    """The app's metrics; ``render()`` gives the text exposition format for ``GET /metrics``."""

    def __init__(self) -> None:
        prom = require("prometheus_client", extra="server", purpose="the server's /metrics")
        self._prom = prom
        self.registry = prom.CollectorRegistry()
        r = self.registry
        self.requests = prom.Counter(
            "sentencekit_requests", "HTTP requests", ["endpoint", "method", "status"], registry=r
        )
        self.latency = prom.Histogram(
            "sentencekit_request_duration_seconds",
            "HTTP request latency",
            ["endpoint"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_requests = prom.Histogram(
            "sentencekit_batch_requests",
            "Requests per worker step",
            ["model"],
            buckets=_COUNT_BUCKETS,
            registry=r,
        )
        self.batch_tokens = prom.Histogram(
            "sentencekit_batch_tokens",
            "Tokens per worker step",
            ["model"],
            buckets=_TOKEN_BUCKETS,
            registry=r,
        )
        self.batch_seconds = prom.Histogram(
            "sentencekit_batch_duration_seconds",
            "Model time of one worker step",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_wait = prom.Histogram(
            "sentencekit_queue_wait_seconds",
            "Time the oldest request of a step waited in the queue",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_depth = prom.Gauge("sentencekit_queue_depth", "Requests waiting", ["model"], registry=r)
        self.tokens = prom.Counter("sentencekit_tokens", "Tokens processed", ["model"], registry=r)

    def watch_queue(self, model: str, depth: Callable[[], int]) -> None:
        """Report ``depth()`` as the queue depth of ``model`` whenever metrics are scraped."""
        self.queue_depth.labels(model=model).set_function(depth)

    def batch_observer(self, model: str) -> Callable[[BatchStats], None]:
        """A callback for :class:`~sentencekit.server.batcher.MicroBatcher` that records its steps."""
        requests = self.batch_requests.labels(model=model)
        tokens = self.batch_tokens.labels(model=model)
        seconds = self.batch_seconds.labels(model=model)
        wait = self.queue_wait.labels(model=model)
        total = self.tokens.labels(model=model)

        def observe(stats: BatchStats) -> None:
            requests.observe(stats.requests)
            tokens.observe(stats.tokens)
            seconds.observe(stats.run_s)
            wait.observe(stats.wait_s)
            total.inc(stats.tokens)

        return observe

    def observe_request(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        """Count one finished HTTP request."""
        self.requests.labels(endpoint=endpoint, method=method, status=str(status)).inc()
        self.latency.labels(endpoint=endpoint).observe(seconds)

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return self._prom.generate_latest(self.registry), self._prom.CONTENT_TYPE_LATEST
