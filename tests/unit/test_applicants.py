"""Request bodies -> applicants: wire checks, the request's shape, statuses and messages."""

import pytest

from klarna_pd.serving.applicants import parse_legacy, parse_predict
from klarna_pd.serving.errors import RequestError
from klarna_pd.spec import klarna_spec

pytestmark = pytest.mark.unit

SPEC = klarna_spec()


def _predict(body: bytes):
    return parse_predict(body, SPEC, max_applicants=3, max_reasons=4)


@pytest.mark.parametrize(
    "body, status, needle",
    [
        (b'{"applicants": [{"age": NaN}]}', 400, "NaN is not a JSON value; send null"),
        (b'{"applicants": [{"age": -Infinity}]}', 400, "-Infinity is not a JSON value"),
        (b'{"applicants": [{"uuid": Infinity}]}', 400, "Infinity is not a JSON value"),
        (b'{"applicants": [{"age": 1', 400, "malformed JSON"),
        (b'{"applicants": [{"merchant_group": "\xff"}]}', 400, "not UTF-8 text (byte 0xff at offset 36)"),
        (b"", 400, "empty request body"),
        ('{"applicants": [{}]}'.encode("utf-16"), 400,
         "malformed JSON: UTF-16 text (it starts with a UTF-16 byte-order mark); JSON must be UTF-8"),
        (b"[" * 5000 + b"]" * 5000, 400, "malformed JSON: arrays and objects nested more than 201 deep (at line 1"),
        (b"[1]", 422, "expected a JSON object {'applicants': [...]}, got [1]"),
        (b'{"applicants": [], "age": 3}', 422, "unknown field 'age'; the request object takes only 'applicants'"),
        (b"{}", 422, "required field 'applicants' is missing"),
        (b'{"applicants": {}}', 422, "expected a list of applicant objects"),
        (b'{"applicants": []}', 422, "expected at least one applicant, got an empty list"),
        (b'{"applicants": [{}, {}, {}, {}]}', 422, "expected at most 3 applicants per request, got 4"),
        (b'{"applicants": [{}, {"age": "x"}]}', 422, "applicants[1].age: expected a finite number"),
        (b'{"applicants": [{"age": 30, "age": 70}]}', 422, "field 'age' appears twice in one object"),
        (b'{"applicants": [{"reasons": 9}]}', 422, "applicants[0].reasons: expected an integer from 0 to 4, got 9"),
        (b'{"applicants": [{"reasons": true}]}', 422, "expected an integer from 0 to 4, got true"),
        (b'{"applicants": [{"reasons": 1.5}]}', 422, "expected an integer from 0 to 4, got 1.5"),
        (b'{"applicants": [{"reasons": 1e300}]}', 422, "expected an integer from 0 to 4, got 1e+300"),
        # An id given as an integer is its digits, held to the length of a text id.
        (b'{"applicants": [{"uuid": ' + b"1" * 201 + b"}]}", 422,
         "applicants[0].uuid: expected a text id of at most 200 characters or an integer of at most 200 digits, got "
         "an integer of 201 digits"),
        (b'{"applicants": [{"age": 1e400}]}', 422, "got inf (Infinity, or a number beyond the 64-bit float range)"),
    ],
)
def test_predict_bodies(body, status, needle):
    with pytest.raises(RequestError) as err:
        _predict(body)
    assert err.value.status == status
    assert needle in err.value.message, err.value.message
    assert err.value.payload()["errors"], "every error carries the errors array"


def test_a_valid_request():
    got = _predict(b'{"applicants": [{"age": 30, "reasons": 2}, {"uuid": "b"}]}')
    assert len(got) == 2 and got.reasons == [2, 0] and got.batch.ids.tolist() == [None, "b"]


def test_numbers_are_read_as_json_means_them():
    """3.0 is the number 3: accepted for the reasons count as for ordinal features; an integer id of
    200 digits is the longest text id."""
    got = _predict(b'{"applicants": [{"reasons": 3.0, "account_status": 1.0, "uuid": ' + b"7" * 200 + b"}, "
                   b'{"uuid": -' + b"7" * 200 + b"}]}")
    assert got.reasons == [3, 0] and type(got.reasons[0]) is int
    assert got.batch.column("account_status")[0] == 1.0
    assert got.batch.ids.tolist() == ["7" * 200, "-" + "7" * 200]


def test_the_nesting_limit_named_in_the_refusal_is_the_parsers():
    """201 levels parse (the applicant is then refused for its value), 202 do not."""
    def nested(depth):
        return b'{"applicants": [{"age": ' + b"[" * (depth - 3) + b"]" * (depth - 3) + b"}]}"

    with pytest.raises(RequestError) as err:
        _predict(nested(201))
    assert err.value.status == 422
    with pytest.raises(RequestError) as err:
        _predict(nested(202))
    assert err.value.status == 400 and "nested more than 201 deep" in err.value.message


def test_a_key_with_a_colon_inside_a_string_is_not_a_duplicate():
    got = _predict(b'{"applicants": [{"merchant_category": "a: b", "uuid": "x:y"}]}')
    assert got.batch.texts["merchant_category"].tolist() == ["a: b"]


def test_legacy_reads_nan_as_missing_and_ignores_the_target():
    got = parse_legacy(b'{"age": NaN, "uuid": "u1", "default": 0, "merchant_group": NaN, "has_paid": true}', SPEC)
    assert got.batch.ids.tolist() == ["u1"] and got.batch.texts["merchant_group"].tolist() == [None]
    assert got.batch.column("has_paid")[0] == 1.0


@pytest.mark.parametrize(
    "body, needle",
    [
        (b"[{}]", "expected one applicant as a JSON object, got [{}]"),
        (b'{"age": "x"}', "age: expected a finite number"),
        (b'{"age": Infinity}', "age: expected a finite number from 18 to 120 or null, got inf (Infinity, or"),
        (b'{"agee": 3}', "agee: unknown field 'agee'"),
    ],
)
def test_legacy_refusals(body, needle):
    with pytest.raises(RequestError) as err:
        parse_legacy(body, SPEC)
    assert err.value.status in (400, 422) and needle in err.value.message, err.value.message


def test_objects_nested_in_values_are_counted_and_the_refusal_says_so():
    """One applicant whose value nests objects was refused as "too many applicants" alone."""
    from klarna_pd.serving import wire

    wire.refuse_too_many_objects(b'{"applicants": [{"merchant_group": "{{{{"}, {}]}', 2)  # braces in strings
    with pytest.raises(RequestError) as err:
        wire.refuse_too_many_objects(b'{"applicants": [{"age": {"a": {"b": {}}}}]}', 2)
    assert err.value.status == 422 and "each an object of plain values; the body holds more than 3" in err.value.message
