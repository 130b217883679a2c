"""Errors of the server, and the one table that turns any error into an HTTP status and a JSON body.

The server raises the library's exceptions (:mod:`sentencekit.errors`) plus a few of its own, all subclasses
of :class:`~sentencekit.errors.SentenceKitError`::

    SentenceKitError
    ├── InvalidInputError (ValueError)          422  a field has the wrong type, is empty, out of range, ...
    │   └── RequestTooLargeError                413  body over the byte limit, too many inputs
    ├── ModelNotFoundError (OSError)            404  ``model`` names a model this server does not serve
    ├── AuthenticationError (PermissionError)   401  missing or wrong ``Authorization: Bearer`` key
    ├── ServerBusyError                         429  the batching queue is full; retry after a short wait
    ├── FeatureNotLoadedError                   404  e.g. /v1/search on a server started without --index
    └── ShuttingDownError                       503  the server is stopping and takes no new work

:func:`describe_error` is the only place that maps exceptions to statuses; the app's single exception
handler and its request guard both use it, so every error body has the OpenAI shape
``{"error": {"message", "type", "param", "code"}}``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sentencekit.errors import (
    InvalidInputError,
    MissingDependencyError,
    ModelNotFoundError,
    SentenceKitError,
)

__all__ = [
    "AuthenticationError",
    "ErrorInfo",
    "FeatureNotLoadedError",
    "RequestTooLargeError",
    "ServerBusyError",
    "ShuttingDownError",
    "describe_error",
]

logger = logging.getLogger(__name__)


class RequestTooLargeError(InvalidInputError):
    """The request body or the number of inputs is over the server's limit."""


class AuthenticationError(SentenceKitError, PermissionError):
    """The request has no valid API key."""


class ServerBusyError(SentenceKitError):
    """The batching queue is full: the request was not admitted."""


class FeatureNotLoadedError(SentenceKitError):
    """The endpoint needs something (a reranker, an index) the server was not started with."""


class ShuttingDownError(SentenceKitError):
    """The server is shutting down and admits no new work."""


@dataclass(frozen=True)
class ErrorInfo:
    """What an error becomes on the wire."""

    status: int
    type: str
    code: str
    message: str

    def body(self) -> dict[str, Any]:
        """The JSON body, in the OpenAI error shape."""
        return {"error": {"message": self.message, "type": self.type, "param": None, "code": self.code}}


# Most specific first: the first class the exception is an instance of decides.
_TABLE: tuple[tuple[type[BaseException], int, str, str], ...] = (
    (RequestTooLargeError, 413, "invalid_request_error", "request_too_large"),
    (AuthenticationError, 401, "authentication_error", "invalid_api_key"),
    (ServerBusyError, 429, "server_busy", "queue_full"),
    (ShuttingDownError, 503, "server_unavailable", "shutting_down"),
    (FeatureNotLoadedError, 404, "invalid_request_error", "not_loaded"),
    (ModelNotFoundError, 404, "invalid_request_error", "model_not_found"),
    (InvalidInputError, 422, "invalid_request_error", "invalid_input"),
    (MissingDependencyError, 500, "server_error", "missing_dependency"),
    (SentenceKitError, 500, "server_error", "internal_error"),
)


def _validation_message(errors: list[dict[str, Any]]) -> str:
    """One readable line from pydantic's error list: ``field: what is wrong`` for each error."""
    parts = []
    for err in errors[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{loc or 'body'}: {err.get('msg', 'invalid value')}")
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return "; ".join(parts) + more


def describe_error(exc: BaseException) -> ErrorInfo:
    """Map any exception to its HTTP status, error type, code and message.

    Library and server errors keep their message (it says what to do). FastAPI's request validation
    errors become 422 (400 for a body that is not JSON), Starlette's HTTP errors keep their status, and
    anything else is a 500 whose details go to the log, not to the client.
    """
    for cls, status, kind, code in _TABLE:
        if isinstance(exc, cls):
            if status >= 500:
                logger.error("Request failed", exc_info=exc)
            return ErrorInfo(status, kind, code, str(exc))
    name = type(exc).__name__
    if name == "RequestValidationError":  # fastapi.exceptions; matched by name to keep fastapi out of here
        errors = list(exc.errors())  # type: ignore[attr-defined]
        if any(err.get("type") == "json_invalid" for err in errors):
            detail = next(err for err in errors if err.get("type") == "json_invalid")
            where = detail.get("loc", ("body", "?"))[-1]
            reason = (detail.get("ctx") or {}).get("error", "invalid JSON")
            return ErrorInfo(
                400,
                "invalid_request_error",
                "invalid_json",
                f"The request body is not valid JSON ({reason} at position {where}).",
            )
        return ErrorInfo(422, "invalid_request_error", "invalid_input", _validation_message(errors))
    http_status = getattr(exc, "status_code", None)
    if isinstance(http_status, int) and 400 <= http_status < 600:  # starlette.exceptions.HTTPException
        detail = getattr(exc, "detail", None) or "HTTP error"
        return ErrorInfo(http_status, "invalid_request_error", f"http_{http_status}", str(detail))
    logger.error("Request failed", exc_info=exc)
    return ErrorInfo(500, "server_error", "internal_error", "Internal server error; see the server log.")
