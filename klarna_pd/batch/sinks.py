"""Where batch scores and rejected rows go: CSV (plain or .gz) or Parquet, complete or not at all."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from ..data.batch import RowProblem
from ..data.files import is_parquet
from ..files import atomic_path, temp_beside


class ScoreSink:
    """Writes ``<id><sep>pd`` rows (CSV) or an ``id, pd`` table (Parquet) to a temporary file."""

    def __init__(self, tmp: Path, final: Path, id_name: str, separator: str) -> None:
        self.id_name = id_name
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
        self._writer.write_table(table)

    def close(self) -> None:
        self._writer.close()
        if self._stream is not None:
            self._stream.close()


class RejectSink:
    """Rows that failed validation: ``line``, the id when known, the column and the reason."""

    def __init__(self, tmp: Path, separator: str) -> None:
        self._stream = pa.OSFile(str(tmp), "wb")
        self.schema = pa.schema([("line", pa.int64()), ("id", pa.string()), ("column", pa.string()), ("reason", pa.string())])
        self._writer = pa_csv.CSVWriter(self._stream, self.schema, write_options=pa_csv.WriteOptions(delimiter=separator))
        self.count = 0

    def write(self, problems: Sequence[RowProblem]) -> None:
        if not problems:
            return
        self.count += len(problems)
        self._writer.write_table(
            pa.table(
                {
                    "line": [p.line for p in problems],
                    "id": [p.id for p in problems],
                    "column": [p.column for p in problems],
                    "reason": [p.reason for p in problems],
                },
                schema=self.schema,
            )
        )

    def close(self) -> None:
        self._writer.close()
        self._stream.close()


@contextlib.contextmanager
def open_sinks(output: Path, rejects: Path, id_name: str, separator: str) -> Iterator[tuple[ScoreSink, RejectSink]]:
    """Both sinks on temporary files, moved into place only if the block succeeds.

    The reject file is kept only when some row was rejected; a reject file left by an earlier
    run is then removed, so that it is never taken for this run's.
    """
    with atomic_path(output) as tmp_out:
        tmp_rej = temp_beside(rejects)
        try:
            scores = ScoreSink(tmp_out, output, id_name, separator)
            refused = RejectSink(tmp_rej, separator)
            try:
                yield scores, refused
            finally:
                scores.close()
                refused.close()
            if refused.count:
                os.replace(tmp_rej, rejects)
            else:
                rejects.unlink(missing_ok=True)
        finally:
            tmp_rej.unlink(missing_ok=True)
