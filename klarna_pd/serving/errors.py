"""HTTP errors: the one place where klarna_pd's errors become statuses, and the one error shape of
every endpoint: ``{"status": "error", "message": ..., "errors": [{"loc": ..., "msg": ...}]}``.

:func:`http_error` maps the core's error family (:mod:`klarna_pd.errors`, which knows no HTTP) to
statuses: a record that does not fit is 422, a model that cannot be used 503.
"""

from __future__ import annotations

from typing import Any

from ..errors import DataError, InputError, KlarnaPDError, ModelError


class RequestError(Exception):
    """A request answered with an error: its HTTP status, a one-line message and the details.

    Args:
        status: 400 malformed, 401 no valid key, 404/405 no such route or method, 408 body too
            slow, 413 too large, 415 wrong content type, 422 well-formed but invalid, 503
            unavailable or overloaded.
        message: what was expected and what arrived.
        errors: one entry per problem: ``{"loc": "applicants[3].age", "msg": "..."}``; when none
            is given the message is the one entry.
        retry_after: seconds for a ``Retry-After`` header (503).
        headers: further response headers (``WWW-Authenticate``, ``Allow``).
    """

    def __init__(self, status: int, message: str, errors: list[dict[str, str]] | None = None,
                 retry_after: int | None = None, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors if errors else [{"loc": "", "msg": message}]
        self.headers = list(headers or [])
        if retry_after is not None:
            self.headers.append((b"retry-after", str(retry_after).encode()))

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
