"""The table of feature kinds: how a value from any source becomes the model's number.

Every reader calls these functions: CSV and Parquet files (training, batch scoring), JSON requests,
Arrow request bodies and Spark. A rule written here is the rule everywhere.

=============  ==========================  ===========================  =========================
kind           text field (CSV, text       JSON value                   Arrow value
               columns of Parquet/Spark)
=============  ==========================  ===========================  =========================
numeric        a decimal number            a number                     integer, float, decimal
               (``12``, ``-0.5``, ``1e3``;
               spaces and tabs around it
               ignored)
ordinal        an integer code (``2``,     an integral number           integer, integral float
               ``2.0``; spaces as above)   (``2``, ``2.0``)
boolean        one of the spec's true and  ``true``, ``false``          boolean, number 0 or 1
               false tokens (spaces as
               above; a token that is a
               number also by value:
               ``1.0`` for ``1``)
categorical    the text itself             a string, or an integer      string, integer, integral
                                           (taken as its digits)        float (as its digits)
=============  ==========================  ===========================  =========================

Missing, in every kind: an absent field, JSON ``null``, an Arrow null, and any text equal to one of
the feature's missing tokens (its own ``missing_values``, else the spec's: ``NA`` and the empty text
for Klarna) - in a CSV field and in a JSON string alike. A missing token that is a number is missing
by value in a number feature, whatever the source (``365243`` as the text ``365243.0``, a JSON
number, an Arrow integer: :meth:`NumberRules.blank`); a categorical's integer is its digits, so
``-1`` matches the token ``-1`` there too. NaN is never a value: the text ``nan`` and a NaN in an
Arrow float column (that is not null) are refused, as the ``NaN`` token is in JSON. JSON never
takes text for a number (``"2"`` is refused for ``age``): a JSON client sends numbers as numbers,
and a file is text by nature.

Then one set of value checks, whatever the source (:class:`NumberRules` and :func:`text_too_long`):
numbers must be finite; ordinal codes integral and exactly representable (``|code| <= 2**53``);
booleans 0 or 1; a feature's ``min``/``max`` from the spec; texts (levels and ids) at most
:data:`MAX_TEXT` characters.

Model numbers: numeric and ordinal values as they are, booleans 1.0/0.0, missing NaN; categorical
texts become codes in :class:`klarna_pd.model.encoder.Encoder`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..spec import DatasetSpec, Feature, numbers_in

if TYPE_CHECKING:
    import pyarrow as pa

MAX_TEXT = 200
"""Longest category level or id, in characters."""
MAX_CODE = 2.0**53
"""Largest ordinal code magnitude: beyond it float64 cannot tell neighbouring codes apart."""
_SHOWN = 60

#: Python types a JSON value of each kind may have (``None`` is always missing). ``bool`` is its
#: own type here, never a number, as in JSON.
JSON_TYPES: dict[str, frozenset[type]] = {
    "numeric": frozenset({int, float}),
    "ordinal": frozenset({int, float}),
    "boolean": frozenset({bool}),
    "categorical": frozenset({str, int}),
}

#: JSON schema of each kind's value (for OpenAPI documents); null is always allowed.
JSON_SCHEMA: dict[str, dict[str, Any]] = {
    "numeric": {"type": "number"},
    "ordinal": {"type": "integer"},
    "boolean": {"type": "boolean"},
    "categorical": {"type": ["string", "integer"], "maxLength": MAX_TEXT},
}


def shown(value: Any) -> str:
    """A value as an error message quotes it, cut to a readable length."""
    if isinstance(value, float) and math.isfinite(value) and value == int(value) and abs(value) < 1e16:
        text = str(int(value))
    else:
        text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 4] + "...'"


def shown_json(value: Any) -> str:
    """A value that arrived as JSON, quoted in JSON (``"abc"``, ``true``, ``[{"age": 34}]``), cut short."""
    if isinstance(value, float) and math.isinf(value):
        # 1e309 arrives as inf (the legacy endpoint also reads an Infinity token so): the digits are gone.
        text = f"{value!r} (Infinity, or a number beyond the 64-bit float range)"
    elif isinstance(value, float) and math.isnan(value):
        text = "NaN"
    else:
        try:
            text = json.dumps(value, ensure_ascii=False)
        except (TypeError, ValueError):
            text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


def _number(x: float) -> str:
    return f"{x:g}"


def expected(feature: Feature, spec: DatasetSpec, *, source: str = "text") -> str:
    """What a value of ``feature`` must be, as error messages say it.

    Args:
        feature: the feature.
        spec: its spec (for the boolean tokens).
        source: ``"text"`` (files), ``"json"`` or ``"arrow"``.
    """
    kind = feature.kind
    if kind == "boolean":
        text = "true or false" if source != "text" else f"one of {list(spec.true_values + spec.false_values)}"
    elif kind == "categorical":
        text = f"a text of at most {MAX_TEXT} characters" + (" or an integer" if source != "text" else "")
    else:
        text = "a finite number" if kind == "numeric" else "an integer code"
        if feature.min is not None and feature.max is not None:
            text += f" from {_number(feature.min)} to {_number(feature.max)}"
        elif feature.min is not None:
            text += f" of at least {_number(feature.min)}"
        elif feature.max is not None:
            text += f" of at most {_number(feature.max)}"
    return text + (" or null" if source == "json" else "")


def id_expected(*, source: str = "text") -> str:
    integer = f" or an integer of at most {MAX_TEXT} digits" if source == "json" else ""
    return f"a text id of at most {MAX_TEXT} characters{integer}"


# ---------------------------------------------------------------------------------------------
# Value checks, one vectorised pass over every number column


@dataclass(frozen=True)
class NumberRules:
    """The value checks of a spec's number features (numeric, ordinal, boolean), as arrays over
    the columns of a number block (rows x ``spec.number_names``) so that one pass checks them all."""

    features: tuple[Feature, ...]
    lo: np.ndarray
    hi: np.ndarray
    integral: np.ndarray
    sentinels: tuple[tuple[np.ndarray, np.ndarray], ...]
    """(columns, numbers): the numbers among the features' missing tokens, missing by value whatever
    the source (``365243`` as the text ``365243.0``, a JSON number, an Arrow integer); columns with
    the same numbers (the spec's tokens) in one group, checked in one pass."""

    def blank(self, block: np.ndarray) -> None:
        """Set the sentinel numbers of ``block`` to NaN, in place (before :meth:`bad`: a sentinel
        may lie outside the feature's range)."""
        for columns, numbers in self.sentinels:
            part = block[:, columns]
            hit = part == numbers[0]
            for x in numbers[1:]:
                hit |= part == x
            if hit.any():
                part[hit] = np.nan
                block[:, columns] = part

    def bad(self, block: np.ndarray) -> np.ndarray:
        """Mask of values that break a rule (missing NaN never does: NaN compares false)."""
        out = np.isinf(block)
        out |= block < self.lo
        out |= block > self.hi
        out |= self.integral & (np.floor(block) != block) & (block == block)
        return out


def number_rules(spec: DatasetSpec) -> NumberRules:
    """The :class:`NumberRules` of a spec, made once per spec object (kept on it)."""
    return spec.derived("number_rules", lambda: _make_rules(spec))


def _make_rules(spec: DatasetSpec) -> NumberRules:
    feats = tuple(f for f in spec.features if f.kind != "categorical")
    lo, hi, integral = [], [], []
    groups: dict[tuple[float, ...], list[int]] = {}
    for j, f in enumerate(feats):
        if numbers := tuple(sorted(set(numbers_in(spec.missing_of(f))))):
            groups.setdefault(numbers, []).append(j)
    sentinels = tuple((np.array(cols), np.array(numbers)) for numbers, cols in groups.items())
    for f in feats:
        if f.kind == "boolean":
            lo.append(0.0), hi.append(1.0), integral.append(True)
            continue
        default = MAX_CODE if f.kind == "ordinal" else math.inf
        lo.append(-default if f.min is None else max(f.min, -default))
        hi.append(default if f.max is None else min(f.max, default))
        integral.append(f.kind == "ordinal")
    return NumberRules(feats, np.array(lo), np.array(hi), np.array(integral, dtype=bool), sentinels)


def text_too_long(values: Sequence[Any]) -> np.ndarray:
    """Mask of texts longer than :data:`MAX_TEXT` (None never is)."""
    return np.fromiter((v is not None and len(v) > MAX_TEXT for v in values), dtype=bool, count=len(values))


# ---------------------------------------------------------------------------------------------
# Arrow (and text) columns -> numbers or texts. pyarrow is imported only here, so that a server
# that never reads files or Arrow bodies never loads it.


def _is_text(t: pa.DataType) -> bool:
    import pyarrow as pa

    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _missing_to_null(arr: pa.Array, tokens: Sequence[str]) -> pa.Array:
    """Texts equal to a missing token become nulls (pyarrow's CSV reader may have done it already)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    is_token = pc.is_in(arr, value_set=pa.array(list(tokens), type=arr.type))
    if not pc.any(is_token).as_py():
        return arr
    return pc.if_else(is_token, pa.scalar(None, type=arr.type), arr)


def _text_numbers(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Number texts as float64, with spaces and tabs around them ignored: pyarrow's typed CSV
    columns (the fast path of every file) ignore them, so the text path must too, or a value's fate
    would hang on whether some other row of its block was bad."""
    import pyarrow.compute as pc

    return _cast_float(pc.utf8_trim(arr, characters=" \t"))


def _cast_float(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Texts cast to float64 by Arrow's own parser, and a mask of those it cannot parse (or that
    parse to NaN).

    A failing cast is split in halves until the bad values are found: a few casts per bad value,
    and exactly the parser that the CSV reader's typed columns use.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        values = pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False)
        # "nan" parses, but a file's missing values are its tokens: a NaN text is not a number.
        return values, np.isnan(values) & arr.is_valid().to_numpy(zero_copy_only=False)
    except pa.ArrowInvalid:
        if len(arr) == 1:
            return np.array([np.nan]), np.array([True])
    half = len(arr) // 2
    a, bad_a = _cast_float(arr.slice(0, half))
    b, bad_b = _cast_float(arr.slice(half))
    return np.concatenate([a, b]), np.concatenate([bad_a, bad_b])


def arrow_numbers(arr: pa.Array, feature: Feature, spec: DatasetSpec) -> tuple[np.ndarray, np.ndarray]:
    """A column of a number feature as float64 (NaN missing), and a mask of values that cannot be read.

    Raises:
        TypeError: the column's Arrow type cannot hold this kind at all (e.g. a list column).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    t = arr.type
    if pa.types.is_dictionary(t):
        return arrow_numbers(arr.cast(t.value_type), feature, spec)
    if pa.types.is_null(t):
        return np.full(len(arr), np.nan), np.zeros(len(arr), dtype=bool)
    if _is_text(t):
        missing = spec.missing_of(feature)
        arr = _missing_to_null(arr, missing)
        if feature.kind == "boolean":
            return _flags_from_texts(arr, spec.true_values, spec.false_values, blank=numbers_in(missing))
        return _text_numbers(arr)
    if pa.types.is_boolean(t) and feature.kind != "boolean":
        raise TypeError(t)  # true is not a number, as in JSON
    if pa.types.is_boolean(t) or pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        values = pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False)
        # Missing is null; a NaN that is not null is a value that is not a number (as "nan" in a
        # CSV field, which pyarrow's typed CSV parser turns into exactly this).
        return values, np.isnan(values) & arr.is_valid().to_numpy(zero_copy_only=False)
    raise TypeError(t)


def arrow_texts(
    arr: pa.Array, spec: DatasetSpec, feature: Feature | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """A text column (a categorical ``feature``, or the id) as an object array of str or None, and
    a mask of values that cannot be texts (non-integral numbers) or are too long. Integers are
    their digits, then missing if those are a missing token (as in a CSV field or JSON).

    Raises:
        TypeError: the column's Arrow type cannot hold texts (e.g. a list column).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    t = arr.type
    bad = np.zeros(len(arr), dtype=bool)
    if pa.types.is_dictionary(t):
        arr = arr.cast(t.value_type)
        t = arr.type
    if pa.types.is_null(t):
        arr = arr.cast(pa.string())
    elif pa.types.is_floating(t):
        # Parquet writers store integer codes with missing values as floats: 1.0 -> "1".
        as_int = pc.cast(arr, pa.int64(), safe=False)
        # Unsafe both ways: NaN, infinities and values beyond int64 come back unequal (refused), not
        # as Arrow's "Integer value ... not in range" traceback.
        back = pc.cast(as_int, t, safe=False)
        integral = pc.fill_null(pc.equal(back, arr), True).to_numpy(zero_copy_only=False)
        bad = ~integral
        arr = pc.cast(pc.if_else(pa.array(integral), as_int, pa.scalar(None, pa.int64())), pa.string())
    elif pa.types.is_integer(t):
        arr = pc.cast(arr, pa.string())
    elif not _is_text(t):
        raise TypeError(t)
    arr = _missing_to_null(arr, spec.missing_values if feature is None else spec.missing_of(feature))
    if len(arr) and pc.max(pc.utf8_length(arr)).as_py() is not None:
        bad |= pc.fill_null(pc.greater(pc.utf8_length(arr), MAX_TEXT), False).to_numpy(zero_copy_only=False)
    return arr.to_numpy(zero_copy_only=False).astype(object), bad


def arrow_target(arr: pa.Array, spec: DatasetSpec) -> tuple[np.ndarray, np.ndarray]:
    """The target column as float64 1.0 / 0.0 / NaN, and a mask of values that are none of them."""
    import pyarrow as pa

    if spec.target_texts and not pa.types.is_null(arr.type):
        return _target_from_texts(arr if _is_text(arr.type) else arr.cast(pa.string()), spec)
    if _is_text(arr.type):
        arr = _missing_to_null(arr, spec.missing_values)
        values, bad = _text_numbers(arr)
    elif pa.types.is_null(arr.type):
        return np.full(len(arr), np.nan), np.zeros(len(arr), dtype=bool)
    else:
        values, bad = arrow_numbers(arr, Feature(name=spec.target, kind="boolean"), spec)
    if blank := numbers_in(spec.missing_values):  # missing tokens that are numbers, by value
        hit = np.isin(values, blank)
        values, bad = np.where(hit, np.nan, values), bad & ~hit
    with np.errstate(invalid="ignore"):
        bad |= ~np.isnan(values) & (values != 0.0) & (values != 1.0)
    return values, bad


def _target_from_texts(arr: pa.Array, spec: DatasetSpec) -> tuple[np.ndarray, np.ndarray]:
    """The spec's default and repaid texts as 1.0 and 0.0, missing ones NaN; a mask of texts that
    are none of them."""
    return _flags_from_texts(_missing_to_null(arr, spec.missing_values), spec.default_values,
                             spec.repaid_values, blank=numbers_in(spec.missing_values))


def _flags_from_texts(
    arr: pa.Array, ones: Sequence[str], zeros: Sequence[str], *, blank: Sequence[float] = ()
) -> tuple[np.ndarray, np.ndarray]:
    """Texts (missing tokens already null) as 1.0 for one of ``ones``, 0.0 for one of ``zeros``,
    NaN for null and for the numbers ``blank`` (missing tokens by value); and a mask of texts that
    are none of them. Spaces and tabs around a text are ignored, as around numbers, and listed
    texts that are numbers also match by value: pandas writes a boolean column with a gap as
    ``1.0`` and ``0.0``, German credit's target 2 as ``2.0``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = pc.utf8_trim(arr, characters=" \t")
    is_one = pc.is_in(arr, value_set=pa.array(list(ones), type=arr.type)).to_numpy(zero_copy_only=False)
    is_zero = pc.is_in(arr, value_set=pa.array(list(zeros), type=arr.type)).to_numpy(zero_copy_only=False)
    present = arr.is_valid().to_numpy(zero_copy_only=False)
    listed = [numbers_in(ones), numbers_in(zeros)]
    if (any(listed) or len(blank)) and not (is_one | is_zero)[present].all():
        numbers, unreadable = _text_numbers(arr)
        is_one |= ~unreadable & np.isin(numbers, listed[0])
        is_zero |= ~unreadable & np.isin(numbers, listed[1])
        present &= unreadable | ~np.isin(numbers, blank)
    values = np.where(is_one, 1.0, np.where(is_zero, 0.0, np.nan))
    return values, present & ~(is_one | is_zero)


def target_expected(spec: DatasetSpec) -> str:
    missing = f"missing ({'/'.join(repr(m) for m in spec.missing_values)})"
    if spec.target_texts:
        return (f"expected one of {list(spec.default_values)} (default), {list(spec.repaid_values)} (repaid) "
                f"or {missing}")
    return f"expected 0, 1 or {missing}"
