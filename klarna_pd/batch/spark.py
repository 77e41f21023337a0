"""Batch scoring on Spark with ``mapInPandas``: the same checks and the same ``PDModel.predict``.

The model's directory is shipped to the executors once (``SparkContext.addFile``); each Python
worker loads it on first use, checking its signature with the driver's key and every file's sha256,
and keeps it. Rows arrive as text, as in the file, and go through
:func:`klarna_pd.data.arrow.read_table` exactly as on one machine, so a row gets the same PD, to the
last digit, on either engine; rows that fail come back with the reason.

The local engine's rules hold here too: one row per line (Spark's ``multiLine`` stays off, so a
stray quote costs its own line), the id policy of :mod:`.ids` (formula-like ids refused in the
executors; later duplicates refused on the driver when it writes the output), and the invariant
rows in = scored + rejected, with rows in counted from the input's lines by ``spark.read.text``.
Not here: the line-length limit (Spark's own reader holds each line; its ``maxCharsPerColumn``
fails the whole job rather than the row).
"""

from __future__ import annotations

import os
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa

from ..data.arrow import read_table
from ..data.batch import RowProblem
from ..data.files import check_columns, is_parquet
from ..errors import DataError, SparkStartError
from ..model import PDModel
from ..model.levels import UncodedLevels, merged_state
from ..spec import DatasetSpec
from ..store.records import load_directory
from ..store.signing import Trust
from .ids import FORMULA_START, IdLedger, screen, screen_ids
from .sinks import none_scored

if TYPE_CHECKING:
    from pyspark.accumulators import Accumulator
    from pyspark.sql import Column, DataFrame, SparkSession

CORRUPT = "_corrupt_record"
_models: dict[tuple[str, bool], PDModel] = {}
_lock = threading.Lock()


def session(master: str | None = None, app: str = "klarna-pd-batch") -> SparkSession:
    """A SparkSession whose Python workers run this interpreter (with our dependencies)."""
    # Without this, local workers start the system Python, which lacks pyarrow and lightgbm.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(app)
    if master:
        builder = builder.master(master)
    return (
        builder.config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.ui.enabled", "false")
        # Spark's stage bar redraws itself with carriage returns: only for a person at a terminal.
        .config("spark.ui.showConsoleProgress", str(sys.stderr.isatty()).lower())
        .getOrCreate()
    )


def _executor_model(path: str, trust_wire, compiled_trees: bool) -> PDModel:
    key = (path, compiled_trees)
    with _lock:
        if key not in _models:
            # The driver's trust travels with the task: an executor's environment may lack the key.
            model = load_directory(path, trust=Trust.from_wire(trust_wire))
            if compiled_trees:
                model.compile_trees()  # seconds: once per Python worker, not per partition
            _models[key] = model
        return _models[key]


def level_counter(spark: SparkSession) -> Accumulator:
    """An accumulator for :func:`score_dataframe`'s ``levels``: the executors' counts of category
    levels the model has no code for, read on the driver with
    ``UncodedLevels(model.encoder).merge(counter.value)``. Every computation of the scored
    DataFrame counts again (a second action on it, or a task Spark runs again): cache it and
    compute it once; the counts are a report, not a ledger."""
    from pyspark.accumulators import AccumulatorParam

    class Param(AccumulatorParam):
        def zero(self, value):
            return {}

        def addInPlace(self, a, b):
            return merged_state(a, b)  # into a, as Spark allows

    return spark.sparkContext.accumulator({}, Param())


def column(name: str) -> Column:
    """A column by its name as the file or spec spells it: quoted, since Spark reads ``ratio.x`` in a
    name as the field ``x`` of a struct ``ratio`` (a spec's dotted feature name failed to resolve)."""
    from pyspark.sql import functions as F

    return F.col("`" + name.replace("`", "``") + "`")


def _check_empty_is_missing(spec: DatasetSpec, path: str) -> None:
    """Spark's CSV reader makes an empty unquoted field null in every column whatever its options
    (``nullValue``, ``emptyValue``); where the empty text is no missing token, the local engine
    reads it as a text (a level, or refused as a number), so the two would score apart."""
    columns = [(spec.id, spec.missing_values), (spec.target, spec.missing_values),
               *((f.name, spec.missing_of(f)) for f in spec.features)]
    lacking = [name for name, tokens in columns if "" not in tokens]
    if lacking:
        raise DataError(
            f"Spark reads an empty CSV field as missing in every column, but the missing_values of "
            f"{lacking[:5]}{' ...' if len(lacking) > 5 else ''} do not include the empty text, so the "
            "local engine reads it as a text there: add \"\" to them, or score with --engine local",
            path=Path(path),
        )


