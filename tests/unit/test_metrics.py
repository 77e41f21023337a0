import numpy as np
import pytest
from sklearn import metrics as skm

from klarna_pd.training import metrics

pytestmark = pytest.mark.unit

Y = np.array([0, 0, 1, 1, 0, 1, 0, 0])
P = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.7, 0.3, 0.05])


def test_auc_hand_worked():
    # Positives 0.35, 0.8, 0.7 against negatives 0.1, 0.4, 0.2, 0.3, 0.05: 14 of 15 pairs ordered.
    assert metrics.auc(Y, P) == pytest.approx(14 / 15)
    assert metrics.gini(Y, P) == pytest.approx(2 * 14 / 15 - 1)


def test_ks_hand_worked():
    # At threshold 0.35 all positives are above and 4 of 5 negatives below: KS = 1 - 1/5.
    assert metrics.ks(Y, P) == pytest.approx(0.8)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_against_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    p = rng.random(500)
    y = (rng.random(500) < p).astype(float)
    assert metrics.auc(y, p) == pytest.approx(skm.roc_auc_score(y, p))
    assert metrics.pr_auc(y, p) == pytest.approx(skm.average_precision_score(y, p))
    assert metrics.brier(y, p) == pytest.approx(skm.brier_score_loss(y, p))
    assert metrics.log_loss(y, p) == pytest.approx(skm.log_loss(y, p))


def test_ece_zero_when_each_bin_is_calibrated():
    p = np.repeat([0.1, 0.5], 10)
    y = np.array([1] + [0] * 9 + [1] * 5 + [0] * 5, dtype=float)
    assert metrics.ece(y, p, bins=2) == pytest.approx(0.0)
    assert metrics.ece(y, np.repeat([0.3, 0.3], 10), bins=2) == pytest.approx(0.2)


def test_psi():
    rng = np.random.default_rng(0)
    base = rng.normal(size=20_000)
    assert metrics.psi(base, rng.normal(size=20_000)) < 0.01
    assert metrics.psi(base, rng.normal(loc=1.0, size=20_000)) > 0.25
    # Hand-worked: shares (0.5, 0.5) against (0.25, 0.75).
    expected = 0.25 * np.log(0.5) * -1 + 0.25 * np.log(1.5)
    assert metrics.psi_from_shares([0.5, 0.5], [0.25, 0.75]) == pytest.approx(expected)


def test_bad_input():
    with pytest.raises(ValueError, match="only 0 and 1"):
        metrics.auc(np.array([0, 2]), np.array([0.1, 0.2]))
    with pytest.raises(ValueError, match="equal length"):
        metrics.brier(np.array([0, 1]), np.array([0.1]))
