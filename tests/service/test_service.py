"""The service over HTTP: a real ``bentoml serve`` subprocess of the small_trained model."""

import json
import re
import shutil
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from klarna_pd.client import PDClient, PDClientError
from klarna_pd.data.batch import Batch
from klarna_pd.data.files import read_dataset

from ..helpers.models import certain_default_booster, edit_record, signed_copy
from ..helpers.records import arrow_body, records_of
from ..helpers.servers import start_server, stop_server, wait_ready

pytestmark = [pytest.mark.service]

JSON = {"content-type": "application/json"}


def post(url, path, payload=None, *, content=None, headers=JSON):
    body = content if content is not None else json.dumps(payload).encode()
    return httpx.post(f"{url}{path}", content=body, headers=headers, timeout=60)


def test_probes(server):
    assert httpx.get(f"{server}/livez").status_code == 200
    assert httpx.get(f"{server}/readyz").status_code == 200


@pytest.mark.parametrize("path", ["/metadata", "/docs.json", "/metrics", "/readyz"])
def test_head_answers_wherever_get_does_without_a_body(server, path):
    """HEAD, then GET /livez on the same connection: the second answer must follow the first's
    headers at once (a body sent for HEAD would be read as the start of the next answer)."""
    host, port = server.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(f"HEAD {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
                  + b"GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        raw = b""
        while chunk := s.recv(65536):
            raw += chunk
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), raw[:300]
    assert rest.startswith(b"HTTP/1.1 200 ") and rest.endswith(b"\r\n\r\n\n"), rest[:300]  # /livez: "\n"
    got = httpx.get(f"{server}{path}")
    assert f"content-type: {got.headers['content-type']}".lower().encode() in head.lower()


def test_utf8_json_with_its_charset_named_is_scored(server):
    body = '{"applicants": [{"merchant_group": "Café", "age": 30}]}'.encode()
    for ctype in ("application/json; charset=utf-8", 'application/json; charset="UTF8"'):
        resp = post(server, "/predict", content=body, headers={"content-type": ctype})
        assert resp.status_code == 200 and 0 < resp.json()[0]["pd"] < 1, resp.text


def test_single_and_batched_predict_equal_the_library(server, small_model, sample_records):
    _, records = sample_records
    expected = small_model.predict_records(records)
    batched = post(server, "/predict", {"applicants": records})
    assert batched.status_code == 200, batched.text
    assert [r["pd"] for r in batched.json()] == expected.tolist()
    assert [r["uuid"] for r in batched.json()] == [r["uuid"] for r in records]
    # Concurrent one-applicant requests, merged by adaptive batching: each answer is still exact.
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda rec: post(server, "/predict", {"applicants": [rec]}), records[:64]))
    assert [a.json()[0]["pd"] for a in answers] == expected[:64].tolist()


def test_reasons_when_asked(server, small_model, sample_records):
    frame, records = sample_records
    resp = post(server, "/predict", {"applicants": [{**records[0], "reasons": 3}, records[1]]})
    first, second = resp.json()
    assert "reasons" not in second
    matrix = small_model.encoder.encode(Batch.from_frame(frame.head(1), small_model.spec))
    assert first["reasons"] == small_model.reasons(matrix, 3)[0]
    assert 1 <= len(first["reasons"]) <= 3
    assert all(r["contribution"] > 0 for r in first["reasons"])


def test_legacy_endpoint_contract(server, small_model, sample_records):
    _, records = sample_records
    rec = {k: v for k, v in records[5].items() if k != "uuid"}
    resp = post(server, "/estimate-default-probability", rec)
    assert resp.status_code == 200
    answer = resp.json()
    assert answer.pop("prediction_eta") > 0
    assert answer == {"default_probability": float(small_model.predict_records([rec])[0]), "status": "success"}


