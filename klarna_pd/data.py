"""Read CSV (plain or compressed) and Parquet files into frames that agree with a dataset spec.

Every value is checked against its column's kind. A bad file gets one :class:`DataError` naming
the file, the line, the column and the value; nothing downstream runs on half-checked data.

Typed frame (what every other module receives):

- id column: ``str``; target: ``float64`` (1.0, 0.0, NaN for rows to score);
- numeric and ordinal features: ``float64`` with NaN for missing;
- boolean features: ``float64`` 1.0 / 0.0 / NaN;
- categorical features: ``object`` holding ``str`` or ``None``.

Line numbers count the header as line 1, so "line 5" is what an editor shows.
"""

from __future__ import annotations

import csv
import io
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from .spec import DatasetSpec

_SEPARATORS = (";", ",", "\t", "|")
_HEAD_BYTES = 1 << 16
_VALUE_SHOWN = 60


class DataError(ValueError):
    """A data file that cannot be used, with where and why."""

    def __init__(
        self,
        reason: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        column: str | None = None,
    ) -> None:
        self.reason = reason
        self.path = None if path is None else str(path)
        self.line = line
        self.column = column
        where = [p for p in (self.path, f"line {line}" if line else None) if p]
        if column is not None:
            where.append(f"column {column!r}")
        super().__init__(f"{', '.join(where)}: {reason}" if where else reason)


class DataWarning(UserWarning):
    """Something about a data file that is tolerated, such as extra columns."""


@dataclass(frozen=True)
class RowProblem:
    """One value that does not fit its column."""

    line: int
    column: str
    reason: str
    id: str | None = None
    """The row's id, when it could be read."""

    def message(self) -> str:
        return f"line {self.line}, column {self.column!r}: {self.reason}"


@dataclass(frozen=True)
class Chunk:
    """Consecutive rows of a file: the good ones typed, the bad ones explained."""

    frame: pd.DataFrame
    first_line: int
    """Line number of the chunk's first row in the file."""
    lines: np.ndarray
    """Line number of each row of ``frame``."""
    problems: list[RowProblem] = field(default_factory=list)


@dataclass(frozen=True)
class Dataset:
    """A whole validated file."""

    frame: pd.DataFrame
    spec: DatasetSpec
    path: Path | None = None

    @property
    def is_labelled(self) -> pd.Series:
        return self.frame[self.spec.target].notna()

    def labelled(self) -> pd.DataFrame:
        """Rows with a known outcome (target 0 or 1), in file order."""
        return self.frame.loc[self.is_labelled].reset_index(drop=True)

    def unlabelled(self) -> pd.DataFrame:
        """Rows to score (target missing), in file order."""
        return self.frame.loc[~self.is_labelled].reset_index(drop=True)


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _VALUE_SHOWN else text[: _VALUE_SHOWN - 4] + "...'"


def is_parquet(path: str | Path) -> bool:
    """Whether a data file is read (or written) as Parquet, by its extension."""
    return Path(path).suffix.lower() in {".parquet", ".pq"}


# ---------------------------------------------------------------------------------------------
# Header checks


def _check_path(path: Path) -> None:
    if path.is_dir():
        raise DataError("expected a file, got a directory", path=path)
    if not path.exists():
        raise DataError("file not found", path=path)


def _read_head(path: Path) -> bytes:
    _check_path(path)
    try:
        with pa.input_stream(str(path), compression="detect") as stream:
            return stream.read(_HEAD_BYTES)
    except FileNotFoundError:
        raise DataError("file not found", path=path) from None
    except IsADirectoryError:
        raise DataError("expected a file, got a directory", path=path) from None
    except PermissionError:
        raise DataError("permission denied", path=path) from None
    except (OSError, pa.ArrowException) as exc:
        if path.suffix.lower() in {".gz", ".bz2", ".zst", ".lz4"}:
            raise DataError(f"not a valid {path.suffix[1:]} file ({exc})", path=path) from None
        raise DataError(f"cannot read file: {exc}", path=path) from None


