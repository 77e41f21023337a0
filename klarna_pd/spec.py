"""The dataset spec: what a PD dataset looks like, independent of any one file.

A spec names the id and target columns, the file's separator and missing-value tokens, and
the kind of every feature. Everything downstream (loading, encoding, training, the service's
request schema, batch scoring) is driven by it; only the built-in Klarna spec and the tests
about it name Klarna columns.

Feature kinds:

- ``numeric``: a real number.
- ``ordinal``: a small integer code whose order means something (e.g. a worst payment status
  1 < 2 < 3 < 4). Modelled as a number, so trees split on thresholds, monotone constraints can
  apply and a code never seen in training still falls on the right side of each threshold.
- ``categorical``: a label without order (e.g. a merchant category). Encoded with learned levels;
  rare and unseen levels share one "other" code.
- ``boolean``: true/false, read from the spec's true/false tokens.

A numeric or ordinal feature may declare ``min`` and ``max``: values outside are refused
everywhere (files, JSON, Arrow), with the range in the message. How each kind is read from every
source is written once, in :mod:`klarna_pd.data.kinds`.
"""

from __future__ import annotations

import json
import math
import weakref
from collections.abc import Callable, Hashable, Sequence
from functools import cached_property, lru_cache, partial
from importlib import resources
from pathlib import Path
from typing import Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import SpecError

T = TypeVar("T")

FeatureKind = Literal["numeric", "ordinal", "categorical", "boolean"]

#: Field names the service reserves in an applicant object; a feature may not use them.
RESERVED_NAMES = frozenset({"reasons"})
#: Characters LightGBM refuses in a feature name (its model file is partly JSON).
LIGHTGBM_REFUSED = frozenset('",:[]{}')


