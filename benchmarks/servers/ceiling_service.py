"""BentoML's own ceiling: a service answering constant JSON, the way the real service is configured.

Two constant routes: ``/const`` from a Starlette app mounted with ``@bentoml.asgi_app`` (the
ceiling the issue names), and ``/mw`` from an ASGI middleware added with ``add_asgi_middleware``
(where the klarna-pd gateway answers). Settings come from the environment so that the benchmark
can show what each buys: ``CEILING_ACCESS_LOG``, ``CEILING_METRICS``, ``CEILING_TRACING``
(true/false), ``WORKERS``.

    bentoml serve benchmarks/servers/ceiling_service.py:Ceiling
"""

import os

import bentoml
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

BODY = b'[{"pd":0.0123}]'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def const(request):
    await request.body()
    return Response(BODY, media_type="application/json")


class ConstantMiddleware:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"] == "/mw":
            more = True
            while more:
                more = (await receive()).get("more_body", False)
            await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
            await send({"type": "http.response.body", "body": BODY})
            return
        await self.app(scope, receive, send)


def _flag(name: str) -> bool:
    return os.environ.get(name, "true").lower() == "true"


@bentoml.asgi_app(Starlette(routes=[Route("/const", const, methods=["POST"])]), path="/")
@bentoml.service(
    name="ceiling",
    workers=int(os.environ.get("WORKERS", "2")),
    traffic={"timeout": 30},
    logging={"access": {"enabled": _flag("CEILING_ACCESS_LOG")}},
    metrics={"enabled": _flag("CEILING_METRICS")},
    tracing={} if _flag("CEILING_TRACING") else {"excluded_urls": ".*"},
)
class Ceiling:
    pass


Ceiling.add_asgi_middleware(ConstantMiddleware)