def read_text(spark: SparkSession, path: str, spec: DatasetSpec) -> DataFrame:
    """The file's columns as text (Parquet: as stored), malformed CSV rows kept in ``_corrupt_record``."""
    from pyspark.sql.types import StringType, StructField, StructType

    if is_parquet(path):
        df = spark.read.parquet(path)
    else:
        _check_empty_is_missing(spec, path)
        header = spark.read.option("sep", spec.separator).option("header", True).csv(path).columns
        fields = [StructField(c, StringType()) for c in header] + [StructField(CORRUPT, StringType())]
        df = (
            spark.read.schema(StructType(fields))
            .option("sep", spec.separator)
            .option("header", True)
            .option("quote", '"')
            .option("escape", '"')  # RFC 4180: "" is a quote in a quoted field (Spark's default escape: backslash)
            .option("mode", "PERMISSIVE")
            .option("columnNameOfCorruptRecord", CORRUPT)
            .option("enforceSchema", False)
            .csv(path)
        )
    check_columns([c for c in df.columns if c != CORRUPT], spec, Path(path), require_target=False)
    # The target too, when the file has it (the executors do not read it): Spark parses only the
    # columns a query needs, and a row cut short was no longer taken for a malformed one without it.
    present = [c for c in spec.columns if c in df.columns]
    return df.select(*map(column, present), *([CORRUPT] if CORRUPT in df.columns else []))


def count_rows(spark: SparkSession, path: str) -> int:
    """Rows in the input, counted without the CSV parser: non-blank lines less one header per
    file (Parquet: the row count)."""
    from pyspark.sql import functions as F

    if is_parquet(path):
        return spark.read.parquet(path).count()
    lines = spark.read.text(path).where(F.length("value") > 0).select(F.input_file_name().alias("file"))
    counts = lines.agg(F.count(F.lit(1)).alias("n"), F.countDistinct("file").alias("files")).first()
    return int(counts["n"]) - int(counts["files"])


