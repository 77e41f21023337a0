import math

import numpy as np
import pandas as pd
import pytest

from klarna_pd.features import Encoder
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


def _frame():
    shops = ["a"] * 50 + ["b"] * 30 + ["rare"] * 3 + [None] * 2
    n = len(shops)
    return pd.DataFrame(
        {
            "id": [str(i) for i in range(n)],
            "y": np.zeros(n),
            "x": np.arange(n, dtype=float),
            "code": np.ones(n),
            "shop": pd.Series(shops, dtype=object),
            "paid": np.ones(n),
        }
    )


def test_levels_by_frequency_with_rare_levels_folded_into_other():
    enc = Encoder(spec=SPEC, min_level_count=5).fit(_frame())
    assert enc.levels_ == {"shop": ["a", "b"]}
    assert enc.other_code_["shop"] == 2.0


@pytest.mark.parametrize(
    "shop, code",
    [("a", 0.0), ("b", 1.0), ("rare", 2.0), ("never seen", 2.0), (None, math.nan)],
)
def test_unknown_and_missing_levels_have_explicit_codes(shop, code):
    enc = Encoder(spec=SPEC, min_level_count=5).fit(_frame())
    row = enc.encode_records([{"x": 1.0, "shop": shop}])[0]
    assert (math.isnan(row[2]) and math.isnan(code)) or row[2] == code
    assert math.isnan(row[1]) and math.isnan(row[3])  # absent keys are missing


def test_frame_and_records_encode_alike():
    frame = _frame()
    enc = Encoder(spec=SPEC, min_level_count=5).fit(frame)
    records = [
        {"x": r.x, "code": int(r.code), "shop": r.shop, "paid": bool(r.paid)} for r in frame.itertuples()
    ]
    np.testing.assert_array_equal(enc.transform(frame), enc.encode_records(records))


def test_json_roundtrip_and_spec_check():
    enc = Encoder(spec=SPEC, min_level_count=5).fit(_frame())
    again = Encoder.from_dict(enc.to_dict(), SPEC)
    np.testing.assert_array_equal(again.transform(_frame()), enc.transform(_frame()))
    other = SPEC.model_copy(update={"features": SPEC.features[:3]})
    with pytest.raises(ValueError, match="other features"):
        Encoder.from_dict(enc.to_dict(), other)
    bad = enc.to_dict() | {"categorical_levels": {"shop": ["a", "a"]}}
    with pytest.raises(ValueError, match="distinct strings"):
        Encoder.from_dict(bad, SPEC)


def test_decode():
    enc = Encoder(spec=SPEC, min_level_count=5).fit(_frame())
    assert enc.decode(2, 1.0) == "b"
    assert enc.decode(2, 2.0) == "<other>"
    assert enc.decode(0, math.nan) is None
    assert enc.decode(0, 3.5) == 3.5