class Feature(BaseModel):
    """One model input column."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    kind: FeatureKind
    monotone: Literal[-1, 0, 1] = 0
    """+1: the PD may only rise with the value; -1: only fall; 0: free."""
    description: str = ""
    missing_means: str = ""
    """What a missing value says about the applicant (e.g. "no payment history"), for reason codes."""
    min: float | None = None
    """Smallest valid value (numeric and ordinal only); smaller values are refused, not clipped."""
    max: float | None = None
    """Largest valid value (numeric and ordinal only)."""
    missing_values: tuple[str, ...] | None = None
    """This feature's missing tokens, instead of the spec's ``missing_values``: a sentinel such as
    ``["NA", "", "365243"]`` for a day count, or ``[""]`` where ``NA`` is a level (Namibia)."""

    @model_validator(mode="after")
    def _check_range(self) -> Feature:
        if self.monotone and self.kind == "categorical":
            # LightGBM aborts the whole process (a C++ fatal error) on such a constraint.
            raise ValueError(f"feature {self.name!r}: monotone applies to features with an order (numeric, "
                             "ordinal, boolean), not to a categorical one")
        refused = sorted(LIGHTGBM_REFUSED.union("\n\r").intersection(self.name))
        if refused:
            shown = " ".join(repr(c)[1:-1] for c in refused)
            raise ValueError(f"feature {self.name!r}: LightGBM cannot store a feature name with {shown} in "
                             f"it (any of {' '.join(sorted(LIGHTGBM_REFUSED))}, or a line break); rename the "
                             "column in the file's header and the spec")
        if (self.min is not None or self.max is not None) and self.kind not in ("numeric", "ordinal"):
            raise ValueError(f"feature {self.name!r}: min/max apply to numeric and ordinal features, not {self.kind}")
        for bound in (self.min, self.max):
            if bound is not None and not math.isfinite(bound):
                raise ValueError(f"feature {self.name!r}: min/max must be finite numbers, got {bound}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"feature {self.name!r}: min ({self.min:g}) is above max ({self.max:g})")
        return self


class DatasetSpec(BaseModel):
    """A declarative description of a PD dataset."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    id: str = Field(min_length=1)
    """Column that identifies a row (an applicant or purchase); unique per file."""
    target: str = Field(min_length=1)
    """Column holding 1 for default, 0 for no default, missing for rows to score (or the texts of
    ``default_values`` and ``repaid_values``)."""
    features: tuple[Feature, ...] = Field(min_length=1)
    separator: str = Field(default=",", min_length=1, max_length=1)
    missing_values: tuple[str, ...] = ("NA", "")
    true_values: tuple[str, ...] = ("TRUE", "True", "true", "1")
    false_values: tuple[str, ...] = ("FALSE", "False", "false", "0")
    default_values: tuple[str, ...] | None = None
    """The target's texts that mean default (``Charged Off``, ``bad``, German credit's ``2``), given
    with ``repaid_values``: the target is then read as text, these for 1 and those for 0."""
    repaid_values: tuple[str, ...] | None = None
    """The target's texts that mean no default (``Fully Paid``, ``good``, ``1``)."""
    description: str = ""

    @model_validator(mode="after")
    def _check_names(self) -> DatasetSpec:
        names = [f.name for f in self.features]
        seen: set[str] = set()
        dupes = sorted({n for n in names if n in seen or seen.add(n)})
        if dupes:
            raise ValueError(f"feature names must be unique, repeated: {dupes}")
        by_lightgbm: dict[str, str] = {}
        for name in names:  # LightGBM writes a space in a feature name as _
            other = by_lightgbm.setdefault(name.replace(" ", "_"), name)
            if other != name:
                raise ValueError(f"features {other!r} and {name!r} are one name to LightGBM, which writes "
                                 "spaces as _: rename one")
        for col in (self.id, self.target):
            if col in seen:
                raise ValueError(f"column {col!r} is both a feature and the id/target column")
        if self.id == self.target:
            raise ValueError(f"id and target must differ, both are {self.id!r}")
        reserved = sorted(RESERVED_NAMES.intersection(names))
        if reserved:
            raise ValueError(f"feature names {reserved} are reserved by the service's API")
        _check_texts_apart("true_values", self.true_values, "false_values", self.false_values)
        for f in self.features:
            self._check_feature_missing(f)
        if (self.default_values is None) != (self.repaid_values is None):
            raise ValueError("default_values and repaid_values go together: the target's texts for "
                             "default and for no default")
        if self.default_values is not None:
            texts = {"default_values": self.default_values, "repaid_values": self.repaid_values,
                     "missing_values": self.missing_values}
            for key in ("default_values", "repaid_values"):
                if not texts[key]:
                    raise ValueError(f"{key} is empty: name at least one text of the target")
            _check_texts_apart("default_values", self.default_values, "repaid_values", self.repaid_values)
            for key in ("default_values", "repaid_values"):
                both = _shared(self.missing_values, texts[key])
                if both:
                    raise ValueError(f"texts {both} are in both {key} and missing_values{_BY_VALUE}")
        elif both := _shared(self.missing_values, (), numbers=(0.0, 1.0)):
            raise ValueError(f"missing_values {both} would make the target's 0 or 1 missing{_BY_VALUE}")
        return self

    def _check_feature_missing(self, f: Feature) -> None:
        """A boolean's missing tokens are none of its values; an ordinal's numbers are codes."""
        missing = self.missing_of(f)
        key = "missing_values" if f.missing_values is None else f"the missing_values of feature {f.name!r}"
        if f.kind == "boolean":
            both = _shared(missing, (*self.true_values, *self.false_values), numbers=(0.0, 1.0))
            if both:
                raise ValueError(f"{key} {both} would also be values of the boolean {f.name!r} (its true and "
                                 f"false texts, 1 and 0){_BY_VALUE}")
        elif f.kind == "ordinal":
            odd = [t for t in missing for x in numbers_in([t]) if x != int(x) or abs(x) > 2.0**53]
            if odd:
                raise ValueError(f"{key} {odd} cannot be codes of the ordinal {f.name!r} (integers of at "
                                 "most 2**53): as missing tokens they would hide the codes beside them")

    def missing_of(self, feature: Feature) -> tuple[str, ...]:
        """A feature's missing tokens: its own ``missing_values``, else the spec's."""
        return self.missing_values if feature.missing_values is None else feature.missing_values

    @property
    def target_texts(self) -> bool:
        """Whether the target is read as texts (``default_values``/``repaid_values``), not 0 and 1."""
        return self.default_values is not None

    # Derived lists are cached on the (immutable) spec: the request path reads them per request.
    def model_copy(self, *, update=None, deep: bool = False) -> DatasetSpec:
        """A copy (pydantic's), without the cached lists of the original (they may not hold for it)."""
        copy = super().model_copy(update=update, deep=deep)
        for name in _CACHED:
            copy.__dict__.pop(name, None)
        return copy

    @cached_property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @cached_property
    def columns(self) -> list[str]:
        """Every column a data file must have: id, target, then the features."""
        return [self.id, self.target, *self.feature_names]

    @cached_property
    def number_names(self) -> list[str]:
        """Features read as numbers (numeric, ordinal, boolean), in spec order."""
        return [f.name for f in self.features if f.kind != "categorical"]

    @cached_property
    def text_names(self) -> list[str]:
        """Features read as text (categorical), in spec order."""
        return [f.name for f in self.features if f.kind == "categorical"]

    def derived(self, key: Hashable, make: Callable[[], T]) -> T:
        """``make()``, worked out once per spec object and forgotten when the spec goes: what the
        data layer derives from a spec on every request (``kinds.number_rules``, the record
        readers' plans). Per object, not per value: hashing a spec of 41 features costs more than
        checking one applicant. Kept beside the spec, not in it: pydantic compares and pickles a
        model's ``__dict__``."""
        entry = _DERIVED.get(id(self))
        if entry is None or entry[0]() is not self:
            entry = _DERIVED[id(self)] = (weakref.ref(self, partial(_forget, id(self))), {})
        cache = entry[1]
        if key not in cache:
            cache[key] = make()
        return cache[key]

    def names_of(self, *kinds: str) -> list[str]:
        return [f.name for f in self.features if f.kind in kinds]

    def feature(self, name: str) -> Feature:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(name)

    def to_dict(self) -> dict:
        """The spec as plain JSON types; unset optional fields (a feature's min/max) are left out."""
        return self.model_dump(mode="json", exclude_none=True)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> DatasetSpec:
        return _validate(json.loads(text), "<json>")


