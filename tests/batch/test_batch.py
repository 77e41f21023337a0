"""Batch scoring: streaming files on one machine, and the same rows on Spark (pyspark, local mode)."""

import gzip
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from klarna_pd.batch import score_file
from klarna_pd.data.batch import Batch
from klarna_pd.data.files import read_dataset
from klarna_pd.errors import DataError

from ..helpers.models import certain_default_booster, signed_copy
from ..helpers.paths import ROOT

pytestmark = [pytest.mark.batch]


def _read(path):
    if str(path).endswith(".parquet"):
        return pq.read_table(path).to_pandas()
    return pd.read_csv(path, sep=";", float_precision="round_trip", dtype={"uuid": str})


@pytest.fixture(scope="module")
def expected(small_model, synthetic_small, klarna_spec):
    frame = read_dataset(synthetic_small, klarna_spec).frame
    return pd.DataFrame({"uuid": frame["uuid"], "pd": small_model.predict(Batch.from_frame(frame, klarna_spec))})


@pytest.mark.parametrize("out_name", ["scores.csv", "scores.parquet", "scores.csv.gz"])
def test_every_row_scored_in_order_with_the_library_pd(small_model, synthetic_small, expected, tmp_path, out_name):
    out = tmp_path / out_name
    summary = score_file(small_model, synthetic_small, out, chunk_bytes=1 << 18, progress=False)
    assert summary.rows_scored == 6_000 and summary.rows_rejected == 0 and summary.rejects is None
    if out_name.endswith(".gz"):
        assert gzip.decompress(out.read_bytes()).decode().splitlines()[0] == "uuid;pd"
        got = pd.read_csv(out, sep=";", float_precision="round_trip")
    else:
        got = _read(out)
    pd.testing.assert_frame_equal(got.reset_index(drop=True), expected)
    assert not list(tmp_path.glob(".*tmp"))


def test_gzip_and_parquet_inputs(small_model, synthetic_small, klarna_spec, expected, tmp_path):
    gz = tmp_path / "in.csv.gz"
    gz.write_bytes(gzip.compress(synthetic_small.read_bytes()))
    score_file(small_model, gz, tmp_path / "a.csv", progress=False)
    frame = read_dataset(synthetic_small, klarna_spec).frame
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp_path / "in.parquet")
    score_file(small_model, tmp_path / "in.parquet", tmp_path / "b.csv", progress=False)
    for name in ("a.csv", "b.csv"):
        pd.testing.assert_frame_equal(_read(tmp_path / name), expected)


def _with_bad_rows(src, dst, spec):
    lines = src.read_text().splitlines()
    age = spec.columns.index("age")
    bad = lines[10].split(";")
    bad[age] = "forty"
    lines[10] = ";".join(bad)
    lines[20] = lines[20].rsplit(";", 3)[0]  # a truncated row
    dst.write_text("\n".join(lines) + "\n")
    return lines


def test_bad_rows_go_to_the_reject_file(small_model, synthetic_small, klarna_spec, expected, tmp_path):
    src = tmp_path / "in.csv"
    lines = _with_bad_rows(synthetic_small, src, klarna_spec)
    out = tmp_path / "out.csv"
    summary = score_file(small_model, src, out, progress=False)
    assert (summary.rows_scored, summary.rows_rejected) == (5_998, 2)
    rejects = pd.read_csv(summary.rejects, sep=";")
    assert rejects["line"].tolist() == [11, 21]
    assert rejects["uuid"].iloc[0] == lines[10].split(";")[0].strip('"')
    assert rejects["column"].tolist() == ["age", "<row>"]
    assert "expected a finite number from 18 to 120, got 'forty'" in rejects["reason"].iloc[0]
    assert "expected 43 fields, got 40" in rejects["reason"].iloc[1]
    kept = expected.drop(index=[9, 19]).reset_index(drop=True)
    pd.testing.assert_frame_equal(_read(out), kept)


