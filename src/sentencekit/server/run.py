"""Running an app with uvicorn: in the foreground (the CLI) or on a background thread (tests, notebooks)."""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Any

from sentencekit._optional import require
from sentencekit.errors import InvalidInputError

__all__ = ["BackgroundServer", "bind", "serve"]

logger = logging.getLogger(__name__)

# Seconds uvicorn waits for in-flight requests after a stop signal before it closes their connections.
GRACEFUL_TIMEOUT_S = 30.0


def _uvicorn_config(app: Any, host: str, port: int, log_level: str) -> Any:
    uvicorn = require("uvicorn", extra="server", purpose="the HTTP server")
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,  # one line per request costs more than the request itself under load
        timeout_graceful_shutdown=GRACEFUL_TIMEOUT_S,
        lifespan="on",
    )


def bind(host: str = "127.0.0.1", port: int = 8000) -> socket.socket:
    """A listening-ready TCP socket on ``host:port`` (port 0: a free one).

    Raises:
        InvalidInputError: When the address cannot be bound (port in use, unknown host); names the fix.
    """
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        raise InvalidInputError(
            f"Cannot listen on {host}:{port} ({exc.strerror or exc}); pass another --port or --host."
        ) from exc
    return sock


def serve(
    app: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    sock: socket.socket | None = None,
    log_level: str = "info",
) -> None:
    """Serve ``app`` until SIGINT / SIGTERM, then finish in-flight requests and stop.

    Args:
        app: An app from :func:`~sentencekit.server.create_app`.
        host: Address to listen on; the default accepts loopback connections only.
        port: TCP port.
        sock: An already bound socket (from :func:`bind`); wins over ``host`` and ``port``.
        log_level: uvicorn's log level.
    """
    uvicorn = require("uvicorn", extra="server", purpose="the HTTP server")
    sock = sock if sock is not None else bind(host, port)
    host, port = sock.getsockname()[:2]
    uvicorn.Server(_uvicorn_config(app, host, port, log_level)).run(sockets=[sock])


class BackgroundServer:
    """Serve an app on a background thread, on a free loopback port; a context manager.

    Args:
        app: An app from :func:`~sentencekit.server.create_app`.
        host: Loopback address to bind.
        port: 0 picks a free port.
        log_level: uvicorn's log level.

    Example:
        >>> with BackgroundServer(create_app(model)) as server:  # doctest: +SKIP
        ...     httpx.post(f"{server.url}/v1/embeddings", json={"input": "hello"})
    """

    def __init__(
        self, app: Any, *, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning"
    ) -> None:
        uvicorn = require("uvicorn", extra="server", purpose="the HTTP server")
        self._socket = bind(host, port)
        self.host, self.port = self._socket.getsockname()[:2]
        self.server = uvicorn.Server(_uvicorn_config(app, self.host, self.port, log_level))
        self._thread = threading.Thread(target=self._run, name="sentencekit-server", daemon=True)

    @property
    def url(self) -> str:
        """``http://host:port``."""
        return f"http://{self.host}:{self.port}"

    def _run(self) -> None:
        self.server.run(sockets=[self._socket])

    def start(self, timeout: float = 30.0) -> BackgroundServer:
        """Start serving and wait until the server accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive():
                raise RuntimeError("The server thread stopped during start-up; see the log.")
            if time.monotonic() > deadline:
                raise TimeoutError(f"The server did not start within {timeout} s.")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = GRACEFUL_TIMEOUT_S + 5) -> None:
        """Ask the server to stop (as SIGTERM would) and wait until it has finished in-flight work."""
        self.server.should_exit = True
        self._thread.join(timeout)
        self._socket.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
