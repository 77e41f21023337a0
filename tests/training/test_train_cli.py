"""train.py as make runs it: reuse the stored model while nothing it was trained from changed."""

import os
import subprocess
import sys

import pytest

from klarna_pd.spec import klarna_spec, load_spec
from klarna_pd.synth import write_synthetic
from klarna_pd.training import TrainConfig
from klarna_pd.training.reuse import reusable_model

from ..helpers.paths import ROOT, UCI_SPEC

pytestmark = [pytest.mark.training]


NAME = "reuse-test-pd"  # its own name in the session's store: no other test's model is "latest"


def _train(home, *args):
    proc = subprocess.run(
        [sys.executable, "train.py", "--folds", "2", "--model-name", NAME, *args],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env={**os.environ, "BENTOML_HOME": str(home)},
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _versions(home):
    return sorted(p.name for p in (home / "models" / NAME).iterdir() if p.is_dir())


def test_reuse_only_while_data_spec_and_settings_are_unchanged(tmp_path, bentoml_home):
    data, out = tmp_path / "dataset.csv", tmp_path / "out"
    write_synthetic(data, rows=2_000, seed=2)
    args = ("--data", str(data), "--out", str(out), "--reuse")

    said = _train(bentoml_home, *args)
    assert f"training: no model {NAME} in the store yet" in said
    first = _versions(bentoml_home)
    assert len(first) == 1

    said = _train(bentoml_home, *args)
    assert said.startswith(f"not training: reusing {NAME}:{first[0]} was trained from the same data (sha256)")
    assert _versions(bentoml_home) == first  # no new version

    # What would make it train again, asked without training each time.
    tag = f"{NAME}:{first[0]}"
    same = TrainConfig(folds=2)
    assert reusable_model(data, klarna_spec(), out, same, NAME)[0] == tag
    assert reusable_model(data, klarna_spec(), out, TrainConfig(folds=2, seed=1), NAME) == (
        None, f"the spec or training settings changed since {tag} was trained")
    assert reusable_model(data, klarna_spec(), out, TrainConfig(folds=2, monotone=False), NAME)[0] is None
    assert reusable_model(data, load_spec(UCI_SPEC), out, same, NAME)[0] is None
    assert reusable_model(data, klarna_spec(), tmp_path / "elsewhere", same, NAME) == (
        None, f"{tmp_path / 'elsewhere' / 'metrics.json'} is missing or describes another model than {tag}")
    write_synthetic(data, rows=2_000, seed=3)
    assert reusable_model(data, klarna_spec(), out, same, NAME) == (
        None, f"{data} changed since {tag} was trained (sha256 differs)")


def test_make_run_reuses_and_make_train_forces():
    def recipe(target):
        return subprocess.run(["make", "-n", target], cwd=ROOT, capture_output=True, text=True, check=True).stdout

    assert ".venv/bin/python train.py --reuse" in recipe("run")
    assert "train.py --reuse" not in recipe("train") and ".venv/bin/python train.py" in recipe("train")
    env = subprocess.run(["make", "--eval", "print-env: ; @echo $$BENTOML_DO_NOT_TRACK", "print-env"],
                         cwd=ROOT, capture_output=True, text=True, check=True, env={"PATH": os.environ["PATH"]})
    assert env.stdout.strip() == "True"


@pytest.mark.parametrize("args", [["--help"], ["--folds", "1"]], ids=["help", "bad-flag"])
def test_help_and_flag_errors_answer_before_the_training_stack_loads(args):
    proc = subprocess.run([sys.executable, "-X", "importtime", "train.py", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == (0 if args == ["--help"] else 2), proc.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    training_stack = imported & {"lightgbm", "sklearn", "pandas"}
    assert not training_stack, sorted(training_stack)


def test_reuse_checks_the_model_name_before_the_store_is_asked(tmp_path, capsys):
    """With --reuse, a name with ':v1' reached the store first: BentoML's 'Invalid Tag' traceback."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("train_cli", ROOT / "train.py")
    train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train)
    data = tmp_path / "d.csv"
    write_synthetic(data, rows=300, seed=3)
    args = ["--reuse", "--model-name", "klarna-pd:v1", "--data", str(data), "--out", str(tmp_path / "o")]
    assert train.main(args) == 2
    assert "without ':version'" in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_settings_out_of_range_and_outputs_over_the_data_are_refused_before_reading(tmp_path, capsys):
    """A seed past 2**32 - 1 and --tune-trials with --predictor refit were refused only after the
    data was read; an input named like an output in --out (predictions.csv) was overwritten."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("train_cli", ROOT / "train.py")
    train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train)
    with pytest.raises(SystemExit) as exit_:
        train.main(["--seed", "99999999999999999999"])
    assert exit_.value.code == 2 and "expected a number from 0 to 4,294,967,295" in capsys.readouterr().err
    missing = ["--data", str(tmp_path / "absent.csv"), "--out", str(tmp_path / "o")]
    for args, needle in ((["--tune-trials", "1", "--predictor", "refit"], "predictor must be 'folds'"),
                         (["--seed", str(2**32 - 1), "--repeats", "2"],
                          "with 2 repeat(s) of 10 folds, to 4,294,967,294")):
        assert train.main([*args, *missing]) == 2
        err = capsys.readouterr().err
        assert needle in err and "absent.csv" not in err, err  # the data was never looked at
    data = tmp_path / "o" / "predictions.csv"
    data.parent.mkdir()
    write_synthetic(data, rows=300, seed=3)
    before = data.read_bytes()
    assert train.main(["--data", str(data), "--out", str(tmp_path / "o"), "--no-store", "--folds", "2"]) == 2
    assert "--out's predictions.csv is the --data file: writing it would destroy what is read" in \
        capsys.readouterr().err
    assert data.read_bytes() == before
