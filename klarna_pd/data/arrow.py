"""Arrow tables -> typed batches: the one conversion behind CSV and Parquet files, Arrow request
bodies and Spark partitions. Each value goes through :mod:`.kinds`; a row with a value that does
not fit is left out and explained (at most one problem per row: its first bad column)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa

from ..errors import DataError
from ..spec import DatasetSpec
from . import kinds
from .batch import Batch, RowProblem


def read_table(
    table: pa.Table,
    spec: DatasetSpec,
    *,
    first_line: int = 2,
    require_id: bool = True,
    require_target: bool = False,
) -> tuple[Batch, np.ndarray, list[RowProblem]]:
    """Type an Arrow table by the spec.

    Args:
        table: columns as read: text from CSV, typed from Parquet or an Arrow body. Columns the
            spec does not name are ignored.
        spec: the dataset spec.
        first_line: line number of the first row (a file's header is line 1; a request's first
            applicant may be numbered 0).
        require_id: the id column must be there, with a value in every row.
        require_target: the target column must be there.

    Returns:
        The batch of good rows, the line of each, and the problems, in line order.

    Raises:
        DataError: a required column is missing, or a column's type cannot hold its kind at all.
    """
    n = table.num_rows
    lines = np.arange(first_line, first_line + n)
    bad: dict[int, RowProblem] = {}
    names = set(table.column_names)

    if spec.id in names:
        id_arr = _column(table, spec.id)
        try:
            id_values, id_bad = kinds.arrow_texts(id_arr, spec)
        except TypeError:
            raise DataError(f"expected {kinds.id_expected()}, the column has type {id_arr.type}",
                            column=spec.id) from None
    elif require_id:
        raise DataError(f"missing id column {spec.id!r}")
    else:
        id_values, id_bad = None, None

    def flag(mask: np.ndarray, column: str, reason_of: Callable[[int], str]) -> None:
        for i in np.flatnonzero(mask):
            i = int(i)
            if i not in bad:
                ident = None if id_values is None else id_values[i]
                bad[i] = RowProblem(int(lines[i]), column, reason_of(i), ident)

    if id_values is not None:
        # A bad id first: a fractional one is None in id_values too, and is not missing.
        flag(id_bad, spec.id,
             lambda i: f"expected {kinds.id_expected()}, got {kinds.shown(id_arr[i].as_py())}")
        if require_id:
            flag(np.equal(id_values, None), spec.id, lambda i: "the id is missing")

    target = None
    if spec.target in names:
        arr = _column(table, spec.target)
        target, target_bad = kinds.arrow_target(arr, spec)
        flag(target_bad, spec.target, lambda i: f"{kinds.target_expected(spec)}, got {kinds.shown(arr[i].as_py())}")
    elif require_target:
        raise DataError(f"missing target column {spec.target!r}")

    missing = [f for f in spec.feature_names if f not in names]
    if missing:
        raise DataError(f"missing feature columns {missing[:8]}{' ...' if len(missing) > 8 else ''}")

    numbers = np.empty((n, len(spec.number_names)))
    raw: dict[str, pa.Array] = {}
    rules = kinds.number_rules(spec)
    for j, feat in enumerate(rules.features):
        arr = raw[feat.name] = _column(table, feat.name)
        try:
            numbers[:, j], unreadable = kinds.arrow_numbers(arr, feat, spec)
        except TypeError:
            raise DataError(f"expected {kinds.expected(feat, spec)}, the column has type {arr.type}",
                            column=feat.name) from None
        if unreadable.any():
            flag(unreadable, feat.name, _reason(feat, spec, arr))
    rules.blank(numbers)
    broken = rules.bad(numbers)
    if broken.any():
        for j in np.flatnonzero(broken.any(axis=0)):
            feat = rules.features[j]
            flag(broken[:, j], feat.name, _reason(feat, spec, raw[feat.name]))

    texts: dict[str, np.ndarray] = {}
    for feat in spec.features:
        if feat.kind != "categorical":
            continue
        arr = _column(table, feat.name)
        try:
            texts[feat.name], text_bad = kinds.arrow_texts(arr, spec, feat)
        except TypeError:
            raise DataError(f"expected {kinds.expected(feat, spec)}, the column has type {arr.type}",
                            column=feat.name) from None
        if text_bad.any():
            flag(text_bad, feat.name, _reason(feat, spec, arr))

    batch = Batch(spec, numbers, texts, id_values, target)
    problems = [bad[i] for i in sorted(bad)]
    if problems:
        keep = np.ones(n, dtype=bool)
        keep[list(bad)] = False
        batch, lines = batch.take(keep), lines[keep]
    return batch, lines, problems


def _column(table: pa.Table, name: str) -> pa.Array:
    col = table.column(name)
    return col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col


def _reason(feat, spec: DatasetSpec, arr: pa.Array) -> Callable[[int], str]:
    source = "text" if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type) else "arrow"
    phrase = kinds.expected(feat, spec, source=source)
    return lambda i: f"expected {phrase}, got {kinds.shown(arr[i].as_py())}"
