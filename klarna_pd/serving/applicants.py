"""Request bodies -> applicants to score: the wire checks (:mod:`.wire`), the request's own shape,
then every applicant through :func:`klarna_pd.data.records.read_records` (the kinds table), all
before anything is scored. A request with one bad applicant is refused whole, with every problem
named; it never reaches a batch shared with other requests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..data import kinds
from ..data.batch import Batch
from ..data.records import read_records
from ..errors import InputError
from ..spec import DatasetSpec
from .errors import RequestError, http_error
from .wire import parse_json, refuse_duplicate_keys

REASONS_FIELD = "reasons"
APPLICANTS_FIELD = "applicants"


@dataclass
class Applicants:
    """Validated applicants: their typed rows and how many reason codes each asked for."""

    batch: Batch
    reasons: list[int]
    error: str | None = None
    """Set when scoring this request failed inside a merged batch (the others are unaffected)."""

    def __len__(self) -> int:
        return len(self.batch)


def _invalid(loc: str, msg: str) -> RequestError:
    return RequestError(422, f"{loc}: {msg}" if loc else msg, [{"loc": loc, "msg": msg}])


def _reasons(applicants: list[Any], max_reasons: int) -> list[int]:
    out = []
    for i, a in enumerate(applicants):
        k = a.get(REASONS_FIELD) if type(a) is dict else None
        # 3.0 is the number 3 in JSON (and an "integer" to JSON Schema), as for ordinal features.
        n = int(k) if type(k) is float and k.is_integer() else k
        if n is None:
            out.append(0)
        elif type(n) is not int or not 0 <= n <= max_reasons:
            raise _invalid(f"{APPLICANTS_FIELD}[{i}].{REASONS_FIELD}",
                           f"expected an integer from 0 to {max_reasons}, got {kinds.shown_json(k)}")
        else:
            out.append(n)
    return out


def parse_predict(body: bytes, spec: DatasetSpec, *, max_applicants: int, max_reasons: int) -> Applicants:
    """``{"applicants": [{...}, ...]}`` -> applicants, or a :class:`RequestError`."""
    value = parse_json(body)
    if type(value) is not dict:
        raise _invalid("", f"expected a JSON object {{{APPLICANTS_FIELD!r}: [...]}}, got {kinds.shown_json(value)}")
    unknown = sorted(value.keys() - {APPLICANTS_FIELD})
    if unknown:
        raise _invalid(unknown[0], f"unknown field {unknown[0]!r}; the request object takes only {APPLICANTS_FIELD!r}")
    applicants = value.get(APPLICANTS_FIELD)
    if applicants is None:
        raise _invalid(APPLICANTS_FIELD, f"required field {APPLICANTS_FIELD!r} is missing")
    if type(applicants) is not list:
        raise _invalid(APPLICANTS_FIELD, f"expected a list of applicant objects, got {kinds.shown_json(applicants)}")
    if not applicants:
        raise _invalid(APPLICANTS_FIELD, "expected at least one applicant, got an empty list")
    if len(applicants) > max_applicants:
        raise _invalid(APPLICANTS_FIELD, f"expected at most {max_applicants} applicants per request, got {len(applicants)}")
    refuse_duplicate_keys(body, 1 + sum(len(a) for a in applicants if type(a) is dict))
    reasons = _reasons(applicants, max_reasons)
    try:
        batch = read_records(applicants, spec, extra_fields=(REASONS_FIELD,), prefix=APPLICANTS_FIELD)
    except InputError as exc:
        raise http_error(exc) from None
    return Applicants(batch, reasons)


def parse_legacy(body: bytes, spec: DatasetSpec) -> Applicants:
    """One applicant object, as the older service's clients send it: ``NaN`` for missing values,
    and every column of their file, the id and the target included (the target is ignored)."""
    value = parse_json(body, nan_is_missing=True)
    if type(value) is not dict:
        raise _invalid("", f"expected one applicant as a JSON object, got {kinds.shown_json(value)}")
    refuse_duplicate_keys(body, len(value))
    record = {k: None if type(v) is float and math.isnan(v) else v for k, v in value.items()}
    record.pop(spec.target, None)
    try:
        batch = read_records([record], spec)
    except InputError as exc:
        # One applicant: name the field, not "[0].field".
        raise http_error(InputError([type(p)(p.loc.removeprefix("[0]."), p.msg) for p in exc.problems])) from None
    return Applicants(batch, [0])
