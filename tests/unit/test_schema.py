import json

import numpy as np
import pytest

from klarna_pd.schema import RequestError, Schema
from klarna_pd.spec import klarna_spec

pytestmark = pytest.mark.unit

SCHEMA = Schema(klarna_spec(), max_applicants=3)


def test_a_full_row_and_an_empty_one_are_accepted():
    rec = {
        "uuid": "abc",
        "age": 34,
        "time_hours": 13.5,
        "account_status": 1,
        "account_worst_status_0_3m": 2.0,
        "has_paid": True,
        "merchant_group": "Leisure, Sport & Hobby",
        "merchant_category": "Wine, Beer & Liquor",
        "avg_payment_span_0_12m": None,
        "reasons": 3,
    }
    out = SCHEMA.validate_one_json(json.dumps(rec).encode())
    assert out["account_worst_status_0_3m"] == 2 and out["age"] == 34.0 and out["has_paid"] is True
    assert SCHEMA.validate_one_json(b"{}") == {}


@pytest.mark.parametrize(
    "body, status, needle",
    [
        (b'{"age": "abc"}', 422, "expected a finite number or null for 'age', got 'abc'"),
        (b'{"age": true}', 422, "for 'age', got True"),
        (b'{"agee": 1}', 422, "unknown field 'agee'"),
        (b'{"account_status": 1.5}', 422, "expected an integer code or null for 'account_status', got 1.5"),
        (b'{"has_paid": "maybe"}', 422, "expected true, false or null for 'has_paid', got 'maybe'"),
        (b'{"merchant_group": [1]}', 422, "expected a string or null for 'merchant_group'"),
        (b'{"reasons": 99}', 422, "expected an integer from 0 to 41, got 99"),
        (b'{"age": 1e309}', 422, "got inf"),
        (b'{"age": NaN}', 400, "NaN is not a JSON value"),
        (b'{"age": -Infinity}', 400, "-Infinity is not a JSON value"),
        (b'{"merchant_group": NaN}', 400, "NaN is not a JSON value"),
        (b'{"uuid": Infinity}', 400, "Infinity is not a JSON value"),
        (b'{"age": 1', 400, "malformed JSON"),
        (b"[1]", 422, "expected a JSON object, got [1]"),
        (b'{"merchant_group": "' + b"x" * 300 + b'"}', 422, "at most 200 characters"),
    ],
)
def test_one_applicant_errors_name_field_and_value(body, status, needle):
    with pytest.raises(RequestError) as err:
        SCHEMA.validate_one_json(body)
    assert err.value.status == status
    assert needle in err.value.message


@pytest.mark.parametrize(
    "body, needle",
    [
        (b'{"applicants": []}', "expected at least one applicant, got an empty list"),
        (b'{"applicants": [{}, {}, {}, {}]}', "expected at most 3 applicants per request, got 4"),
        (b'{"applicants": {}}', "expected a list of applicant objects"),
        (b"{}", "required field 'applicants' is missing"),
        (b'{"applicants": [{}, {"age": "x"}]}', "applicants[1].age: expected a finite number"),
    ],
)
def test_batch_errors(body, needle):
    with pytest.raises(RequestError) as err:
        SCHEMA.validate_many_json(body)
    assert err.value.status == 422
    assert needle in err.value.message


@pytest.mark.parametrize("text", ["NaNa shop", "NaN", "Infinity"])
def test_strings_that_look_like_tokens_are_text(text):
    body = json.dumps({"merchant_category": text}).encode()
    assert SCHEMA.validate_one_json(body)["merchant_category"] == text
    many = json.dumps({"applicants": [{"merchant_category": text}]}).encode()
    assert SCHEMA.validate_many_json(many)[0]["merchant_category"] == text


def test_a_token_in_a_batch_text_field_is_refused():
    with pytest.raises(RequestError) as err:
        SCHEMA.validate_many_json(b'{"applicants": [{}, {"name_in_email": NaN}]}')
    assert err.value.status == 400


def test_numbers_in_categorical_fields_become_their_text():
    assert SCHEMA.validate_one_json(b'{"name_in_email": 7}')["name_in_email"] == "7"


def test_json_records_of_a_read_file_pass_validation_and_encode_like_the_frame(tmp_path):
    from klarna_pd.data import read_dataset
    from klarna_pd.features import Encoder
    from klarna_pd.schema import json_records
    from klarna_pd.spec import klarna_spec
    from klarna_pd.synth import write_synthetic

    spec = klarna_spec()
    path = tmp_path / "d.csv"
    write_synthetic(path, rows=300, seed=4)
    frame = read_dataset(path, spec).frame
    records = json_records(frame, spec)
    assert [r["uuid"] for r in records] == frame["uuid"].tolist()
    assert "uuid" not in json_records(frame, spec, with_id=False)[0]
    validated = Schema(spec, max_applicants=1000).validate_records(records)
    encoder = Encoder(spec=spec).fit(frame)
    np.testing.assert_array_equal(encoder.encode_records(validated), encoder.transform(frame))