def _csv_header(path: Path, spec: DatasetSpec) -> list[str]:
    head = _read_head(path)
    if not head.strip():
        raise DataError("file is empty, expected a header line and rows", path=path)
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        # A cut multi-byte character at the end of the sample is not an error.
        if exc.start < len(head) - 4:
            raise DataError(
                f"not UTF-8 text (byte {exc.start}); is it a binary or compressed file "
                "without a matching extension?",
                path=path,
            ) from None
        text = head[: exc.start].decode("utf-8")
    first = text.splitlines()[0] if text.splitlines() else ""
    header = next(csv.reader(io.StringIO(first), delimiter=spec.separator), [])
    if len(header) == 1 and spec.columns[0] not in header:
        found = [s for s in _SEPARATORS if s != spec.separator and s in first]
        if found:
            raise DataError(
                f"the header is one column; expected {spec.separator!r}-separated columns, "
                f"the file looks {found[0]!r}-separated",
                path=path,
                line=1,
            )
    return header


def _check_columns(
    header: list[str], spec: DatasetSpec, path: Path, *, require_target: bool
) -> list[str]:
    """The spec's columns present in the file, after checking none is missing or repeated."""
    wanted = spec.columns if require_target else [c for c in spec.columns if c != spec.target]
    repeated = sorted({c for c in header if header.count(c) > 1})
    if repeated:
        raise DataError(f"columns repeated in the header: {repeated}", path=path, line=1)
    missing = [c for c in wanted if c not in header]
    if missing:
        shown = missing if len(missing) <= 8 else missing[:8] + [f"... {len(missing) - 8} more"]
        raise DataError(
            f"missing columns {shown}; the header has {len(header)} columns "
            f"(is the separator {spec_separator_name(spec)} right?)",
            path=path,
            line=1,
        )
    extra = [c for c in header if c not in spec.columns]
    if extra:
        warnings.warn(
            f"{path}: ignoring {len(extra)} column(s) the spec does not name: {extra[:8]}",
            DataWarning,
            stacklevel=3,
        )
    return [c for c in spec.columns if c in header]


def spec_separator_name(spec: DatasetSpec) -> str:
    return {"\t": "tab", ";": "';'", ",": "','", "|": "'|'"}.get(spec.separator, repr(spec.separator))


# ---------------------------------------------------------------------------------------------
# Value conversion


def _first_bad(mask: np.ndarray) -> int | None:
    idx = np.flatnonzero(mask)
    return int(idx[0]) if idx.size else None


