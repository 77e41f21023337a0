"""Optional API keys: ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``.

With no keys configured the middleware is not installed. With keys, every request except the
probes and metrics needs one of them, or gets 401. Keys are compared in constant time (each
configured key is compared, whatever matched) and never logged.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterable

OPEN_PATHS = frozenset({"/livez", "/readyz", "/healthz", "/metrics"})
_BODY = json.dumps({"status": "error", "message": "missing or invalid API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"}).encode()


def _presented(headers: Iterable[tuple[bytes, bytes]]) -> bytes | None:
    for name, value in headers:
        lname = name.lower()
        if lname == b"x-api-key":
            return value.strip()
        if lname == b"authorization" and value[:7].lower() == b"bearer ":
            return value[7:].strip()
    return None


class APIKeyAuth:
    """ASGI middleware that lets through requests carrying one of ``keys``.

    Args:
        app: the wrapped ASGI app.
        keys: accepted keys (non-empty strings).
        on_reject: called with ("unauthorized", 401) for each refused request (metrics).
    """

    def __init__(self, app, keys: Iterable[str], on_reject=None) -> None:
        self.app = app
        self.keys = [k.encode() for k in keys if k]
        if not self.keys:
            raise ValueError("APIKeyAuth needs at least one non-empty key")
        self.on_reject = on_reject

    def allowed(self, presented: bytes | None) -> bool:
        if not presented:
            return False
        ok = False
        for key in self.keys:
            ok |= hmac.compare_digest(presented, key)
        return ok

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        if self.allowed(_presented(scope.get("headers", []))):
            await self.app(scope, receive, send)
            return
        if self.on_reject is not None:
            self.on_reject("unauthorized", 401)
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(_BODY)).encode()),
                    (b"www-authenticate", b'Bearer realm="klarna-pd"'),
                ],
            }
        )
        await send({"type": "http.response.body", "body": _BODY})
