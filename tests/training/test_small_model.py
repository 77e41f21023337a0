"""The model's files, the one scoring path and the model's behaviour, on the small model (6,000
rows, 3 folds); faults in the training input, through train.py."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from klarna_pd.data.batch import Batch
from klarna_pd.data.files import read_dataset
from klarna_pd.errors import ModelError
from klarna_pd.model import MODEL_FILES, PDModel
from klarna_pd.model.pdmodel import BOOSTER_FILE, ENCODER_FILE
from klarna_pd.spec import klarna_spec
from klarna_pd.store.local import load_model
from klarna_pd.training import TrainConfig, ensemble
from klarna_pd.training.pipeline import run

from ..helpers.paths import ROOT

pytestmark = [pytest.mark.training]


# -- model files and the one scoring path ------------------------------------------------------


def test_stored_model_predicts_what_training_wrote(small_trained, small_model, synthetic_small, klarna_spec):
    unlabelled = read_dataset(synthetic_small, klarna_spec).unlabelled()
    written = pd.read_csv(small_trained.out / "predictions.csv", sep=";", float_precision="round_trip")["pd"].to_numpy()
    np.testing.assert_array_equal(small_model.predict(unlabelled), written)


def test_frame_and_records_give_identical_pds(small_model, sample_records):
    frame, records = sample_records
    np.testing.assert_array_equal(small_model.predict(Batch.from_frame(frame, small_model.spec)),
                                  small_model.predict_records(records))


def test_reason_contributions_sum_to_the_raw_score(small_model, sample_records):
    model = small_model
    frame, _ = sample_records
    matrix = model.encoder.encode(Batch.from_frame(frame, model.spec))
    contrib = model.contributions(matrix)
    np.testing.assert_allclose(contrib.sum(axis=1), model.margin(matrix), rtol=0, atol=1e-9)
    reasons = model.reasons(matrix, 3)
    for row, rs in zip(contrib, reasons):
        assert [r["contribution"] for r in rs] == sorted((c for c in row[:-1] if c > 0), reverse=True)[: len(rs)]


def test_tampered_or_missing_files_are_refused(small_trained, bentoml_home, tmp_path):
    import bentoml

    stored = bentoml.models.get(small_trained.model_tag)
    digests = stored.info.metadata["sha256"]
    copy = tmp_path / "model"
    shutil.copytree(stored.path, copy)
    PDModel.load(copy, sha256=digests)  # intact copy loads
    text = (copy / BOOSTER_FILE).read_text()
    (copy / BOOSTER_FILE).write_text(text.replace("shrinkage=", "shrinkage=9", 1))
    with pytest.raises(ModelError, match=r"booster.txt does not match its recorded sha256"):
        PDModel.load(copy, sha256=digests)
    (copy / ENCODER_FILE).unlink()
    with pytest.raises(ModelError, match=r"missing files \['encoder.json'\]"):
        PDModel.load(copy, sha256=digests)
    assert set(MODEL_FILES) <= set(digests)


def test_store_roundtrip_predicts_identically(small_model, small_trained, sample_records):
    again = load_model(small_trained.model_tag)
    _, records = sample_records
    np.testing.assert_array_equal(again.predict_records(records), small_model.predict_records(records))


# -- behaviour ------------------------------------------------------------------------------------


DECLARED = [(f.name, f.monotone) for f in klarna_spec().features if f.monotone]


@pytest.mark.parametrize(("feature", "direction"), DECLARED, ids=[name for name, _ in DECLARED])
def test_each_declared_direction_holds_on_the_served_model(small_model, sample_records, feature, direction):
    """A row's PD never moves against the spec's direction as one feature steps through its range
    (the sample's values, an even grid, and far past the largest value)."""
    _, records = sample_records
    spec = klarna_spec().feature(feature)
    values = [v for v in (rec[feature] for rec in records) if v is not None]
    top = max(values + [1.0])
    grid = {0.0, *np.linspace(0.0, top, 12).round(3), *values, top * 2, top * 10}
    if spec.kind == "ordinal":
        grid = {float(round(v)) for v in grid} | {1.0, 2.0, 3.0, 4.0, 5.0}
    low, high = spec.min if spec.min is not None else -np.inf, spec.max if spec.max is not None else np.inf
    grid = sorted(float(v) for v in grid if low <= v <= high)
    for rec in records[::10]:
        pds = small_model.predict_records([{**rec, feature: v} for v in grid])
        steps = np.diff(pds) * direction
        assert (steps >= 0).all(), (feature, rec.get("uuid"), list(zip(grid, pds)))


def test_merged_booster_is_the_mean_of_the_fold_models(small_model, small_trained, sample_records):
    """``--predictor folds``: one booster gives exactly the mean of the fold models' margins and SHAP values."""
    frame, _ = sample_records
    matrix = small_model.encoder.encode(Batch.from_frame(frame, small_model.spec))
    folds = small_trained.result.folds
    merged = ensemble.merge_mean([f.booster for f in folds], [f.rounds for f in folds])
    margins = [f.booster.predict(matrix, raw_score=True, num_iteration=f.rounds) for f in folds]
    np.testing.assert_allclose(merged.predict(matrix, raw_score=True), np.mean(margins, axis=0), rtol=0, atol=1e-12)
    shap = [f.booster.predict(matrix, pred_contrib=True, num_iteration=f.rounds) for f in folds]
    np.testing.assert_allclose(merged.predict(matrix, pred_contrib=True), np.mean(shap, axis=0), rtol=0, atol=1e-12)
    assert merged.num_trees() == sum(f.rounds for f in folds)


def test_an_unknown_merchant_category_scores_as_other(small_model, sample_records):
    _, records = sample_records
    rec = dict(records[0])
    unknown = small_model.predict_records([{**rec, "merchant_category": "Spaceships"}])[0]
    rare = small_model.predict_records([{**rec, "merchant_category": "another unseen level"}])[0]
    assert 0.0 < unknown < 1.0 and unknown == rare


def test_same_data_and_seed_give_byte_identical_predictions(tmp_path, bentoml_home):
    from klarna_pd.spec import klarna_spec
    from klarna_pd.synth import write_synthetic

    data = tmp_path / "d.csv"
    write_synthetic(data, rows=20_000, seed=3)
    outs = []
    for i in range(2):
        out = tmp_path / f"out{i}"
        # Two threads whatever this worker's CPUs (pytest -n pins each to one): the order in which
        # threads add up histograms is what could make two runs differ.
        config = TrainConfig(folds=3, seed=5, params={"num_threads": 2})
        run(data, klarna_spec(), out, config, store=False, log=lambda *_: None)
        outs.append((out / "predictions.csv").read_bytes())
    assert outs[0] == outs[1]


def test_too_few_defaults_for_the_folds(tmp_path, synthetic_small, klarna_spec):
    lines = synthetic_small.read_text().splitlines()
    kept = [lines[0]] + [x for x in lines[1:] if x.split(";")[1] != "1"][:500]
    path = tmp_path / "no_defaults.csv"
    path.write_text("\n".join(kept) + "\n")
    with pytest.raises(ValueError, match="needs at least 10 rows of each outcome; the labelled rows have 0 defaults"):
        run(path, klarna_spec, tmp_path / "out", TrainConfig(folds=10), store=False, log=lambda *_: None)
    assert not (tmp_path / "out" / "predictions.csv").exists()


# -- faults in the training input ------------------------------------------------------------


def _train_cli(data, out, *extra):
    return subprocess.run(
        [sys.executable, "train.py", "--data", str(data), "--out", str(out), "--folds", "3", "--no-store", *extra],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )


def test_a_truncated_file_is_refused_and_nothing_written(synthetic_small, tmp_path):
    data = tmp_path / "cut.csv"
    raw = synthetic_small.read_bytes()
    data.write_bytes(raw[: len(raw) // 2])  # cut mid-row, as an interrupted copy leaves it
    lines = data.read_bytes().count(b"\n") + 1
    out = tmp_path / "out"
    proc = _train_cli(data, out)
    assert proc.returncode == 2, proc.stderr
    assert f"cut.csv, line {lines}: expected 43 fields, got" in proc.stderr
    assert not out.exists()


def test_a_target_without_defaults_is_refused_and_nothing_written(synthetic_small, klarna_spec, tmp_path):
    frame = pd.read_csv(synthetic_small, sep=";", dtype=str, keep_default_na=False)
    frame.loc[frame["default"] == "1", "default"] = "0"
    data = tmp_path / "zeros.csv"
    frame.to_csv(data, sep=";", index=False)
    out = tmp_path / "out"
    proc = _train_cli(data, out)
    assert proc.returncode != 0
    assert "needs at least 3 rows of each outcome; the labelled rows have 0 defaults" in proc.stderr
    assert not out.exists()


def test_a_feature_missing_everywhere_trains_with_a_warning_on_record(synthetic_small, tmp_path):
    frame = pd.read_csv(synthetic_small, sep=";", dtype=str, keep_default_na=False)
    frame["age"] = "NA"
    data = tmp_path / "no_age.csv"
    frame.to_csv(data, sep=";", index=False)
    out = tmp_path / "out"
    proc = _train_cli(data, out)
    assert proc.returncode == 0, proc.stderr
    assert "WARNING: 1 feature(s) missing in every labelled row, the model cannot use them: age" in proc.stdout + proc.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["input"]["all_missing_features"] == ["age"]
    assert metrics["input"]["constant_features"] == []  # missing everywhere is said once, as missing
    assert "**Missing in every labelled row**: `age`" in (out / "report.md").read_text()


def test_a_flipped_target_constant_columns_and_grouped_thousands_are_named(synthetic_small, klarna_spec, tmp_path):
    """A file with 1 for good (German credit's coding) trained without a word and served P(repaid) as
    PDs; a column of one value (a broken extract), and amounts with thousands separators read as
    decimals (2.006 for 2,006: the model found no signal) were not mentioned either."""
    frame = pd.read_csv(synthetic_small, sep=";", dtype=str, keep_default_na=False).head(2_000)
    frame["default"] = frame["default"].map({"0": "1", "1": "0"}).fillna(frame["default"])
    frame["has_paid"], frame["merchant_group"] = "True", "Entertainment"  # and two columns of one value
    amount = frame["account_amount_added_12_24m"].astype(float).astype(int)  # and a German export's 12.345
    frame["account_amount_added_12_24m"] = [f"{a:,}".replace(",", ".") for a in amount]
    data = tmp_path / "flipped.csv"
    frame.to_csv(data, sep=";", index=False)
    said: list[str] = []
    run(data, klarna_spec, tmp_path / "out", TrainConfig(folds=2), store=False, log=said.append)
    assert ("WARNING: 2 feature(s) with the same value in every labelled row, the model cannot use them: "
            "merchant_group, has_paid") in said
    flipped = [line for line in said if "coded the other way round" in line]
    assert len(flipped) == 1 and flipped[0].startswith("WARNING: ") and "are defaults: is 'default' coded" in flipped[0]
    assert ("WARNING: every fractional value of account_amount_added_12_24m has three decimals (as 2.006): "
            "thousands separators read as decimal points?") in "\n".join(said)
    # and the report says it too (it named only features missing everywhere)
    report = (tmp_path / "out" / "report.md").read_text()
    assert "> **The same value in every labelled row**: `merchant_group`, `has_paid`." in report
    assert ("> **Most fractional values with exactly three decimals**: `account_amount_added_12_24m`."
            in report)


def test_few_events_are_said_and_a_model_without_a_split_is_refused(synthetic_small, klarna_spec, tmp_path):
    """3 defaults read AUC 0.9933 (95% CI 0.9871-0.9994) and Hosmer-Lemeshow p 0.999 without a
    word; 40 labelled rows trained trees without a split (every PD the same), exit 0."""
    frame = pd.read_csv(synthetic_small, sep=";", dtype=str, keep_default_na=False).head(3_000)
    defaults = frame.index[frame["default"] == "1"]
    frame.loc[defaults[12:], "default"] = "0"  # 12 defaults left
    frame.to_csv(tmp_path / "few.csv", sep=";", index=False)
    said: list[str] = []
    run(tmp_path / "few.csv", klarna_spec, tmp_path / "out", TrainConfig(folds=3), store=False,
        log=said.append)
    assert any(line.startswith("WARNING: 12 labelled rows of the rarer outcome (fewer than 50)")
               for line in said)
    report = (tmp_path / "out" / "report.md").read_text()
    assert "> **Only 12 labelled rows of the rarer outcome** (fewer than 50)" in report
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["input"]["rarer_outcome_rows"] == 12
    tiny = frame.head(400).copy()
    tiny.loc[tiny.index[40:], "default"] = "NA"  # 40 labelled rows, leaves of at least 150
    tiny.loc[tiny.index[:6], "default"] = "1"
    tiny.to_csv(tmp_path / "tiny.csv", sep=";", index=False)
    with pytest.raises(ValueError, match="no tree of any fold found a split: every applicant would get"):
        run(tmp_path / "tiny.csv", klarna_spec, tmp_path / "tiny", TrainConfig(folds=3), store=False,
            log=lambda *_: None)
    assert not (tmp_path / "tiny").exists()


def test_large_numbers_are_not_taken_for_thousands_separators():
    """Every value of a column up to 1e15 has 'three decimals' as a float: it was warned about."""
    from klarna_pd.training.pipeline import looks_grouped

    rng = np.random.default_rng(0)
    assert not looks_grouped(rng.uniform(0, 1e15, 500))
    assert looks_grouped(np.round(rng.uniform(1, 900, 500), 3))  # 12.345 for 12,345
    assert not looks_grouped(np.round(rng.uniform(1, 900, 500), 2))  # prices


def test_a_target_given_as_texts_trains_the_same_model_as_0_and_1(synthetic_small, klarna_spec, tmp_path):
    """default_values/repaid_values (Lending Club's loan_status): the same rows coded as texts give the
    same predictions to the last digit, and the stored model's spec keeps the texts."""
    from klarna_pd.spec import DatasetSpec

    frame = pd.read_csv(synthetic_small, sep=";", dtype=str, keep_default_na=False).head(2_000)
    frame.to_csv(tmp_path / "coded.csv", sep=";", index=False)
    frame["default"] = frame["default"].map({"1": "Charged Off", "0": "Fully Paid", "NA": "NA"})
    frame.to_csv(tmp_path / "texts.csv", sep=";", index=False)
    texts = DatasetSpec.model_validate({**klarna_spec.to_dict(), "default_values": ["Charged Off"],
                                        "repaid_values": ["Fully Paid"]})
    quiet = lambda *_: None  # noqa: E731
    run(tmp_path / "coded.csv", klarna_spec, tmp_path / "a", TrainConfig(folds=2), store=False, log=quiet)
    summary = run(tmp_path / "texts.csv", texts, tmp_path / "b", TrainConfig(folds=2), model_name="loans-pd",
                  log=quiet)
    predictions = [(tmp_path / d / "predictions.csv").read_bytes() for d in ("a", "b")]
    assert predictions[0] == predictions[1]
    assert load_model(summary.model_tag).spec.default_values == ("Charged Off",)


@pytest.mark.parametrize("values, grouped", [
    # amounts as a German export writes them (2.006 for 2,006), read with "." as the decimal point
    (lambda r: np.where((v := r.integers(300, 20_000, 500).astype(float)) >= 1000, v / 1000, v), True),
    (lambda r: np.round(r.uniform(1, 500, 500), 2), False),  # prices
    (lambda r: np.floor(r.uniform(1, 100, 500)) + 0.99, False),
    (lambda r: np.round(r.uniform(5, 25, 500), 1), False),  # rates
    (lambda r: r.integers(1, 50, 500) + 0.5, False),
    (lambda r: np.round(r.uniform(0, 3, 500), 3), False),  # ratios below 1 are never thousands
])
def test_the_thousands_warning_stays_quiet_on_ordinary_decimals(values, grouped):
    """A review found it firing on two-decimal prices and one-decimal rates (at most three decimals,
    not exactly three)."""
    from klarna_pd.training.pipeline import looks_grouped

    assert looks_grouped(values(np.random.default_rng(0))) is grouped


def test_a_file_with_three_defaults_trains_without_library_warnings(synthetic_small, klarna_spec, tmp_path, recwarn):
    """Calibration compared its methods on 5 folds whatever the defaults: with 3, scikit-learn's
    warning about the least populated class reached the user's terminal, twice."""
    frame = pd.read_csv(synthetic_small, sep=";", dtype=str, keep_default_na=False)
    defaults = frame.index[frame["default"] == "1"][:3]
    frame = pd.concat([frame.loc[defaults], frame[frame["default"] == "0"].head(600)])
    data = tmp_path / "three.csv"
    frame.to_csv(data, sep=";", index=False)
    # Leaves of 20 rows: with the default 150 no tree of 300 rows and 1-2 defaults splits (refused)
    config = TrainConfig(folds=2, params={"min_data_in_leaf": 20})
    summary = run(data, klarna_spec, tmp_path / "out", config, store=False, log=lambda *_: None)
    assert summary.metrics["calibration"]["comparison_folds"] == 3
    assert "a further 3-fold cross-validation" in (tmp_path / "out" / "report.md").read_text()
    assert not [w for w in recwarn if "least populated class" in str(w.message)]


@pytest.mark.parametrize("where, needle", [
    ("a-file", "expected a directory for the outputs, got a file"),
    ("holds-a-directory", "expected to write the file report.md here, found a directory of that name"),
    ("a-file/below", "cannot write the outputs here"),
])
def test_outputs_that_cannot_be_written_fail_before_training(synthetic_small, klarna_spec, bentoml_home, tmp_path,
                                                             where, needle):
    """Found after training, this used to leave a stored model (made "latest") and a traceback."""
    from klarna_pd.errors import DataError

    (tmp_path / "a-file").write_text("not a directory\n")
    (tmp_path / "holds-a-directory" / "report.md").mkdir(parents=True)
    before = sorted(p.name for p in (bentoml_home / "models").glob("*/*"))
    with pytest.raises(DataError, match=needle):
        run(synthetic_small, klarna_spec, tmp_path / where, TrainConfig(folds=2), model_name="never-stored-pd",
            log=lambda *_: None)
    assert sorted(p.name for p in (bentoml_home / "models").glob("*/*")) == before
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a-file", "holds-a-directory", "report.md"]


@pytest.mark.parametrize("name", ["Klarna-pd", "klarna-pd:v1", "bad name!"])
def test_a_model_name_the_store_cannot_take_fails_before_training(synthetic_small, klarna_spec, tmp_path, name):
    with pytest.raises(ValueError, match=f"expected a model name of lower-case letters.*got {name!r}"):
        run(synthetic_small, klarna_spec, tmp_path / "out", TrainConfig(folds=2), model_name=name, log=lambda *_: None)
    assert not (tmp_path / "out").exists()


def test_a_file_without_labelled_rows_gets_that_error_and_no_other(klarna_spec, tmp_path):
    """It used to warn first that all 41 features were missing in every labelled row (there were none)."""
    from klarna_pd.synth import write_synthetic

    data = tmp_path / "to-score.csv"
    write_synthetic(data, rows=200, seed=4, unlabelled_share=1.0)
    said = []
    with pytest.raises(ValueError, match="the labelled rows have 0 defaults and 0 non-defaults"):
        run(data, klarna_spec, tmp_path / "out", TrainConfig(folds=2), store=False, log=said.append)
    assert not [line for line in said if "missing in every labelled row" in line], said


def test_directions_the_data_contradicts_and_identical_features_are_named(synthetic_small, klarna_spec,
                                                                          tmp_path):
    """A feature declared +1 whose defaults fall as it rises, and an unconstrained copy of a
    constrained feature (the trees split on the copy: the PD fell as the constrained one rose),
    trained without a word and a clean report."""
    frame = pd.read_csv(synthetic_small, sep=";", dtype=str, keep_default_na=False).head(3_000)
    status = pd.to_numeric(frame["account_worst_status_0_3m"], errors="coerce")
    frame["account_worst_status_0_3m"] = (5 - status).map(lambda v: "NA" if pd.isna(v) else str(int(v)))
    frame["num_arch_dc_12_24m"] = frame["num_arch_dc_0_12m"]
    frame.to_csv(tmp_path / "odd.csv", sep=";", index=False)
    said: list[str] = []
    run(tmp_path / "odd.csv", klarna_spec, tmp_path / "out", TrainConfig(folds=2), store=False,
        log=said.append)
    reversed_ = [line for line in said
                 if line.startswith("WARNING: 'account_worst_status_0_3m' is declared +1")]
    assert len(reversed_) == 1, said
    assert "but defaults fall with it in the labelled rows (Spearman -" in reversed_[0]
    assert ("WARNING: features num_arch_dc_0_12m, num_arch_dc_12_24m are equal in every labelled row"
            in "\n".join(said))
    given = json.loads((tmp_path / "out" / "metrics.json").read_text())["input"]
    assert list(given["directions_against_the_data"]) == ["account_worst_status_0_3m"]
    assert given["identical_features"] == [["num_arch_dc_0_12m", "num_arch_dc_12_24m"]]
    report = (tmp_path / "out" / "report.md").read_text()
    assert "> **Declared directions the labelled rows contradict**: `account_worst_status_0_3m` (+1" in report
    assert "> **Equal in every labelled row**: `num_arch_dc_0_12m`, `num_arch_dc_12_24m`." in report
