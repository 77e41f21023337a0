"""Routes outside BentoML's API machinery: the legacy single-applicant endpoint and ``/metadata``.

``POST /estimate-default-probability`` keeps the older service's contract (one applicant object
in; ``{"default_probability": p, "status": "success"}`` out) but answers bad input with a 4xx and
``{"status": "error", "message": ...}`` instead of a 200. A single applicant gains nothing from
batching, so this path scores it straight away: no batching queue, no thread hop (LightGBM takes
tens of microseconds for one row).
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .applicants import parse_legacy
from .errors import RequestError
from .scorer import Scorer


def build_app(get_scorer: Callable[[], Scorer | None], get_error: Callable[[], str | None], max_body_bytes: int) -> Starlette:
    """The Starlette app mounted into the BentoML service.

    Args:
        get_scorer: returns the live scorer, or None while no model is loaded.
        get_error: why no model is loaded, if so.
        max_body_bytes: the largest body accepted.
    """
    from .requests import read_body

    def unavailable() -> JSONResponse:
        return JSONResponse(
            {"status": "error", "message": f"no model loaded: {get_error() or 'starting'}; retry later"},
            status_code=503,
            headers={"retry-after": "1"},
        )

    async def estimate(request: Request) -> JSONResponse:
        scorer = get_scorer()
        if scorer is None:
            return unavailable()
        try:
            body = await read_body(request, max_body_bytes)
            applicants = parse_legacy(body, scorer.model.spec)
        except RequestError as exc:
            return JSONResponse(exc.payload(), status_code=exc.status)
        return JSONResponse({"default_probability": scorer.score_one(applicants), "status": "success"})

    async def metadata(request: Request) -> JSONResponse:
        scorer = get_scorer()
        if scorer is None:
            return unavailable()
        return JSONResponse(scorer.metadata())

    return Starlette(
        routes=[
            Route("/estimate-default-probability", estimate, methods=["POST"]),
            Route("/metadata", metadata, methods=["GET"]),
        ]
    )
