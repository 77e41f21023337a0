"""The master scale: rating grades with fixed PD bands, and the calibration tests run per grade.

One scale for every dataset, as a bank keeps one master scale for all its rating systems, so
that grades mean the same PD band whatever model produced them. The bands follow a 1-2-5
sequence (roughly equal steps in log PD) from 0.1 % to 50 %: ten grades, enough to separate a
1.4 % default-rate portfolio (the Klarna file) and a 22 % one (the UCI Taiwan file).

Per grade, on the labelled rows and their out-of-fold PDs (PDs from a model that did not see
the row), two one-sided tests of the hypothesis "the grade's mean PD is not below its true
default rate" (the supervisor's concern is underestimation; overestimation shows as an observed
rate well below the mean PD):

- **Jeffreys test** (ECB, instructions for reporting the validation results of IRB models):
  p = F(mean PD), F the Beta(defaults + 1/2, rows - defaults + 1/2) distribution function: the
  posterior probability, under the Jeffreys prior, that the true rate is at most the mean PD.
- **exact binomial test**: p = P(D >= defaults) for D ~ Binomial(rows, mean PD).

Traffic light, from the smaller of the two p-values: **red** below 0.01, **yellow** from 0.01 to
0.05, **green** from 0.05. Ten tests are run at once: in a well calibrated model some grade shows
yellow or red about 40 % of the time (1 - 0.95^10), red about 10 % (1 - 0.99^10); a red grade
with a large gap, or several grades on the same side, is what calls for action.

Concentration: the Herfindahl index of the grades' shares of rows, HHI = sum of squared shares
(1/K when spread evenly over the K grades, 1 when all rows share one grade), and the ECB's
normalised form HI = 1 + ln(HHI) / ln(K), from 0 (even) to 1 (one grade).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

#: Upper PD bound of each grade but the last; grade g holds PDs in [bound g-1, bound g).
GRADE_UPPER_BOUNDS: tuple[float, ...] = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.10, 0.20, 0.50)
GRADES = len(GRADE_UPPER_BOUNDS) + 1
#: p-value thresholds of the traffic light: below the first red, below the second yellow.
RED_BELOW = 0.01
YELLOW_BELOW = 0.05
LIGHTS = ("green", "yellow", "red")


def grade_of(pd: np.ndarray) -> np.ndarray:
    """The grade (1 = lowest PD band) of each PD."""
    return np.searchsorted(np.asarray(GRADE_UPPER_BOUNDS), np.asarray(pd, dtype=float), side="right") + 1


def band(grade: int) -> tuple[float, float]:
    """The grade's PD band [low, high)."""
    edges = (0.0, *GRADE_UPPER_BOUNDS, 1.0)
    return edges[grade - 1], edges[grade]


def jeffreys_p(defaults: int, rows: int, pd: float) -> float:
    """One-sided Jeffreys test: the posterior probability that the true default rate is at most ``pd``."""
    return float(stats.beta.cdf(pd, defaults + 0.5, rows - defaults + 0.5))


def binomial_p(defaults: int, rows: int, pd: float) -> float:
    """One-sided exact binomial test: P(at least ``defaults`` defaults among ``rows`` at rate ``pd``)."""
    return float(stats.binomtest(defaults, rows, pd, alternative="greater").pvalue)


def light(p_value: float) -> str:
    """Traffic light of a p-value: red below :data:`RED_BELOW`, yellow below :data:`YELLOW_BELOW`."""
    return "red" if p_value < RED_BELOW else "yellow" if p_value < YELLOW_BELOW else "green"


def herfindahl(counts: np.ndarray) -> dict[str, float]:
    """Concentration of rows over the grades of the scale.

    Args:
        counts: rows per grade, one entry for each of the scale's K grades (zeros included).

    Returns:
        ``hhi`` (sum of squared shares), ``hi`` (the ECB's 1 + ln(HHI)/ln(K)) and ``cv`` (the
        coefficient of variation of the shares, sqrt(K * sum (share - 1/K)^2)); None when no rows.
    """
    counts = np.asarray(counts, dtype=float)
    k = len(counts)
    total = counts.sum()
    if total == 0:
        return {"hhi": None, "hi": None, "cv": None}
    shares = counts / total
    hhi = float(np.sum(shares**2))
    return {
        "hhi": hhi,
        "hi": float(1.0 + np.log(hhi) / np.log(k)),
        "cv": float(np.sqrt(k * np.sum((shares - 1.0 / k) ** 2))),
    }


def master_scale(y: np.ndarray, pd: np.ndarray, scored_pd: np.ndarray) -> dict[str, Any]:
    """The master scale of a model: counts, observed and predicted default rates and tests per grade.

    Args:
        y: outcomes of the labelled rows.
        pd: their out-of-fold PDs.
        scored_pd: the final model's PDs of the rows it scored (no outcomes; may be empty).

    Returns:
        The ``master_scale`` entry of ``metrics.json``: ``grade_upper_bounds``,
        ``light_thresholds``, ``grades`` (one entry per grade, empty ones included: ``grade``,
        ``pd_low``, ``pd_high``, ``rows``, ``defaults``, ``default_rate``, ``mean_pd``,
        ``jeffreys_p``, ``binomial_p``, ``light``, ``scored_rows``, ``scored_mean_pd``; rates,
        p-values and light are None for a grade without labelled rows), ``herfindahl``
        (``labelled`` and ``scored``, see :func:`herfindahl`) and ``lights`` (grades per colour).
    """
    y = np.asarray(y, dtype=float)
    pd = np.asarray(pd, dtype=float)
    scored_pd = np.asarray(scored_pd, dtype=float)
    g_lab, g_sc = grade_of(pd), grade_of(scored_pd)
    grades = []
    for g in range(1, GRADES + 1):
        low, high = band(g)
        mask, smask = g_lab == g, g_sc == g
        n, d = int(mask.sum()), int(y[mask].sum())
        row: dict[str, Any] = {"grade": g, "pd_low": low, "pd_high": high, "rows": n, "defaults": d,
                               "default_rate": None, "mean_pd": None, "jeffreys_p": None, "binomial_p": None,
                               "light": None, "scored_rows": int(smask.sum()),
                               "scored_mean_pd": float(scored_pd[smask].mean()) if smask.any() else None}
        if n:
            mean_pd = float(pd[mask].mean())
            pj, pb = jeffreys_p(d, n, mean_pd), binomial_p(d, n, mean_pd)
            # No defaults cannot show a PD too low; the Jeffreys prior's half default would flag a
            # small grade anyway (50 rows at PD 1e-6: p 0.008, red), so such a grade takes the binomial's.
            worst = pb if d == 0 else min(pj, pb)
            row.update(default_rate=d / n, mean_pd=mean_pd, jeffreys_p=pj, binomial_p=pb, light=light(worst))
        grades.append(row)
    return {
        "grade_upper_bounds": list(GRADE_UPPER_BOUNDS),
        "light_thresholds": {"red_below": RED_BELOW, "yellow_below": YELLOW_BELOW},
        "grades": grades,
        "herfindahl": {
            "labelled": herfindahl([r["rows"] for r in grades]),
            "scored": herfindahl([r["scored_rows"] for r in grades]),
        },
        "lights": {c: sum(r["light"] == c for r in grades) for c in LIGHTS},
    }
