"""Training-serving skew: the same applicant read from any source becomes the same numbers.

Rows are generated with hypothesis - missing values (both tokens), category levels seen and
unseen, odd-but-valid texts (separators, quotes, unicode, the missing tokens themselves), boundary
numbers - and at most one bad value per row (out of range, not integral, too long). Each row is
then scored through every path a value can take: a CSV file and a Parquet file (the readers of
training and batch scoring), JSON records, an Arrow table, `/predict` and the legacy endpoint of a
real server, the batch CLI and Spark. Every path must give the same PD to the last bit, or refuse
the row, naming the same column.
"""

from __future__ import annotations

import csv
import io
import json
import math
import subprocess
import sys

import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from klarna_pd.data.arrow import read_table
from klarna_pd.data.files import iter_chunks
from klarna_pd.errors import DataError, InputError
from klarna_pd.spec import numbers_in

from ..helpers.paths import ROOT

pytestmark = [pytest.mark.data]

ODD_TEXTS = ["Spaceships", "ünïcødé & shop", "a;b", 'say "hi"', "NA", "", " padded ", "0", "x" * 200]
OUT_OF_RANGE = object()


def _number(f, *, integral: bool):
    lo = f.min if f.min is not None else -1e6
    hi = f.max if f.max is not None else 1e6
    if integral:
        inner = st.integers(int(math.ceil(lo)), int(min(hi, 50)))
    else:
        inner = st.one_of(st.floats(lo, hi, allow_nan=False, allow_infinity=False), st.integers(int(lo), int(min(hi, 10**12))),
                          st.sampled_from([lo, hi]))
    return inner


def _value(f, levels):
    """(value, bad) for one feature: a valid value, or missing."""
    if f.kind == "numeric":
        return st.one_of(st.none(), _number(f, integral=False))
    if f.kind == "ordinal":
        return st.one_of(st.none(), _number(f, integral=True))
    if f.kind == "boolean":
        return st.one_of(st.none(), st.booleans())
    return st.one_of(st.none(), st.sampled_from(levels.get(f.name, []) + ODD_TEXTS))


def _bad_value(f):
    """A value every path must refuse."""
    if f.kind == "numeric":
        return st.sampled_from([x for x in ((f.min - 1) if f.min is not None else None,
                                            (f.max + 0.5) if f.max is not None else None) if x is not None] or [None])
    if f.kind == "ordinal":
        return st.sampled_from([1.5, -1 if (f.min or 0) >= 0 else None])
    if f.kind == "categorical":
        return st.just("y" * 201)
    return st.none()


@st.composite
def rows(draw, spec, levels, n_max=12):
    n = draw(st.integers(1, n_max))
    out = []
    for i in range(n):
        row = {f.name: draw(_value(f, levels)) for f in spec.features}
        bad = None
        if draw(st.integers(0, 4)) == 0:
            f = draw(st.sampled_from([f for f in spec.features if f.kind != "boolean"]))
            value = draw(_bad_value(f))
            if value is not None:
                row[f.name], bad = value, f.name
        row[spec.id] = f"row-{i}"
        out.append((row, bad))
    return out


# -- rendering one row per source ------------------------------------------------------------------


def _csv(rows_, spec, rng) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=spec.separator, lineterminator="\n")
    w.writerow(spec.columns)
    for row, _ in rows_:
        line = [row[spec.id], rng.choice(spec.missing_values)]
        for f in spec.features:
            v = row[f.name]
            if v is None:
                line.append(rng.choice(spec.missing_values))
            elif f.kind == "boolean":
                line.append(rng.choice(_spellings(spec.true_values if v else spec.false_values)))
            elif isinstance(v, float):
                line.append(repr(v))
            else:
                line.append(str(v))
        w.writerow(line)
    return buf.getvalue().encode()


def _spellings(tokens) -> list[str]:
    """A boolean's tokens as files spell them: as listed, with spaces around, and the numbers among
    them as pandas writes a column with a gap (1 -> 1.0)."""
    return [*tokens, *(f" {t}\t" for t in tokens), *(f"{x:.1f}" for x in numbers_in(tokens))]


def _arrow(rows_, spec) -> pa.Table:
    cols = {spec.id: pa.array([r[spec.id] for r, _ in rows_], pa.string())}
    for f in spec.features:
        values = [r[f.name] for r, _ in rows_]
        if f.kind == "categorical":
            cols[f.name] = pa.array(values, pa.string())
        elif f.kind == "boolean":
            cols[f.name] = pa.array(values, pa.bool_())
        else:
            cols[f.name] = pa.array([None if v is None else float(v) for v in values], pa.float64())
    return pa.table(cols)


# -- outcomes: a PD, or the refused column -------------------------------------------------------


def _from_records(model, rows_):
    out = []
    for row, _ in rows_:
        try:
            out.append(float(model.predict_records([dict(row)])[0]))
        except InputError as exc:
            out.append(("refused", exc.problems[0].loc.split(".")[-1]))
    return out


