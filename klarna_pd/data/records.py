"""JSON records (applicant objects, as parsed from a request) -> a typed batch, by :mod:`.kinds`.

A record is a dict of feature name -> value; absent, ``None`` and a text equal to a missing token
are missing. The work is done in a few flat passes, whatever the number of records: one list of
every number value of every record, one check of the set of their types against the kinds' JSON
types, one array, one vectorised value check (:class:`~.kinds.NumberRules`). Only when a pass fails
are the values looked at one by one, to name the culprits. One applicant costs tens of
microseconds, a thousand a few milliseconds.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError, Problem
from ..spec import DatasetSpec, Feature
from . import kinds
from .batch import Batch

_MAX_PROBLEMS = 50
_NONE = type(None)


@dataclass(frozen=True)
class _Plan:
    """What reading records of one spec needs, worked out once per spec."""

    allowed: frozenset[str]
    numbers: tuple[Feature, ...]  # numeric and ordinal: JSON numbers
    booleans: tuple[Feature, ...]
    number_ok: frozenset[type]
    boolean_ok: frozenset[type]
    order: np.ndarray  # columns of [numbers..., booleans...] in spec.number_names order
    texts: tuple[Feature, ...]
    missing: tuple[frozenset[str], ...]  # each text feature's missing tokens


def _plan(spec: DatasetSpec, extra_fields: tuple[str, ...]) -> _Plan:
    return spec.derived(("records_plan", extra_fields), lambda: _make_plan(spec, extra_fields))


def _make_plan(spec: DatasetSpec, extra_fields: tuple[str, ...]) -> _Plan:
    numbers = tuple(f for f in spec.features if f.kind in ("numeric", "ordinal"))
    booleans = tuple(f for f in spec.features if f.kind == "boolean")
    position = {name: j for j, name in enumerate(spec.number_names)}
    return _Plan(
        allowed=frozenset((*spec.feature_names, spec.id, *extra_fields)),
        numbers=numbers,
        booleans=booleans,
        number_ok=frozenset(kinds.JSON_TYPES["numeric"] | kinds.JSON_TYPES["ordinal"] | {_NONE}),
        boolean_ok=frozenset(kinds.JSON_TYPES["boolean"] | {_NONE}),
        order=np.argsort([position[f.name] for f in (*numbers, *booleans)]),
        texts=tuple(f for f in spec.features if f.kind == "categorical"),
        missing=tuple(frozenset(spec.missing_of(f)) for f in spec.features if f.kind == "categorical"),
    )


def _loc(prefix: str, i: int, name: str | None = None) -> str:
    where = f"{prefix}[{i}]"
    return f"{where}.{name}" if name else where


def read_records(
    records: Sequence[Any],
    spec: DatasetSpec,
    *,
    extra_fields: Collection[str] = (),
    prefix: str = "",
) -> Batch:
    """Type JSON records by the spec.

    Args:
        records: parsed JSON values, one per applicant.
        spec: the dataset spec.
        extra_fields: further keys a record may carry and that are not features (the caller
            reads them), besides the spec's id.
        prefix: how error locations start, e.g. ``"applicants"`` -> ``applicants[3].age``.

    Returns:
        The batch, one row per record, in order (ids as given, or None).

    Raises:
        InputError: one or more records do not fit; every problem is listed (up to 50).
    """
    plan = _plan(spec, tuple(extra_fields))
    problems: list[Problem] = []
    for i, rec in enumerate(records):
        if type(rec) is not dict:
            problems.append(Problem(_loc(prefix, i), f"expected a JSON object, got {kinds.shown_json(rec)}"))
        elif not rec.keys() <= plan.allowed:
            for name in sorted(rec.keys() - plan.allowed):
                problems.append(Problem(_loc(prefix, i, name), f"unknown field {name!r}; expected the model's "
                                        f"feature names, {spec.id!r}{''.join(f' or {x!r}' for x in extra_fields)}"))
    if problems:
        raise InputError(problems[:_MAX_PROBLEMS])

    n = len(records)
    numbers = _values(records, plan.numbers, plan.number_ok, spec, prefix, problems)
    booleans = _values(records, plan.booleans, plan.boolean_ok, spec, prefix, problems)
    block = _number_block(numbers, booleans, n, plan, spec, prefix, problems)
    texts = {f.name: _texts(records, f, missing, spec, prefix, problems)
             for f, missing in zip(plan.texts, plan.missing)}
    ids = _ids(records, spec, prefix, problems)
    if problems:
        problems.sort(key=lambda p: _order(p.loc))
        raise InputError(problems[:_MAX_PROBLEMS])
    return Batch(spec, block, texts, ids)


def _values(records: Sequence[dict], features: tuple[Feature, ...], ok: frozenset[type], spec: DatasetSpec,
            prefix: str, problems: list[Problem]) -> list[Any]:
    """The features' values of every record, row by row, in one flat list (a wrong type -> None)."""
    names = [f.name for f in features]
    values = [r.get(name) for r in records for name in names]
    if ok.issuperset(map(type, values)):
        return values
    width = len(names)
    for k, v in enumerate(values):
        if type(v) not in ok:
            f = features[k % width]
            problems.append(Problem(_loc(prefix, k // width, f.name),
                                    f"expected {kinds.expected(f, spec, source='json')}, got {kinds.shown_json(v)}"))
            values[k] = None  # NaN in the block, so that the value checks still run on the rest
    return values


def _number_block(numbers: list[Any], booleans: list[Any], n: int, plan: _Plan, spec: DatasetSpec, prefix: str,
                  problems: list[Problem]) -> np.ndarray:
    """The number features as one float64 block (None -> NaN), checked by the kinds' value rules."""
    nn, nb = len(plan.numbers), len(plan.booleans)
    block = np.concatenate([_floats(numbers, n, nn), _floats(booleans, n, nb)], axis=1)[:, plan.order]
    rules = kinds.number_rules(spec)
    rules.blank(block)
    broken = rules.bad(block)
    if broken.any():
        for i, j in zip(*np.nonzero(broken)):
            p = int(plan.order[j])  # the block's column j came from column p of [numbers | booleans]
            value = numbers[i * nn + p] if p < nn else booleans[i * nb + p - nn]
            f = rules.features[j]
            problems.append(Problem(_loc(prefix, int(i), f.name),
                                    f"expected {kinds.expected(f, spec, source='json')}, got {kinds.shown_json(value)}"))
    return block


def _floats(values: list[Any], n: int, width: int) -> np.ndarray:
    try:
        return np.array(values, dtype=np.float64).reshape(n, width)
    except OverflowError:  # an integer beyond float64: infinity here, refused by the value checks
        return np.array([np.inf if type(v) is int and abs(v) > 2**1023 else v for v in values],
                        dtype=np.float64).reshape(n, width)


def _texts(records: Sequence[dict], f: Feature, missing: frozenset[str], spec: DatasetSpec, prefix: str,
           problems: list[Problem]) -> np.ndarray:
    """A categorical feature's values: texts (integers as their digits), missing tokens as None."""
    values = [r.get(f.name) for r in records]
    types = set(map(type, values))
    if not types <= {str, _NONE} or not missing.isdisjoint(values) or any(
            v is not None and len(v) > kinds.MAX_TEXT for v in values):
        for i, v in enumerate(values):
            if v is None:
                continue
            if type(v) is int:
                values[i] = v = str(v)
            elif type(v) is not str:
                problems.append(Problem(_loc(prefix, i, f.name),
                                        f"expected {kinds.expected(f, spec, source='json')}, got {kinds.shown_json(v)}"))
                continue
            if v in missing:
                values[i] = None
            elif len(v) > kinds.MAX_TEXT:
                problems.append(Problem(_loc(prefix, i, f.name),
                                        f"expected {kinds.expected(f, spec, source='json')}, got {len(v)} characters"))
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _ids(records: Sequence[dict], spec: DatasetSpec, prefix: str, problems: list[Problem]) -> np.ndarray:
    values = [r.get(spec.id) for r in records]
    if not set(map(type, values)) <= {str, _NONE} or any(v is not None and len(v) > kinds.MAX_TEXT for v in values):
        for i, v in enumerate(values):
            got = None
            if type(v) is int:  # its digits are the id, as many as a text id's characters
                values[i] = text = str(v)
                if len(text.lstrip("-")) > kinds.MAX_TEXT:
                    got = f"an integer of {len(text.lstrip('-'))} digits"
            elif v is not None and (type(v) is not str or len(v) > kinds.MAX_TEXT):
                got = f"{len(v)} characters" if type(v) is str else kinds.shown_json(v)
            if got is not None:
                problems.append(Problem(_loc(prefix, i, spec.id),
                                        f"expected {kinds.id_expected(source='json')}, got {got}"))
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _order(loc: str) -> tuple[int, str]:
    head, _, rest = loc.partition("]")
    try:
        return int(head.rsplit("[", 1)[-1]), rest
    except ValueError:
        return 0, loc


def to_records(batch: Batch, *, with_id: bool = True) -> list[dict[str, Any]]:
    """Rows of a batch as the JSON objects a client sends (the inverse of :func:`read_records`):
    one value per feature in the JSON type of its kind, missing as ``None`` (null)."""
    spec = batch.spec
    columns: list[tuple[str, list[Any]]] = []
    for j, f in enumerate(kinds.number_rules(spec).features):
        values = batch.numbers[:, j].tolist()
        if f.kind == "boolean":
            values = [None if v != v else bool(v) for v in values]
        elif f.kind == "ordinal":
            values = [None if v != v else int(v) for v in values]
        else:
            values = [None if v != v else v for v in values]
        columns.append((f.name, values))
    columns += [(name, batch.texts[name].tolist()) for name in spec.text_names]
    order = {name: i for i, name in enumerate(spec.feature_names)}
    columns.sort(key=lambda c: order[c[0]])
    if with_id and batch.ids is not None:
        columns.append((spec.id, batch.ids.tolist()))
    names = [c[0] for c in columns]
    return [dict(zip(names, row)) for row in zip(*(c[1] for c in columns))] if columns else [{} for _ in range(len(batch))]
