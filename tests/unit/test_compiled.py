"""The compiled trees (lleaves) against LightGBM: the same margins and PDs, bit for bit, or LightGBM."""

import logging
import subprocess
import sys

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from klarna_pd.model import compiled

from ..helpers.garbage import cycles_left
from ..helpers.paths import ROOT

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def fresh_model(small_trained):
    """A model of its own (the session's small_model is shared, so it is never compiled here)."""
    from klarna_pd.store.local import load_model

    return load_model(small_trained.model_tag)


@pytest.fixture(scope="module")
def matrix(fresh_model, synthetic_small, klarna_spec):
    from klarna_pd.data.files import read_dataset

    m = fresh_model.encoder.encode(read_dataset(synthetic_small, klarna_spec).batch)
    m[::7, ::3] = np.nan  # missing values take the trees' missing branches
    return m


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64).view(np.int64)


def test_the_served_model_scores_the_same_bits_compiled(fresh_model, matrix):
    expected_margin = fresh_model.booster.predict(matrix, raw_score=True, num_threads=1)
    expected_pd = fresh_model.predict_matrix(matrix)
    assert fresh_model.compile_trees() and fresh_model.trees_compiled
    np.testing.assert_array_equal(_bits(fresh_model.margin(matrix)), _bits(expected_margin))
    np.testing.assert_array_equal(_bits(fresh_model.predict_matrix(matrix)), _bits(expected_pd))
    # Threads split the rows, not the sums: the same bits on 2 threads.
    np.testing.assert_array_equal(_bits(fresh_model.margin(np.vstack([matrix] * 4), num_threads=2)),
                                  _bits(np.tile(expected_margin, 4)))


def test_scoring_compiled_leaves_nothing_for_the_garbage_collector(fresh_model, matrix):
    """lleaves' own predict leaves ctypes pointers in reference cycles, two per call, that only the
    collector frees (a 60-110 ms pause of the worker once they piled up): the margins come from the
    same function called with plain addresses."""
    trees = compiled.compile_booster(fresh_model.booster)
    assert trees is not None
    rows = matrix[:20]
    left = cycles_left(lambda: trees.margin(rows), 500)
    assert left < 100, f"{left} objects in reference cycles after 500 calls"
    with pytest.raises(ValueError, match=f"expected rows of {matrix.shape[1]} features"):
        trees.margin(matrix[:, :-1])


def test_deep_trees_with_categorical_splits_compile_to_the_same_bits(matrix, fresh_model):
    """31 leaves, depth, categorical sets over many levels: more kinds of branches than the
    served model's 4 leaves; the probe reaches each threshold, its neighbours, NaN and unseen codes."""
    enc = fresh_model.encoder
    cat = max(enc.categorical_indices_, key=lambda j: len(np.unique(matrix[~np.isnan(matrix[:, j]), j])))
    codes = np.nan_to_num(matrix[:, cat], nan=-1.0)
    y = ((codes % 3 == 0) ^ (np.nan_to_num(matrix[:, 0]) > np.nanmedian(matrix[:, 0]))).astype(float)
    booster = lgb.train(
        {"objective": "binary", "num_leaves": 31, "min_data_in_leaf": 5, "min_data_per_group": 5,
         "cat_smooth": 1, "max_cat_to_onehot": 2, "verbosity": -1, "num_threads": 1, "seed": 1},
        lgb.Dataset(matrix, y, feature_name=enc.feature_names_, categorical_feature=enc.categorical_indices_),
        num_boost_round=60,
    )
    assert "==" in str(booster.dump_model())  # categorical splits present
    _assert_probe_reaches_every_leaf(booster)
    trees = compiled.compile_booster(booster)
    assert trees is not None
    np.testing.assert_array_equal(_bits(trees.margin(matrix)),
                                  _bits(booster.predict(matrix, raw_score=True, num_threads=1)))


def test_the_parity_probe_takes_every_branch_of_the_served_model(fresh_model):
    _assert_probe_reaches_every_leaf(fresh_model.booster)


def _assert_probe_reaches_every_leaf(booster):
    probe = compiled.parity_probe(booster)
    assert np.isnan(probe).any() and (probe == 1e-36).any()
    reached = booster.predict(probe, pred_leaf=True, num_threads=1)  # rows x trees: the leaf each row ends in
    for t, tree in enumerate(booster.dump_model()["tree_info"]):
        assert set(reached[:, t]) == set(range(tree["num_leaves"])), f"tree {t}: leaves never reached"


def test_another_order_of_sums_is_refused_and_lightgbm_scores(fresh_model, caplog):
    """lleaves' default blocks of 34 trees add partial sums: off in the last bits for some rows,
    which the check must see."""
    with caplog.at_level(logging.WARNING, logger="klarna_pd.model.compiled"):
        assert compiled.compile_booster(fresh_model.booster, block=34) is None
    assert "differ from LightGBM on" in caplog.text and "scoring with LightGBM" in caplog.text


def test_without_lleaves_the_model_says_so_and_lightgbm_scores(small_trained, matrix, monkeypatch, caplog):
    from klarna_pd.store.local import load_model

    model = load_model(small_trained.model_tag)
    expected = model.predict_matrix(matrix)
    monkeypatch.setitem(sys.modules, "lleaves", None)  # as if not installed
    with caplog.at_level(logging.WARNING, logger="klarna_pd.model.compiled"):
        assert model.compile_trees() is False
    assert "lleaves is not installed" in caplog.text and not model.trees_compiled
    np.testing.assert_array_equal(model.predict_matrix(matrix), expected)


def test_the_batch_cli_writes_the_same_file_compiled(small_trained, synthetic_small, tmp_path):
    outs = []
    for flags in ([], ["--compiled-trees"]):
        out = tmp_path / f"scores{len(flags)}.csv"
        proc = subprocess.run([sys.executable, "-m", "klarna_pd.batch", "--model", small_trained.model_tag,
                               "--input", str(synthetic_small), "--output", str(out), "--quiet", *flags],
                              cwd=ROOT, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        assert "warning" not in proc.stderr.lower(), proc.stderr
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    assert len(pd.read_csv(tmp_path / "scores1.csv", sep=";")) == 6_000
