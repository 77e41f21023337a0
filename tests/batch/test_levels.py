"""Category levels the model has no code for: counted and named in batch scoring and training, with
the levels the model knows under another spelling called out (they were scored as unseen, silently)."""

import csv
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from klarna_pd.batch import score_file
from klarna_pd.data.batch import Batch
from klarna_pd.data.files import read_dataset
from klarna_pd.model import levels
from klarna_pd.model.levels import UncodedLevels, spelled_apart_in
from klarna_pd.training import TrainConfig
from klarna_pd.training.pipeline import run

from ..helpers.paths import ROOT

pytestmark = [pytest.mark.batch]


def _respelled(src, dst, column: str, how) -> list[list[str]]:
    """``src`` with ``how(row number, level)`` applied to ``column`` (None: unchanged), every other
    byte as it was; the rows written."""
    rows = list(csv.reader(src.read_text().splitlines(), delimiter=";"))
    j = rows[0].index(column)
    for i, row in enumerate(rows[1:]):
        if row[j] != "NA":
            row[j] = how(i, row) or row[j]
    with open(dst, "w", newline="") as f:
        csv.writer(f, delimiter=";", lineterminator="\n").writerows(rows)
    return rows


def test_uncoded_names_the_rows_coded_other(small_model, sample_records, klarna_spec):
    frame, _ = sample_records
    known = small_model.encoder.levels_["merchant_group"][0]
    frame = frame.head(6).copy()
    frame["merchant_group"] = [known, known.upper(), f" {known} ", "Never seen", None, "Never seen"]
    batch = Batch.from_frame(frame, klarna_spec)
    matrix = small_model.encoder.encode(batch)
    got = small_model.encoder.uncoded(batch, matrix)
    # In row order, the missing value left out.
    assert got["merchant_group"] == [known.upper(), f" {known} ", "Never seen", "Never seen"]

    tally = UncodedLevels(small_model.encoder)
    tally.add(batch, matrix)
    tally.add(batch, matrix)  # counts add up over chunks
    assert (tally.rows("merchant_group"), tally.rows("merchant_group", levels.RESPELLED)) == (8, 4)
    [respelled] = [line for line in tally.respelled() if line.startswith("merchant_group:")]
    assert respelled.startswith("merchant_group: 4 rows with a level the model knows under another spelling")
    assert f"{known.upper()!r} (2, known as {known!r})" in respelled
    assert f"{' ' + known + ' '!r} (2, known as {known!r})" in respelled
    [unknown] = [line for line in tally.unknown() if line.startswith("merchant_group:")]
    assert unknown.startswith("merchant_group: 4 rows with a level unseen in training or rarer than 20 rows")
    assert "'Never seen' (4)" in unknown and "known as" not in unknown
    assert tally.to_dict()["merchant_group"] == {
        "respelled": {"rows": 4, "levels": {f" {known} ": 2, known.upper(): 2}},
        "unknown": {"rows": 4, "levels": {"Never seen": 4}},
    }


def test_the_tally_names_a_bounded_number_of_levels(small_model, sample_records, klarna_spec, monkeypatch):
    """Free text in a category column: rows are counted exactly, the most frequent levels named, and a
    known level respelled after the cap is still a warning (it was lost among the unnamed ones)."""
    monkeypatch.setattr(levels, "MAX_NAMED", 3)
    known = small_model.encoder.levels_["merchant_group"][0]
    frame, _ = sample_records
    tally = UncodedLevels(small_model.encoder)
    for chunk in ([f"new {i}" for i in range(8)] + ["new 0"] * 2, [known.upper()] * 10):
        part = frame.head(10).copy()
        part["merchant_group"] = chunk
        batch = Batch.from_frame(part, klarna_spec)
        tally.add(batch, small_model.encoder.encode(batch))
    assert tally.rows("merchant_group", levels.UNKNOWN) == tally.rows("merchant_group", levels.RESPELLED) == 10
    [line] = [x for x in tally.unknown() if x.startswith("merchant_group:")]
    assert line == ("merchant_group: 10 rows with a level unseen in training or rarer than 20 rows there, scored as "
                    "its 'other' level: 'new 0' (3), 'new 1' (1), 'new 2' (1) and more (over 3 distinct levels; the "
                    "rarest not named)")
    [warning] = [x for x in tally.respelled() if x.startswith("merchant_group:")]
    assert f"{known.upper()!r} (10, known as {known!r})" in warning