def test_strict_stops_at_the_first_bad_row_and_writes_nothing(small_model, synthetic_small, klarna_spec, tmp_path):
    src = tmp_path / "in.csv"
    _with_bad_rows(synthetic_small, src, klarna_spec)
    out = tmp_path / "out.csv"
    out.write_text("previous results\n")
    with pytest.raises(DataError, match="line 11, column 'age': expected a finite number from 18 to 120, got 'forty'"):
        score_file(small_model, src, out, strict=True, progress=False)
    assert out.read_text() == "previous results\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out.csv"]


def test_a_stale_reject_file_is_removed_by_a_clean_run(small_model, synthetic_small, tmp_path):
    out = tmp_path / "out.csv"
    stale = tmp_path / "out.csv.rejects.csv"
    stale.write_text("line;uuid;column;reason\n12;a;age;expected a finite number, got 'x'\n")
    score_file(small_model, synthetic_small, out, progress=False)
    assert not stale.exists()
    # --rejects may name any file: one that is not a rejects file stays (it was deleted, exit 0)
    other = tmp_path / "important.csv"
    other.write_text("uuid;limit\na;1000\n")
    score_file(small_model, synthetic_small, out, rejects_path=other, progress=False)
    assert other.read_text() == "uuid;limit\na;1000\n"
    # the header is compared as bytes: an id name with letters beyond ASCII never matched
    from klarna_pd.batch.sinks import _remove_stale

    stale.write_text("line;顧客番号;column;reason\n3;a;age;x\n", encoding="utf-8")
    _remove_stale(stale, "line;顧客番号;column;reason")
    assert not stale.exists()


