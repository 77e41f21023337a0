"""JSON records (applicant objects, as parsed from a request) -> a typed batch, by :mod:`.kinds`.

A record is a dict of feature name -> value; absent, ``None`` and a text equal to a missing token
are missing. Work goes column by column (one list per feature, one type check per column, one
array for all number features, one vectorised value check) so that a thousand applicants cost
a few milliseconds; only a column that fails is looked at value by value, to name the culprit.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import numpy as np

from ..errors import InputError, Problem
from ..spec import DatasetSpec
from . import kinds
from .batch import Batch

_MAX_PROBLEMS = 50
_JSON_OK = {kind: types | {type(None)} for kind, types in kinds.JSON_TYPES.items()}


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
    problems: list[Problem] = []
    allowed = frozenset((*spec.feature_names, spec.id, *extra_fields))
    for i, rec in enumerate(records):
        if type(rec) is not dict:
            problems.append(Problem(_loc(prefix, i), f"expected a JSON object, got {kinds.shown(rec)}"))
        elif not rec.keys() <= allowed:
            for name in rec.keys() - allowed:
                problems.append(Problem(_loc(prefix, i, name), f"unknown field {name!r}; expected the model's "
                                        f"feature names, {spec.id!r}{''.join(f' or {x!r}' for x in extra_fields)}"))
    if problems:
        raise InputError(problems[:_MAX_PROBLEMS])

    rules = kinds.number_rules(spec)
    columns: list[list[Any]] = []
    for feat in rules.features:
        raw = [r.get(feat.name) for r in records]
        ok = _JSON_OK[feat.kind]
        if not ok.issuperset(map(type, raw)):
            for i, v in enumerate(raw):
                if type(v) not in ok:
                    problems.append(Problem(_loc(prefix, i, feat.name),
                                            f"expected {kinds.expected(feat, spec, source='json')}, got {kinds.shown(v)}"))
                    raw[i] = None  # NaN in the block: the range checks still run on the rest
        columns.append(raw)
    numbers = _number_block(columns, len(records), rules, problems, prefix, spec)

    texts: dict[str, np.ndarray] = {}
    missing = frozenset(spec.missing_values)
    for feat in spec.features:
        if feat.kind != "categorical":
            continue
        col = np.empty(len(records), dtype=object)
        col[:] = [r.get(feat.name) for r in records]
        for i, v in enumerate(col):
            if v is None:
                continue
            if type(v) is int:
                col[i] = v = str(v)
            elif type(v) is not str:
                problems.append(Problem(_loc(prefix, i, feat.name),
                                        f"expected {kinds.expected(feat, spec, source='json')}, got {kinds.shown(v)}"))
                continue
            if v in missing:
                col[i] = None
            elif len(v) > kinds.MAX_TEXT:
                problems.append(Problem(_loc(prefix, i, feat.name),
                                        f"expected {kinds.expected(feat, spec, source='json')}, got {len(v)} characters"))
        texts[feat.name] = col

    ids = np.empty(len(records), dtype=object)
    ids[:] = [r.get(spec.id) for r in records]
    for i, v in enumerate(ids):
        if v is None:
            continue
        if type(v) is int:
            ids[i] = str(v)
        elif type(v) is not str or len(v) > kinds.MAX_TEXT:
            problems.append(Problem(_loc(prefix, i, spec.id),
                                    f"expected {kinds.id_expected(source='json')}, got {kinds.shown(v)}"))
    if problems:
        problems.sort(key=lambda p: _order(p.loc))
        raise InputError(problems[:_MAX_PROBLEMS])
    return Batch(spec, numbers, texts, ids)


def _number_block(columns: list[list[Any]], n: int, rules: kinds.NumberRules, problems: list[Problem],
                  prefix: str, spec: DatasetSpec) -> np.ndarray:
    """The number features as one float64 block (None -> NaN), checked by the kinds' value rules."""
    try:
        block = np.array(columns, dtype=np.float64).T if columns else np.empty((n, 0))
    except OverflowError:  # an integer beyond float64: find it, say which
        block = np.empty((n, len(columns)))
        for j, raw in enumerate(columns):
            for i, v in enumerate(raw):
                try:
                    block[i, j] = np.nan if v is None else float(v)
                except OverflowError:
                    block[i, j] = np.inf  # refused below with the value as sent
    broken = rules.bad(block)
    if broken.any():
        for i, j in zip(*np.nonzero(broken)):
            feat = rules.features[j]
            problems.append(Problem(_loc(prefix, int(i), feat.name),
                                    f"expected {kinds.expected(feat, spec, source='json')}, got {kinds.shown(columns[j][i])}"))
    return np.ascontiguousarray(block)


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
