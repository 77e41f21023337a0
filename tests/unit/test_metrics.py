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
    # Equal PDs are one bin, whatever the row order: 6 defaults in 20 rows at PD 0.3 (split by order
    # into the first and last ten rows, this read 0.2).
    assert metrics.ece(y, np.full(20, 0.3), bins=2) == pytest.approx(0.0)
    assert metrics.ece(y, np.full(20, 0.2), bins=2) == pytest.approx(0.1)


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


def _scores(seed: int, n: int, rate: float):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < rate).astype(float)
    p = rng.normal(loc=1.2 * y, scale=1.0)
    return y, p


@pytest.mark.parametrize("seed, n, rate", [(0, 3_000, 0.1), (1, 5_000, 0.02), (2, 1_000, 0.4)])
def test_delong_standard_error_matches_the_bootstrap(seed, n, rate):
    y, p = _scores(seed, n, rate)
    ci = metrics.auc_delong(y, p)
    assert ci["auc"] == pytest.approx(skm.roc_auc_score(y, p))
    rng = np.random.default_rng(100 + seed)
    boot = []
    for _ in range(400):
        i = rng.integers(0, n, n)
        if 0 < y[i].sum() < n:
            boot.append(skm.roc_auc_score(y[i], p[i]))
    assert ci["se"] == pytest.approx(np.std(boot, ddof=1), rel=0.15)
    assert ci["low"] < ci["auc"] < ci["high"]
    assert ci["high"] - ci["low"] == pytest.approx(2 * 1.959964 * ci["se"], rel=1e-4)


def test_delong_with_ties_and_hand_worked_auc():
    # Tied scores count one half, as in the AUC itself.
    y = np.array([0, 0, 1, 1, 0, 1], dtype=float)
    p = np.array([0.2, 0.5, 0.5, 0.9, 0.1, 0.3])
    assert metrics.auc_delong(y, p)["auc"] == pytest.approx(skm.roc_auc_score(y, p))
    with pytest.raises(ValueError, match="at least 2 rows of each outcome, got 1 defaults"):
        metrics.auc_delong(np.array([0, 0, 1.0]), np.array([0.1, 0.2, 0.3]))


def test_hosmer_lemeshow_hand_worked():
    # Two groups of 10: PDs 0.1 (1 default observed) and 0.5 (8 observed). Expected 1 and 5.
    p = np.repeat([0.1, 0.5], 10)
    y = np.array([1] + [0] * 9 + [1] * 8 + [0] * 2, dtype=float)
    hl = metrics.hosmer_lemeshow(y, p, groups=2)
    assert hl["statistic"] == pytest.approx(0.0 + (8 - 5) ** 2 / (5 * 0.5))
    assert hl["df"] == 0 and hl["groups"] == 2


def test_hosmer_lemeshow_separates_calibrated_from_not():
    rng = np.random.default_rng(3)
    p = rng.uniform(0.01, 0.3, 50_000)
    y = (rng.random(50_000) < p).astype(float)
    assert metrics.hosmer_lemeshow(y, p)["p_value"] > 0.01
    assert metrics.hosmer_lemeshow(y, 0.8 * p)["p_value"] < 1e-6


def test_equal_pds_share_a_bin_whatever_the_order_of_the_rows():
    """Split by row order, a block of equal PDs (as isotonic calibration makes) gave a perfectly
    calibrated model ECE 0.18 and a Hosmer-Lemeshow p of 1e-210 when its defaults came last."""
    p = np.full(1_000, 0.1)
    y = np.r_[np.zeros(900), np.ones(100)]
    shuffled = np.random.default_rng(0).permutation(1_000)
    for order in (np.arange(1_000), shuffled):
        assert metrics.ece(y[order], p[order]) == pytest.approx(0.0, abs=1e-12)
        hl = metrics.hosmer_lemeshow(y[order], p[order])
        assert hl["groups"] == 1 and hl["p_value"] is None  # one group: no test, not NaN
    steps = np.repeat([0.02, 0.05, 0.1, 0.2, 0.4], 200)  # five distinct PDs, ten bins asked
    ys = (np.random.default_rng(1).random(1_000) < steps).astype(float)
    tables = [metrics.calibration_table(ys[o], steps[o]) for o in (np.arange(1_000), shuffled)]
    assert tables[0] == tables[1] and [row["rows"] for row in tables[0]] == [200] * 5


def test_a_table_binned_by_other_pds_holds_the_same_rows():
    rng = np.random.default_rng(2)
    margin = rng.normal(-3, 1, 5_000)
    calibrated = np.round(1 / (1 + np.exp(-margin)), 2)  # ties, same order
    y = (rng.random(5_000) < calibrated).astype(float)
    before = metrics.calibration_table(y, 1 / (1 + np.exp(-margin)), by=calibrated)
    after = metrics.calibration_table(y, calibrated)
    assert [(r["bin"], r["rows"], r["default_rate"]) for r in before] == [
        (r["bin"], r["rows"], r["default_rate"]) for r in after]