def score_dataframe(
    df: DataFrame, model_dir: str | Path, spec: DatasetSpec, *, compiled_trees: bool = False,
    levels: Accumulator | None = None,
) -> DataFrame:
    """Score a Spark DataFrame of the spec's columns (text or typed).

    Args:
        df: rows to score; needs the id and every feature column.
        model_dir: a model directory (a store entry or a pulled model) on the driver.
        spec: the model's dataset spec.
        compiled_trees: executors score with the booster compiled (:meth:`PDModel.compile_trees`;
            needs lleaves on the executors, else LightGBM scores): the same PDs.
        levels: an accumulator from :func:`level_counter` to count the category levels the model
            has no code for (:mod:`klarna_pd.model.levels`): read it after computing the result
            once (each computation counts again).

    Returns:
        A DataFrame of ``<id>, pd, column, reason``: ``pd`` for scored rows; ``column`` and
        ``reason`` (and a null ``pd``) for rows that failed validation.
    """
    spark = df.sparkSession
    trust_wire = Trust.from_env().to_wire()
    model_dir = Path(model_dir).resolve()
    spark.sparkContext.addFile(str(model_dir), recursive=True)
    name = model_dir.name
    id_name = spec.id
    features = set(spec.feature_names)

    def score(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        from pyspark import SparkFiles

        model = _executor_model(SparkFiles.get(name), trust_wire, compiled_trees)
        tally = UncodedLevels(model.encoder) if levels is not None else None
        for pdf in batches:
            pdf.columns = cols  # the file's names back (see the select below)
            pdf = pdf.drop(columns=[spec.target], errors="ignore")  # rows to score: no outcome read
            corrupt = pdf.pop(CORRUPT) if CORRUPT in pdf.columns else pd.Series([None] * len(pdf))
            malformed = corrupt.notna().to_numpy()
            # Missing-value tokens, text columns and value checks: the local reader's own rules.
            table = pa.Table.from_pandas(pdf[~malformed].reset_index(drop=True), preserve_index=False)
            batch, _, problems = read_table(table, spec, first_line=0)
            batch, refused = screen(batch, np.zeros(len(batch), dtype=np.int64), None, id_name)
            problems = problems + refused
            pds = np.empty(0)
            if len(batch):
                matrix = model.encoder.encode(batch)
                pds = model.predict_matrix(matrix)
                if tally is not None:
                    tally.add(batch, matrix)
            out = [pd.DataFrame({id_name: batch.ids, "pd": pds, "column": None, "reason": None})]
            if problems or malformed.any():
                bad_ids = [p.id for p in problems] + list(pdf.loc[malformed, id_name])
                out.append(
                    pd.DataFrame(
                        {
                            id_name: bad_ids,
                            "pd": np.nan,
                            "column": [p.column for p in problems] + ["<row>"] * int(malformed.sum()),
                            "reason": [p.reason for p in problems]
                            + [f"malformed row: {c!r}"[:200] for c in corrupt[malformed]],
                        }
                    )
                )
            yield pd.concat(out, ignore_index=True)
        if tally is not None and tally.counts:
            levels.add(tally.state())

    cols = [c for c in df.columns if c in features or c in (spec.id, spec.target, CORRUPT)]
    # Plain names for mapInPandas, which looks its input columns up by name unquoted: a dotted
    # feature name (ratio.x) failed to resolve there.
    return df.select(*(column(c).alias(f"c{i}") for i, c in enumerate(cols))).mapInPandas(
        score, schema=f"`{id_name.replace('`', '``')}` string, pd double, `column` string, reason string"
    )


def score_file_spark(
    model_dir: str | Path,
    spec: DatasetSpec,
    input_path: str,
    output_path: str | Path,
    *,
    rejects_path: str | Path | None = None,
    strict: bool = False,
    master: str | None = None,
    compiled_trees: bool = False,
):
    """Score a file on Spark and write the output (and rejects) like the local engine does.

    Output and rejects are streamed to the driver partition by partition (``toLocalIterator``)
    and written through the same sinks as the local engine, so the two engines' files agree.
    """
    import time

    started = time.perf_counter()
    spark = _started(master)
    with _one_line_errors(input_path):
        if "://" in str(output_path):
            return _write_with_spark(spark, model_dir, spec, input_path, str(output_path), strict=strict,
                                     started=started, compiled_trees=compiled_trees)
        return _score_to_local_files(spark, model_dir, spec, input_path, Path(output_path), rejects_path,
                                     strict=strict, started=started, compiled_trees=compiled_trees)


def _score_to_local_files(spark, model_dir, spec: DatasetSpec, input_path: str, output_path: Path,
                          rejects_path, *, strict: bool, started: float, compiled_trees: bool):
    from .local import BatchSummary, check_rows, default_rejects
    from .sinks import open_sinks

    rejects_path = Path(rejects_path) if rejects_path is not None else default_rejects(output_path)
    counter = level_counter(spark)
    scored_df = score_dataframe(read_text(spark, input_path, spec), model_dir, spec,
                                compiled_trees=compiled_trees, levels=counter)
    rows_in = count_rows(spark, input_path)
    ledger = IdLedger()
    with open_sinks(output_path, rejects_path, spec.id, spec.separator) as (scores, refused):
        ids: list[str] = []
        pds: list[float] = []

        def flush() -> None:
            # Duplicates: the first scored row of an id keeps it, as on the local engine.
            keep, dups = screen_ids(np.asarray(ids, dtype=object), np.zeros(len(ids), dtype=np.int64), ledger, spec.id)
            if strict and dups:
                raise DataError(dups[0].reason, path=input_path, column=spec.id)
            scores.write(np.asarray(ids, dtype=object)[keep], np.asarray(pds)[keep])
            refused.write(dups)
            ids.clear()
            pds.clear()

        for row in scored_df.toLocalIterator(prefetchPartitions=True):
            if row["reason"] is None:
                ids.append(row[spec.id])
                pds.append(row["pd"])
                if len(ids) >= 50_000:
                    flush()
            else:
                if strict:
                    raise DataError(row["reason"], path=input_path, column=row["column"])
                refused.write([RowProblem(None, row["column"], row["reason"], row[spec.id])])
        if ids:
            flush()
        check_rows(rows_in, scores.count, refused.count)
    return BatchSummary.of(input_path, output_path, rejects_path, rows_in, scores.count, refused.count,
                           started, _levels(model_dir, counter))


def _started(master: str | None) -> SparkSession:
    """:func:`session`, or one line saying why Spark could not start (without Java: pyspark's
    traceback ending in "Java gateway process exited")."""
    from pyspark.errors import PySparkException

    try:
        return session(master)
    except PySparkException as exc:
        java = os.environ.get("JAVA_HOME") or "not set"
        raise SparkStartError(f"Spark could not start: {_lines(str(exc))[0]} (Spark needs Java 17: is it "
                              f"installed? JAVA_HOME is {java})") from None


@contextmanager
def _one_line_errors(input_path: str) -> Iterator[None]:
    """Spark's failures as one line each, not Java's and Python's stacks (a truncated gzip file
    printed 170 lines): the JVM's message and its root cause, or an executor's own error."""
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import PySparkException

    from ..errors import ModelError

    def executors(text: str) -> None:
        """An executor's Python error (its traceback's last ``Name: message`` line; Spark appends a
        SQLSTATE line), a ModelError kept as one."""
        raised = [line for line in _lines(text) if _RAISED.match(line)]
        last = raised[-1] if raised else (_lines(text) or ["an executor failed"])[-1]
        if last.startswith(f"{ModelError.__module__}.{ModelError.__name__}: "):
            raise ModelError(last.split(": ", 1)[1]) from None
        raise DataError(f"Spark could not score the file: {last}", path=input_path) from None

    try:
        yield
    except Py4JJavaError as exc:
        # A failed job is a SparkException with the executor's error among its causes.
        chain = [exc.java_exception]
        while chain[-1].getCause() is not None and len(chain) < 50:
            chain.append(chain[-1].getCause())
        python = next((c for c in chain if "PythonException" in str(c.getClass().getName())), None)
        if python is not None:
            executors(str(python.getMessage()))
        said = _lines(str(chain[0].getMessage()))[:1]
        if len(chain) > 1:
            said += _lines(str(chain[-1].toString()))[:1]
        raise DataError(f"Spark could not score the file: {': '.join(said)}", path=input_path) from None
    except PySparkException as exc:
        executors(str(exc))


_RAISED = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Invalid|Interrupt|Exit)\b")


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _levels(model_dir: str | Path, counter) -> UncodedLevels:
    """The executors' counts of uncoded levels, described with the driver's (checked) copy of the model."""
    tally = UncodedLevels(load_directory(model_dir).encoder)
    tally.merge(counter.value)
    return tally


