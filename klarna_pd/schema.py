"""Applicant records as JSON: pydantic types built from the dataset spec, and clear errors.

One applicant is an object whose keys are the spec's feature names, plus the optional id column
(echoed back) and ``reasons`` (how many reason codes to return). Every feature may be absent or
``null``, which means missing. Types by feature kind:

- numeric: a JSON number; strings, booleans, NaN and Infinity are refused;
- ordinal: an integer (``2`` or ``2.0``);
- boolean: ``true``/``false`` (or the file tokens ``"TRUE"``/``"FALSE"``, ``0``/``1``);
- categorical: a string (numbers are taken as their text, ``1`` -> ``"1"``); a level never seen
  in training is scored as "other", not refused.

Validation is one pass of pydantic-core over the JSON bytes (no Python per value), which is what
lets batched scoring reach six figures of rows per second.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Annotated, Any, Optional

from pydantic import ConfigDict, Field, Strict, TypeAdapter, ValidationError
from typing_extensions import NotRequired, TypedDict

from .spec import DatasetSpec

REASONS_FIELD = "reasons"
# What pydantic makes of the tokens in a text field (NaN -> "NaN", Infinity -> "inf").
_TOKEN_TEXT = frozenset({"NaN", "nan", "inf", "-inf", "Infinity", "-Infinity"})
_SHOWN = 80


class RequestError(ValueError):
    """Input that cannot be scored: an HTTP status, a one-line message and the details.

    Args:
        status: the HTTP status that fits (400 malformed, 413 too large, 415 wrong content type,
            422 well-formed but invalid).
        message: what was expected and what arrived.
        errors: one entry per problem: ``{"loc": "applicants[3].age", "msg": "..."}``.
    """

    def __init__(self, status: int, message: str, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors or []

    def payload(self) -> dict[str, Any]:
        body: dict[str, Any] = {"status": "error", "message": self.message}
        if self.errors:
            body["errors"] = self.errors
        return body


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 4] + "...'"


_FEATURE_TYPES = {
    "numeric": Optional[Annotated[float, Strict(), Field(allow_inf_nan=False)]],
    "ordinal": Optional[int],
    "boolean": Optional[bool],
    "categorical": Optional[Annotated[str, Field(max_length=200)]],
}
_EXPECTED = {
    "numeric": "a finite number or null",
    "ordinal": "an integer code or null",
    "boolean": "true, false or null",
    "categorical": "a string or null",
}


@dataclass
class Schema:
    """The request types of one spec.

    Args:
        spec: the dataset spec.
        max_applicants: the most applicants one request may carry.
    """

    spec: DatasetSpec
    max_applicants: int = 10_000
    _kinds: dict[str, str] = field(init=False)
    _text_fields: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self._kinds = {f.name: f.kind for f in self.spec.features}
        self._text_fields = [*self.spec.names_of("categorical"), self.spec.id]

    @cached_property
    def applicant(self) -> type:
        """The TypedDict of one applicant (unknown keys refused)."""
        fields: dict[str, Any] = {
            f.name: Annotated[_FEATURE_TYPES[f.kind], Field(description=f.description or f.kind)]
            for f in self.spec.features
        }
        fields[self.spec.id] = Annotated[
            Optional[Annotated[str, Field(max_length=200)]], Field(description="optional id, echoed back")
        ]
        fields[REASONS_FIELD] = Annotated[
            Optional[Annotated[int, Field(ge=0, le=len(self.spec.features))]],
            Field(description="how many reason codes (features pushing the PD up) to return"),
        ]
        td = TypedDict("Applicant", fields, total=False)  # type: ignore[operator]
        td.__pydantic_config__ = ConfigDict(  # type: ignore[attr-defined]
            extra="forbid", coerce_numbers_to_str=True, title="Applicant"
        )
        return td

    @cached_property
    def result(self) -> type:
        """The TypedDict of one scored applicant."""
        reason = TypedDict(  # type: ignore[operator]
            "Reason",
            {
                "feature": Annotated[str, Field(description="feature name")],
                "value": Annotated[Any, Field(description="the applicant's value (a level name for categoricals)")],
                "contribution": Annotated[float, Field(description="log-odds this feature adds to the raw score")],
            },
        )
        fields: dict[str, Any] = {
            "pd": Annotated[float, Field(description="calibrated probability of default, in (0, 1)")],
            self.spec.id: NotRequired[Annotated[str, Field(description="the applicant's id, when sent")]],
            REASONS_FIELD: NotRequired[Annotated[list[reason], Field(description="top features pushing the PD up")]],
        }
        return TypedDict("PDResult", fields)  # type: ignore[operator]

    @cached_property
    def _one(self) -> TypeAdapter:
        return TypeAdapter(self.applicant)

    @cached_property
    def _many(self) -> TypeAdapter:
        return TypeAdapter(Annotated[list[self.applicant], Field(min_length=1, max_length=self.max_applicants)])

    # -- validation ---------------------------------------------------------------------------

    def validate_one_json(self, body: bytes) -> dict[str, Any]:
        """One applicant object from JSON bytes."""
        try:
            applicant = self._one.validate_json(body)
        except ValidationError as exc:
            _refuse_non_json_numbers(body)  # a NaN token or bad bytes explain the failure better
            _refuse_non_utf8(body)
            raise self.error_from(exc, prefix="") from None
        if self._maybe_token(applicant):
            _refuse_non_json_numbers(body)
        _refuse_duplicate_keys(body, len(applicant))
        return applicant

    def validate_many_json(self, body: bytes, *, key: str = "applicants") -> list[dict[str, Any]]:
        """``{"applicants": [...]}`` from JSON bytes."""
        adapter = self._request(key)
        try:
            applicants = adapter.validate_json(body)[key]
        except ValidationError as exc:
            _refuse_non_json_numbers(body)
            _refuse_non_utf8(body)
            raise self.error_from(exc, prefix="") from None
        if any(self._maybe_token(a) for a in applicants):
            _refuse_non_json_numbers(body)
        _refuse_duplicate_keys(body, 1 + sum(len(a) for a in applicants))
        return applicants

    def _maybe_token(self, applicant: dict[str, Any]) -> bool:
        """Whether a text field holds what a NaN/Infinity token becomes once coerced to text.

        Numeric fields refuse non-finite numbers themselves; text fields take numbers as their
        text, so only there can a token slip through. Scanning the body only then keeps the
        check off the hot path (it cost ~5 % of a 1,000-applicant request).
        """
        for name in self._text_fields:
            if applicant.get(name) in _TOKEN_TEXT:
                return True
        return False

    def validate_records(self, records: Sequence[Any]) -> list[dict[str, Any]]:
        """Python records (dicts), as the library's ``predict`` receives them."""
        try:
            return self._many.validate_python(list(records))
        except ValidationError as exc:
            raise self.error_from(exc, prefix="records") from None

    def _request(self, key: str) -> TypeAdapter:
        cache = self.__dict__.setdefault("_requests", {})
        if key not in cache:
            td = TypedDict("PredictRequest", {key: Annotated[list[self.applicant], Field(min_length=1, max_length=self.max_applicants)]})  # type: ignore[operator]
            td.__pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[attr-defined]
            cache[key] = TypeAdapter(td)
        return cache[key]

    # -- messages -------------------------------------------------------------------------------

    def error_from(self, exc: ValidationError, *, prefix: str) -> RequestError:
        """Turn pydantic's errors into a :class:`RequestError` that names fields and values."""
        errors = []
        status = 422
        for err in exc.errors(include_url=False):
            kind = err["type"]
            if kind in ("json_invalid", "json_type"):
                return RequestError(400, f"malformed JSON: {err['msg']}")
            loc = _loc(prefix, err["loc"])
            errors.append({"loc": loc, "msg": self._message(err)})
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        return RequestError(status, f"{first['loc']}: {first['msg']}{more}" if first["loc"] else first["msg"] + more, errors[:50])

    def _message(self, err: dict[str, Any]) -> str:
        kind, loc, value = err["type"], err["loc"], err.get("input")
        name = str(loc[-1]) if loc else ""
        if kind == "extra_forbidden":
            return f"unknown field {name!r}; expected the model's feature names, {self.spec.id!r} or {REASONS_FIELD!r}"
        if kind == "missing":
            return f"required field {name!r} is missing"
        if kind == "too_short":
            return "expected at least one applicant, got an empty list"
        if kind == "too_long":
            return f"expected at most {self.max_applicants} applicants per request, got {err.get('ctx', {}).get('actual_length', 'more')}"
        if kind in ("dict_type", "model_type", "typed_dict_type"):
            return f"expected a JSON object, got {_shown(value)}"
        if kind == "list_type":
            return f"expected a list of applicant objects, got {_shown(value)}"
        if name == REASONS_FIELD:
            return f"expected an integer from 0 to {len(self.spec.features)}, got {_shown(value)}"
        if name in self._kinds:
            expected = _EXPECTED[self._kinds[name]]
            if kind == "string_too_long":
                return f"expected {expected} of at most 200 characters, got {len(value)} characters"
            return f"expected {expected} for {name!r}, got {_shown(value)}"
        if name == self.spec.id:
            return f"expected a string id of at most 200 characters, got {_shown(value)}"
        return f"{err['msg']}, got {_shown(value)}"