def _to_float(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """float64 values and a mask of entries that are present but not finite numbers."""
    if pa.types.is_null(arr.type):  # a column with no value at all (e.g. all NA in a chunk)
        arr = arr.cast(pa.float64())
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        try:
            values = pc.cast(arr, pa.float64())
        except pa.ArrowInvalid:
            # Rare path: find exactly which strings are not numbers.
            raw = arr.to_pandas()
            values = pa.array(pd.to_numeric(raw, errors="coerce"), type=pa.float64())
            present = raw.notna().to_numpy()
            out = values.to_numpy(zero_copy_only=False)
            return out, present & ~np.isfinite(out)
    elif pa.types.is_boolean(arr.type) or pa.types.is_integer(arr.type) or pa.types.is_floating(
        arr.type
    ) or pa.types.is_decimal(arr.type):
        values = pc.cast(arr, pa.float64())
    else:
        raise TypeError(arr.type)
    out = values.to_numpy(zero_copy_only=False)
    present = arr.is_valid().to_numpy(zero_copy_only=False)
    return out, present & ~np.isfinite(out)


def _to_bool(arr: pa.Array, spec: DatasetSpec) -> tuple[np.ndarray, np.ndarray]:
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        is_true = pc.is_in(arr, value_set=pa.array(spec.true_values)).to_numpy(zero_copy_only=False)
        is_false = pc.is_in(arr, value_set=pa.array(spec.false_values)).to_numpy(zero_copy_only=False)
        present = arr.is_valid().to_numpy(zero_copy_only=False)
        out = np.where(is_true, 1.0, np.where(is_false, 0.0, np.nan))
        return out, present & ~(is_true | is_false)
    out, bad = _to_float(arr)
    return out, bad | (np.isfinite(out) & (out != 0.0) & (out != 1.0))


def _to_text(arr: pa.Array) -> np.ndarray:
    if pa.types.is_null(arr.type):
        arr = arr.cast(pa.string())
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        if pa.types.is_floating(arr.type):
            # Parquet writers store integer codes with missing values as floats: 1.0 -> "1".
            as_int = pc.cast(arr, pa.int64(), safe=False)
            if pc.all(pc.or_kleene(pc.equal(pc.cast(as_int, arr.type), arr), pc.is_null(arr))).as_py():
                arr = as_int
        arr = pc.cast(arr, pa.string())
    return arr.to_numpy(zero_copy_only=False).astype(object)


def _describe_kind(kind: str, spec: DatasetSpec) -> str:
    return {
        "numeric": "a finite number",
        "ordinal": "an integer code",
        "boolean": f"one of {list(spec.true_values + spec.false_values)}",
    }[kind]


def convert_table(
    table: pa.Table, spec: DatasetSpec, *, first_line: int, require_target: bool = True
) -> tuple[pd.DataFrame, np.ndarray, list[RowProblem]]:
    """Type a table of raw columns by the spec.

    Args:
        table: columns as read (strings from CSV, typed from Parquet).
        spec: the dataset spec.
        first_line: file line number of the table's first row.
        require_target: whether the target column must be there.

    Returns:
        The typed frame of the rows without problems, the file line of each of those rows, and the
        problems found (at most one per row: the first bad column), ordered by line.
    """
    n = table.num_rows
    lines = np.arange(first_line, first_line + n)
    bad_reason: dict[int, RowProblem] = {}
    columns: dict[str, object] = {}

    names = set(table.column_names)
    ids = table.column(spec.id).combine_chunks()
    id_values = _to_text(ids)

    def flag(mask: np.ndarray, column: str, reason_of) -> None:
        for i in np.flatnonzero(mask):
            i = int(i)
            if i not in bad_reason:
                bad_reason[i] = RowProblem(int(lines[i]), column, reason_of(i), id_values[i])

    flag(~ids.is_valid().to_numpy(zero_copy_only=False), spec.id, lambda i: "the id is missing")
    columns[spec.id] = id_values

    if spec.target in names:
        tgt = table.column(spec.target).combine_chunks()
        raw = tgt.to_pandas() if (pa.types.is_string(tgt.type) or pa.types.is_large_string(tgt.type)) else None
        values, bad = _to_float(tgt)
        bad |= np.isfinite(values) & (values != 0.0) & (values != 1.0)
        flag(
            bad,
            spec.target,
            lambda i: "expected 0, 1 or missing "
            f"({'/'.join(repr(m) for m in spec.missing_values)}), got "
            + _shown(raw.iloc[i] if raw is not None else values[i]),
        )
        columns[spec.target] = values
    elif require_target:
        raise DataError(f"missing target column {spec.target!r}")
    else:
        columns[spec.target] = np.full(n, np.nan)

    for feat in spec.features:
        arr = table.column(feat.name).combine_chunks()
        if feat.kind == "categorical":
            columns[feat.name] = _to_text(arr)
            continue
        try:
            if feat.kind == "boolean":
                values, bad = _to_bool(arr, spec)
            else:
                values, bad = _to_float(arr)
                if feat.kind == "ordinal":
                    bad |= np.isfinite(values) & (values != np.round(values))
        except TypeError:
            raise DataError(
                f"expected {_describe_kind(feat.kind, spec)}, the column has type {arr.type}",
                column=feat.name,
            ) from None
        if bad.any():
            shown = arr.to_pandas()
            flag(
                bad,
                feat.name,
                lambda i, s=shown, k=feat.kind: f"expected {_describe_kind(k, spec)}, got {_shown(s.iloc[i])}",
            )
        columns[feat.name] = values

    frame = pd.DataFrame(columns, columns=spec.columns, copy=False)
    for name in spec.names_of("categorical"):
        frame[name] = frame[name].astype(object)
    frame[spec.id] = frame[spec.id].astype(object)
    problems = [bad_reason[i] for i in sorted(bad_reason)]
    if problems:
        keep = np.ones(n, dtype=bool)
        keep[sorted(bad_reason)] = False
        frame = frame.loc[keep].reset_index(drop=True)
        lines = lines[keep]
    return frame, lines, problems


# ---------------------------------------------------------------------------------------------
# Readers


def _csv_options(
    spec: DatasetSpec, present: list[str], block_size: int | None, on_invalid, *, typed: bool, names: list[str] | None = None
):
    """pyarrow options; ``typed`` parses numbers and booleans straight into their types."""
    types = {c: pa.string() for c in present}
    if typed:
        kinds = {f.name: f.kind for f in spec.features}
        for c in present:
            if kinds.get(c) in ("numeric", "ordinal") or c == spec.target:
                types[c] = pa.float64()
            elif kinds.get(c) == "boolean":
                types[c] = pa.bool_()
    read = pa_csv.ReadOptions(use_threads=False, block_size=block_size, column_names=names)
    parse = pa_csv.ParseOptions(delimiter=spec.separator, invalid_row_handler=on_invalid)
    convert = pa_csv.ConvertOptions(
        column_types=types,
        include_columns=present,
        null_values=list(spec.missing_values),
        true_values=list(spec.true_values),
        false_values=list(spec.false_values),
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
    )
    return read, parse, convert


class _InvalidRows:
    """Collects rows whose field count is wrong (pyarrow calls this while parsing).

    They are skipped, never fatal here: a strict read raises afterwards for whichever problem
    comes first in the file, a bad field count or a bad value.
    """

    def __init__(self, first_line: int) -> None:
        self.first_line = first_line
        self.rows: list[RowProblem] = []

    def __call__(self, row) -> str:
        self.rows.append(
            RowProblem(
                self.first_line + int(row.number or 1) - 1,
                "<row>",
                f"expected {row.expected_columns} fields, got {row.actual_columns}: {_shown(row.text)}",
            )
        )
        return "skip"


def _raise_first(problems: list[RowProblem], path: Path) -> None:
    first = min(problems, key=lambda p: p.line)
    raise DataError(
        first.reason,
        path=path,
        line=first.line,
        column=None if first.column == "<row>" else first.column,
    )


def _arrow_error(exc: Exception, path: Path) -> DataError:
    text = str(exc)
    if "invalid UTF8" in text or "UTF8" in text:
        return DataError("not UTF-8 text; expected a UTF-8 CSV file", path=path)
    return DataError(f"cannot parse file: {text.splitlines()[0]}", path=path)


def iter_chunks(
    path: str | Path,
    spec: DatasetSpec,
    *,
    chunk_bytes: int = 8 << 20,
    strict: bool = True,
    require_target: bool = False,
    fast: bool = True,
) -> Iterator[Chunk]:
    """Stream a CSV or Parquet file as typed chunks, never holding the whole file.

    Args:
        path: the file; ``.parquet``/``.pq`` is Parquet, anything else CSV (compression is
            detected from the extension, e.g. ``.csv.gz``).
        spec: the dataset spec.
        chunk_bytes: about how much raw CSV goes into one chunk (Parquet uses row groups).
        strict: raise :class:`DataError` at the first bad row; otherwise report bad rows in
            :attr:`Chunk.problems` and leave them out of the frame.
        require_target: whether the file must have the target column.
        fast: parse numbers and booleans directly (falls back to text for batches with bad
            values; the result is the same either way).

    Yields:
        Chunks in file order.
    """
    path = Path(path)
    if is_parquet(path):
        yield from _iter_parquet(path, spec, strict=strict, require_target=require_target)
        return
    header = _csv_header(path, spec)
    present = _check_columns(header, spec, path, require_target=require_target)
    next_line = 2
    for block in _csv_blocks(path, chunk_bytes):
        lines_in_block = block.count(b"\n") + (not block.endswith(b"\n"))
        # Fast path: numbers and booleans parsed by pyarrow into their types. A block with a
        # value that does not fit is parsed again as text, so that every message can quote the
        # value exactly as the file has it; the result is the same either way.
        result = _parse_block(block, header, present, spec, path, next_line, require_target, typed=True) if fast else None
        if result is None:
            result = _parse_block(block, header, present, spec, path, next_line, require_target, typed=False)
        frame, lines, problems = result
        if strict and problems:
            _raise_first(problems, path)
        yield Chunk(frame=frame, first_line=next_line, lines=lines, problems=problems)
        next_line += lines_in_block


def _csv_blocks(path: Path, chunk_bytes: int) -> Iterator[bytes]:
    """The file after its header line, in blocks of about ``chunk_bytes`` that end at a line end.

    Blocks are cut here rather than by pyarrow's streaming reader because that reader reads ahead
    without bound when the consumer is slower than the disk (a 1 GB file was read into memory
    while the first chunks were being scored); this keeps memory at a few blocks whatever the
    file size.
    """
    try:
        stream = pa.input_stream(str(path), compression="detect")
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"cannot read file: {exc}", path=path) from None
    with stream:
        carry = b""
        header_done = False
        while True:
            try:
                data = stream.read(chunk_bytes)
            except (OSError, pa.ArrowException) as exc:
                raise DataError(f"cannot read file: {exc}", path=path) from None
            if not data:
                break
            block = carry + data if carry else data
            if not header_done:
                end = block.find(b"\n")
                if end < 0:
                    carry = block
                    continue
                block, header_done = block[end + 1 :], True
            cut = block.rfind(b"\n")
            if cut < 0:
                carry = block
                continue
            carry = block[cut + 1 :]
            yield block[: cut + 1]
        if header_done and carry:
            yield carry