@pytest.mark.parametrize(
    "path, body, headers, status, needle",
    [
        ("/predict", b'{"applicants": [{"age": "abc"}]}', JSON, 422, "applicants[0].age: expected a finite number from 18 to 120 or null, got \"abc\""),
        ("/predict", b'{"applicants": [{"agee": 1}]}', JSON, 422, "unknown field 'agee'"),
        ("/predict", b'{"applicants": []}', JSON, 422, "expected at least one applicant"),
        ("/predict", b'{"applicants": [{"age": NaN}]}', JSON, 400, "NaN is not a JSON value"),
        ("/predict", b'{"applicants": [{"age": 1e309}]}', JSON, 422, "got inf"),
        ("/predict", b'{"applicants": [', JSON, 400, "malformed JSON"),
        ("/predict", b'{"applicants": [{}]}', {"content-type": "text/plain"}, 415, "expected Content-Type application/json or application/vnd.apache.arrow.stream, got 'text/plain'"),
        ("/estimate-default-probability", b'{"age": "abc"}', JSON, 422, "age: expected a finite number from 18 to 120 or null, got \"abc\""),
        ("/estimate-default-probability", b'{"has_paid": "maybe"}', JSON, 422, "has_paid: expected true or false or null, got \"maybe\""),
        ("/estimate-default-probability", b"[]", JSON, 422, "expected one applicant as a JSON object, got []"),
        ("/estimate-default-probability", b"", JSON, 400, "empty request body"),
        ("/estimate-default-probability", b'{"age": 30}', {"content-type": "application/x-www-form-urlencoded"}, 415, "expected Content-Type application/json"),
        # JSON is UTF-8: another charset is refused by name, even when the bytes happen to be ASCII.
        ("/predict", '{"applicants": [{"merchant_group": "Café"}]}'.encode("latin-1"),
         {"content-type": "application/json; charset=ISO-8859-1"}, 415,
         "expected JSON in UTF-8 (charset=utf-8, or no charset), got Content-Type 'application/json; charset=ISO-8859-1'"),
        ("/estimate-default-probability", b'{"age": 30}', {"content-type": "application/json;charset=\"latin-1\""}, 415,
         "expected JSON in UTF-8"),
    ],
)
def test_bad_input_gets_a_clear_4xx(server, path, body, headers, status, needle):
    resp = post(server, path, content=body, headers=headers)
    assert resp.status_code == status, resp.text
    payload = resp.json()
    assert payload["status"] == "error"
    assert needle in payload["message"], payload


def test_oversize_body_and_overlong_batch(server):
    big = b'{"applicants": [' + b",".join([b'{"merchant_category": "' + b"x" * 150 + b'"}'] * 120_000) + b"]}"
    resp = post(server, "/predict", content=big)
    assert resp.status_code == 413 and "over the limit" in resp.json()["message"]
    resp = post(server, "/predict", {"applicants": [{}] * 10_001})
    assert resp.status_code == 422 and "at most 10000 applicants" in resp.json()["message"]


def test_unknown_category_is_scored_not_refused(server, small_model, sample_records):
    _, records = sample_records
    rec = {**records[0], "merchant_category": "Spaceships", "merchant_group": "Outer space"}
    resp = post(server, "/predict", {"applicants": [rec]})
    assert resp.status_code == 200
    assert resp.json()[0]["pd"] == small_model.predict_records([rec])[0]


def test_every_row_of_the_file_is_accepted_as_it_is(server, synthetic_small, klarna_spec):
    frame = read_dataset(synthetic_small, klarna_spec).frame
    records = records_of(frame, klarna_spec)
    for start in range(0, len(records), 10_000):
        resp = post(server, "/predict", {"applicants": records[start : start + 10_000]})
        assert resp.status_code == 200, resp.text[:500]
        assert len(resp.json()) == len(records[start : start + 10_000])


def test_metadata(server, small_trained):
    meta = httpx.get(f"{server}/metadata").json()
    assert meta["model_tag"] == small_trained.model_tag
    assert meta["created"]
    assert meta["metrics"]["oof_auc"] == small_trained.metrics["oof_auc"]
    assert meta["spec"]["id"] == "uuid" and len(meta["spec"]["features"]) == 41
    assert meta["serving_library_versions"]["lightgbm"]
    assert meta["batching"]["max_batch_size"] >= 2
    assert meta["compiled_trees"] is False  # KLARNA_PD_COMPILED_TREES is off by default


