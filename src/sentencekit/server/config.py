"""The server's settings: one frozen dataclass, validated when built, with no environment reads."""

from __future__ import annotations

from dataclasses import dataclass

from sentencekit.errors import InvalidInputError

__all__ = ["ServerConfig"]


@dataclass(frozen=True)
class ServerConfig:
    """How the server batches, limits and guards requests.

    Attributes:
        max_batch_tokens: Most real tokens (all inputs of all requests) one worker step takes from the
            queue. Larger steps amortize per-call overhead; smaller ones bound the latency a small request
            sees behind large ones. A single request above the budget still runs, alone.
        max_wait_ms: How long the worker waits for more requests after the first one of a step arrives,
            when the budget is not yet full. Under load the queue is never empty and no time is waited.
        max_queue: Requests waiting for the worker at most; one more gets 429 at once.
        batch_size: Most rows in one forward pass inside a step (rows are sorted by length first).
        max_inputs: Most texts (or token-id lists, or rerank documents) in one request; more gets 413.
        max_body_bytes: Largest request body; a larger one gets 413 before it is parsed.
        api_key: When set, every ``/v1/`` request needs ``Authorization: Bearer <api_key>``.
        model_name: Name clients use in ``model`` for the embedding model (default: the name it was
            loaded by, else its folder's name).
        reranker_name: Same, for the cross-encoder.
        search_k_max: Largest ``k`` accepted by ``/v1/search``.
    """

    # 16k tokens is about 1,000 short sentences: one step takes about a second on a laptop CPU.
    max_batch_tokens: int = 16384
    # 5 ms is under one forward pass of a small model, so an idle server adds little latency.
    max_wait_ms: float = 5.0
    # deep enough to keep the worker busy under bursts, shallow enough that waiting beats retrying.
    max_queue: int = 256
    # the encode default of 32 leaves CPU throughput on the table for short texts; 64 is near the knee.
    batch_size: int = 64
    # OpenAI's own limit on inputs per embeddings request.
    max_inputs: int = 2048
    # 8 MiB holds 2,048 inputs of about 4 kB each.
    max_body_bytes: int = 8 * 1024 * 1024
    api_key: str | None = None
    model_name: str | None = None
    reranker_name: str | None = None
    search_k_max: int = 1000

    def __post_init__(self) -> None:
        positive = {
            "max_batch_tokens": self.max_batch_tokens,
            "max_queue": self.max_queue,
            "batch_size": self.batch_size,
            "max_inputs": self.max_inputs,
            "max_body_bytes": self.max_body_bytes,
            "search_k_max": self.search_k_max,
        }
        for name, value in positive.items():
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise InvalidInputError(f"ServerConfig.{name} must be a positive integer, got {value!r}.")
        if not self.max_wait_ms >= 0:
            raise InvalidInputError(f"ServerConfig.max_wait_ms must be 0 or more, got {self.max_wait_ms!r}.")
        if self.api_key is not None and not self.api_key.strip():
            raise InvalidInputError("ServerConfig.api_key is empty; pass a real key or none.")
