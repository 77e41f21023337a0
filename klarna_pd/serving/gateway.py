"""The service's request path: one ASGI middleware in front of BentoML's routing.

Every request is matched to a route template, checked for an API key, limited in size, time and
memory, handled, answered in one error shape, counted by template on ``/metrics`` and, when
refused, logged in one line. Why a middleware rather than routes: it is BentoML's public hook
(``add_asgi_middleware``) and it runs before BentoML's per-request context and routing, which cost
more CPU than scoring one applicant does (measured: benchmarks/results/serve.md). BentoML still
runs the workers, loads the model, drains on shutdown, packs the Bento and, when
``KLARNA_PD_ADAPTIVE_BATCHING`` is on, batches ``/predict``: small requests are then checked here
and handed to the ``predict`` API and its adaptive batcher (:mod:`.requests`).

Routes: ``POST /predict`` (JSON, or an Arrow IPC stream of columns), ``POST
/estimate-default-probability`` (legacy), ``GET /metadata``, ``/metrics``, ``/livez``,
``/healthz``, ``/readyz``, ``/docs``, ``/docs.json``, ``/`` (the docs). Anything else is a 404 in
the same envelope, counted under the route ``other`` so that random paths cannot grow /metrics.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pydantic_core

from ..spec import DatasetSpec
from . import monitoring, protocol, wire
from .admission import Admission, Overloaded
from .applicants import Applicants, parse_legacy, parse_predict
from .auth import MESSAGE as AUTH_MESSAGE
from .auth import OPEN_PATHS, APIKeys
from .errors import RequestError
from .requests import APPLICANTS_KEY
from .scorer import Scorer

logger = logging.getLogger("klarna_pd.serving")

JSON = b"application/json"
ARROW_STREAM = "application/vnd.apache.arrow.stream"
LEGACY_MAX_BODY = 64 * 1024
"""One legacy applicant takes ~1.3 KB (41 fields; at most ~10 KB with 200-character texts)."""

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]


@dataclass
class ServingState:
    """What the service instance hands the gateway once it has loaded (or refused) its model."""

    spec: DatasetSpec
    scorer: Scorer | None = None
    load_error: str | None = None


@dataclass(frozen=True)
class Limits:
    """The request limits of :class:`Gateway` (from :class:`klarna_pd.settings.Settings`)."""

    max_body_bytes: int
    max_applicants: int
    max_reasons: int
    max_inflight_bytes: int
    body_timeout: float
    batching: bool = False
    batch_max_applicants: int = 64


class Gateway:
    """ASGI middleware that answers the service's routes itself (see the module docstring).

    Args:
        app: BentoML's app (reached for ``/predict`` when batching is on).
        state: the service's loaded model, filled in by the service instance.
        limits: request limits.
        keys: API keys, or None for no authentication.
        docs: returns the OpenAPI document (``/docs.json``) and the docs page (``/docs``) as bytes.
    """

    def __init__(self, app, *, state: ServingState, limits: Limits, keys: APIKeys | None = None,
                 docs: Callable[[], tuple[bytes, bytes]] | None = None) -> None:
        self.app = app
        self.state = state
        self.limits = limits
        self.keys = keys
        self.docs = docs
        self.admission = Admission(limits.max_inflight_bytes, on_change=monitoring.set_inflight_bytes)
        self.log_refusal = protocol.log_refusal  # one budget per worker, with the protocol's refusals
        # HEAD wherever GET (RFC 9110, 9.3.2): uvicorn sends the GET answer's headers without its body.
        get, post = frozenset({"GET", "HEAD"}), frozenset({"POST"})
        self.routes: dict[str, tuple[frozenset[str], Callable]] = {
            "/predict": (post, self.predict),
            "/estimate-default-probability": (post, self.legacy),
            "/metadata": (get, self.metadata),
            "/metrics": (get, self.metrics),
            "/livez": (get, self.livez),
            "/healthz": (get, self.livez),
            "/readyz": (get, self.readyz),
            "/docs.json": (get, self.docs_json),
            "/docs": (get, self.docs_page),
            "/": (get, self.docs_page),
            # BentoML's service schema: its Python client (klarna_pd.client) builds its methods from it.
            "/schema.json": (get, self.bentoml),
        }

    # -- the request path -------------------------------------------------------------------------

    async def __call__(self, scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path, method = scope["path"], scope["method"]
        entry = self.routes.get(path)
        route = path if entry is not None else "other"
        status = 500
        monitoring.in_progress(route, 1)
        try:
            if entry is None:
                raise RequestError(404, f"no such route {path!r}; POST /predict or /estimate-default-probability, "
                                        "GET /metadata or /docs")
            methods, handler = entry
            if method not in methods:
                raise RequestError(405, f"{path} takes {' or '.join(sorted(methods - {'HEAD'}))}, got {method}",
                                   headers=[(b"allow", ", ".join(sorted(methods)).encode())])
            if self.keys is not None and path not in OPEN_PATHS and not self.keys.allowed(scope["headers"]):
                raise RequestError(401, AUTH_MESSAGE, headers=[(b"www-authenticate", b'Bearer realm="klarna-pd"')])
            status = await handler(scope, receive, send)
        except RequestError as exc:
            status = exc.status
            self._refused(exc, method, path)
            await _send(send, exc.status, pydantic_core.to_json(exc.payload()), exc.headers)
        except Overloaded as exc:
            status = 503
            error = RequestError(503, str(exc), retry_after=1)
            self._refused(error, method, path)
            # Read (and drop) the unread body: a client still sending would otherwise see a reset
            # connection instead of the 503 and its Retry-After.
            await _drain(receive, self.limits.max_body_bytes, self.limits.body_timeout)
            await _send(send, 503, pydantic_core.to_json(error.payload()), error.headers)
        except _ClientGone:
            status = 499  # the client closed the connection: nothing to answer
        except Exception:
            logger.exception("error on %s %s", method, path)
            error = RequestError(500, "internal error: the server could not answer this request; it is logged")
            await _send(send, 500, pydantic_core.to_json(error.payload()))
        finally:
            monitoring.in_progress(route, -1)
            monitoring.observe_request(route, method, status, time.perf_counter() - started)

    def _refused(self, exc: RequestError, method: str, path: str) -> None:
        reason = monitoring.REASONS.get(exc.status, str(exc.status))
        monitoring.count_rejected("overloaded" if exc.status == 503 and exc.message.startswith("overloaded")
                                  else reason, exc.status)
        if path in OPEN_PATHS:
            return  # a probe answered "not ready" every few seconds while a model loads is not news
        # A client's mistake is not the server's: one line, no traceback.
        self.log_refusal(f"{exc.status} {method} {path}: {exc.message[:300]}")

    def _scorer(self) -> Scorer:
        scorer = self.state.scorer
        if scorer is None:
            raise RequestError(503, f"no model loaded: {self.state.load_error or 'starting'}; retry later", retry_after=5)
        return scorer

    async def _body(self, scope, receive: Receive, limit: int) -> tuple[bytes, int]:
        """The body, refused past ``limit`` (413), past the in-flight budget (503) or when it does
        not arrive within the body timeout (408), or compressed (415). Returns the body and the bytes
        reserved for it."""
        wire.check_content_encoding(scope["headers"])
        declared = wire.declared_length(scope["headers"], limit)
        held = 0
        if declared:
            self.admission.reserve(declared)
            held = declared
        chunks: list[bytes] = []
        total = 0
        try:
            async with asyncio.timeout(self.limits.body_timeout):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        raise _ClientGone()
                    chunk = message.get("body", b"")
                    if chunk:
                        total += len(chunk)
                        if total > limit:
                            raise RequestError(413, f"request body is over the limit of {limit:,} bytes")
                        if total > held:
                            self.admission.reserve(total - held)
                            held = total
                        chunks.append(chunk)
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            self.admission.release(held)
            got = f"{total:,} of {declared:,}" if declared else f"{total:,}"
            raise RequestError(408, f"the request body did not arrive within {self.limits.body_timeout:g} s "
                                    f"(got {got} bytes)") from None
        except BaseException:
            self.admission.release(held)
            raise
        return (chunks[0] if len(chunks) == 1 else b"".join(chunks)), held

    # -- routes -------------------------------------------------------------------------------------

    async def predict(self, scope, receive: Receive, send: Send) -> int:
        scorer = self._scorer()
        media = wire.check_content_type(scope["headers"], accept=("application/json", ARROW_STREAM))
        body, held = await self._body(scope, receive, self.limits.max_body_bytes)
        try:
            if media == ARROW_STREAM:
                arrow_out = ARROW_STREAM.encode() in _header(scope, b"accept")
                payload, ctype = await self.admission.run(len(body), lambda: self._predict_arrow(body, scorer, arrow_out))
                await _send(send, 200, payload, content_type=ctype)
                return 200
            applicants = await self.admission.run(len(body), lambda: self._parse_predict(body, scorer))
            if self.limits.batching and len(applicants) <= self.limits.batch_max_applicants:
                return await self._batched(scope, send, applicants)
            payload = await self.admission.run(len(body), lambda: pydantic_core.to_json(scorer.score(applicants)))
            await _send(send, 200, payload)
            return 200
        finally:
            self.admission.release(held)

    def _parse_predict(self, body: bytes, scorer: Scorer) -> Applicants:
        wire.refuse_too_many_objects(body, self.limits.max_applicants)
        return parse_predict(body, scorer.model.spec, max_applicants=self.limits.max_applicants,
                             max_reasons=self.limits.max_reasons)

    def _predict_arrow(self, body: bytes, scorer: Scorer, arrow_out: bool) -> tuple[bytes, bytes]:
        from .columnar import predict_arrow

        return predict_arrow(body, scorer, max_rows=self.limits.max_applicants, arrow_out=arrow_out)

    async def _batched(self, scope, send: Send, applicants: Applicants) -> int:
        """Hand checked applicants to BentoML's ``predict`` API and its adaptive batcher."""
        scope[APPLICANTS_KEY] = applicants
        held: dict[str, Any] = {}

        async def replay() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def capture(message: dict[str, Any]) -> None:
            # Held until the body is complete: a merged call that failed for this request alone
            # is answered as this request's error (see .requests.predict_batch).
            if message["type"] == "http.response.start":
                held["start"] = message
                held["body"] = []
            elif message["type"] == "http.response.body":
                held["body"].append(message.get("body", b""))
                if not message.get("more_body", False):
                    held["done"] = True

        await self.app(scope, replay, capture)
        start = held.get("start")
        if start is None or not held.get("done"):
            raise RequestError(500, "internal error: the batched prediction gave no answer")
        if applicants.error is not None:
            raise RequestError(500, f"internal error while scoring this request: {applicants.error}")
        if start["status"] == 503:
            raise RequestError(503, "overloaded: the adaptive batcher expects to miss its latency budget; "
                                    "retry in a moment", retry_after=1)
        if start["status"] != 200:
            raise RequestError(start["status"], b"".join(held["body"]).decode("utf-8", "replace")[:300])
        await _send(send, 200, b"".join(held["body"]))
        return 200

    async def legacy(self, scope, receive: Receive, send: Send) -> int:
        scorer = self._scorer()
        wire.check_content_type(scope["headers"])
        body, held = await self._body(scope, receive, LEGACY_MAX_BODY)
        try:
            started = time.perf_counter()
            pd = scorer.score_one(parse_legacy(body, scorer.model.spec))
            eta = time.perf_counter() - started
        finally:
            self.admission.release(held)
        await _send(send, 200, pydantic_core.to_json(
            {"default_probability": pd, "status": "success", "prediction_eta": eta}))
        return 200

    async def metadata(self, scope, receive: Receive, send: Send) -> int:
        await _send(send, 200, pydantic_core.to_json(self._scorer().metadata()))
        return 200

    async def metrics(self, scope, receive: Receive, send: Send) -> int:
        payload, ctype = monitoring.exposition()
        await _send(send, 200, payload, content_type=ctype.encode())
        return 200

    async def livez(self, scope, receive: Receive, send: Send) -> int:
        await _send(send, 200, b"\n", content_type=b"text/plain")
        return 200

    async def readyz(self, scope, receive: Receive, send: Send) -> int:
        self._scorer()
        await _send(send, 200, b"\n", content_type=b"text/plain")
        return 200

    async def bentoml(self, scope, receive: Receive, send: Send) -> int:
        """A route of BentoML's own, answered by it."""
        status = 500

        async def watch(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self.app(scope, receive, watch)
        return status

    async def docs_json(self, scope, receive: Receive, send: Send) -> int:
        if self.docs is None:
            raise RequestError(404, "no API document is configured")
        await _send(send, 200, self.docs()[0])
        return 200

    async def docs_page(self, scope, receive: Receive, send: Send) -> int:
        if self.docs is None:
            raise RequestError(404, "no API document is configured")
        await _send(send, 200, self.docs()[1], content_type=b"text/html; charset=utf-8")
        return 200


class _ClientGone(Exception):
    """The client closed the connection before its body arrived."""


async def _drain(receive: Receive, limit: int, timeout: float) -> None:
    """Read and drop a request body, up to ``limit`` bytes and ``timeout`` seconds."""
    total = 0
    try:
        async with asyncio.timeout(timeout):
            while total <= limit:
                message = await receive()
                if message["type"] != "http.request":
                    return
                total += len(message.get("body", b""))
                if not message.get("more_body", False):
                    return
    except TimeoutError:
        return


def _header(scope, name: bytes) -> bytes:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return value
    return b""


async def _send(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | tuple = (),
                *, content_type: bytes = JSON) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *headers]})
    await send({"type": "http.response.body", "body": body})