def test_batch_warns_of_respelled_levels_and_lists_unseen_ones(small_trained, small_model, synthetic_small,
                                                                klarna_spec, tmp_path):
    data, out = tmp_path / "in.csv", tmp_path / "out.csv"
    group = synthetic_small.read_text().split("\n", 1)[0].split(";").index("merchant_group")
    _respelled(synthetic_small, tmp_path / "g.csv", "merchant_group",
               lambda i, row: None if i % 7 else row[group].lower() + " ")
    _respelled(tmp_path / "g.csv", data, "merchant_category",
               lambda i, row: None if i % 11 else "A category never seen")
    frame = read_dataset(data, klarna_spec).frame
    proc = subprocess.run(
        [sys.executable, "-m", "klarna_pd.batch", "--model", small_trained.model_tag, "--input", str(data),
         "--output", str(out), "--quiet"],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr
    # Respelled levels of the model's own; a respelled rare level is only unseen.
    known = {level.lower() + " " for level in small_model.encoder.levels_["merchant_group"]}
    respelled = int(frame["merchant_group"].isin(known).sum())
    assert respelled > 500
    warning = next(line for line in proc.stderr.splitlines() if line.startswith("warning: merchant_group:"))
    expected = f"warning: merchant_group: {respelled:,} rows with a level the model knows under another"
    assert warning.startswith(expected), warning
    lines = proc.stdout.splitlines()
    assert lines[-1] == "rows in 6,000 = scored 6,000 + rejected 0"  # the invariant stays last
    category = next(line for line in lines if line.startswith("merchant_category:"))
    assert "'A category never seen' (" in category
    # What is reported is what was scored: the same PDs as the library's on the same rows.
    got = pd.read_csv(out, sep=";", float_precision="round_trip", dtype={"uuid": str})
    library = small_model.predict(Batch.from_frame(frame, klarna_spec))
    np.testing.assert_array_equal(got["pd"].to_numpy(), library)


def test_a_clean_file_scores_without_level_lines(small_model, synthetic_small, klarna_spec, tmp_path):
    frame = read_dataset(synthetic_small, klarna_spec).frame
    summary = score_file(small_model, synthetic_small, tmp_path / "o.csv", progress=False)
    assert summary.respelled == ()
    # The small model lumps its rarest training levels into "other": those rows, and only those, are listed.
    batch = Batch.from_frame(frame, klarna_spec)
    uncoded = small_model.encoder.uncoded(batch, small_model.encoder.encode(batch))
    assert [line.split(":")[0] for line in summary.unknown_levels] == sorted(uncoded)
    for line in summary.unknown_levels:
        name = line.split(":")[0]
        assert line.startswith(f"{name}: {len(uncoded[name]):,} row")


def test_training_warns_of_levels_spelled_apart_and_of_rows_to_score(synthetic_small, klarna_spec, tmp_path):
    data = tmp_path / "d.csv"
    header = synthetic_small.read_text().split("\n", 1)[0].split(";")
    group, target = header.index("merchant_group"), header.index("default")

    def respell(i, row):
        if row[target] != "NA" and i % 20 == 0:
            return row[group].upper()
        if row[target] == "NA" and i % 3 == 0:
            return row[group].lower()
        return None

    _respelled(synthetic_small, data, "merchant_group", respell)
    logged = []
    summary = run(data, klarna_spec, tmp_path / "out", TrainConfig(folds=3), store=False, log=logged.append)
    spelled = [x for x in logged if x.startswith("WARNING: merchant_group: levels that differ only in case")]
    assert len(spelled) == 1 and "'Entertainment' (" in spelled[0] and "'ENTERTAINMENT' (" in spelled[0]
    assert summary.metrics["input"]["levels_spelled_apart"] == [spelled[0].removeprefix("WARNING: ")]
    scored = [x for x in logged if x.startswith("WARNING: rows to score: merchant_group:")]
    assert len(scored) == 1 and "known as 'Entertainment'" in scored[0]
    uncoded = summary.metrics["input"]["levels_without_a_code_in_rows_to_score"]["merchant_group"]
    assert uncoded["respelled"]["rows"] >= uncoded["respelled"]["levels"]["entertainment"] > 0


def test_spellings_of_one_level_are_grouped(klarna_spec, sample_records):
    frame, _ = sample_records
    frame = frame.head(5).copy()
    frame["merchant_group"] = ["Books", "books", " Books", "Toys", None]
    lines = spelled_apart_in(Batch.from_frame(frame, klarna_spec))
    assert len(lines) == 1 and lines[0].endswith(": ' Books' (1) / 'Books' (1) / 'books' (1)")


def test_counts_made_apart_merge_to_the_counts_made_together(small_model, sample_records, klarna_spec):
    """Spark's executors count their partitions apart and the driver merges them."""
    frame, _ = sample_records
    frame = frame.head(40).copy()
    frame["merchant_group"] = [f"new {i % 7}" if i % 3 else frame["merchant_group"].iloc[i].upper()
                               for i in range(40)]
    whole = Batch.from_frame(frame, klarna_spec)
    together, first, second = (UncodedLevels(small_model.encoder) for _ in range(3))
    together.add(whole, small_model.encoder.encode(whole))
    for tally, part in ((first, whole.take(slice(0, 17))), (second, whole.take(slice(17, None)))):
        tally.add(part, small_model.encoder.encode(part))
    merged = UncodedLevels(small_model.encoder)
    merged.merge(levels.merged_state(levels.merged_state({}, first.state()), second.state()))
    assert merged.state() == together.state() and merged.rows("merchant_group") == 40
    assert (merged.respelled(), merged.unknown()) == (together.respelled(), together.unknown())
