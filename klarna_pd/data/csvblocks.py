"""One block of CSV lines -> typed rows, every row accounted for (the CSV half of :mod:`.files`).

pyarrow parses the block; :mod:`.lines` says where its rows are, so that the parser's records can
be checked against them: one record per row, or the rows whose quote does not close are set aside
and the rest parsed again.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

from ..errors import DataError
from ..spec import DatasetSpec, numbers_in
from . import kinds
from .arrow import read_table
from .batch import Batch, RowProblem
from .lines import (
    Block,
    Lines,
    lone_cr_reason,
    long_line_reason,
    not_utf8,
    open_quote,
    open_quote_reason,
    open_quote_rows,
    quote_counts,
)


def _csv_options(
    spec: DatasetSpec, present: list[str], block_size: int | None, on_invalid, *, typed: bool, names: list[str] | None = None
):
    """pyarrow options; ``typed`` parses numbers and booleans straight into their types where that
    reads a column's missing tokens as :mod:`.kinds` does: pyarrow nulls the tokens every column
    shares (:func:`_parser_nulls`), a number column's other tokens must be numbers (missing by
    value after parsing, :meth:`.kinds.NumberRules.blank`), a boolean's none. The rest stay text."""
    nulls = _parser_nulls(spec)
    types = {c: pa.string() for c in present}
    if typed:
        feature = {f.name: f for f in spec.features}
        for c in present:
            f = feature.get(c)
            others = set(spec.missing_of(f) if f else spec.missing_values).difference(nulls)
            if (f and f.kind in ("numeric", "ordinal")) or (c == spec.target and not spec.target_texts):
                if all(numbers_in([t]) for t in others):
                    types[c] = pa.float64()
            elif f and f.kind == "boolean" and not others:
                types[c] = pa.bool_()
    read = pa_csv.ReadOptions(use_threads=False, block_size=block_size, column_names=names)
    parse = pa_csv.ParseOptions(delimiter=spec.separator, invalid_row_handler=on_invalid)
    convert = pa_csv.ConvertOptions(
        column_types=types,
        include_columns=present,
        null_values=list(nulls),
        true_values=list(spec.true_values),
        false_values=list(spec.false_values),
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
    )
    return read, parse, convert


def _parser_nulls(spec: DatasetSpec) -> tuple[str, ...]:
    """The missing tokens pyarrow may null in every column itself: those that every feature (with
    its own ``missing_values`` or the spec's) and the id and target share."""
    shared = set(spec.missing_values).intersection(*(spec.missing_of(f) for f in spec.features))
    return tuple(t for t in spec.missing_values if t in shared)


class _InvalidRows:
    """Collects rows whose field count is wrong (pyarrow calls this while parsing).

    They are skipped, never fatal here: a strict read raises afterwards for whichever problem
    comes first in the file, a bad field count or a bad value.
    """

    def __init__(self) -> None:
        self.rows: list[tuple[int, str]] = []
        """(record position in the block, reason)."""

    def __call__(self, row) -> str:
        reason = f"expected {row.expected_columns} fields, got {row.actual_columns}: {kinds.shown(row.text)}"
        if row.text.count('"') % 2:
            reason += " (an odd number of quotes on the line: a stray quote?)"
        self.rows.append((int(row.number) - 1, reason))
        return "skip"