_CACHED = ("feature_names", "columns", "number_names", "text_names")
# DatasetSpec.derived: id(spec) -> (weak reference to the spec, its derived values).
_DERIVED: dict[int, tuple[weakref.ref, dict]] = {}


def numbers_in(texts: Sequence[str]) -> list[float]:
    """The finite numbers among ``texts`` (``"1"``, ``"2.0"``), as numbers: the values such a
    listed text also matches (booleans' and the target's texts, :mod:`klarna_pd.data.kinds`)."""
    out = []
    for text in texts:
        # Python's float() reads 1_0 as 10 and other scripts' digits, Arrow's (every reader's) does not
        if "_" in text or not text.isascii():
            continue
        try:
            out.append(float(text))
        except ValueError:
            pass
    return [x for x in out if math.isfinite(x)]


_BY_VALUE = " (texts that are numbers also match by value: 1 and 1.0 are one)"


def _shared(texts: Sequence[str], others: Sequence[str], numbers: Sequence[float] = ()) -> list[str]:
    """The texts of ``texts`` that are among ``others`` as texts, or as numbers (or are ``numbers``)."""
    values = set(numbers_in(others)).union(numbers)
    return sorted(t for t in texts if t in others or values.intersection(numbers_in([t])))


def _check_texts_apart(a: str, ones: Sequence[str], b: str, zeros: Sequence[str]) -> None:
    """Two lists of texts read as 1 and 0 (a boolean's, the target's): read without the spaces
    around them and numbers by value, so such spaces never match and no value may be in both."""
    for key, texts in ((a, ones), (b, zeros)):
        spaced = [t for t in texts if t != t.strip(" \t")]
        if spaced:
            raise ValueError(f"{key} {spaced}: spaces around a text never match, the texts are read "
                             "without them")
    both = sorted(set(ones) & set(zeros))
    if both:
        raise ValueError(f"texts {both} are in both {a} and {b}")
    for one in ones:
        for zero in zeros:
            if numbers_in([one]) and numbers_in([one]) == numbers_in([zero]):
                raise ValueError(f"{a} {one!r} and {b} {zero!r} are one number, and texts that are numbers "
                                 "also match by value")


def _forget(key: int, ref: weakref.ref) -> None:
    # Only this spec's entry: its id may since name a newer spec's.
    if _DERIVED.get(key, (None,))[0] is ref:
        del _DERIVED[key]


def _validate(raw: object, source: str) -> DatasetSpec:
    if not isinstance(raw, dict):
        raise SpecError(f"{source}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        return DatasetSpec.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        if any(err["loc"][:1] == ("features",) and len(err["loc"]) > 1 for err in errors):
            # pydantic adds "features: Tuple should have at least 1 item" when a feature failed: noise.
            errors = [err for err in errors if err["loc"] != ("features",)]
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<spec>'}: {err['msg']}{_yaml_hint(err)}" for err in errors
        )
        raise SpecError(f"{source}: invalid dataset spec: {problems}") from None


def _yaml_hint(err: dict) -> str:
    """Why a text the user wrote may not have arrived as text: YAML types unquoted scalars."""
    value = err.get("input")
    if err.get("type") == "string_type" and isinstance(value, bool | int | float):
        return (f" (YAML read it as the {type(value).__name__} {value!r}: unquoted, yes/no/on/off/true/false are "
                "booleans and digits are numbers; quote the token in the spec: 'yes', '-999')")
    if err.get("loc") == ("separator",) and value == "\\t":
        return ' (a tab is "\\t" in double quotes: unquoted, YAML keeps the backslash and the t)'
    return ""


def load_spec(path: str | Path) -> DatasetSpec:
    """Read a YAML (or JSON) spec file.

    Args:
        path: the spec file.

    Returns:
        The validated spec.

    Raises:
        SpecError: the file is missing, not YAML, or not a valid spec.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"{path}: cannot read spec file: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise SpecError(f"{path}: spec file is not UTF-8 text") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML: {exc}") from None
    return _validate(raw, str(path))


@lru_cache(maxsize=1)
def klarna_spec() -> DatasetSpec:
    """The built-in spec of the Klarna case-study file ``dataset.csv``."""
    text = resources.files("klarna_pd.specs").joinpath("klarna.yaml").read_text("utf-8")
    return _validate(yaml.safe_load(text), "klarna_pd/specs/klarna.yaml")


def resolve_spec(path: str | Path | None) -> DatasetSpec:
    """The spec at ``path``, or the built-in Klarna spec when ``path`` is None."""
    return klarna_spec() if path is None else load_spec(path)