def test_metrics_count_rejections_and_served_pds(server, sample_records):
    _, records = sample_records
    post(server, "/predict", {"applicants": records[:10]})
    post(server, "/predict", content=b'{"applicants": [{"age": "x"}]}')
    text = httpx.get(f"{server}/metrics").text
    assert 'klarna_pd_rejected_requests_total{reason="invalid",status="422"}' in text
    assert 'klarna_pd_served_pd_bucket{endpoint="predict",le="0.01"}' in text
    count = [line for line in text.splitlines() if line.startswith('klarna_pd_served_pd_count{endpoint="predict"}')]
    assert count and float(count[0].split()[-1]) >= 10


def test_python_client(server, small_model, sample_records):
    _, records = sample_records
    with PDClient(server) as client:
        results = client.predict(records[:5], reasons=2)
        assert [r["pd"] for r in results] == small_model.predict_records(records[:5]).tolist()
        assert all(len(r["reasons"]) <= 2 for r in results)
        rec = {k: v for k, v in records[0].items() if k != "uuid"}
        assert client.estimate(rec) == small_model.predict_records([rec])[0]
        assert client.metadata()["model_tag"]
        with pytest.raises(PDClientError) as err:
            client.predict([{"age": "old"}])
        assert err.value.status == 422 and "got \"old\"" in err.value.message


def test_the_client_sends_applicants_as_written_and_values_as_json(server, small_model, sample_records):
    """BentoML's typed call dropped fields its schema does not name: a misspelled feature was scored
    as missing. NaN, numpy scalars and pandas' NA were errors or tokens the service refuses."""
    import numpy as np
    import pandas as pd

    with PDClient(server) as client:
        with pytest.raises(PDClientError) as err:
            client.predict([{"agee": 70}])
        assert err.value.status == 422 and "agee" in err.value.message and err.value.errors
        plain = [{"age": 34, "has_paid": True, "num_unpaid_bills": 2, "avg_payment_span_0_12m": None}]
        typed = [{"age": np.int64(34), "has_paid": np.bool_(True), "num_unpaid_bills": np.float32(2.0),
                  "avg_payment_span_0_12m": float("nan")}]
        want = small_model.predict_records(plain).tolist()
        assert [r["pd"] for r in client.predict(typed)] == want
        assert [r["pd"] for r in client.predict([{**typed[0], "avg_payment_span_0_12m": pd.NA}])] == want
        assert client.estimate({"age": 34, "avg_payment_span_0_12m": float("nan")}) == client.estimate({"age": 34})
        for bad, needle in (([{"age": float("inf")}], "applicants[0].age: expected a finite number"),
                            ([{"age": pd.Timestamp("2026-01-01")}], "applicants[0].age: expected a number, text"),
                            (["abc"], "applicants[0]: expected a mapping"),
                            ([{"age": np.array([30, 40])}], "applicants[0].age: expected a number, text")):
            with pytest.raises(PDClientError, match=re.escape(needle)):
                client.predict(bad)
        ids = [{**r, "uuid": f"id-{i}"} for i, r in enumerate(sample_records[1][:3])]
        assert [r["uuid"] for r in client.predict(ids, reasons=1)] == ["id-0", "id-1", "id-2"]
    with pytest.raises(PDClientError, match="closed"):
        client.metadata()


def test_the_client_says_why_it_cannot_connect(server):
    started, cpu = time.monotonic(), time.process_time()
    with socket.socket() as closed:  # bound, never listening: refused, and no other test can take the port
        closed.bind(("127.0.0.1", 0))
        with pytest.raises(PDClientError, match=r"not ready after 1.5 s: cannot connect"):
            PDClient(f"http://127.0.0.1:{closed.getsockname()[1]}", server_ready_timeout=1.5)
    # BentoML's own wait polled without a pause: a CPU busy for the whole wait.
    assert time.monotonic() - started < 10 and time.process_time() - cpu < 0.5
    with pytest.raises(PDClientError) as err:
        PDClient(f"{server}/v1", server_ready_timeout=5)
    assert err.value.status == 404 and "expected the address of a klarna-pd service" in err.value.message
    for url in ("localhost:3000", "http://:abc"):  # the second was httpx.InvalidURL
        with pytest.raises(PDClientError, match="expected a URL such as http://localhost:3000"):
            PDClient(url)


