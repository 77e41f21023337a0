"""Read CSV (plain or compressed) and Parquet files into typed batches that agree with a spec.

The file is cut into blocks of whole lines (:mod:`.lines`: line ends, quotes, the line limit),
each block parsed by pyarrow (:mod:`.csvblocks`) and typed by :func:`.arrow.read_table` (the same
conversion as Arrow request bodies and Spark). In a strict read a bad file gets one :class:`DataError` naming the file,
the line, the column and the value; nothing downstream runs on half-checked data. A lenient read
(batch scoring) keeps the good rows and explains the others, and every row of the file is one or
the other: the rows of each block are counted from its bytes and checked against what the parser
returned.

Line numbers count the header as line 1, so "line 5" is what an editor shows.
"""

from __future__ import annotations

import csv
import difflib
import io
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import DataError
from ..spec import DatasetSpec
from . import kinds
from .arrow import read_table
from .batch import Batch, RowProblem
from .csvblocks import read_block
from .lines import MAX_LINE_BYTES, Block, LongLine, cut, long_line_reason, not_utf8, scan

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


@dataclass
class Tally:
    """What a reader found in a file, counted without the CSV parser: non-blank lines after the
    header (CSV) or the row count in the file's metadata (Parquet)."""

    rows_in: int = 0
    complete: bool = False
    """Whether the whole file was read."""


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


#: Compressed CSV by extension, in any case (pyarrow's own detection knows lower case only).
_CODECS = {".gz": "gzip", ".gzip": "gzip", ".bz2": "bz2", ".zst": "zstd", ".zstd": "zstd", ".lz4": "lz4"}


def compression_of(path: str | Path) -> str | None:
    """The codec a file's extension names (``data.CSV.GZ``: gzip), None for an uncompressed file."""
    return _CODECS.get(Path(path).suffix.lower())


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
    if not path.is_file():
        # /dev/stdin, <(...), a FIFO: the readers go over a file more than once (header, line count, rows).
        raise DataError("expected a regular file, got a pipe or device (save the rows to a file first)", path=path)


def _read_head(path: Path) -> bytes:
    _check_path(path)
    try:
        with pa.input_stream(str(path), compression=compression_of(path)) as stream:
            return stream.read(_HEAD_BYTES)
    except FileNotFoundError:
        raise DataError("file not found", path=path) from None
    except IsADirectoryError:
        raise DataError("expected a file, got a directory", path=path) from None
    except PermissionError:
        raise DataError("permission denied", path=path) from None
    except (OSError, pa.ArrowException) as exc:
        if compression_of(path):
            raise DataError(f"not a valid {path.suffix[1:]} file ({exc})", path=path) from None
        raise DataError(f"cannot read file: {exc}", path=path) from None


def _csv_header(path: Path, spec: DatasetSpec) -> list[str]:
    head = _read_head(path)
    if not head.removeprefix(b"\xef\xbb\xbf").strip():  # a byte-order mark alone is empty too
        raise DataError("file is empty, expected a header line and rows", path=path)
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        # A cut multi-byte character at the end of the sample is not an error.
        if exc.start < len(head) - 4:
            raise not_utf8(head, 0, 1, path) from None
        text = head[: exc.start].decode("utf-8")
    if b"\n" not in head and b"\r" in head.rstrip(b"\r"):
        raise DataError("lines end with CR alone (classic Mac OS); expected LF or CRLF line endings: convert "
                        "the file, e.g. tr '\\r' '\\n'", path=path, line=1)
    if len(head) == _HEAD_BYTES and b"\n" not in head:
        raise DataError(f"the header line is longer than {_HEAD_BYTES:,} bytes; is this a CSV file?", path=path, line=1)
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
    """The spec's columns to read from a file's header, after checking none is missing or repeated.

    Columns the spec does not name are ignored with a :class:`DataWarning`. A file to score
    (``require_target`` False) may carry the target column: it is not read, so no outcome text
    (a Lending Club "Current") refuses a row that is there to be scored.
    """
    wanted = spec.columns if require_target else [c for c in spec.columns if c != spec.target]
    repeated = sorted({c for c in header if header.count(c) > 1})
    if repeated:
        raise DataError(f"columns repeated in the header: {repeated}", path=path, line=1)
    extra = [c for c in header if c not in spec.columns]
    missing = [c for c in wanted if c not in header]
    if missing:
        shown = missing if len(missing) <= 8 else missing[:8] + [f"... {len(missing) - 8} more"]
        near = _near_misses(missing, extra)
        parquet = is_parquet(path)
        why = (f"near misses: {', '.join(f'{c!r} is perhaps {h!r}' for c, h in near.items())}" if near
               else None if parquet else f"is the separator {spec_separator_name(spec)} right?")
        held = f"the file has {len(header)} columns" if parquet else f"the header has {len(header)} columns"
        raise DataError(f"missing columns {shown}; {held}" + (f" ({why})" if why else ""),
                        path=path, line=None if parquet else 1)
    if extra:
        warnings.warn(
            f"{path}: ignoring {len(extra)} column(s) the spec does not name: {extra[:8]}",
            DataWarning,
            stacklevel=3,
        )
    return [c for c in wanted if c in header]


