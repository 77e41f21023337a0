"""The input side of the batchable ``/predict`` API: our parser in place of BentoML's.

BentoML would validate the body with pydantic and answer 400 with messages that omit the
offending values. :func:`predict_input_spec` makes an input model whose ``from_http_request``
runs the service's own checks (:mod:`.applicants`) and hands the API one *slot* per applicant:
``(Applicants, position)``. Slots are what BentoML's adaptive batcher concatenates and splits, so
a merged batch is runs of slots from several requests, each already validated; :func:`merge` turns
them back into one batch for one model call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from pydantic import Field, create_model
from starlette.requests import Request

from ..data.batch import Batch
from .applicants import Applicants, parse_predict
from .errors import RequestError, stash
from .wire import check_content_type, declared_length

Slot = tuple[Applicants, int]


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The request body, refused (413) past ``max_bytes`` without reading it all; JSON only (415)."""
    check_content_type(request.scope["headers"])
    declared_length(request.scope["headers"], max_bytes)
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > max_bytes:
            raise RequestError(413, f"request body is over the limit of {max_bytes:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def merge(slots: Sequence[Slot]) -> Applicants:
    """One :class:`Applicants` of the slots, in order (runs from one request stay whole)."""
    first = slots[0][0]
    if len(slots) == len(first) and all(s[0] is first for s in (slots[0], slots[-1])):
        return first
    parts: list[Batch] = []
    reasons: list[int] = []
    start = 0
    for i in range(1, len(slots) + 1):
        if i == len(slots) or slots[i][0] is not slots[start][0]:
            owner = slots[start][0]
            rows = np.array([s[1] for s in slots[start:i]])
            parts.append(owner.batch.take(rows))
            reasons.extend(owner.reasons[r] for r in rows.tolist())
            start = i
    return Applicants(Batch.concat(parts), reasons)


def predict_input_spec(
    spec_of: Callable[[], Any], applicant_type: type, base: type, *, max_body_bytes: int, max_applicants: int,
    max_reasons: int, unavailable: Callable[[], str | None] = lambda: None,
) -> type:
    """The input model of ``predict(self, applicants: list[Applicant])``.

    Args:
        spec_of: returns the served model's dataset spec.
        applicant_type: the documented type of one applicant (OpenAPI only).
        base: BentoML's ``IODescriptor`` class.
        max_body_bytes: the largest body accepted.
        max_applicants: the most applicants per request.
        max_reasons: the most reason codes an applicant may ask for.
        unavailable: returns why no model can score right now (answered with 503), or None.
    """
    fields: dict[str, Any] = {
        "applicants": (
            list[applicant_type],  # type: ignore[valid-type]
            Field(min_length=1, max_length=max_applicants, description="applicants to score, results in the same order"),
        )
    }
    model = create_model("PredictInput", __base__=base, **fields)

    async def from_http_request(cls, request: Request, serde: Any) -> Any:
        try:
            reason = unavailable()
            if reason is not None:
                raise RequestError(503, reason, retry_after=5)
            body = await read_body(request, max_body_bytes)
            applicants = parse_predict(body, spec_of(), max_applicants=max_applicants, max_reasons=max_reasons)
        except RequestError as exc:
            raise stash(request.scope, exc) from None
        # Already validated: construct without a second pass.
        return cls.model_construct(applicants=[(applicants, i) for i in range(len(applicants))])

    model.from_http_request = classmethod(from_http_request)
    return model
