"""An HTTP server for embeddings, reranking, similarity and search, with dynamic micro-batching.

Needs ``pip install 'sentencekit[server]'`` (FastAPI, uvicorn, prometheus-client); nothing of it is imported
by ``import sentencekit`` or ``import sentencekit.server``, only when a name below is first used::

    from sentencekit.server import ServerConfig, create_app, serve

    app = create_app("all-MiniLM-L6-v2", reranker=None, index="docs.txt", config=ServerConfig(max_queue=64))
    serve(app, host="127.0.0.1", port=8000)        # or: sentencekit serve all-MiniLM-L6-v2 --index docs.txt

Concurrent requests are queued and run together (:mod:`sentencekit.server.batcher`); the endpoints are listed
in :mod:`sentencekit.server.routes`, the error statuses in :mod:`sentencekit.server.errors`. See
``docs/server.md``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = ["BackgroundServer", "ServerConfig", "create_app", "serve"]

_LAZY = {
    "BackgroundServer": "sentencekit.server.run",
    "ServerConfig": "sentencekit.server.config",
    "create_app": "sentencekit.server.app",
    "serve": "sentencekit.server.run",
}

if TYPE_CHECKING:  # pragma: no cover
    from sentencekit.server.app import create_app
    from sentencekit.server.config import ServerConfig
    from sentencekit.server.run import BackgroundServer, serve


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'sentencekit.server' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
