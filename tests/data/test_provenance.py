"""The synthetic stand-in is recognised by its provenance record, wherever it is written."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from klarna_pd.errors import DataError
from klarna_pd.files import sha256_file
from klarna_pd.synth import write_synthetic
from klarna_pd.synth.provenance import SynthRecord, read_record, record_path, true_pd_by_id, write_record

from ..helpers.paths import ROOT

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    d = tmp_path_factory.mktemp("prov")
    data, truth = d / "dataset.csv", d / "truth.csv"
    write_synthetic(data, rows=3_000, seed=4, truth=truth)
    return data, truth


def test_the_record_names_the_recipe_and_the_bytes(generated):
    data, _ = generated
    raw = json.loads(record_path(data).read_text())
    assert record_path(data).name == "dataset.csv.synthetic.json"
    assert raw["rows"] == 3_000 and raw["seed"] == 4 and raw["sha256"] == sha256_file(data)
    record, why = read_record(data, sha256_file(data))
    assert why is None and record == SynthRecord(**raw)


def test_a_copy_with_its_record_is_recognised_anywhere(generated, tmp_path):
    data, _ = generated
    copy = tmp_path / "elsewhere" / "real_looking_name.csv"
    copy.parent.mkdir()
    shutil.copy(data, copy)
    assert read_record(copy, sha256_file(copy)) == (None, None)  # no record beside it: not synthetic
    shutil.copy(record_path(data), record_path(copy))
    record, why = read_record(copy, sha256_file(copy))
    assert record is not None and why is None


def test_other_bytes_under_an_old_record_are_not_synthetic(generated, tmp_path):
    data, _ = generated
    real = tmp_path / "dataset.csv"
    real.write_bytes(data.read_bytes().replace(b";0;", b";1;", 1))  # e.g. the real file copied over it
    shutil.copy(record_path(data), record_path(real))
    record, why = read_record(real, sha256_file(real))
    assert record is None
    assert "describes other bytes" in why and "not treated as the synthetic stand-in" in why


def test_the_true_pd_is_regenerated_from_the_recipe(generated):
    data, truth = generated
    record, _ = read_record(data, sha256_file(data))
    written = pd.read_csv(truth, sep=";")
    ids = written["uuid"].to_numpy()[::-1]  # any order, by id
    # The truth file prints about 16 decimals (pyarrow's cast to text); the recipe gives every digit.
    np.testing.assert_allclose(true_pd_by_id(record, ids), written["true_pd"].to_numpy()[::-1], rtol=0, atol=1e-15)


def test_ids_the_recipe_does_not_make_are_refused(generated, tmp_path):
    data, _ = generated
    record, _ = read_record(data, sha256_file(data))
    other = SynthRecord(**{**record.__dict__, "seed": 5})
    with pytest.raises(DataError, match="no longer produces row .* from seed 5 and 3000 rows"):
        true_pd_by_id(other, pd.read_csv(data, sep=";")["uuid"].to_numpy()[:3])
    assert write_record(tmp_path / "x.csv", other) == tmp_path / "x.csv.synthetic.json"


def test_cli_unlabelled_only_writes_a_file_to_score(tmp_path):
    out = tmp_path / "scoring.csv"
    proc = subprocess.run(
        [sys.executable, "-m", "klarna_pd.synth", "--rows", "500", "--unlabelled-only", "--seed", "7", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"SYNTHETIC: recorded as such in {record_path(out)}" in proc.stdout
    frame = pd.read_csv(out, sep=";", keep_default_na=False, dtype=str)
    assert len(frame) == 500 and set(frame["default"]) == {"NA"}