def _parse_block(
    block: bytes,
    header: list[str],
    present: list[str],
    spec: DatasetSpec,
    path: Path,
    first_line: int,
    require_target: bool,
    *,
    typed: bool,
) -> tuple[pd.DataFrame, np.ndarray, list[RowProblem]] | None:
    """One block of CSV lines as a checked frame; None when ``typed`` and a value does not fit."""
    invalid = _InvalidRows(first_line)
    read, parse, convert = _csv_options(spec, present, len(block) + 1, invalid, typed=typed, names=header)
    try:
        table = pa_csv.read_csv(pa.BufferReader(block), read_options=read, parse_options=parse, convert_options=convert)
    except pa.ArrowInvalid as exc:
        if typed and "conversion error" in str(exc):
            return None
        if invalid.rows:
            _raise_first(invalid.rows, path)
        raise _arrow_error(exc, path) from None
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"cannot read file: {exc}", path=path) from None
    skipped = invalid.rows
    frame, lines, problems = convert_table(table, spec, first_line=first_line, require_target=require_target)
    if typed and problems:
        return None
    if skipped:
        # Lines of rows pyarrow skipped are not in the table: map row positions around them.
        all_lines = _lines_without(first_line, table.num_rows, [r.line for r in skipped])
        lines = all_lines[lines - first_line]
        problems = [RowProblem(int(all_lines[p.line - first_line]), p.column, p.reason, p.id) for p in problems]
    return frame, lines, sorted(problems + skipped, key=lambda p: p.line)


