import math

import numpy as np
import pytest

from klarna_pd.data.batch import Batch
from klarna_pd.data.records import read_records
from klarna_pd.model.encoder import Encoder
from klarna_pd.spec import DatasetSpec, Feature

pytestmark = pytest.mark.unit

SPEC = DatasetSpec(
    name="t",
    id="id",
    target="y",
    features=(
        Feature(name="x", kind="numeric"),
        Feature(name="code", kind="ordinal"),
        Feature(name="shop", kind="categorical"),
        Feature(name="paid", kind="boolean"),
    ),
)
SHOPS = ["a"] * 50 + ["b"] * 30 + ["rare"] * 3 + [None] * 2


def _batch() -> Batch:
    n = len(SHOPS)
    numbers = np.column_stack([np.arange(n, dtype=float), np.ones(n), np.ones(n)])
    return Batch(SPEC, numbers, {"shop": np.array(SHOPS, dtype=object)}, np.array([str(i) for i in range(n)], dtype=object))


def test_levels_by_frequency_with_rare_levels_folded_into_other():
    enc = Encoder(spec=SPEC, min_level_count=5).fit(_batch())
    assert enc.levels_ == {"shop": ["a", "b"]}
    assert enc.other_code_["shop"] == 2.0


@pytest.mark.parametrize(
    "shop, code",
    [("a", 0.0), ("b", 1.0), ("rare", 2.0), ("never seen", 2.0), (None, math.nan)],
)
def test_unknown_and_missing_levels_have_explicit_codes(shop, code):
    enc = Encoder(spec=SPEC, min_level_count=5).fit(_batch())
    row = enc.encode(read_records([{"x": 1.0, "shop": shop}], SPEC))[0]
    assert (math.isnan(row[2]) and math.isnan(code)) or row[2] == code
    assert math.isnan(row[1]) and math.isnan(row[3])  # absent keys are missing


def test_columns_keep_the_spec_order_whatever_the_kinds():
    enc = Encoder(spec=SPEC, min_level_count=5).fit(_batch())
    m = enc.encode(_batch())
    assert m.flags["C_CONTIGUOUS"] and m.dtype == np.float64
    np.testing.assert_array_equal(m[:, 0], np.arange(len(SHOPS)))  # x
    np.testing.assert_array_equal(m[:3, 2], [0.0, 0.0, 0.0])  # shop "a"
    np.testing.assert_array_equal(m[:, 3], 1.0)  # paid


def test_json_roundtrip_and_spec_check():
    enc = Encoder(spec=SPEC, min_level_count=5).fit(_batch())
    again = Encoder.from_dict(enc.to_dict(), SPEC)
    np.testing.assert_array_equal(again.encode(_batch()), enc.encode(_batch()))
    other = SPEC.model_copy(update={"features": SPEC.features[:3]})
    with pytest.raises(ValueError, match="other features"):
        Encoder.from_dict(enc.to_dict(), other)
    bad = enc.to_dict() | {"categorical_levels": {"shop": ["a", "a"]}}
    with pytest.raises(ValueError, match="distinct strings"):
        Encoder.from_dict(bad, SPEC)


def test_decode():
    enc = Encoder(spec=SPEC, min_level_count=5).fit(_batch())
    assert enc.decode(2, 1.0) == "b"
    assert enc.decode(2, 2.0) == "<other>"
    assert enc.decode(0, math.nan) is None
    assert enc.decode(0, 3.5) == 3.5