def _near_misses(missing: list[str], others: list[str]) -> dict[str, str]:
    """Header names that are probably the missing columns: the same but for spaces and case, or
    nearly the same spelling."""
    near = {}
    for column in missing:
        same = [h for h in others if h.strip().casefold() == column.strip().casefold()]
        close = same or difflib.get_close_matches(column, others, n=1, cutoff=0.8)
        if close:
            near[column] = close[0]
    return near


def spec_separator_name(spec: DatasetSpec) -> str:
    return {"\t": "tab", ";": "';'", ",": "','", "|": "'|'"}.get(spec.separator, repr(spec.separator))


# ---------------------------------------------------------------------------------------------
# Readers


def _raise_first(problems: list[RowProblem], path: Path) -> None:
    first = min(problems, key=lambda p: p.line)
    raise DataError(
        first.reason,
        path=path,
        line=first.line,
        column=None if first.column == "<row>" else first.column,
    )


def iter_chunks(
    path: str | Path,
    spec: DatasetSpec,
    *,
    chunk_bytes: int = 8 << 20,
    strict: bool = True,
    require_target: bool = False,
    fast: bool = True,
    max_line: int = MAX_LINE_BYTES,
    tally: Tally | None = None,
) -> Iterator[Chunk]:
    """Stream a CSV or Parquet file as typed chunks, never holding the whole file.

    Args:
        path: the file; ``.parquet``/``.pq`` is Parquet, anything else CSV (compression is
            detected from the extension, e.g. ``.csv.gz``).
        spec: the dataset spec.
        chunk_bytes: about how much raw CSV goes into one chunk (Parquet uses row groups).
        strict: raise :class:`DataError` at the first bad row; otherwise report bad rows in
            :attr:`Chunk.problems` and leave them out of the batch.
        require_target: whether the file must have the target column (and its values are read);
            False for a file to score, whose target column, if any, is ignored.
        fast: parse numbers and booleans directly (falls back to text for batches with bad
            values; the result is the same either way).
        max_line: longest CSV line in bytes; a longer one is a bad row (:mod:`.lines`).
        tally: counts the file's rows as they are read, independently of the parser.

    Yields:
        Chunks in file order; each row of the file is in one chunk's batch or problems.

    Raises:
        DataError: the file cannot be read, its header does not fit the spec, it is not UTF-8
            (naming the line and byte), or (``strict``) a row is bad.
    """
    path = Path(path)
    tally = tally if tally is not None else Tally()
    if is_parquet(path):
        yield from _iter_parquet(path, spec, strict=strict, require_target=require_target, tally=tally)
        tally.complete = True
        return
    header = _csv_header(path, spec)
    present = check_columns(header, spec, path, require_target=require_target)
    for piece in _csv_pieces(path, chunk_bytes, max_line):
        if isinstance(piece, LongLine):
            tally.rows_in += 1
            problems = [RowProblem(piece.line, "<row>", long_line_reason(piece.size, max_line))]
            batch, lines, first = Batch.empty(spec), np.empty(0, dtype=np.int64), piece.line
        else:
            rows = scan(piece.data, piece.first_line)
            tally.rows_in += len(rows)
            batch, lines, problems = read_block(piece, rows, header, present, spec, path, require_target,
                                                 fast=fast, max_line=max_line)
            if len(batch) + len(problems) != len(rows):
                raise DataError(
                    f"{len(rows):,} rows from line {piece.first_line:,} on came back as {len(batch):,} read and "
                    f"{len(problems):,} rejected; refusing to go on with rows unaccounted for",
                    path=path,
                )
            first = piece.first_line
        if strict and problems:
            _raise_first(problems, path)
        yield Chunk(batch=batch, first_line=first, lines=lines, problems=problems)
    tally.complete = True


def _csv_pieces(path: Path, chunk_bytes: int, max_line: int) -> Iterator[Block | LongLine]:
    try:
        stream = pa.input_stream(str(path), compression=compression_of(path))
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"cannot read file: {exc}", path=path) from None

    def read(n: int) -> bytes:
        try:
            return stream.read(n)
        except (OSError, pa.ArrowException) as exc:
            raise DataError(f"cannot read file: {exc}", path=path) from None

    with stream:
        yield from cut(read, chunk_bytes, max_line=max_line, path=path)


def _iter_parquet(path: Path, spec: DatasetSpec, *, strict: bool, require_target: bool, tally: Tally) -> Iterator[Chunk]:
    _check_path(path)
    try:
        pfile = pq.ParquetFile(str(path))
    except FileNotFoundError:
        raise DataError("file not found", path=path) from None
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"not a readable Parquet file: {exc}", path=path) from None
    header = pfile.schema_arrow.names
    present = check_columns(header, spec, path, require_target=require_target)
    tally.rows_in += pfile.metadata.num_rows
    # Parquet has no lines: "line" is the row number counted like a CSV with a header.
    next_line = 2
    for batch in pfile.iter_batches(columns=present):
        try:
            rows, lines, problems = read_table(pa.Table.from_batches([batch]), spec, first_line=next_line,
                                               require_target=require_target)
        except DataError as exc:  # a column of a type its kind cannot take: name the file too
            raise DataError(exc.reason, path=path, column=exc.column) from None
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
