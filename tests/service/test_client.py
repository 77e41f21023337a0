"""The Python client against a service that misbehaves: answers that break the API's promises
become PDClientErrors that say what arrived, never a wrong result handed on.

The peer is a stub HTTP server on loopback that serves the real service's ``/schema.json`` (so
BentoML's client connects as it does to the service) and, per test, the answer under test; the
client's behaviour against the real service is in test_service.py.
"""

from __future__ import annotations

import importlib
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from starlette.testclient import TestClient

from klarna_pd.client import PDClient, PDClientError

pytestmark = [pytest.mark.service, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

APPLICANTS = [{"uuid": "a", "age": 30}, {"uuid": "b", "age": 40}, {"uuid": "c"}]


@pytest.fixture(scope="module")
def schema(small_trained):
    """The service's own /schema.json, from its ASGI app in this process."""
    os.environ["KLARNA_PD_MODEL_TAG"] = small_trained.model_tag
    service = importlib.import_module("service")
    with TestClient(service.KlarnaPD.to_asgi(is_main=True)) as c:
        return c.get("/schema.json").content


class _Stub(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, schema: bytes) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.answers = {"/readyz": (200, "text/plain", b"\n"), "/schema.json": (200, "application/json", schema)}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        status, ctype, body, *extra = self.server.answers.get(self.path, (404, "text/plain", b"no such route"))
        if body is None:  # the connection drops before an answer
            self.close_connection = True
            self.wfile.flush()
            self.connection.shutdown(2)
            return
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (extra[0] if extra else {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args) -> None:  # quiet
        pass


@pytest.fixture
def stub(schema):
    server = _Stub(schema)
    # A short poll: serve_forever's default (0.5 s) made every test wait that long in shutdown().
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _json(value) -> bytes:
    return json.dumps(value).encode()


@pytest.mark.parametrize(
    "answer, needle",
    [
        ((200, "application/json", _json([{"pd": 0.1, "uuid": "a"}, {"pd": 0.2, "uuid": "b"}])),
         "expected 3 results with a pd each, got 2 items"),
        ((200, "application/json", _json([{"pd": 0.1}, {"pd": 0.2}, {"score": 0.3}])),
         "expected 3 results with a pd each, got 3 items"),
        ((200, "application/json", _json({"pd": 0.1})), "expected 3 results with a pd each, got dict"),
        ((200, "application/json", _json([{"pd": 0.1, "uuid": "a"}, {"pd": 0.2, "uuid": "c"}, {"pd": 0.3, "uuid": "b"}])),
         "result 1 is for uuid 'c', applicant 1 was 'b': answers out of order"),
        ((200, "text/html", b"<html>maintenance</html>"),
         "expected a JSON answer from /predict, got 'text/html': '<html>maintenance</html>'"),
    ],
)
def test_an_answer_that_breaks_the_contract_is_an_error_not_a_result(stub, answer, needle):
    stub.answers["/predict"] = answer
    with PDClient(stub.url) as client, pytest.raises(PDClientError) as err:
        client.predict(APPLICANTS)
    assert needle in err.value.message and err.value.status == 200, err.value.message


def test_a_refusal_carries_status_message_problems_and_retry_after(stub):
    envelope = {"status": "error", "message": "worker overloaded", "errors": [{"loc": "", "msg": "overloaded"}]}
    stub.answers["/predict"] = (503, "application/json", _json(envelope), {"Retry-After": "2"})
    with PDClient(stub.url) as client, pytest.raises(PDClientError) as err:
        client.predict(APPLICANTS)
    assert (err.value.status, err.value.message, err.value.retry_after) == (503, "worker overloaded", 2.0)
    assert err.value.errors == [{"loc": "", "msg": "overloaded"}]


def test_a_proxys_error_page_is_shown_as_it_came(stub):
    stub.answers["/predict"] = (502, "text/html", b"<h1>502 Bad Gateway</h1>", {"Retry-After": "soon"})
    with PDClient(stub.url) as client, pytest.raises(PDClientError) as err:
        client.predict(APPLICANTS)
    assert (err.value.status, err.value.message, err.value.retry_after) == (502, "<h1>502 Bad Gateway</h1>", None)


def test_legacy_and_metadata_answers_are_checked(stub):
    stub.answers["/estimate-default-probability"] = (200, "application/json", _json({"default_probability": "0.1"}))
    stub.answers["/metadata"] = (200, "application/json", _json([1, 2]))
    with PDClient(stub.url) as client:
        with pytest.raises(PDClientError, match=r"expected \{'default_probability': <number>, \.\.\.\}, got"):
            client.estimate({"age": 30})
        with pytest.raises(PDClientError, match="expected a JSON object from /metadata, got list"):
            client.metadata()


def test_a_dropped_connection_is_an_error_without_a_status(stub):
    stub.answers["/predict"] = (200, "application/json", None)
    with PDClient(stub.url) as client, pytest.raises(PDClientError) as err:
        client.predict(APPLICANTS)
    assert err.value.status is None and f"POST {stub.url}/predict" in err.value.message


def test_a_server_that_is_not_the_service_is_named_at_connect(stub):
    stub.answers["/schema.json"] = (200, "text/html", b"<html>a web site</html>")
    with pytest.raises(PDClientError) as err:
        PDClient(stub.url)
    assert "expected the service's API description at /schema.json, got 'text/html'" in err.value.message
