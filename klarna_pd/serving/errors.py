"""HTTP errors: the one place where klarna_pd's errors become statuses, and one error shape for
every endpoint: ``{"status": "error", "message": ..., "errors": [{"loc": ..., "msg": ...}]}``.

:func:`http_error` maps the core's error family (:mod:`klarna_pd.errors`, which knows no HTTP) to
statuses: a record that does not fit is 422, a model that cannot be used 503.

Errors raised while BentoML parses an API request must travel as a ``BentoMLException`` (anything
else becomes a 500), and BentoML renders those as ``[{"error": message}]``. :class:`ErrorEnvelope`
is a small ASGI middleware that gives every 4xx/5xx response the shape above instead: the request
parser leaves its full payload in the request scope, and other framework errors are re-wrapped.
It also counts rejected requests by reason for ``/metrics``.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from bentoml.exceptions import BentoMLException

from ..errors import DataError, InputError, KlarnaPDError, ModelError

SCOPE_KEY = "klarna_pd.error"

_REASONS = {
    400: "malformed",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    503: "unavailable",
}


class RequestError(Exception):
    """A request answered with an error: its HTTP status, a one-line message and the details.

    Args:
        status: 400 malformed, 401 no valid key, 413 too large, 415 wrong content type, 422
            well-formed but invalid, 503 unavailable or overloaded.
        message: what was expected and what arrived.
        errors: one entry per problem: ``{"loc": "applicants[3].age", "msg": "..."}``; when none
            is given the message is the one entry.
        retry_after: seconds for a ``Retry-After`` header (503).
    """

    def __init__(self, status: int, message: str, errors: list[dict[str, str]] | None = None,
                 retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors if errors else [{"loc": "", "msg": message}]
        self.retry_after = retry_after

    def payload(self) -> dict[str, Any]:
        return {"status": "error", "message": self.message, "errors": self.errors}


def http_error(exc: KlarnaPDError) -> RequestError:
    """The HTTP answer to one of the core's errors."""
    if isinstance(exc, InputError):
        return RequestError(422, str(exc), [{"loc": p.loc, "msg": p.msg} for p in exc.problems])
    if isinstance(exc, DataError):
        return RequestError(422, str(exc))
    if isinstance(exc, ModelError):
        return RequestError(503, f"no model to score with: {exc}", retry_after=5)
    return RequestError(400, str(exc))


class HTTPError(BentoMLException):
    """A request error on its way through BentoML's request path, carrying its status."""

    def __init__(self, error: RequestError) -> None:
        super().__init__(error.message, error_code=HTTPStatus(error.status))
        self.error = error


def stash(scope: dict[str, Any], error: RequestError) -> HTTPError:
    """Leave ``error``'s payload for :class:`ErrorEnvelope` and return the exception to raise."""
    holder = scope.get(SCOPE_KEY)
    if isinstance(holder, dict):
        holder["payload"] = error.payload()
    return HTTPError(error)


def _payload_of(status: int, body: bytes) -> dict[str, Any]:
    """The error payload for a response body, whatever shape the framework gave it."""
    try:
        data = json.loads(body or b"null")
    except ValueError:
        data = body.decode("utf-8", "replace").strip()
    if isinstance(data, dict) and data.get("status") == "error" and isinstance(data.get("message"), str):
        return data  # already ours
    message = _message_of(status, data)
    if status == 503:
        message = f"service unavailable: {message}; retry later"
    return {"status": "error", "message": message, "errors": [{"loc": "", "msg": message}]}


def _message_of(status: int, data: Any) -> str:
    if isinstance(data, list) and data and isinstance(data[0], dict):
        data = data[0]
    if isinstance(data, dict):
        for key in ("message", "error", "detail"):
            if isinstance(data.get(key), str):
                return data[key]
    if isinstance(data, str) and data:
        return data
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "error"


class ErrorEnvelope:
    """ASGI middleware: rewrite error responses into the service's error shape.

    Args:
        app: the wrapped ASGI app.
        on_reject: called with (reason, status) for every 4xx response (metrics).
    """

    def __init__(self, app, on_reject=None) -> None:
        self.app = app
        self.on_reject = on_reject

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        holder: dict[str, Any] = {}
        scope[SCOPE_KEY] = holder
        state: dict[str, Any] = {"start": None, "chunks": []}

        async def capture(message) -> None:
            if message["type"] == "http.response.start":
                if message["status"] < 400:
                    state["start"] = False
                    await send(message)
                    return
                state["start"] = message
                return
            if message["type"] != "http.response.body" or state["start"] is False or state["start"] is None:
                await send(message)
                return
            state["chunks"].append(message.get("body", b""))
            if message.get("more_body", False):
                return
            start = state["start"]
            status = start["status"]
            payload = holder.get("payload") or _payload_of(status, b"".join(state["chunks"]))
            body = json.dumps(payload).encode()
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() not in (b"content-length", b"content-type", b"retry-after")]
            headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            if status == 503:
                headers.append((b"retry-after", b"1"))
            if self.on_reject is not None and status < 500:
                self.on_reject(_REASONS.get(status, str(status)), status)
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, capture)
