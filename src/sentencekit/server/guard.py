"""The ASGI middleware every request passes first: metrics, API key, body size.

It runs before FastAPI reads the body, so a wrong key costs no parsing and a 10 MB body is refused from
its ``Content-Length`` without being read (a chunked body is read up to the limit, then refused).
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sentencekit.server.errors import AuthenticationError, RequestTooLargeError

__all__ = ["RequestGuard"]

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Paths that need the API key when one is set; the page, /health and /metrics stay open.
_PROTECTED_PREFIX = "/v1/"
# A refused body is read and dropped up to this size before answering; a larger one is cut off.
_DRAIN_LIMIT = 64 * 1024 * 1024


async def _drain(receive: Receive) -> None:
    """Read and drop the rest of a request body (up to :data:`_DRAIN_LIMIT` bytes)."""
    size = 0
    while size <= _DRAIN_LIMIT:
        message = await receive()
        if message["type"] != "http.request":
            return
        size += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


class RequestGuard:
    """Count and time every HTTP request; check the Bearer key and the body size of API requests.

    Args:
        app: The wrapped ASGI app.
        api_key: Required as ``Authorization: Bearer <key>`` on ``/v1/`` paths, when not ``None``.
        max_body_bytes: Larger bodies get 413.
        error_response: Turns an exception into an ASGI response (the app's one error mapping).
        observe: Called with ``(endpoint, method, status, seconds)`` after each request.
        endpoints: Paths counted under their own name; others are counted as ``"other"``.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        api_key: str | None,
        max_body_bytes: int,
        error_response: Callable[[BaseException], Any],
        observe: Callable[[str, str, int, float], None],
        endpoints: frozenset[str],
    ) -> None:
        self.app = app
        self._key = api_key.encode() if api_key else None
        self._max_body = max_body_bytes
        self._error_response = error_response
        self._observe = observe
        self._endpoints = endpoints

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI call."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_counting(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            problem = self._check(scope)
            if problem is None and scope["path"].startswith(_PROTECTED_PREFIX):
                receive, problem = await self._bounded_body(scope, receive)
            if problem is not None:
                await _drain(receive)  # so that the client, still sending, reads the answer
                await self._error_response(problem)(scope, receive, send_counting)
            else:
                await self.app(scope, receive, send_counting)
        finally:
            path = scope["path"]
            endpoint = path if path in self._endpoints else "other"
            self._observe(endpoint, scope["method"], status, time.perf_counter() - started)

    def _check(self, scope: Scope) -> BaseException | None:
        if self._key is not None and scope["path"].startswith(_PROTECTED_PREFIX):
            header = dict(scope["headers"]).get(b"authorization", b"")
            scheme, _, token = header.partition(b" ")
            if scheme.lower() != b"bearer" or not hmac.compare_digest(token.strip(), self._key):
                reason = "No API key was sent" if not header else "The API key is wrong"
                return AuthenticationError(f"{reason}; send the header 'Authorization: Bearer <key>'.")
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self._max_body:
            return self._too_large(int(length))
        return None

    def _too_large(self, size: int | None) -> RequestTooLargeError:
        got = f"{size:,} bytes" if size is not None else "more"
        return RequestTooLargeError(
            f"The request body is {got}; this server takes at most {self._max_body:,} bytes. "
            "Send fewer or shorter inputs per request."
        )

    async def _bounded_body(self, scope: Scope, receive: Receive) -> tuple[Receive, BaseException | None]:
        """For a body without Content-Length, read it here (up to the limit) and replay it to the app."""
        if dict(scope["headers"]).get(b"content-length") is not None:
            return receive, None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return receive, None  # the client went away; let the app see it
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self._max_body:
                return receive, self._too_large(None)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay, None
