"""The single-row predictor (LightGBM's fast C API) against Booster.predict: the same margin, bit for bit."""

import numpy as np
import pytest

from klarna_pd.model import single_row

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
