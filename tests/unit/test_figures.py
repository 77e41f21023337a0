"""The report's SVG figures: round axis ticks, legends and scales."""

import re

import numpy as np
import pytest

from klarna_pd.training import figures

pytestmark = pytest.mark.unit


def _is_round_step(step: float) -> bool:
    mantissa = step / 10 ** np.floor(np.log10(step))
    return any(np.isclose(mantissa, m) for m in (1, 2, 5, 10))


@pytest.mark.parametrize("high", [0.105, 0.026, 1.0, 0.37, 7.3, 0.0042, 0.8, 123.0])
def test_nice_ticks_are_round_and_cover_the_range(high):
    ticks = figures.nice_ticks(0.0, high)
    steps = np.diff(ticks)
    assert np.allclose(steps, steps[0]) and _is_round_step(steps[0])
    assert ticks[0] == 0.0 and ticks[-1] >= high and ticks[-2] < high
    assert 3 <= len(ticks) <= 6


def _tick_labels(svg: str) -> list[str]:
    return re.findall(r'text-anchor="(?:middle|end)">([^<]*%)</text>', svg)


def test_reliability_ticks_are_round_percentages():
    # The deciles of a 1.4 % default-rate model: top around 10.5 %, where 0/2.6/5.3/7.9/10.5 % came from.
    table = [{"mean_pd": m, "default_rate": m * 1.02} for m in (0.001, 0.003, 0.006, 0.01, 0.02, 0.05, 0.0955)]
    labels = _tick_labels(figures.reliability(table, table))
    values = sorted({float(t.rstrip("%")) for t in labels})
    assert values == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0], labels


def test_importance_has_a_legend_and_two_scales():
    table = {f"f{i}": {"mean_abs_shap": 0.9 / (i + 1), "gain": 0.3 / (i + 1)} for i in range(5)}
    svg = figures.importance(table)
    assert "mean |SHAP| on the log-odds (top axis)" in svg and "share of total gain (bottom axis)" in svg
    top = re.findall(r'fill="#1f77b4">([^<]*)</text>', svg)
    bottom = re.findall(r'fill="#ff7f0e">([^<]*)</text>', svg)
    assert top == ["0", "0.2", "0.4", "0.6", "0.8", "1"]
    assert bottom == ["0%", "10%", "20%", "30%"]


def test_master_scale_figure_skips_log_of_zero():
    grades = [
        {"grade": 1, "rows": 500, "defaults": 0, "default_rate": 0.0, "mean_pd": 0.0006},
        {"grade": 5, "rows": 400, "defaults": 6, "default_rate": 0.015, "mean_pd": 0.014},
    ]
    svg = figures.master_scale(grades)
    assert "nan" not in svg and "inf" not in svg
    assert svg.count("<circle") == 1
