"""Read CSV (plain or compressed) and Parquet files into typed batches that agree with a spec.

The file is cut into blocks, each block parsed by pyarrow and typed by :func:`.arrow.read_table`
(the same conversion as Arrow request bodies and Spark). In a strict read a bad file gets one
:class:`DataError` naming the file, the line, the column and the value; nothing downstream runs on
half-checked data. A lenient read (batch scoring) keeps the good rows and explains the others.

Line numbers count the header as line 1, so "line 5" is what an editor shows.
"""

from __future__ import annotations

import csv
import io
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from ..errors import DataError
from ..spec import DatasetSpec
from . import kinds
from .arrow import read_table
from .batch import Batch, RowProblem

if TYPE_CHECKING:
    import pandas as pd

_SEPARATORS = (";", ",", "\t", "|")
_HEAD_BYTES = 1 << 16


class DataWarning(UserWarning):
    """Something about a data file that is tolerated, such as extra columns."""


@dataclass(frozen=True)
class Chunk:
    """Consecutive rows of a file: the good ones typed, the bad ones explained."""

    batch: Batch
    first_line: int
    """Line number of the chunk's first row in the file."""
    lines: np.ndarray
    """Line number of each row of ``batch``."""
    problems: list[RowProblem] = field(default_factory=list)

    @property
    def frame(self) -> pd.DataFrame:
        return self.batch.to_frame()


@dataclass(frozen=True)
class Dataset:
    """A whole validated file."""

    batch: Batch
    spec: DatasetSpec
    path: Path | None = None
    lines: np.ndarray | None = None

    @cached_property
    def frame(self) -> pd.DataFrame:
        """The rows as a DataFrame (id, target, features), for people and tests."""
        return self.batch.to_frame()

    @property
    def is_labelled(self) -> np.ndarray:
        return ~np.isnan(self.batch.target)

    def labelled(self) -> Batch:
        """Rows with a known outcome (target 0 or 1), in file order."""
        return self.batch.take(self.is_labelled)

    def unlabelled(self) -> Batch:
        """Rows to score (target missing), in file order."""
        return self.batch.take(~self.is_labelled)


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


def check_columns(
    header: list[str], spec: DatasetSpec, path: Path, *, require_target: bool
) -> list[str]:
    """The spec's columns present in a file's header, after checking none is missing or repeated.

    Columns the spec does not name are ignored with a :class:`DataWarning`.
    """
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
# Readers


def _csv_options(
    spec: DatasetSpec, present: list[str], block_size: int | None, on_invalid, *, typed: bool, names: list[str] | None = None
):
    """pyarrow options; ``typed`` parses numbers and booleans straight into their types."""
    types = {c: pa.string() for c in present}
    if typed:
        kind_of = {f.name: f.kind for f in spec.features}
        for c in present:
            if kind_of.get(c) in ("numeric", "ordinal") or c == spec.target:
                types[c] = pa.float64()
            elif kind_of.get(c) == "boolean":
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
                f"expected {row.expected_columns} fields, got {row.actual_columns}: {kinds.shown(row.text)}",
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
            :attr:`Chunk.problems` and leave them out of the batch.
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
    present = check_columns(header, spec, path, require_target=require_target)
    next_line = 2
    for block in _csv_blocks(path, chunk_bytes):
        lines_in_block = block.count(b"\n") + (not block.endswith(b"\n"))
        # Fast path: numbers and booleans parsed by pyarrow into their types. A block with a
        # value that does not fit is parsed again as text, so that every message can quote the
        # value exactly as the file has it; the result is the same either way.
        result = _parse_block(block, header, present, spec, path, next_line, require_target, typed=True) if fast else None
        if result is None:
            result = _parse_block(block, header, present, spec, path, next_line, require_target, typed=False)
        batch, lines, problems = result
        if strict and problems:
            _raise_first(problems, path)
        yield Chunk(batch=batch, first_line=next_line, lines=lines, problems=problems)
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
) -> tuple[Batch, np.ndarray, list[RowProblem]] | None:
    """One block of CSV lines as a checked batch; None when ``typed`` and a value does not fit."""
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
    batch, lines, problems = read_table(table, spec, first_line=first_line, require_target=require_target)
    if typed and problems:
        return None
    if skipped:
        # Lines of rows pyarrow skipped are not in the table: map row positions around them.
        all_lines = _lines_without(first_line, table.num_rows, [r.line for r in skipped])
        lines = all_lines[lines - first_line]
        problems = [RowProblem(int(all_lines[p.line - first_line]), p.column, p.reason, p.id) for p in problems]
    return batch, lines, sorted(problems + skipped, key=lambda p: p.line)


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
    present = check_columns(header, spec, path, require_target=require_target)
    # Parquet has no lines: "line" is the row number counted like a CSV with a header.
    next_line = 2
    for batch in pfile.iter_batches(columns=present):
        rows, lines, problems = read_table(pa.Table.from_batches([batch]), spec, first_line=next_line,
                                           require_target=require_target)
        if strict and problems:
            _raise_first(problems, path)
        yield Chunk(batch=rows, first_line=next_line, lines=lines, problems=problems)
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
    batches = [c.batch for c in chunks if len(c.batch)]
    if not batches:
        raise DataError("the file has a header but no rows", path=path)
    batch = Batch.concat(batches)
    lines = np.concatenate([c.lines for c in chunks])
    first, again = first_duplicate(batch.ids)
    if first is not None:
        raise DataError(
            f"duplicate id {kinds.shown(batch.ids[first])}, also on line {int(lines[again])}; ids must be unique",
            path=path,
            line=int(lines[first]),
            column=spec.id,
        )
    return Dataset(batch=batch, spec=spec, path=path, lines=lines)


def first_duplicate(ids: np.ndarray) -> tuple[int | None, int | None]:
    """Positions of the first id that appears twice, and of its next appearance (None, None if all unique)."""
    seen: dict[object, int] = {}
    for i, ident in enumerate(ids.tolist()):
        j = seen.setdefault(ident, i)
        if j != i:
            return j, i
    return None, None