def test_a_failed_run_leaves_no_directories_it_made(small_model, synthetic_small, tmp_path):
    """The output's and the rejects' new directories were made before the input was read, and
    stayed when it could not be."""
    with pytest.raises(DataError, match="file not found"):
        score_file(small_model, tmp_path / "nope.csv", tmp_path / "new" / "sub" / "s.csv",
                   rejects_path=tmp_path / "rej" / "r.csv", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    # a clean run: its output's directory stays, the unused rejects' does not
    score_file(small_model, synthetic_small, tmp_path / "new" / "s.csv",
               rejects_path=tmp_path / "rej" / "r.csv", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new"]
    # made/../keep names keep: a failed run removed keep (empty, not its own) and left made
    (tmp_path / "keep").mkdir()
    with pytest.raises(DataError, match="file not found"):
        score_file(small_model, tmp_path / "nope.csv", tmp_path / "made" / ".." / "keep" / "s.csv",
                   progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep", "new"]
    score_file(small_model, synthetic_small, tmp_path / "made" / ".." / "keep" / "s.csv", progress=False)
    assert (tmp_path / "keep" / "s.csv").exists() and not (tmp_path / "made").exists()


def test_cli_with_progress(small_trained, synthetic_small, expected, tmp_path):
    out = tmp_path / "out.parquet"
    proc = subprocess.run(
        [sys.executable, "-m", "klarna_pd.batch", "--model", small_trained.model_tag, "--input", str(synthetic_small),
         "--output", str(out), "--chunk-mb", "1"],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert "rows/s" in proc.stderr and "batch: 6,000" in proc.stderr
    assert proc.stdout.startswith("scored 6,000 rows into")
    assert proc.stdout.splitlines()[-1] == "rows in 6,000 = scored 6,000 + rejected 0"
    pd.testing.assert_frame_equal(_read(out), expected)


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--output", "x.txt"], "expected a .csv, .csv.gz or .parquet output file, got 'x.txt'"),
        (["--output", "x.csv", "--engine", "gpu"], "invalid choice: 'gpu'"),
        (["--output", "x.csv", "--chunk-mb", "0"], "expected 1 to 1024 MiB, got 0"),
    ],
)
def test_cli_refuses_bad_flags(tmp_path, args, needle):
    proc = subprocess.run([sys.executable, "-m", "klarna_pd.batch", "--input", "in.csv", *args], cwd=tmp_path,
                          capture_output=True, text=True)
    assert proc.returncode == 2 and needle in proc.stderr


def test_cli_reports_a_missing_model_or_input(small_trained, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "klarna_pd.batch", "--model", "klarna-pd:nosuchversion",
                           "--input", "in.csv", "--output", str(tmp_path / "o.csv")], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 1 and "klarna-pd:nosuchversion" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "klarna_pd.batch", "--model", small_trained.model_tag,
                           "--input", str(tmp_path / "none.csv"), "--output", str(tmp_path / "o.csv")],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 1 and "file not found" in proc.stderr
    assert not (tmp_path / "o.csv").exists()


def test_a_header_only_input_scores_to_a_header_only_output_with_a_warning(small_trained, synthetic_small,
                                                                           tmp_path):
    data, out = tmp_path / "in.csv", tmp_path / "o.csv"
    data.write_text(synthetic_small.read_text().split("\n", 1)[0] + "\n")
    proc = subprocess.run([sys.executable, "-m", "klarna_pd.batch", "--model", small_trained.model_tag,
                           "--input", str(data), "--output", str(out), "--quiet"],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr  # an empty day's partition is no error
    assert f"warning: {data} holds no rows to score: {out} holds none" in proc.stderr
    assert proc.stdout.splitlines()[-1] == "rows in 0 = scored 0 + rejected 0"
    assert out.read_text() == "uuid;pd\n"


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--input", "in.csv", "--output", "o.csv", "--rejects", "in.csv"], "--rejects is the --input file"),
        (["--input", "link.csv", "--output", "in.csv"], "--output is the --input file"),  # one file, two names
        (["--input", "in.csv", "--output", "o.csv", "--rejects", "o.csv"], "--output and --rejects are the same file"),
        (["--input", "in.csv", "--output", "dir.csv"], "--output: expected a file to write, got a directory"),
        (["--input", "in.csv", "--output", "o.csv", "--rejects", "dir.csv"], "--rejects: expected a file to write"),
        (["--input", "o.csv.rejects.csv", "--output", "o.csv"],  # the default name for the rejects
         "the rejects file (o.csv.rejects.csv) is the --input file"),
        (["--input", "in.csv", "--output", "s3a://bucket/o.parquet"], "only --engine spark writes to one"),
        (["--input", "in.csv", "--output", "s3a://bucket/o.parquet", "--engine", "spark", "--rejects", "r.csv"],
         "rejected rows go to s3a://bucket/o.parquet_rejects"),
    ],
)
def test_cli_refuses_outputs_that_would_destroy_its_input_or_each_other(args, needle, tmp_path, monkeypatch, capsys):
    """A clean run used to delete whatever --rejects named, the input included, and exit 0."""
    from klarna_pd.batch.__main__ import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.csv").write_text("uuid;default\na;\n")
    (tmp_path / "link.csv").symlink_to(tmp_path / "in.csv")
    (tmp_path / "dir.csv").mkdir()
    assert main(["--model", "klarna-pd:never-loaded", *args]) == 2
    assert needle in capsys.readouterr().err
    assert (tmp_path / "in.csv").read_text() == "uuid;default\na;\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.csv", "in.csv", "link.csv"]


