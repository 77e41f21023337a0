"""Whole synthetic files: ids, labels from the true PD, and the real file's text format."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from ..data.files import is_parquet
from ..files import atomic_path, sha256_file
from .facts import load_facts
from .generator import generate_features
from .provenance import SynthRecord, write_record
from .truth import true_pd

#: Rows per generated chunk. Part of the recipe: the same seed gives the same file only with it.
CHUNK_ROWS = 100_000
#: Share of rows with ``default = NA`` in the real file (10,000 of 99,976), placed last.
UNLABELLED_SHARE = 10_000 / 99_976
_FLOAT_DECIMALS = 6


@dataclass(frozen=True)
class SynthChunk:
    frame: pd.DataFrame
    """uuid, default, then the features, as :mod:`klarna_pd.data` types them."""
    true_pd: np.ndarray


def _uuid4(rng: np.random.Generator, n: int) -> np.ndarray:
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    hexed = np.frombuffer(raw.tobytes().hex().encode("ascii"), dtype=np.uint8).reshape(n, 32)
    out = np.full((n, 36), ord("-"), dtype=np.uint8)
    for dst, src in ((0, 0), (9, 8), (14, 12), (19, 16), (24, 20)):
        width = {0: 8, 8: 4, 12: 4, 16: 4, 20: 12}[src]
        out[:, dst : dst + width] = hexed[:, src : src + width]
    return out.view("S36").ravel().astype(str).astype(object)


def unlabelled_rows(rows: int, share: float = UNLABELLED_SHARE) -> int:
    return int(round(rows * share))


def iter_synthetic(rows: int, seed: int, *, unlabelled_share: float = UNLABELLED_SHARE) -> Iterator[SynthChunk]:
    """Generate ``rows`` rows in chunks; the last ``unlabelled_share`` of them have no label."""
    first_unlabelled = rows - unlabelled_rows(rows, unlabelled_share)
    for index, start in enumerate(range(0, rows, CHUNK_ROWS)):
        n = min(CHUNK_ROWS, rows - start)
        rng = np.random.default_rng([seed, index])
        features = generate_features(n, rng)
        pd_true = true_pd(features)
        labels = (rng.random(n) < pd_true).astype(float)
        position = np.arange(start, start + n)
        labels[position >= first_unlabelled] = np.nan
        frame = pd.concat(
            [pd.DataFrame({"uuid": _uuid4(rng, n), "default": labels}), features], axis=1, copy=False
        )
        yield SynthChunk(frame=frame, true_pd=pd_true)


def generate(rows: int, seed: int = 0, *, unlabelled_share: float = UNLABELLED_SHARE) -> tuple[pd.DataFrame, np.ndarray]:
    """A synthetic Klarna-like frame in memory and the true PD of each row."""
    chunks = list(iter_synthetic(rows, seed, unlabelled_share=unlabelled_share))
    frame = pd.concat([c.frame for c in chunks], ignore_index=True)
    return frame, np.concatenate([c.true_pd for c in chunks])


# ---------------------------------------------------------------------------------------------
# The real file's format: ';', NA, TRUE/FALSE, quoted strings, whole numbers without decimals.


# pyarrow will not write a quote character unescaped; strings are wrapped in this stand-in
# instead, and it becomes '"' in the bytes written (no value holds it).
_QUOTE = "\x01"


def _quoted(values: np.ndarray) -> pa.Array:
    return pc.binary_join_element_wise(_QUOTE, pa.array(values, type=pa.string()), _QUOTE, "")


def _csv_bytes(table: pa.Table, *, header: bool) -> bytes:
    buf = pa.BufferOutputStream()
    pa_csv.write_csv(
        table,
        buf,
        write_options=pa_csv.WriteOptions(
            include_header=header, delimiter=";", quoting_style="none", quoting_header="none"
        ),
    )
    return buf.getvalue().to_pybytes().replace(_QUOTE.encode(), b'"')


def _text_table(frame: pd.DataFrame) -> pa.Table:
    facts = load_facts()["columns"]
    out = {}
    for name in frame.columns:
        col = facts[name]
        values = frame[name].to_numpy()
        if col["type"] in ("id", "categorical") and values.dtype == object:
            text = _quoted(values)
        elif col["type"] == "boolean":
            text = pa.array(np.where(values == 1.0, "TRUE", "FALSE"))
        else:
            floats = values.astype(float)
            mask = np.isnan(floats)
            if col["type"] == "numeric" and not col.get("integer", True):
                arr = pa.array(np.round(floats, _FLOAT_DECIMALS), mask=mask)
            else:
                arr = pa.array(np.nan_to_num(floats).astype(np.int64), mask=mask)
            text = pc.cast(arr, pa.string())
        out[name] = pc.fill_null(text, "NA")
    return pa.table(out)


def _open_sink(path: Path, *, gzip: bool) -> pa.NativeFile:
    if gzip:
        return pa.CompressedOutputStream(str(path), "gzip")
    return pa.OSFile(str(path), "wb")


def write_synthetic(
    out: str | Path,
    *,
    rows: int,
    seed: int = 0,
    truth: str | Path | None = None,
    unlabelled_share: float = UNLABELLED_SHARE,
    progress: Callable[[int, int, float], None] | None = None,
) -> None:
    """Write a synthetic file (CSV, ``.csv.gz`` or Parquet) and optionally ``uuid;true_pd``.

    Both files appear complete or not at all: they are written to temporary names and renamed.
    The file's provenance record, ``<out>.synthetic.json`` (recipe and sha256), is written beside
    it, so training recognises the stand-in wherever it is (:mod:`klarna_pd.synth.provenance`).

    Args:
        out: the data file to write.
        rows: number of rows.
        seed: random seed; the same seed and rows give the same bytes.
        truth: where to write each row's true PD, if wanted.
        unlabelled_share: share of rows, at the end, with ``default = NA``.
        progress: called after each chunk with (rows done, rows, seconds so far).
    """
    out = Path(out)
    parquet = is_parquet(out)
    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        tmp_out = stack.enter_context(atomic_path(out))
        tmp_truth = stack.enter_context(atomic_path(truth)) if truth else None
        data_writer = truth_writer = None
        data_sink = _open_sink(tmp_out, gzip=out.suffix.lower() == ".gz") if not parquet else None
        truth_sink = pa.OSFile(str(tmp_truth), "wb") if tmp_truth else None
        try:
            done = 0
            for chunk in iter_synthetic(rows, seed, unlabelled_share=unlabelled_share):
                if parquet:
                    table = pa.Table.from_pandas(chunk.frame, preserve_index=False)
                    data_writer = data_writer or pq.ParquetWriter(str(tmp_out), table.schema)
                    data_writer.write_table(table)
                else:
                    data_sink.write(_csv_bytes(_text_table(chunk.frame), header=done == 0))
                if truth_sink is not None:
                    ttable = pa.table(
                        {"uuid": pa.array(chunk.frame["uuid"].to_numpy(), type=pa.string()),
                         "true_pd": pc.cast(pa.array(chunk.true_pd), pa.string())}
                    )
                    if truth_writer is None:
                        truth_writer = pa_csv.CSVWriter(
                            truth_sink,
                            ttable.schema,
                            write_options=pa_csv.WriteOptions(
                                delimiter=";", quoting_style="none", quoting_header="none"
                            ),
                        )
                    truth_writer.write_table(ttable)
                done += len(chunk.frame)
                if progress is not None:
                    progress(done, rows, time.perf_counter() - started)
        finally:
            for closable in (data_writer, truth_writer, data_sink, truth_sink):
                if closable is not None:
                    closable.close()
        digest = sha256_file(tmp_out)
    write_record(out, SynthRecord(rows=rows, seed=seed, unlabelled_share=unlabelled_share,
                                  chunk_rows=CHUNK_ROWS, sha256=digest))