# -- servers with other settings ----------------------------------------------------------------

KEY = "k" * 24


@pytest.fixture(scope="module")
def keyed_server(small_trained):
    proc, url = start_server(
        "service:KlarnaPD", env={"KLARNA_PD_MODEL_TAG": small_trained.model_tag, "KLARNA_PD_API_KEYS": f"{KEY},{'z' * 20}"}
    )
    try:
        wait_ready(url)
        yield url, proc
    finally:
        stop_server(proc)


def test_api_keys(keyed_server, sample_records):
    url, proc = keyed_server
    _, records = sample_records
    body = {"applicants": records[:1]}
    assert post(url, "/predict", body).status_code == 401
    assert post(url, "/predict", body, headers={**JSON, "authorization": "Bearer wrong-key-wrong-key"}).status_code == 401
    assert post(url, "/predict", body, headers={**JSON, "authorization": f"Bearer {KEY}"}).status_code == 200
    assert post(url, "/predict", body, headers={**JSON, "x-api-key": "z" * 20}).status_code == 200
    assert post(url, "/estimate-default-probability", {"age": 30}).status_code == 401
    assert httpx.get(f"{url}/metadata").status_code == 401
    for open_path in ("/livez", "/readyz", "/metrics"):
        assert httpx.get(f"{url}{open_path}").status_code == 200
    with PDClient(url, api_key=KEY) as client:
        assert 0 < client.predict(records[:1])[0]["pd"] < 1
    for key in (None, "wrong-key-wrong-key"):  # was BentoML's "Failed to fetch schema" with code 500
        with pytest.raises(PDClientError) as err:
            PDClient(url, api_key=key)
        assert err.value.status == 401
    log = open(proc.log_path).read()
    assert KEY not in log and "wrong-key-wrong-key" not in log and "z" * 20 not in log


@pytest.fixture(scope="module")
def compiled_server(small_trained):
    proc, url = start_server("service:KlarnaPD", env={"KLARNA_PD_MODEL_TAG": small_trained.model_tag,
                                                      "KLARNA_PD_COMPILED_TREES": "true"})
    try:
        wait_ready(url)
        yield url
    finally:
        stop_server(proc)


def test_compiled_trees_serve_the_library_pds_to_the_last_bit(compiled_server, small_model, sample_records):
    """KLARNA_PD_COMPILED_TREES: batches (JSON and Arrow bodies) go through the compiled trees,
    one applicant through LightGBM's single-row API; every PD as the library's (which uses LightGBM)."""
    _, records = sample_records
    # Compiled in the background (the worker serves meanwhile, with LightGBM: the same PDs).
    deadline = time.monotonic() + 60
    while httpx.get(f"{compiled_server}/metadata").json()["compiled_trees"] is not True:
        assert time.monotonic() < deadline, "the trees were not compiled within 60 s"
        time.sleep(0.2)
    expected = small_model.predict_records(records).tolist()
    resp = post(compiled_server, "/predict", {"applicants": records})
    assert resp.status_code == 200, resp.text
    assert [r["pd"] for r in resp.json()] == expected
    assert post(compiled_server, "/predict", {"applicants": records[:1]}).json()[0]["pd"] == expected[0]
    resp = post(compiled_server, "/predict", content=arrow_body(records),
                headers={"content-type": "application/vnd.apache.arrow.stream"})
    assert resp.status_code == 200, resp.text
    assert [r["pd"] for r in resp.json()] == expected


