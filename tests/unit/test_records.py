"""JSON records -> typed rows: the kinds table's JSON column, every refusal naming field and value."""

import numpy as np
import pytest

from klarna_pd.data.batch import Batch
from klarna_pd.data.records import read_records, to_records
from klarna_pd.errors import InputError
from klarna_pd.spec import klarna_spec

pytestmark = pytest.mark.unit

SPEC = klarna_spec()


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
    }
    batch = read_records([rec, {}], SPEC)
    assert len(batch) == 2 and batch.ids.tolist() == ["abc", None]
    assert batch.column("account_worst_status_0_3m")[0] == 2.0 and batch.column("age")[0] == 34.0
    assert batch.column("has_paid")[0] == 1.0 and np.isnan(batch.column("has_paid")[1])
    assert batch.texts["merchant_group"].tolist() == ["Leisure, Sport & Hobby", None]
    assert np.isnan(batch.numbers[1]).all()


@pytest.mark.parametrize(
    "record, needle",
    [
        ({"age": "abc"}, "[0].age: expected a finite number from 18 to 120 or null, got \"abc\""),
        ({"age": "34"}, "[0].age: expected a finite number from 18 to 120 or null, got \"34\""),
        ({"age": True}, "[0].age: expected a finite number from 18 to 120 or null, got true"),
        ({"age": -5}, "[0].age: expected a finite number from 18 to 120 or null, got -5"),
        ({"age": 1e309}, "got inf"),
        ({"agee": 1}, "[0].agee: unknown field 'agee'"),
        ({"account_status": 1.5}, "[0].account_status: expected an integer code of at least 0 or null, got 1.5"),
        ({"account_status": "2"}, "[0].account_status: expected an integer code of at least 0 or null, got \"2\""),
        ({"account_status": 10**310}, "[0].account_status: expected an integer code of at least 0 or null, got 1000"),
        ({"account_status": 2**60}, "expected an integer code of at least 0 or null"),
        ({"has_paid": "yes"}, "[0].has_paid: expected true or false or null, got \"yes\""),
        ({"has_paid": "TRUE"}, "[0].has_paid: expected true or false or null, got \"TRUE\""),
        ({"has_paid": 1}, "[0].has_paid: expected true or false or null, got 1"),
        ({"merchant_group": [1]}, "[0].merchant_group: expected a text of at most 200 characters or an integer or null"),
        ({"merchant_group": 1.5}, "[0].merchant_group: expected a text of at most 200 characters or an integer or null, got 1.5"),
        ({"merchant_group": "x" * 250}, "got 250 characters"),
        ({"uuid": "x" * 201}, "[0].uuid: expected a text id of at most 200 characters or an integer"),
        ({"uuid": 1.5}, "[0].uuid: expected a text id"),
    ],
)
def test_refusals_name_field_value_and_what_was_expected(record, needle):
    with pytest.raises(InputError) as err:
        read_records([record], SPEC)
    assert needle in str(err.value), str(err.value)


def test_every_problem_is_listed_in_order_with_the_prefix():
    with pytest.raises(InputError) as err:
        read_records([{}, {"age": "x", "has_paid": 3}, [], {"time_hours": 25}], SPEC, prefix="applicants")
    locs = [p.loc for p in err.value.problems]
    assert locs == ["applicants[2]"]  # a record that is not an object stops before its values are read
    with pytest.raises(InputError) as err:
        read_records([{}, {"age": "x", "has_paid": 3}, {"time_hours": 25}], SPEC, prefix="applicants")
    locs = [p.loc for p in err.value.problems]
    assert locs == ["applicants[1].age", "applicants[1].has_paid", "applicants[2].time_hours"]
    assert "(and 2 more)" in str(err.value)


def test_integers_in_categorical_fields_become_their_digits():
    batch = read_records([{"name_in_email": 7, "uuid": 12}], SPEC)
    assert batch.texts["name_in_email"].tolist() == ["7"] and batch.ids.tolist() == ["12"]


@pytest.mark.parametrize("token", ["NA", ""])
def test_missing_tokens_in_text_fields_are_missing_as_in_files(token):
    assert read_records([{"merchant_group": token}], SPEC).texts["merchant_group"].tolist() == [None]


@pytest.mark.parametrize("text", ["NaNa shop", "NaN", "Infinity", "N/A"])
def test_other_texts_are_levels(text):
    assert read_records([{"merchant_category": text}], SPEC).texts["merchant_category"].tolist() == [text]


def test_bounds_are_inclusive():
    batch = read_records([{"age": 18, "time_hours": 24.0, "account_days_in_dc_12_24m": 0}], SPEC)
    assert batch.column("age")[0] == 18.0 and batch.column("time_hours")[0] == 24.0


def test_records_of_a_read_file_come_back_as_the_same_batch(tmp_path):
    from klarna_pd.data.files import read_dataset
    from klarna_pd.synth import write_synthetic

    path = tmp_path / "d.csv"
    write_synthetic(path, rows=300, seed=4)
    batch = read_dataset(path, SPEC).batch
    records = to_records(batch)
    assert [r["uuid"] for r in records] == batch.ids.tolist()
    assert "uuid" not in to_records(batch, with_id=False)[0]
    again = read_records(records, SPEC)
    np.testing.assert_array_equal(again.numbers, batch.numbers)
    for name in SPEC.text_names:
        assert again.texts[name].tolist() == batch.texts[name].tolist()
    frame_again = Batch.from_frame(batch.to_frame(), SPEC)
    np.testing.assert_array_equal(frame_again.numbers, batch.numbers)
