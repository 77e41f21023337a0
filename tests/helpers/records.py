"""Rows of files as the JSON objects a client sends."""

from __future__ import annotations

from typing import Any


def records_of(frame, spec, *, with_id: bool = True) -> list[dict[str, Any]]:
    """Rows of a typed frame (``Dataset.frame``) as JSON-ready applicant records (NaN -> None)."""
    from klarna_pd.data.batch import Batch
    from klarna_pd.data.records import to_records

    return to_records(Batch.from_frame(frame, spec), with_id=with_id)


def arrow_body(records: list[dict[str, Any]]) -> bytes:
    """JSON-like records as an Arrow IPC stream, the columnar request body."""
    import pyarrow as pa

    table = pa.Table.from_pylist(records)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()
