"""The master scale: grades, per-grade tests, traffic lights and concentration."""

import numpy as np
import pytest
from scipy import stats

from klarna_pd.training import masterscale as ms

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "pd, grade",
    [(0.0, 1), (0.0009, 1), (0.001, 2), (0.0149, 5), (0.02, 6), (0.0499, 6), (0.05, 7), (0.2, 9), (0.5, 10), (0.999, 10)],
)
def test_grade_bands_are_closed_below_and_open_above(pd, grade):
    assert ms.grade_of(np.array([pd]))[0] == grade
    low, high = ms.band(grade)
    assert low <= pd < high


def test_bands_cover_zero_to_one_without_gaps():
    edges = [ms.band(g) for g in range(1, ms.GRADES + 1)]
    assert edges[0][0] == 0.0 and edges[-1][1] == 1.0
    assert all(a[1] == b[0] for a, b in zip(edges, edges[1:]))


def test_jeffreys_is_the_beta_posterior_at_the_pd():
    # 10 defaults in 200 rows: posterior Beta(10.5, 190.5); at PD 5 % (the observed rate) it is near 1/2.
    assert ms.jeffreys_p(10, 200, 0.05) == pytest.approx(stats.beta.cdf(0.05, 10.5, 190.5))
    assert 0.4 < ms.jeffreys_p(10, 200, 0.05) < 0.6
    assert ms.jeffreys_p(30, 200, 0.05) < 1e-6  # 15 % observed against a 5 % PD: underestimated
    assert ms.jeffreys_p(0, 200, 0.05) > 0.99  # no defaults: no sign of underestimation


def test_binomial_is_the_upper_tail():
    assert ms.binomial_p(10, 200, 0.05) == pytest.approx(stats.binom.sf(9, 200, 0.05))
    assert ms.binomial_p(0, 200, 0.05) == 1.0


@pytest.mark.parametrize("p, colour", [(0.0, "red"), (0.0099, "red"), (0.01, "yellow"), (0.0499, "yellow"),
                                       (0.05, "green"), (0.9, "green")])
def test_traffic_light_thresholds(p, colour):
    assert ms.light(p) == colour


def test_herfindahl_even_and_concentrated():
    even = ms.herfindahl(np.full(10, 50))
    assert even["hhi"] == pytest.approx(0.1) and even["hi"] == pytest.approx(0.0) and even["cv"] == pytest.approx(0.0)
    one = ms.herfindahl(np.array([0, 0, 500, 0, 0, 0, 0, 0, 0, 0]))
    assert one["hhi"] == pytest.approx(1.0) and one["hi"] == pytest.approx(1.0)
    half = ms.herfindahl(np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, 0]))
    assert half["hhi"] == pytest.approx(0.5) and half["hi"] == pytest.approx(1 + np.log(0.5) / np.log(10))
    assert ms.herfindahl(np.zeros(10))["hhi"] is None


def _portfolio(seed: int, n: int = 40_000):
    rng = np.random.default_rng(seed)
    pd = np.exp(rng.uniform(np.log(0.0005), np.log(0.6), n))
    return pd, (rng.random(n) < pd).astype(float)


def test_calibrated_pds_light_no_grade_red():
    pd, y = _portfolio(0)
    scale = ms.master_scale(y, pd, pd[:1000])
    assert sum(g["rows"] for g in scale["grades"]) == len(y)
    assert sum(g["scored_rows"] for g in scale["grades"]) == 1000
    assert sum(g["defaults"] for g in scale["grades"]) == y.sum()
    assert scale["lights"]["red"] == 0
    for g in scale["grades"]:
        if g["rows"]:
            assert g["pd_low"] <= g["mean_pd"] < g["pd_high"]


def test_underestimated_pds_light_red():
    pd, y = _portfolio(1)
    scale = ms.master_scale(y, pd * 0.6, np.empty(0))
    assert scale["lights"]["red"] >= 3
    assert scale["herfindahl"]["scored"]["hhi"] is None
    assert all(g["scored_mean_pd"] is None for g in scale["grades"])


def test_a_grade_without_defaults_is_green():
    """Zero defaults cannot show a PD too low: Jeffreys' half a default of prior lit a 50-row grade
    at PD 1e-6 red (p 0.008) although no default was seen; the binomial test decides there."""
    pd = np.r_[np.full(50, 1e-6), np.full(2_000, 0.05)]
    y = np.r_[np.zeros(50), (np.arange(2_000) % 20 == 0).astype(float)]
    lowest = ms.master_scale(y, pd, np.empty(0))["grades"][0]
    assert (lowest["rows"], lowest["defaults"]) == (50, 0)
    assert lowest["jeffreys_p"] < 0.01 and lowest["binomial_p"] == 1.0 and lowest["light"] == "green"
