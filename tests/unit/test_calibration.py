import numpy as np
import pytest

from klarna_pd.model import calibration
from klarna_pd.training import calibration as fitting
from klarna_pd.training import metrics

pytestmark = pytest.mark.unit


def _data(n=20_000, seed=0):
    rng = np.random.default_rng(seed)
    margin = rng.normal(-4, 1.5, n)
    # Truth is steeper than the margin says: calibration must stretch it.
    p = 1 / (1 + np.exp(-(1.4 * margin + 1.0)))
    return margin, (rng.random(n) < p).astype(float)


@pytest.mark.parametrize("fit", [fitting.fit_platt, fitting.fit_isotonic])
def test_calibrators_improve_log_loss_and_roundtrip(fit):
    margin, y = _data()
    raw = 1 / (1 + np.exp(-margin))
    cal = fit(margin, y)
    out = cal.transform(margin)
    assert metrics.log_loss(y, out) < metrics.log_loss(y, raw)
    assert np.all((out > 0) & (out < 1))
    again = calibration.from_dict(cal.to_dict())
    assert np.array_equal(again.transform(margin), out)
    assert np.all(np.diff(out[np.argsort(margin)]) >= 0)  # never reorders


def test_choose_reports_both_and_picks_the_lower_log_loss():
    margin, y = _data()
    cal, report, cross_fitted = fitting.choose(margin, y, seed=0)
    scores = report["cross_validated"]
    assert set(scores) == {"platt", "isotonic"}
    best = min(scores, key=lambda k: scores[k]["log_loss"])
    assert report["chosen"] == best == cal.method
    # the evidence comes from calibrators that did not see the row, not from the one fitted on all
    assert metrics.log_loss(y, cross_fitted) == pytest.approx(scores[best]["log_loss"])
    assert not np.array_equal(cross_fitted, cal.transform(margin))


def test_the_calibration_evidence_is_out_of_sample():
    """Isotonic fitted on the very rows it was then judged on read a perfect ECE and Hosmer-Lemeshow
    p = 1.000 on any small file (each block's PD is its default rate, by construction)."""
    rng = np.random.default_rng(3)
    margin = rng.normal(size=1_800)
    y = (rng.random(1_800) < 1 / (1 + np.exp(-margin))).astype(float)
    cal = fitting.fit_isotonic(margin, y)
    assert metrics.hosmer_lemeshow(y, cal.transform(margin))["p_value"] > 0.999  # in sample: meaningless
    _, _, cross_fitted = fitting.choose(margin, y, seed=0)
    assert metrics.hosmer_lemeshow(y, cross_fitted)["p_value"] < 0.999


@pytest.mark.parametrize(
    "raw, needle",
    [
        ({"method": "magic"}, "must be one of"),
        ({"method": "platt", "a": float("nan"), "b": 0.0}, "finite parameters"),
        ({"method": "isotonic", "x": [0, 1], "y": [0.5, 0.1]}, "non-decreasing"),
    ],
)
def test_bad_calibrator_files(raw, needle):
    with pytest.raises(ValueError, match=needle):
        calibration.from_dict(raw)