def _damaged_copy(small_trained, bentoml_home, name: str, damage) -> str:
    """A copy of the small_trained model in the store under ``name``:v1, with ``damage(directory)`` done to it."""
    import bentoml

    src = bentoml.models.get(small_trained.model_tag)
    dst = bentoml_home / "models" / name / "v1"
    shutil.copytree(src.path, dst)
    (dst.parent / "latest").write_text("v1")
    damage(dst)
    yaml_path = dst / "model.yaml"
    yaml_path.write_text(yaml_path.read_text().replace(f"name: {src.tag.name}", f"name: {name}").replace(
        f"version: {src.tag.version}", "version: v1"))
    return f"{name}:v1"


@pytest.fixture(scope="module")
def tampered_tag(small_trained, bentoml_home):
    """A copy of the small_trained model in the store, with one file altered."""

    def alter(model_dir):
        booster = model_dir / "booster.txt"
        booster.write_text(booster.read_text().replace("shrinkage=", "shrinkage=7", 1))

    return _damaged_copy(small_trained, bentoml_home, "klarna-pd-tampered", alter)


def test_a_tampered_model_is_never_served(tampered_tag):
    proc, url = start_server("service:KlarnaPD", env={"KLARNA_PD_MODEL_TAG": tampered_tag})
    try:
        assert httpx.get(f"{url}/livez").status_code == 200
        assert httpx.get(f"{url}/readyz").status_code == 503
        resp = post(url, "/predict", {"applicants": [{}]})
        assert resp.status_code == 503 and "does not match its recorded sha256" in resp.json()["message"]
        resp = post(url, "/estimate-default-probability", {})
        assert resp.status_code == 503
        assert "booster.txt does not match its recorded sha256" in open(proc.log_path).read()
    finally:
        stop_server(proc)


@pytest.fixture(scope="module")
def gutted_tag(small_trained, bentoml_home):
    """A copy of the small_trained model in the store with its encoder file gone."""
    return _damaged_copy(small_trained, bentoml_home, "klarna-pd-gutted", lambda model_dir: (model_dir / "encoder.json").unlink())


def test_a_model_missing_a_file_is_never_served(gutted_tag):
    proc, url = start_server("service:KlarnaPD", env={"KLARNA_PD_MODEL_TAG": gutted_tag})
    try:
        assert httpx.get(f"{url}/readyz").status_code == 503
        resp = post(url, "/predict", {"applicants": [{}]})
        assert resp.status_code == 503 and "encoder.json" in resp.json()["message"]
        assert post(url, "/estimate-default-probability", {}).status_code == 503
        log = open(proc.log_path).read()
        assert "model refused, not serving:" in log and "encoder.json" in log
    finally:
        stop_server(proc)


@pytest.mark.parametrize(
    "damage, needle",
    [
        # Every applicant's PD near 1, with the digests in model.yaml recomputed to match.
        (certain_default_booster, "booster.txt does not match its recorded sha256 in the signed manifest"),
        # A changed kind in model.yaml's spec: the request types of /predict (it gave 500s).
        (lambda path: edit_record(path, lambda info: info["metadata"]["spec"]["features"][5].update(kind="numeric")),
         "model.yaml's spec differs from the signed one"),
        (lambda path: (path / "signature.json").unlink(), "is not signed"),
    ],
    ids=["rewritten-booster", "changed-kind", "unsigned"],
)
def test_a_model_that_fails_its_signature_is_never_served(small_trained, bentoml_home, damage, needle):
    tag, path = signed_copy(small_trained.model_tag, bentoml_home, "klarna-pd-resigned")
    damage(path)
    proc, url = start_server("service:KlarnaPD", env={"KLARNA_PD_MODEL_TAG": tag})
    try:
        assert httpx.get(f"{url}/readyz").status_code == 503
        resp = post(url, "/predict", {"applicants": [{}]})
        assert resp.status_code == 503 and needle in resp.json()["message"]
        assert post(url, "/estimate-default-probability", {}).status_code == 503
        assert "model refused, not serving:" in open(proc.log_path).read()
    finally:
        stop_server(proc)
