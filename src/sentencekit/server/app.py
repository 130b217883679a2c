"""The app factory: :func:`create_app` loads the models and returns a FastAPI app ready for uvicorn."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sentencekit._optional import require
from sentencekit.server.config import ServerConfig
from sentencekit.server.errors import describe_error

__all__ = ["create_app"]

logger = logging.getLogger(__name__)


def create_app(
    model: Any,
    *,
    reranker: Any = None,
    index: Any = None,
    config: ServerConfig | None = None,
) -> Any:
    """Load the models and build the HTTP app (FastAPI); serve it with uvicorn or :func:`serve`.

    Args:
        model: A :class:`~sentencekit.SentenceTransformer`, or a name / folder to load one from.
        reranker: A :class:`~sentencekit.cross_encoder.CrossEncoder` (one label), a name / folder, or None
            (then ``/v1/rerank`` answers 404).
        index: An :class:`~sentencekit.index.Index`, a folder saved by ``sentencekit index build``, a .txt or
            .jsonl corpus to embed at start-up (its hits then carry their text), or None (then
            ``/v1/search`` answers 404).
        config: Batching, limits, API key and served names (:class:`ServerConfig`).

    Returns:
        A ``fastapi.FastAPI`` app. Its worker threads start with the app (lifespan start-up) and, on
        shutdown, finish every admitted request before they stop.

    Raises:
        MissingDependencyError: Without ``pip install 'sentencekit[server]'``.
        ModelNotFoundError: When a model cannot be found.

    Example:
        >>> app = create_app("all-MiniLM-L6-v2", config=ServerConfig(api_key="secret"))  # doctest: +SKIP
        >>> import uvicorn; uvicorn.run(app, host="127.0.0.1", port=8000)  # doctest: +SKIP
    """
    fastapi = require("fastapi", extra="server", purpose="the HTTP server")
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException

    from sentencekit import __version__
    from sentencekit.errors import SentenceKitError
    from sentencekit.server.guard import RequestGuard
    from sentencekit.server.routes import ENDPOINTS, build_router
    from sentencekit.server.state import ServerState

    config = config or ServerConfig()
    state = ServerState(model, reranker, index, config)

    @asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        state.start()
        logger.info("Serving %s (reranker: %s, index: %s)", state.model_name, state.reranker_name, index)
        try:
            yield
        finally:
            logger.info("Finishing admitted requests, then stopping the workers")
            await run_in_threadpool(state.close)

    def error_response(exc: BaseException) -> Any:
        """The one mapping from an exception to a JSON error response."""
        info = describe_error(exc)
        headers = {}
        if info.status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        elif info.status in (429, 503):
            headers["Retry-After"] = "1"
        return JSONResponse(info.body(), status_code=info.status, headers=headers)

    async def handle(_request: Any, exc: Exception) -> Any:
        return error_response(exc)

    app = fastapi.FastAPI(
        title="sentencekit",
        version=__version__,
        description="Embeddings (OpenAI-compatible), reranking, similarity and search over HTTP.",
        lifespan=lifespan,
        docs_url=None,  # FastAPI's interactive pages load their scripts from a CDN; /openapi.json stays
        redoc_url=None,
    )
    for exc_class in (SentenceKitError, RequestValidationError, HTTPException, Exception):
        app.add_exception_handler(exc_class, handle)
    app.include_router(build_router(state))
    app.add_middleware(
        RequestGuard,
        api_key=config.api_key,
        max_body_bytes=config.max_body_bytes,
        error_response=error_response,
        observe=state.metrics.observe_request,
        endpoints=ENDPOINTS,
    )
    app.state.sentencekit = state
    return app
