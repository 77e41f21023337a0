"""API keys: which requests get through, and what a refused one sees."""

import asyncio
import json

import pytest

from klarna_pd.serving.auth import APIKeyAuth

pytestmark = pytest.mark.unit

KEYS = ["k" * 16 + "-first", "second-key-0123456789"]


async def _app(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def _call(path: str, headers: list[tuple[bytes, bytes]]) -> tuple[int, bytes, dict]:
    sent = []

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "http.request", "body": b""}

    rejected = []
    auth = APIKeyAuth(_app, KEYS, on_reject=lambda reason, status: rejected.append((reason, status)))
    asyncio.run(auth({"type": "http", "path": path, "headers": headers}, receive, send))
    return sent[0]["status"], sent[1]["body"], dict(sent[0]["headers"]) | {"rejected": rejected}


@pytest.mark.parametrize("headers", [
    [(b"authorization", f"Bearer {KEYS[0]}".encode())],
    [(b"Authorization", f"bearer {KEYS[1]}".encode())],
    [(b"x-api-key", KEYS[1].encode())],
    [(b"X-API-Key", f"  {KEYS[0]} ".encode())],
])
def test_each_configured_key_gets_through(headers):
    assert _call("/predict", headers)[0] == 200


@pytest.mark.parametrize("headers", [
    [],
    [(b"authorization", b"Bearer ")],
    [(b"authorization", KEYS[0].encode())],  # no scheme
    [(b"authorization", f"Basic {KEYS[0]}".encode())],
    [(b"x-api-key", KEYS[0][:-1].encode())],  # a prefix of a key
    [(b"x-api-key", (KEYS[0] + "x").encode())],  # a key plus more
    [(b"x-api-key", (KEYS[0] + "," + KEYS[1]).encode())],
])
def test_anything_else_gets_401_without_echoing_what_was_sent(headers):
    status, body, sent_headers = _call("/predict", headers)
    assert status == 401
    assert json.loads(body)["message"].startswith("missing or invalid API key")
    assert sent_headers[b"www-authenticate"] == b'Bearer realm="klarna-pd"'
    assert sent_headers["rejected"] == [("unauthorized", 401)]
    for _, value in headers:
        assert len(value.strip()) < 16 or value.strip() not in body


@pytest.mark.parametrize("path", ["/livez", "/readyz", "/metrics"])
def test_probes_and_metrics_need_no_key(path):
    assert _call(path, [])[0] == 200


def test_no_keys_is_a_configuration_error():
    with pytest.raises(ValueError, match="at least one non-empty key"):
        APIKeyAuth(_app, ["", ""])