def _lines_without(start: int, count: int, skipped: list[int]) -> np.ndarray:
    """The ``count`` line numbers from ``start`` upwards that are not in ``skipped``."""
    out = []
    line = start
    skip = set(skipped)
    while len(out) < count:
        if line not in skip:
            out.append(line)
        line += 1
    return np.asarray(out, dtype=np.int64)


def _iter_parquet(path: Path, spec: DatasetSpec, *, strict: bool, require_target: bool) -> Iterator[Chunk]:
    _check_path(path)
    try:
        pfile = pq.ParquetFile(str(path))
    except FileNotFoundError:
        raise DataError("file not found", path=path) from None
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"not a readable Parquet file: {exc}", path=path) from None
    header = pfile.schema_arrow.names
    present = _check_columns(header, spec, path, require_target=require_target)
    # Parquet has no lines: "line" is the row number counted like a CSV with a header.
    next_line = 2
    for batch in pfile.iter_batches(columns=present):
        table = pa.Table.from_batches([batch])
        frame, lines, problems = convert_table(table, spec, first_line=next_line, require_target=require_target)
        if strict and problems:
            _raise_first(problems, path)
        yield Chunk(frame=frame, first_line=next_line, lines=lines, problems=problems)
        next_line += batch.num_rows


def read_dataset(path: str | Path, spec: DatasetSpec, *, require_target: bool = True) -> Dataset:
    """Read and validate a whole file.

    Args:
        path: CSV (optionally compressed) or Parquet file.
        spec: the dataset spec.
        require_target: whether the file must have the target column.

    Returns:
        The validated dataset, rows in file order.

    Raises:
        DataError: the first problem found: unreadable or empty file, wrong separator, missing
            column, a value that does not fit its column, a duplicate or missing id.
    """
    path = Path(path)
    chunks = list(iter_chunks(path, spec, chunk_bytes=64 << 20, strict=True, require_target=require_target))
    frames = [c.frame for c in chunks if len(c.frame)]
    if not frames:
        raise DataError("the file has a header but no rows", path=path)
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    ids = frame[spec.id]
    dup = ids.duplicated(keep=False).to_numpy()
    if dup.any():
        lines = np.concatenate([c.lines for c in chunks])
        where = np.flatnonzero(dup)
        first = ids.iloc[where[0]]
        same = where[(ids.iloc[where] == first).to_numpy()]
        raise DataError(
            f"duplicate id {_shown(first)}, also on line {int(lines[same[1]])}; ids must be unique",
            path=path,
            line=int(lines[same[0]]),
            column=spec.id,
        )
    return Dataset(frame=frame, spec=spec, path=path)