def json_records(frame: Any, spec: DatasetSpec, *, with_id: bool = True) -> list[dict[str, Any]]:
    """Rows of a typed frame (as :mod:`klarna_pd.data` reads them) as the JSON objects a client
    sends: one value per feature in the type its kind takes, missing as ``None`` (null)."""
    out = []
    for row in frame.to_dict("records"):
        rec: dict[str, Any] = {}
        for f in spec.features:
            v = row[f.name]
            if v is None or (isinstance(v, float) and v != v):
                rec[f.name] = None
            elif f.kind == "categorical":
                rec[f.name] = v
            elif f.kind == "boolean":
                rec[f.name] = bool(v)
            elif f.kind == "ordinal":
                rec[f.name] = int(v)
            else:
                rec[f.name] = float(v)
        if with_id:
            rec[spec.id] = row[spec.id]
        out.append(rec)
    return out


def _refuse_non_json_numbers(body: bytes) -> None:
    """Refuse the NaN/Infinity tokens some encoders emit: they are not JSON, and pydantic would
    read them as floats (or as text in a string field)."""
    if b"NaN" not in body and b"Infinity" not in body:
        return

    def constant(token: str) -> None:
        raise RequestError(400, f"malformed JSON: {token} is not a JSON value; send null for a missing value")

    try:
        json.loads(body, parse_constant=constant)
    except (ValueError, UnicodeDecodeError) as exc:
        if isinstance(exc, RequestError):
            raise
        # Other syntax errors are reported by the validator with its own message.


def _refuse_non_utf8(body: bytes) -> None:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestError(
            400, f"malformed JSON: not UTF-8 text (byte 0x{body[exc.start]:02x} at offset {exc.start}); JSON must be UTF-8"
        ) from None


def _refuse_duplicate_keys(body: bytes, keys_parsed: int) -> None:
    """Refuse an object that names a field twice (``{"age": 20, "age": 70}``).

    The parser keeps the last value; a checkout system and this service reading the same request
    differently is worse than refusing it. Every key is followed by one colon, so when the body
    holds no more colons than the parsed objects have keys, no key can repeat: a byte count
    settles the usual case, and only bodies with colons inside strings are parsed again.
    """
    if body.count(b":") <= keys_parsed:
        return

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise RequestError(422, f"field {name!r} appears twice in one object; send each field once")
            seen.add(name)
        return {}

    try:
        json.loads(body, object_pairs_hook=unique)
    except (ValueError, UnicodeDecodeError) as exc:
        if isinstance(exc, RequestError):
            raise


def _loc(prefix: str, loc: tuple) -> str:
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out
