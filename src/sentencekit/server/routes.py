"""The HTTP endpoints: thin functions over :class:`~sentencekit.server.state.ServerState`.

=========================  ==================================================================================
``POST /v1/embeddings``    OpenAI embeddings (``float`` or ``base64``; ``dimensions``; token-id input)
``POST /v1/rerank``        Cohere / Jina / TEI style reranking with the cross-encoder
``POST /v1/similarity``    similarity matrix of two lists of texts, with the model's similarity function
``POST /v1/search``        nearest items of the loaded index
``GET /v1/models``         the served models
``GET /health``            status, model, index size, queue depth (503 while shutting down)
``GET /metrics``           Prometheus metrics
``GET /``                  a small search / compare page
=========================  ==================================================================================
"""

from __future__ import annotations

import base64
import time
from importlib import resources
from typing import Any

import anyio.to_thread
import numpy as np
from fastapi import APIRouter
from fastapi.responses import HTMLResponse, JSONResponse, Response

from sentencekit.errors import InvalidInputError
from sentencekit.server.engines import matryoshka
from sentencekit.server.schemas import (
    EmbeddingRequest,
    RerankRequest,
    SearchRequest,
    SimilarityRequest,
    parse_documents,
    parse_embedding_input,
    parse_texts,
)
from sentencekit.server.state import ServerState

__all__ = ["ENDPOINTS", "build_router"]

ENDPOINTS = frozenset(
    {"/", "/health", "/metrics", "/v1/models", "/v1/embeddings", "/v1/rerank", "/v1/similarity", "/v1/search"}
)


def _vector(row: np.ndarray, encoding_format: str) -> list[float] | str:
    """One embedding as OpenAI sends it: a list of floats, or base64 of little-endian float32 bytes."""
    if encoding_format == "base64":
        return base64.b64encode(row.astype("<f4", copy=False).tobytes()).decode("ascii")
    values: list[float] = row.tolist()
    return values


def build_router(state: ServerState) -> APIRouter:
    """The API's routes, bound to ``state``."""
    router = APIRouter()
    created = int(time.time())
    page = resources.files("sentencekit.server").joinpath("static/index.html").read_text(encoding="utf-8")

    @router.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index_page() -> HTMLResponse:
        return HTMLResponse(page)

    @router.get("/health")
    async def health() -> JSONResponse:
        info = state.describe()
        return JSONResponse(info, status_code=503 if state.stopping else 200)

    @router.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        body, content_type = state.metrics.render()
        return Response(body, media_type=content_type)

    @router.get("/v1/models")
    async def models() -> JSONResponse:
        data = [
            {
                "id": state.model_name,
                "object": "model",
                "created": created,
                "owned_by": "sentencekit",
                "type": "embedding",
                "dimensions": state.embedder.dimension,
                "max_seq_length": state.embedder.max_seq_length,
            }
        ]
        if state.reranker_name is not None:
            data.append(
                {
                    "id": state.reranker_name,
                    "object": "model",
                    "created": created,
                    "owned_by": "sentencekit",
                    "type": "rerank",
                }
            )
        return JSONResponse({"object": "list", "data": data})

    @router.post("/v1/embeddings")
    async def embeddings(request: EmbeddingRequest) -> JSONResponse:
        state.check_model(request.model)
        state.embedder.check_dimensions(request.dimensions)
        texts, token_lists = parse_embedding_input(request.input, state.config.max_inputs)
        if token_lists is not None:
            texts = await anyio.to_thread.run_sync(state.embedder.decode, token_lists)
        assert texts is not None
        vectors, tokens = await state.embed(texts, request.prompt_name)
        if request.dimensions is not None:
            vectors = matryoshka(vectors, request.dimensions)
        data = [
            {"object": "embedding", "index": i, "embedding": _vector(row, request.encoding_format)}
            for i, row in enumerate(vectors)
        ]
        return JSONResponse(
            {
                "object": "list",
                "data": data,
                "model": state.model_name,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    @router.post("/v1/rerank")
    async def rerank(request: RerankRequest) -> JSONResponse:
        documents = parse_documents(request.documents, state.config.max_inputs)
        scores, tokens = await state.rerank(request.model, request.query, documents, request.raw_scores)
        order = np.argsort(-scores, kind="stable")[: request.top_n]
        results: list[dict[str, Any]] = []
        for i in order.tolist():
            item: dict[str, Any] = {"index": i, "relevance_score": float(scores[i])}
            if request.return_documents:
                item["document"] = {"text": documents[i]}
            results.append(item)
        return JSONResponse(
            {
                "object": "rerank",
                "model": state.reranker_name,
                "results": results,
                "usage": {"total_tokens": tokens},
            }
        )

    @router.post("/v1/similarity")
    async def similarity(request: SimilarityRequest) -> JSONResponse:
        state.check_model(request.model)
        first = parse_texts(request.sentences1, "sentences1", state.config.max_inputs)
        second = parse_texts(request.sentences2, "sentences2", state.config.max_inputs)
        vectors, tokens = await state.embed(first + second, request.prompt_name)
        model = state.embedder.model
        matrix = await anyio.to_thread.run_sync(
            model.similarity, vectors[: len(first)], vectors[len(first) :]
        )
        return JSONResponse(
            {
                "object": "similarity",
                "model": state.model_name,
                "similarity_fn_name": model.similarity_fn_name,
                "scores": matrix.tolist(),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    @router.post("/v1/search")
    async def search(request: SearchRequest) -> JSONResponse:
        loaded = state.require_index()
        state.check_model(request.model)
        if request.k > state.config.search_k_max:
            raise InvalidInputError(
                f"k={request.k} is over this server's limit of {state.config.search_k_max}."
            )
        queries = parse_texts(request.query, "query", state.config.max_inputs)
        vectors, tokens = await state.embed(queries, request.prompt_name)
        results = await anyio.to_thread.run_sync(loaded.hits, vectors, request.k, request.filter)
        return JSONResponse(
            {
                "object": "search",
                "model": state.model_name,
                "results": results,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    return router
