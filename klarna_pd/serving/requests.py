"""Reading request bodies: JSON only, bounded in size, validated in one pass.

:func:`predict_input_spec` makes the input model of the batchable ``/predict`` API: BentoML's
default would validate with pydantic too, but answer 400 with messages that omit the offending
values. Ours validates the same types in one pass, answers 415/413/400/422 as fits, and names the
field and the value.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import Field, create_model
from starlette.requests import Request

from ..schema import RequestError, Schema
from .errors import stash


def _check_content_type(request: Request) -> None:
    raw = request.headers.get("content-type")
    if raw is None:
        return  # no header: take the body as JSON, as curl users often send it
    media = raw.split(";")[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise RequestError(415, f"expected Content-Type application/json, got {raw!r}")


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The request body, refused (413) past ``max_bytes`` without reading it all."""
    _check_content_type(request)
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise RequestError(400, f"Content-Length must be a number, got {declared!r}") from None
        if size > max_bytes:
            raise RequestError(413, f"request body of {size:,} bytes is over the limit of {max_bytes:,} bytes")
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > max_bytes:
            raise RequestError(413, f"request body is over the limit of {max_bytes:,} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    if not body.strip():
        raise RequestError(400, "empty request body; expected a JSON object")
    return body


def predict_input_spec(
    schema: Schema, max_body_bytes: int, base: type, unavailable: Callable[[], str | None] = lambda: None
) -> type:
    """The input model of ``predict(self, applicants: list[Applicant])``.

    Args:
        schema: the request types of the served model.
        max_body_bytes: the largest body accepted.
        base: BentoML's ``IODescriptor`` class.
        unavailable: returns why no model can score right now (answered with 503), or None.
    """
    fields: dict[str, Any] = {
        "applicants": (
            list[schema.applicant],  # type: ignore[name-defined]
            Field(min_length=1, max_length=schema.max_applicants, description="applicants to score, results in the same order"),
        )
    }
    model = create_model("PredictInput", __base__=base, **fields)

    async def from_http_request(cls, request: Request, serde: Any) -> Any:
        try:
            reason = unavailable()
            if reason is not None:
                raise RequestError(503, reason)
            body = await read_body(request, max_body_bytes)
            applicants = schema.validate_many_json(body)
        except RequestError as exc:
            raise stash(request.scope, exc) from None
        # Already validated: construct without a second pass.
        return cls.model_construct(applicants=applicants)

    model.from_http_request = classmethod(from_http_request)
    return model
