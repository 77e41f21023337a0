import json

import pytest

from klarna_pd.errors import SpecError
from klarna_pd.spec import klarna_spec, load_spec

from ..helpers.paths import PROFILE, ROOT

pytestmark = pytest.mark.unit


def test_klarna_spec_has_the_43_columns_in_file_order():
    spec = klarna_spec()
    assert len(spec.columns) == 43
    assert spec.id == "uuid" and spec.target == "default"
    assert spec.separator == ";" and "NA" in spec.missing_values
    if PROFILE.exists():
        order = list(json.loads(PROFILE.read_text())["columns"])
        assert spec.columns == order


@pytest.mark.parametrize(
    "name, kind",
    [
        ("account_status", "ordinal"),
        ("account_worst_status_0_3m", "ordinal"),
        ("status_max_archived_0_24_months", "ordinal"),
        ("worst_status_active_inv", "ordinal"),
        ("merchant_category", "categorical"),
        ("name_in_email", "categorical"),
        ("has_paid", "boolean"),
        ("avg_payment_span_0_12m", "numeric"),
    ],
)
def test_klarna_kinds(name, kind):
    assert klarna_spec().feature(name).kind == kind


def test_klarna_kinds_agree_with_the_profile():
    if not PROFILE.exists():
        pytest.skip("../shared/data/klarna/profile.json is not beside the checkout")
    cols = json.loads(PROFILE.read_text())["columns"]
    spec = klarna_spec()
    for f in spec.features:
        declared = cols[f.name]["type"]
        expected = {"numeric": {"numeric"}, "categorical": {"categorical", "ordinal"}, "boolean": {"boolean"}}[declared]
        assert f.kind in expected, f.name
        if f.kind == "ordinal":  # integer codes, as the profile's level names show
            assert all(k == "NA" or k.isdigit() for k in cols[f.name]["levels"]), f.name


def test_uci_spec_loads():
    spec = load_spec(ROOT / "specs" / "uci_taiwan.yaml")
    assert spec.id == "ID" and spec.target == "Y" and spec.separator == ","
    assert spec.feature_names == [f"X{i}" for i in range(1, 24)]
    assert spec.feature("X6").kind == "ordinal"


def test_spec_json_roundtrip():
    spec = klarna_spec()
    assert type(spec).from_json(spec.to_json()) == spec


BASE = "name: t\nid: id\ntarget: y\nfeatures:\n"


@pytest.mark.parametrize(
    "text, needle",
    [
        (BASE + "  - {name: a, kind: numeric}\n  - {name: a, kind: numeric}\n", "unique"),
        (BASE + "  - {name: a, kind: text}\n", "features.0.kind"),
        (BASE + "  - {name: reasons, kind: numeric}\n", "reserved"),
        (BASE + "  - {name: id, kind: numeric}\n", "both a feature and the id"),
        ("name: t\nid: y\ntarget: y\nfeatures:\n  - {name: a, kind: numeric}\n", "must differ"),
        (BASE + "  - {name: a, kind: numeric, colour: red}\n", "colour"),
        ("name: t\nid: id\ntarget: y\nseparator: ';;'\nfeatures:\n  - {name: a, kind: numeric}\n", "separator"),
        ("name: t\nid: id\nfeatures:\n  - {name: a, kind: numeric}\n", "target"),
        ("- just\n- a list\n", "mapping"),
        ("name: [unclosed\n", "not valid YAML"),
        # Each passed the spec and then aborted training (a C++ fatal error, exit 134) or raised a traceback.
        (BASE + "  - {name: shop, kind: categorical, monotone: 1}\n",
         "feature 'shop': monotone applies to features with an order (numeric, ordinal, boolean), not to a categorical"),
        (BASE + "  - {name: 'amount [EUR]', kind: numeric}\n",
         "feature 'amount [EUR]': LightGBM cannot store a feature name with [ ] in it"),
        (BASE + "  - {name: 'debt: income', kind: numeric}\n", "with : in it"),
        # YAML types unquoted tokens: the message said only "Input should be a valid string".
        ("name: t\nid: id\ntarget: y\ntrue_values: [Y, yes]\nfeatures:\n  - {name: a, kind: boolean}\n",
         "true_values.1: Input should be a valid string (YAML read it as the bool True: unquoted, yes/no/on/off/true/"
         "false are booleans"),
        ("name: t\nid: id\ntarget: y\nmissing_values: [NA, -999]\nfeatures:\n  - {name: a, kind: numeric}\n",
         "YAML read it as the int -999"),
        ("name: t\nid: id\ntarget: y\nseparator: \\t\nfeatures:\n  - {name: a, kind: numeric}\n",
         'a tab is "\\t" in double quotes'),
    ],
)
def test_bad_specs_are_refused_with_the_reason(tmp_path, text, needle):
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    with pytest.raises(SpecError, match=None) as err:
        load_spec(path)
    assert needle in str(err.value)
    assert str(path) in str(err.value)
    assert "Tuple should have at least 1 item" not in str(err.value)  # pydantic's echo of a failed feature


def test_missing_spec_file(tmp_path):
    with pytest.raises(SpecError, match="cannot read spec file"):
        load_spec(tmp_path / "nope.yaml")


def test_what_the_readers_derive_from_a_spec_goes_with_the_spec():
    """Number rules and record plans are made once per spec object and dropped with it (they were
    kept for good, with their spec: a Spark worker unpickles a new spec with every task)."""
    import gc
    import weakref

    from klarna_pd.data import kinds
    from klarna_pd.data.records import read_records

    spec = klarna_spec().model_copy()
    rules = kinds.number_rules(spec)
    assert kinds.number_rules(spec) is rules
    read_records([{"uuid": "a", "age": 30}], spec)
    gone = weakref.ref(spec)
    del spec, rules
    gc.collect()
    assert gone() is None
    assert kinds.number_rules(klarna_spec()) is kinds.number_rules(klarna_spec())  # the loaded spec is cached


def test_only_ascii_numbers_match_by_value():
    """Python's float() reads other scripts' digits and 1_0; Arrow, which reads every file, does not."""
    from klarna_pd.spec import numbers_in

    texts = ["-1", "365243.0", "1e3", "\u0663", "1_0", "NA", "nan", "inf"]
    assert numbers_in(texts) == [-1.0, 365243.0, 1000.0]