def _from_batch_reader(model, batch, lines, problems, n, first_line):
    by_line = {p.line: ("refused", p.column) for p in problems}
    pds = dict(zip(lines.tolist(), model.predict(batch).tolist())) if len(batch) else {}
    return [by_line.get(first_line + i, pds.get(first_line + i)) for i in range(n)]


def _from_csv(model, rows_, path):
    chunks = list(iter_chunks(path, model.spec, strict=False))
    out: dict[int, object] = {}
    for c in chunks:
        for p in c.problems:
            out[p.line] = ("refused", p.column)
        if len(c.batch):
            out.update(zip(c.lines.tolist(), model.predict(c.batch).tolist()))
    return [out[2 + i] for i in range(len(rows_))]


def _from_arrow(model, table, n):
    batch, lines, problems = read_table(table, model.spec, first_line=0)
    return _from_batch_reader(model, batch, lines, problems, n, 0)


@pytest.fixture(scope="module")
def levels(small_model):
    return small_model.encoder.levels_


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
          derandomize=True, database=None)
@given(data=st.data())
def test_files_json_and_arrow_agree_to_the_last_bit(small_model, levels, tmp_path, data):
    spec = small_model.spec
    rows_ = data.draw(rows(spec, levels))
    rng = np.random.default_rng(len(rows_))
    path = tmp_path / f"skew-{len(rows_)}.csv"
    path.write_bytes(_csv(rows_, spec, rng))
    parquet = tmp_path / "skew.parquet"
    pq.write_table(_arrow(rows_, spec), parquet)
    expected_refusals = [bad for _, bad in rows_]
    outcomes = {
        "json": _from_records(small_model, rows_),
        "csv": _from_csv(small_model, rows_, path),
        "parquet": _from_csv(small_model, rows_, parquet),
        "arrow": _from_arrow(small_model, _arrow(rows_, spec), len(rows_)),
    }
    for name, got in outcomes.items():
        assert got == outcomes["json"], (name, got, outcomes["json"])
    assert [o[1] if isinstance(o, tuple) else None for o in outcomes["json"]] == expected_refusals


# -- the same rows through a real server, the batch CLI and Spark ---------------------------------


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
          derandomize=True, database=None)
@given(data=st.data())
@pytest.mark.slow
@pytest.mark.service
def test_server_batch_cli_and_spark_agree_with_the_library(small_model, small_trained, levels, server, spark, tmp_path, data):
    import bentoml

    from klarna_pd.batch.spark import score_file_spark

    spec = small_model.spec
    rows_ = data.draw(rows(spec, levels, n_max=20))
    expected = _from_records(small_model, rows_)
    with httpx.Client(base_url=server, timeout=30) as client:
        served, legacy = [], []
        for row, _ in rows_:
            resp = client.post("/predict", json={"applicants": [dict(row)]})
            served.append(resp.json()[0]["pd"] if resp.status_code == 200
                          else ("refused", resp.json()["errors"][0]["loc"].split(".")[-1]))
            # The legacy clients' own encoding: NaN for missing numbers, the target column sent too.
            body = {k: (float("nan") if v is None and k in spec.number_names else v) for k, v in row.items()}
            body[spec.target] = float("nan")
            resp = client.post("/estimate-default-probability", content=json.dumps(body).encode(),
                               headers={"content-type": "application/json"})
            legacy.append(resp.json()["default_probability"] if resp.status_code == 200
                          else ("refused", resp.json()["errors"][0]["loc"]))
    assert served == expected
    assert legacy == expected

    src = tmp_path / "in.csv"
    src.write_bytes(_csv(rows_, spec, np.random.default_rng(7)))
    out = tmp_path / "out.csv"
    proc = subprocess.run([sys.executable, "-m", "klarna_pd.batch", "--model", small_trained.model_tag, "--input",
                           str(src), "--output", str(out), "--quiet"], cwd=ROOT, capture_output=True, text=True)
    every_row_refused = all(isinstance(e, tuple) for e in expected)  # exit 1: nothing could be scored
    assert proc.returncode == (1 if every_row_refused else 0), proc.stderr
    cli = _outcomes_of_files(out, rows_, spec)
    assert cli == expected
    spark_out = tmp_path / "spark.csv"
    try:
        score_file_spark(bentoml.models.get(small_trained.model_tag).path, spec, str(src), spark_out)
    except DataError as exc:  # every row refused: no output, the rejects written
        assert every_row_refused and "none of the" in str(exc), exc
    assert _outcomes_of_files(spark_out, rows_, spec) == expected


def _outcomes_of_files(out, rows_, spec):
    pds = {}
    if out.exists():  # not when every row was refused
        scores = pd.read_csv(out, sep=spec.separator, dtype={spec.id: str}, float_precision="round_trip")
        pds = dict(zip(scores[spec.id], scores["pd"]))
    rejects_path = out.with_name(out.name + ".rejects.csv")
    refused = {}
    if rejects_path.exists():
        rejects = pd.read_csv(rejects_path, sep=spec.separator, dtype=str, keep_default_na=False)
        refused = dict(zip(rejects[spec.id], rejects["column"]))
    return [("refused", refused[row[spec.id]]) if row[spec.id] in refused else float(pds[row[spec.id]]) for row, _ in rows_]