def _write_with_spark(spark, model_dir, spec: DatasetSpec, input_path: str, output: str, *, strict: bool,
                      started: float, compiled_trees: bool):
    """Cluster-sized output: the executors write ``output`` (Parquet, or CSV if it ends in .csv)
    and ``<output>_rejects`` themselves; Spark's commit protocol publishes them only when the job
    succeeds (on S3, use the S3A magic committer). Duplicate ids are not looked for here: that
    would take a shuffle of the whole output."""
    from pyspark.sql import functions as F

    from .local import BatchSummary, check_rows

    rows_in = count_rows(spark, input_path)
    counter = level_counter(spark)
    scored = score_dataframe(read_text(spark, input_path, spec), model_dir, spec,
                             compiled_trees=compiled_trees, levels=counter).cache()
    try:
        bad = scored.filter(F.col("reason").isNotNull())
        n_bad = bad.count()
        if strict and n_bad:
            first = bad.first()
            raise DataError(first["reason"], path=input_path, column=first["column"])
        good = scored.filter(F.col("reason").isNull()).select(column(spec.id), "pd")
        n_good = good.count()
        check_rows(rows_in, n_good, n_bad)
        rejects = None
        if n_bad:
            rejects = output.rstrip("/") + "_rejects"
            # The rejects are for people: a cell a spreadsheet would run gets a ' in front.
            formula = "^[" + "".join("\\" + c for c in FORMULA_START) + "\\t\\r]"
            ident = column(spec.id)
            shown_id = F.when(ident.rlike(formula), F.concat(F.lit("'"), ident)).otherwise(ident)
            bad.select(shown_id.alias(spec.id), "column", "reason").write.mode("overwrite").option(
                "sep", spec.separator).option("header", True).option("escape", '"').csv(rejects)
        if n_bad and not n_good:  # as the local sinks: the rejects written, an earlier output kept
            raise none_scored(n_bad, rejects)
        writer = good.write.mode("overwrite")
        if output.lower().endswith(".csv"):
            writer.option("sep", spec.separator).option("header", True).option("escape", '"').csv(output)
        else:
            writer.parquet(output)
    finally:
        scored.unpersist()
    return BatchSummary.of(input_path, output, rejects, rows_in, n_good, n_bad, started,
                           _levels(model_dir, counter))