def read_block(
    block: Block,
    rows: Lines,
    header: list[str],
    present: list[str],
    spec: DatasetSpec,
    path: Path,
    require_target: bool,
    *,
    fast: bool,
    max_line: int,
) -> tuple[Batch, np.ndarray, list[RowProblem]]:
    """The rows of one block: typed, or explained. Every row is one or the other.

    Rows over the line limit or with a carriage return inside are set aside first. pyarrow then
    parses the rest; if it returns other than one record per row, some quoted field ran past its
    line end, and the rows whose quote does not close (:func:`.lines.open_quote_rows`) are set
    aside and the rest parsed again. The last row is always checked, since a quote left open at the
    end of a block is closed by the end of the data without changing the count.
    """
    data = block.data
    refused: dict[int, str] = {}
    for i in np.flatnonzero((rows.ends - rows.starts) > max_line):
        refused[int(i)] = long_line_reason(int(rows.ends[i] - rows.starts[i]), max_line)
    for i in rows.lone_cr:
        refused.setdefault(int(i), lone_cr_reason())
    counts = None
    for attempt in ("as is", "odd quotes", "every quote"):
        keep = np.ones(len(rows), dtype=bool)
        keep[list(refused)] = False
        text = data if not refused else _join(data, rows, keep)
        kept_lines = rows.numbers[keep]
        result = None
        try:
            if fast:
                result = _parse_block(text, kept_lines, header, present, spec, path, require_target, typed=True)
            if result is None:
                result = _parse_block(text, kept_lines, header, present, spec, path, require_target, typed=False)
        except _NotUTF8:
            raise (not_utf8(data, block.offset, block.first_line, path)
                   or DataError("not UTF-8 text; expected a UTF-8 CSV file", path=path)) from None
        batch, lines, problems, records = result
        last = int(np.flatnonzero(keep)[-1]) if keep.any() else None
        closed = last is None or not open_quote(data[rows.starts[last]:rows.ends[last]], spec.separator)
        if records == len(kept_lines) and closed:
            problems = problems + [RowProblem(int(rows.numbers[i]), "<row>", why) for i, why in refused.items()]
            return batch, lines, sorted(problems, key=lambda p: p.line)
        if counts is None:
            counts = quote_counts(data, rows)
        # A stray quote usually leaves its row with an odd count of quotes: look there first.
        found = open_quote_rows(data, rows, spec.separator, np.flatnonzero(keep & (counts % 2 == 1)))
        if attempt != "as is" or not len(found):
            found = open_quote_rows(data, rows, spec.separator, np.flatnonzero(keep & (counts > 0)))
        for i in found:
            refused[int(i)] = open_quote_reason()
    raise DataError(
        f"pyarrow read {records:,} records from the {len(kept_lines):,} rows from line {block.first_line:,} on, "
        "even with every unclosed quote set aside; cannot tell the rows apart",
        path=path,
    )


def _join(data: bytes, rows: Lines, keep: np.ndarray) -> bytes:
    """The kept rows of a block, one per line."""
    return b"".join(data[s:e] + b"\n" for s, e in zip(rows.starts[keep].tolist(), rows.ends[keep].tolist()))


class _NotUTF8(Exception):
    pass


def _parse_block(
    text: bytes,
    row_lines: np.ndarray,
    header: list[str],
    present: list[str],
    spec: DatasetSpec,
    path: Path,
    require_target: bool,
    *,
    typed: bool,
) -> tuple[Batch, np.ndarray, list[RowProblem], int] | None:
    """CSV lines as a checked batch, the line of each row, the problems and the number of records
    pyarrow found; None when ``typed`` and a value does not fit.

    Args:
        text: lines of CSV.
        row_lines: the line number of each non-blank line of ``text``.
    """
    if not len(row_lines):  # every row set aside: pyarrow refuses an empty text
        return Batch.empty(spec), np.empty(0, dtype=np.int64), [], 0
    try:
        # Checked first: pyarrow decodes a row it cannot split into fields for _InvalidRows, and a
        # byte that is not UTF-8 there ended in a traceback and a message about columns (1 ms per 20 MB).
        text.decode("utf-8")
    except UnicodeDecodeError:
        raise _NotUTF8 from None
    invalid = _InvalidRows()
    read, parse, convert = _csv_options(spec, present, len(text) + 1, invalid, typed=typed, names=header)
    try:
        table = pa_csv.read_csv(pa.BufferReader(text), read_options=read, parse_options=parse, convert_options=convert)
    except pa.ArrowInvalid as exc:
        if typed and "conversion error" in str(exc):
            return None
        if "UTF8" in str(exc):
            raise _NotUTF8 from None
        raise DataError(f"cannot parse file: {str(exc).splitlines()[0]}", path=path) from None
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"cannot read file: {exc}", path=path) from None
    records = table.num_rows + len(invalid.rows)
    if records != len(row_lines):
        return Batch.empty(spec), np.empty(0, dtype=np.int64), [], records
    batch, positions, problems = read_table(table, spec, first_line=0, require_target=require_target)
    if typed and problems:
        return None
    # Record positions of the table's rows: pyarrow leaves the invalid ones out.
    skipped = np.asarray([i for i, _ in invalid.rows], dtype=np.int64)
    table_lines = np.delete(row_lines, skipped) if len(skipped) else row_lines
    problems = [RowProblem(int(table_lines[p.line]), p.column, p.reason, p.id) for p in problems]
    problems += [RowProblem(int(row_lines[i]), "<row>", why) for i, why in invalid.rows]
    return batch, table_lines[positions], sorted(problems, key=lambda p: p.line), records
