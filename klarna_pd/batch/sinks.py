"""Where batch scores and rejected rows go: CSV (plain or .gz) or Parquet, complete or not at all.

CSV is written as RFC 4180 reads it: a field is quoted only when it holds the separator, a quote or
a line break, and a quote inside is doubled. The score file holds ids exactly as read (the id
policy, :mod:`.ids`, keeps formula-like ids out of it); the rejects file, which is for people, puts
a ``'`` before any cell a spreadsheet would take for a formula.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from ..data.batch import RowProblem
from ..data.files import is_parquet
from ..errors import DataError
from ..files import atomic_path, first_missing, remove_empty, resolved, temp_beside
from .ids import formula_like


def csv_field(text: str, separator: str) -> str:
    """``text`` as one CSV field: quoted (inner quotes doubled) only when it must be."""
    if separator in text or '"' in text or "\n" in text or "\r" in text:
        return '"' + text.replace('"', '""') + '"'
    return text


class ScoreSink:
    """Writes ``<id><sep>pd`` rows (CSV) or an ``id, pd`` table (Parquet) to a temporary file."""

    def __init__(self, tmp: Path, final: Path, id_name: str, separator: str) -> None:
        self.id_name = id_name
        self.separator = separator
        self.count = 0
        # An id that needs quotes is rare: pyarrow writes the chunks without one, unquoted (its
        # "needed" style would quote every id), and the others are written here.
        self._needs_quotes = f'[\\x{{{ord(separator):x}}}"\\r\\n]'
        self.parquet = is_parquet(final)
        self.schema = pa.schema([(id_name, pa.string()), ("pd", pa.float64())])
        if self.parquet:
            self._writer = pq.ParquetWriter(str(tmp), self.schema, compression="zstd")
            self._stream = None
        else:
            gz = final.suffix.lower() == ".gz"
            self._stream = pa.CompressedOutputStream(str(tmp), "gzip") if gz else pa.OSFile(str(tmp), "wb")
            self._writer = pa_csv.CSVWriter(
                self._stream, self.schema, write_options=pa_csv.WriteOptions(delimiter=separator, quoting_style="none", quoting_header="none")
            )

    def write(self, ids: Sequence[str], pds: np.ndarray) -> None:
        table = pa.table({self.id_name: pa.array(ids, type=pa.string()), "pd": pa.array(pds, type=pa.float64())})
        self.count += table.num_rows
        if self.parquet or not pc.any(pc.match_substring_regex(table[self.id_name], self._needs_quotes)).as_py():
            self._writer.write_table(table)
            return
        # The same text for the PD as pyarrow's writer gives (it casts the column the same way).
        pd_text = pc.cast(table["pd"], pa.string()).to_pylist()
        sep = self.separator
        lines = "".join(f"{csv_field(i, sep)}{sep}{p}\n" for i, p in zip(table[self.id_name].to_pylist(), pd_text))
        self._stream.write(lines.encode("utf-8"))

    def close(self) -> None:
        self._writer.close()
        if self._stream is not None:
            self._stream.close()


class RejectSink:
    """Rows that failed validation: ``line;<id>;column;reason`` with a header line, UTF-8."""

    def __init__(self, tmp: Path, id_name: str, separator: str) -> None:
        self._file = open(tmp, "w", encoding="utf-8", newline="")  # noqa: SIM115 - closed in close()
        self.separator = separator
        self.header = separator.join(["line", id_name, "column", "reason"])
        self.count = 0

    def _cell(self, text: str | None) -> str:
        if text is None:
            return ""
        return csv_field("'" + text if formula_like(text) else text, self.separator)

    def write(self, problems: Sequence[RowProblem]) -> None:
        if not problems:
            return
        out = io.StringIO()
        if not self.count:
            out.write(self.header + "\n")
        sep = self.separator
        for p in problems:
            line = "" if p.line is None else p.line
            cells = sep.join((self._cell(p.id), self._cell(p.column), self._cell(p.reason)))
            out.write(f"{line}{sep}{cells}\n")
        self._file.write(out.getvalue())
        self.count += len(problems)

    def close(self) -> None:
        self._file.close()


def none_scored(rejected: int, rejects: object) -> DataError:
    """The failure of a run that rejected every row (a scheduler must not take it for a day's
    scores): raised before the output is committed, after the rejects are."""
    return DataError(f"none of the {rejected:,} rows could be scored; the reasons are in {rejects}")


def _remove_stale(rejects: Path, header: str) -> None:
    """Remove an earlier run's rejects file, so that it is never taken for this run's; a file of
    that name that does not begin with the rejects header is someone else's (``--rejects`` names
    any path) and stays."""
    try:
        with open(rejects, "rb") as f:
            first = f.readline(len(header.encode("utf-8")) + 3)
    except FileNotFoundError:
        return
    except OSError:
        return  # unreadable or not a file: not ours to remove
    if first.rstrip(b"\r\n") == header.encode("utf-8"):
        rejects.unlink(missing_ok=True)


@contextlib.contextmanager
def open_sinks(output: Path, rejects: Path, id_name: str, separator: str) -> Iterator[tuple[ScoreSink, RejectSink]]:
    """Both sinks on temporary files, moved into place only if the block succeeds.

    The reject file is kept only when some row was rejected; a reject file left by an earlier
    run is then removed, so that it is never taken for this run's.
    """
    rejects = resolved(rejects)
    with atomic_path(output) as tmp_out:
        made = first_missing(rejects.parent)
        tmp_rej = temp_beside(rejects)
        kept = False
        try:
            scores = ScoreSink(tmp_out, output, id_name, separator)
            refused = RejectSink(tmp_rej, id_name, separator)
            try:
                yield scores, refused
            finally:
                scores.close()
                refused.close()
            if refused.count:
                os.replace(tmp_rej, rejects)
                kept = True
            else:
                _remove_stale(rejects, refused.header)
            if refused.count and not scores.count:  # the previous output stays: this run has none
                raise none_scored(refused.count, rejects)
        finally:
            tmp_rej.unlink(missing_ok=True)
            if not kept:  # no rejects file, or a failed run: no directory made for one either
                remove_empty(rejects.parent, up_to=made)
