"""The single-row predictor (LightGBM's fast C API) against Booster.predict: the same margin, bit for bit."""

import numpy as np
import pytest

from klarna_pd.model import single_row

from ..helpers.garbage import cycles_left

pytestmark = pytest.mark.unit


def test_single_rows_score_exactly_as_the_booster(small_model, synthetic_small, klarna_spec):
    from klarna_pd.data.files import read_dataset

    batch = read_dataset(synthetic_small, klarna_spec).batch
    matrix = small_model.encoder.encode(batch)[:2000]
    matrix[::7, ::3] = np.nan  # missing values take the trees' missing branches
    predictor = single_row.make(small_model.booster)
    assert predictor is not None, "this LightGBM no longer offers the fast single-row API"
    expected = small_model.booster.predict(matrix, raw_score=True, num_threads=1)
    got = np.array([predictor.margin(row) for row in matrix])
    np.testing.assert_array_equal(got, expected)
    # PDModel uses it for one-row requests: the same PDs as a batch of the same rows.
    one_by_one = np.concatenate([small_model.predict_matrix(matrix[i : i + 1]) for i in range(50)])
    np.testing.assert_array_equal(one_by_one, small_model.predict_matrix(matrix[:50]))


def test_a_single_row_leaves_nothing_for_the_garbage_collector(small_model):
    """A pointer made per call (``ndarray.ctypes.data_as``) is a ctypes object in a reference cycle:
    two objects per row that only the collector frees, which at 2,000 requests a second became a
    55-60 ms pause of the worker every ~11 s (benchmarks/results/soak.md)."""
    predictor = single_row.make(small_model.booster)
    row = np.random.default_rng(0).normal(size=small_model.booster.num_feature())
    predictor.margin(row)  # the thread's buffers, made once
    left = cycles_left(lambda: predictor.margin(row), 1000)
    assert left < 100, f"{left} objects in reference cycles after 1,000 single rows"


def test_a_row_of_another_length_is_refused(small_model):
    predictor = single_row.make(small_model.booster)
    with pytest.raises(ValueError):
        predictor.margin(np.zeros(small_model.booster.num_feature() + 1))
