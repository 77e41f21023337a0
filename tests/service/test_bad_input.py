"""The bad-input matrix: each malformed or hostile request gets its exact status and message.

Spoken to a real ``bentoml serve`` over HTTP; the service must stay ready after all of them.
"""

import gzip

import httpx
import pytest

from .test_service import JSON, post

pytestmark = [pytest.mark.service]

PREDICT, LEGACY = "/predict", "/estimate-default-probability"


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


CASES = {
    # name: (path, body, headers, status, message fragment)
    "malformed JSON": (PREDICT, b'{"applicants": [', JSON, 400, "malformed JSON: EOF while parsing"),
    "wrong content type": (PREDICT, b'{"applicants": [{}]}', {"content-type": "text/csv"}, 415,
                           "expected Content-Type application/json or application/vnd.apache.arrow.stream, got 'text/csv'"),
    # A gzip body was a 400 "not UTF-8"; a plain body labelled gzip was answered as if unlabelled.
    "compressed body": (PREDICT, gzip.compress(b'{"applicants": [{}]}'),
                        {**JSON, "content-encoding": "gzip"}, 415,
                        "expected an uncompressed body (no Content-Encoding), got Content-Encoding 'gzip'"),
    "body labelled compressed": (LEGACY, b'{"age": 30}', {**JSON, "content-encoding": "br"}, 415,
                                 "got Content-Encoding 'br'"),
    "array where the request object belongs": (PREDICT, b'[{"age": 3}]', JSON, 422, "expected a JSON object {'applicants': [...]}, got [{\"age\": 3}]"),
    "object where the applicant list belongs": (PREDICT, b'{"applicants": {"age": 3}}', JSON, 422,
                                                "applicants: expected a list of applicant objects, got {\"age\": 3}"),
    "array where the legacy applicant belongs": (LEGACY, b'[{"age": 3}]', JSON, 422, "expected one applicant as a JSON object, got [{\"age\": 3}]"),
    "NaN token": (PREDICT, b'{"applicants": [{"age": NaN}]}', JSON, 400,
                  "malformed JSON: NaN is not a JSON value; send null for a missing value"),
    "Infinity token in a text field": (PREDICT, b'{"applicants": [{"merchant_group": Infinity}]}', JSON, 400,
                                       "malformed JSON: Infinity is not a JSON value"),
    "1e309 overflows to infinity": (PREDICT, b'{"applicants": [{"age": 1e309}]}', JSON, 422,
                                    "applicants[0].age: expected a finite number from 18 to 120 or null, got inf"),
    "-1e400": (LEGACY, b'{"age": -1e400}', JSON, 422, "age: expected a finite number from 18 to 120 or null, got -inf"),
    "huge string": (PREDICT, b'{"applicants": [{"merchant_category": "' + b"x" * 1_000_000 + b'"}]}', JSON, 422,
                    "applicants[0].merchant_category: expected a text of at most 200 characters or an integer or null, got 1000000 characters"),
    "deeply nested value": (PREDICT, b'{"applicants": [{"age": ' + _nested(5_000) + b"}]}", JSON, 400,
                            "malformed JSON: arrays and objects nested more than 201 deep"),
    "deeply nested legacy body": (LEGACY, b'{"age": ' + _nested(5_000) + b"}", JSON, 400, "nested more than 201 deep"),
    "object in a text field": (PREDICT, b'{"applicants": [{"merchant_group": {"a": 1}}]}', JSON, 422,
                               "applicants[0].merchant_group: expected a text of at most 200 characters or an integer or null, got {\"a\": 1}"),
    "20 MB body": (PREDICT, b" " * 20_000_000, JSON, 413, "request body of 20,000,000 bytes is over the limit of 16,777,216 bytes"),
    "empty batch": (PREDICT, b'{"applicants": []}', JSON, 422, "expected at least one applicant"),
    "empty body": (PREDICT, b"", JSON, 400, "empty request body; expected a JSON object"),
    "non-UTF-8 bytes": (PREDICT, b'{"applicants": [{"merchant_group": "\xff\xfe"}]}', JSON, 400,
                        "malformed JSON: not UTF-8 text (byte 0xff at offset 36); JSON must be UTF-8"),
    "non-UTF-8 bytes, legacy": (LEGACY, b'{"merchant_group": "caf\xe9"}', JSON, 400, "not UTF-8 text (byte 0xe9 at offset 23)"),
    "duplicate key": (PREDICT, b'{"applicants": [{"age": 30, "age": 70}]}', JSON, 422,
                      "field 'age' appears twice in one object; send each field once"),
    "duplicate key with a colon inside a string": (LEGACY, b'{"merchant_group": "a:b", "age": 1, "age": 2}', JSON, 422,
                                                   "field 'age' appears twice in one object"),
    "duplicate top-level key": (PREDICT, b'{"applicants": [{}], "applicants": [{}]}', JSON, 422, "field 'applicants' appears twice"),
    "unknown top-level key": (PREDICT, b'{"applicants": [{}], "extra": 1}', JSON, 422, "extra: unknown field 'extra'"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_matrix(server, case):
    path, body, headers, status, needle = CASES[case]
    resp = post(server, path, content=body, headers=headers)
    assert resp.status_code == status, resp.text[:500]
    payload = resp.json()
    assert payload["status"] == "error"
    assert needle in payload["message"], payload["message"]


def test_batch_over_the_limit(server):
    resp = post(server, PREDICT, {"applicants": [{}] * 10_001})
    assert resp.status_code == 422
    assert "applicants: expected at most 10000 applicants per request" in resp.json()["message"]


def test_colons_inside_strings_are_not_mistaken_for_duplicates(server):
    resp = post(server, PREDICT, {"applicants": [{"merchant_group": "a:b:c", "merchant_category": "x:"}]})
    assert resp.status_code == 200, resp.text


def test_unicode_category_names_are_scored_as_unseen_levels(server, small_model):
    applicant = {"merchant_group": "Électronique 🎧", "merchant_category": "Ψηφιακά αγαθά", "age": 40}
    resp = post(server, PREDICT, {"applicants": [applicant]})
    assert resp.status_code == 200, resp.text
    assert resp.json()[0]["pd"] == float(small_model.predict_records([applicant])[0])
    other = {**applicant, "merchant_group": "__never_seen__", "merchant_category": "__never_seen__"}
    assert resp.json()[0]["pd"] == float(small_model.predict_records([other])[0])


def test_still_ready_after_the_matrix(server):
    for case in CASES.values():
        post(server, case[0], content=case[1], headers=case[2])
    assert httpx.get(f"{server}/readyz").status_code == 200
    assert post(server, PREDICT, {"applicants": [{"age": 30}]}).status_code == 200