@pytest.mark.parametrize("model, needle", [
    ("Bad Tag!", "not a valid BentoML tag"), ("a:b:c", "Invalid Tag"),
    ("S3://bucket/models/x", "a model URI starts with s3://, in lower case"),
    ("no/such/dir", "(no such directory)"), ("in.csv", "the file here of that name is not a model directory"),
])
def test_cli_says_what_a_model_reference_should_be(model, needle, tmp_path, monkeypatch, capsys):
    from klarna_pd.batch.__main__ import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.csv").write_text("uuid;default\na;\n")
    assert main(["--model", model, "--input", "in.csv", "--output", "o.csv", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "expected a model tag such as klarna-pd:latest, a model directory or an s3:// model URI" in err
    assert needle in err and not (tmp_path / "o.csv").exists()


def test_a_bare_model_name_is_a_tag_whatever_the_working_directory_holds(small_trained, tmp_path, monkeypatch):
    from klarna_pd.store.local import get_stored

    monkeypatch.chdir(tmp_path)
    (tmp_path / "klarna-pd").mkdir()  # e.g. run from helm/, which holds the chart's directory klarna-pd
    assert get_stored("klarna-pd").tag.name == "klarna-pd"


def test_cli_refuses_a_model_that_fails_its_signature(small_trained, bentoml_home, synthetic_small, tmp_path):
    """A booster rewritten (PD near 1 for everyone) with its recorded digests recomputed."""
    tag, path = signed_copy(small_trained.model_tag, bentoml_home, "klarna-pd-batch-rewritten")
    certain_default_booster(path)
    for model in (tag, str(path)):
        proc = subprocess.run([sys.executable, "-m", "klarna_pd.batch", "--model", model, "--input", str(synthetic_small),
                               "--output", str(tmp_path / "o.csv")], cwd=ROOT, capture_output=True, text=True)
        assert proc.returncode == 1 and "does not match its recorded sha256 in the signed manifest" in proc.stderr
        assert not (tmp_path / "o.csv").exists()


# -- Spark -----------------------------------------------------------------------------------


def test_spark_gives_the_same_pds_to_the_last_digit(spark, small_trained, small_model, synthetic_small, klarna_spec, tmp_path):
    import bentoml

    from klarna_pd.batch.spark import score_file_spark

    src = tmp_path / "in.csv"
    _with_bad_rows(synthetic_small, src, klarna_spec)
    model_dir = bentoml.models.get(small_trained.model_tag).path
    local = score_file(small_model, src, tmp_path / "local.csv", progress=False)
    remote = score_file_spark(model_dir, klarna_spec, str(src), tmp_path / "spark.csv")
    assert (remote.rows_scored, remote.rows_rejected) == (local.rows_scored, local.rows_rejected) == (5_998, 2)
    assert (tmp_path / "spark.csv").read_bytes() == (tmp_path / "local.csv").read_bytes()
    rejects = pd.read_csv(remote.rejects, sep=";")
    assert set(rejects["column"]) == {"age", "<row>"}


def test_spark_scores_a_spec_whose_names_have_dots_and_spaces(spark, bentoml_home, tmp_path):
    """A user's spec with `ratio.x` (and `grade z`, an id `app.id`): Spark read the dot as a struct's
    field and the run ended in an AnalysisException traceback; the local engine scored it."""
    import bentoml

    from klarna_pd.batch.spark import score_file_spark
    from klarna_pd.spec import DatasetSpec
    from klarna_pd.store.local import load_model
    from klarna_pd.training import TrainConfig
    from klarna_pd.training.pipeline import run

    rng = np.random.default_rng(0)
    n = 1_500
    x = rng.normal(size=n)
    target = (rng.random(n) < 1 / (1 + np.exp(3 - 1.5 * x))).astype(int).astype(str).astype(object)
    target[:200] = ""
    src = tmp_path / "dots.csv"
    pd.DataFrame({"app.id": [f"r{i}" for i in range(n)], "bad": target, "ratio.x": np.round(x, 4),
                  "grade z": rng.integers(0, 5, n), "shop.kind": rng.choice(["a", "b", "c"], n)}).to_csv(src, index=False)
    spec = DatasetSpec.model_validate({"name": "dots", "id": "app.id", "target": "bad", "features": [
        {"name": "ratio.x", "kind": "numeric"}, {"name": "grade z", "kind": "ordinal"},
        {"name": "shop.kind", "kind": "categorical"}]})
    tag = run(src, spec, tmp_path / "out", TrainConfig(folds=2), model_name="dots-pd", log=lambda *_: None).model_tag
    score_file(load_model(tag), src, tmp_path / "local.csv", progress=False)
    remote = score_file_spark(bentoml.models.get(tag).path, spec, str(src), tmp_path / "spark.csv")
    assert remote.rows_scored == n
    assert (tmp_path / "spark.csv").read_bytes() == (tmp_path / "local.csv").read_bytes()
    assert (tmp_path / "spark.csv").read_text().startswith("app.id,pd\n")


def test_a_specs_own_missing_tokens_score_alike_on_spark_the_local_engine_and_json(spark, bentoml_home,
                                                                                    tmp_path):
    """Sentinels (365243 as text, as 365243.0), a global numeric token (-1, -1.0) and NA as a level
    of one feature: both engines write the same bytes, and each row's PD is the one its JSON gets."""
    import bentoml

    from klarna_pd.batch.spark import score_file_spark
    from klarna_pd.spec import DatasetSpec
    from klarna_pd.store.local import load_model
    from klarna_pd.training import TrainConfig
    from klarna_pd.training.pipeline import run

    rng = np.random.default_rng(1)
    n = 1_500
    days = rng.integers(0, 5_000, n).astype(float)
    score = np.round(rng.normal(size=n), 3)
    risk = 1 / (1 + np.exp(3 - score + days / 2_000))
    y = (rng.random(n) < risk).astype(int).astype(str).astype(object)
    y[:100] = "NA"
    days_text = days.astype(int).astype(str).astype(object)
    days_text[rng.random(n) < 0.2] = "365243"
    days_text[rng.random(n) < 0.1] = "365243.0"
    score_text = score.astype(str).astype(object)
    score_text[rng.random(n) < 0.1] = rng.choice(["-1", "-1.0", " -1 "])
    country = rng.choice(["NA", "SE", "DE", ""], n)
    src = tmp_path / "own.csv"
    pd.DataFrame({"id": [f"r{i}" for i in range(n)], "y": y, "days": days_text, "score": score_text,
                  "country": country}).to_csv(src, index=False, na_rep="NA")
    spec = DatasetSpec.model_validate({
        "name": "own", "id": "id", "target": "y", "missing_values": ["NA", "", "-1"], "features": [
            {"name": "days", "kind": "numeric", "min": 0, "max": 50_000,
             "missing_values": ["NA", "", "365243"]},
            {"name": "score", "kind": "numeric"},
            {"name": "country", "kind": "categorical", "missing_values": [""]}]})
    tag = run(src, spec, tmp_path / "out", TrainConfig(folds=2), model_name="own-pd",
              log=lambda *_: None).model_tag
    model = load_model(tag)
    assert "NA" in model.encoder.levels_["country"]  # learned as a level, not as missing
    local = score_file(model, src, tmp_path / "local.csv", progress=False)
    remote = score_file_spark(bentoml.models.get(tag).path, spec, str(src), tmp_path / "spark.csv")
    assert local.rows_scored == remote.rows_scored == n
    assert (tmp_path / "spark.csv").read_bytes() == (tmp_path / "local.csv").read_bytes()
    # Spark makes an empty field null whatever its options: where "" is no missing token, refused
    strict = spec.model_copy(update={"features": (*spec.features[:2], spec.features[2].model_copy(
        update={"missing_values": ("NA",)}))})
    with pytest.raises(DataError, match=r"missing_values of \['country'\] do not include the empty text"):
        score_file_spark(bentoml.models.get(tag).path, strict, str(src), tmp_path / "refused.csv")
    assert not (tmp_path / "refused.csv").exists()
    as_json = [{"days": None if d in ("365243", "365243.0") else float(d),
                "score": None if s.strip() in ("-1", "-1.0") else float(s),
                "country": str(c) or None} for d, s, c in zip(days_text, score_text, country)]
    scored = pd.read_csv(tmp_path / "local.csv", float_precision="round_trip")
    assert scored["pd"].tolist() == model.predict_records(as_json).tolist()


def test_spark_counts_the_levels_the_model_has_no_code_for_as_the_local_engine_does(
        spark, small_trained, small_model, synthetic_small, tmp_path):
    import bentoml

    from klarna_pd.batch.spark import score_file_spark

    lines = synthetic_small.read_text().splitlines()
    group = lines[0].split(";").index("merchant_group")
    for i in range(1, len(lines), 5):  # a known level respelled: a warning on both engines
        fields = lines[i].split(";")
        fields[group] = fields[group].upper() if fields[group] != "NA" else fields[group]
        lines[i] = ";".join(fields)
    src = tmp_path / "in.csv"
    src.write_text("\n".join(lines) + "\n")
    local = score_file(small_model, src, tmp_path / "local.csv", chunk_bytes=1 << 16, progress=False)
    remote = score_file_spark(bentoml.models.get(small_trained.model_tag).path, small_model.spec, str(src),
                              tmp_path / "spark.csv")
    assert local.respelled and local.respelled[0].startswith("merchant_group: ")
    assert local.unknown_levels  # the small model lumps its rarest levels into "other"
    assert (remote.respelled, remote.unknown_levels) == (local.respelled, local.unknown_levels)


def test_spark_executors_refuse_a_model_that_fails_its_signature(spark, small_trained, bentoml_home, synthetic_small, klarna_spec):
    """Each executor checks the model it was shipped, with the driver's key."""
    from klarna_pd.batch.spark import read_text, score_dataframe

    _, path = signed_copy(small_trained.model_tag, bentoml_home, "klarna-pd-spark-rewritten")
    certain_default_booster(path)
    df = read_text(spark, str(synthetic_small), klarna_spec)
    with pytest.raises(Exception, match="does not match its recorded sha256 in the signed manifest"):
        score_dataframe(df, path, klarna_spec).collect()
    # scoring a file: the executor's refusal is the ModelError it was, in one line (the CLI's exit 1)
    from klarna_pd.batch.spark import score_file_spark
    from klarna_pd.errors import ModelError

    with pytest.raises(ModelError) as err:
        score_file_spark(path, klarna_spec, str(synthetic_small), path.parent / "out.csv")
    assert "does not match its recorded sha256" in str(err.value) and "\n" not in str(err.value), err.value


def test_spark_dataframe_function(spark, small_trained, small_model, expected, synthetic_small, klarna_spec):
    import bentoml

    from klarna_pd.batch.spark import read_text, score_dataframe

    df = read_text(spark, str(synthetic_small), klarna_spec)
    out = score_dataframe(df, bentoml.models.get(small_trained.model_tag).path, klarna_spec).toPandas()
    assert out["reason"].isna().all()
    got = out[["uuid", "pd"]].set_index("uuid").loc[expected["uuid"], "pd"].to_numpy()
    np.testing.assert_array_equal(got, expected["pd"].to_numpy())


def test_spark_executors_score_the_same_pds_with_compiled_trees(spark, small_trained, expected, synthetic_small,
                                                                klarna_spec):
    import bentoml

    from klarna_pd.batch.spark import read_text, score_dataframe

    path = bentoml.models.get(small_trained.model_tag).path
    df = read_text(spark, str(synthetic_small), klarna_spec)
    out = score_dataframe(df, path, klarna_spec, compiled_trees=True).toPandas()
    got = out[["uuid", "pd"]].set_index("uuid").loc[expected["uuid"], "pd"].to_numpy()
    np.testing.assert_array_equal(got, expected["pd"].to_numpy())

    def models_held(batches):  # on the executors' Python workers, which Spark keeps between queries
        from klarna_pd.batch import spark as engine

        for _ in batches:
            pairs = [(asked, model.trees_compiled) for (_, asked), model in engine._models.items()]
            yield pd.DataFrame(pairs or [(False, False)], columns=["asked", "compiled"])

    seen = spark.range(8).repartition(8).mapInPandas(models_held, "asked boolean, compiled boolean").toPandas()
    held = set(seen.itertuples(index=False, name=None))
    assert (True, True) in held, held  # a worker holds the model compiled, as asked


def test_spark_writes_cluster_sized_output_itself(spark, small_trained, small_model, expected, synthetic_small,
                                                  klarna_spec, tmp_path):
    import bentoml

    from klarna_pd.batch.spark import score_file_spark

    out = f"file://{tmp_path}/scores.parquet"
    summary = score_file_spark(bentoml.models.get(small_trained.model_tag).path, klarna_spec, str(synthetic_small), out)
    assert summary.rows_scored == 6_000 and summary.rejects is None
    assert (tmp_path / "scores.parquet" / "_SUCCESS").exists()
    got = pq.read_table(tmp_path / "scores.parquet").to_pandas().set_index("uuid").loc[expected["uuid"], "pd"]
    np.testing.assert_array_equal(got.to_numpy(), expected["pd"].to_numpy())
    # Levels counted once, though the scored rows are used by three Spark actions (cached).
    local = score_file(small_model, synthetic_small, tmp_path / "local.csv", progress=False)
    assert local.unknown_levels and summary.unknown_levels == local.unknown_levels
    # every row rejected: the rejects written, the output left as it was (the local sinks' rule)
    lines = synthetic_small.read_text().splitlines()
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join([lines[0]] + [line.replace(";", ";x;", 1) for line in lines[1:4]]) + "\n")
    with pytest.raises(DataError, match="none of the 3 rows could be scored; the reasons are in file://"):
        score_file_spark(bentoml.models.get(small_trained.model_tag).path, klarna_spec, str(bad), out)
    assert (tmp_path / "scores.parquet_rejects" / "_SUCCESS").exists()
    assert pq.read_table(tmp_path / "scores.parquet").num_rows == 6_000


def test_a_spark_that_cannot_start_is_one_error_line(small_trained, synthetic_small, tmp_path):
    """Without Java the Spark engine ended in pyspark's traceback."""
    proc = subprocess.run(
        [sys.executable, "-m", "klarna_pd.batch", "--engine", "spark", "--model", small_trained.model_tag,
         "--input", str(synthetic_small), "--output", str(tmp_path / "o.csv")],
        cwd=ROOT, capture_output=True, text=True, env={**os.environ, "JAVA_HOME": str(tmp_path / "no-java")},
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "o.csv").exists()
    assert (f"error: Spark could not start: [JAVA_GATEWAY_EXITED] Java gateway process exited before sending "
            f"its port number. (Spark needs Java 17: is it installed? JAVA_HOME is {tmp_path / 'no-java'})"
            in proc.stderr), proc.stderr


def test_spark_submit_runs_the_documented_entry_point(spark, small_trained, expected, synthetic_small, tmp_path):
    """The README's spark-submit command, with a local master instead of YARN."""
    import bentoml

    submit = Path(sys.executable).with_name("spark-submit")
    out = tmp_path / "scores.csv"
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
    proc = subprocess.run(
        [str(submit), "--master", "local[1]", "--conf", "spark.ui.enabled=false", str(ROOT / "scripts" / "spark_batch.py"),
         "--engine", "spark", "--model", bentoml.models.get(small_trained.model_tag).path, "--input", str(synthetic_small),
         "--output", str(out)],
        cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith("scored 6,000 rows into")  # then a line per feature with uncoded levels
    assert lines[-1] == "rows in 6,000 = scored 6,000 + rejected 0"
    pd.testing.assert_frame_equal(_read(out), expected)
