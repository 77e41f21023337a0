"""The ground-truth PD of the synthetic Klarna rows.

    logit(PD) = INTERCEPT + SCALE * risk(x)

``risk`` adds one shaped term per driver, each read off the published default rates (PROFILE.md,
"Default rate by level" and the numeric bins), plus two interactions. The drivers are among those
the public solutions found strongest:

======================================  =====================================================
driver                                  shape (log-odds before SCALE)
======================================  =====================================================
avg_payment_span_0_12m                  U-shaped: NA +0.9; lowest near 16 days; +2.8 at 260
num_arch_ok_0_12m, num_arch_ok_12_24m   falling in log(1 + count): no paid history is risky
account_worst_status_0_3m               1: -0.3, 2: +1.0, 3: +1.8, 4: +2.3, NA: -0.1
status_last_archived_0_24m              0: +0.4, 1: -0.5, 2: +0.4, 3: +1.6, 5: +2.5
status_max_archived_0_24_months         3: +0.5, 5: +1.0
num_unpaid_bills                        rising in log(1 + count)
num_active_div_by_paid_inv_0_12m        rising, capped at 1.5
age                                     falling 0.03 per year, clipped
merchant_group                          0.8 x log(group default rate / overall rate)
time_hours                              night purchases (before 6 am) riskier
has_paid                                FALSE +0.35
young (< 25) x no payment span          +0.5
worst status >= 2 x payment span > 40   +0.6
======================================  =====================================================

SCALE and INTERCEPT are tuned (``python -m klarna_pd.synth.truth``) so that on the generated
features the mean PD is the published default rate, 1.4315 %, and the expected ROC AUC of the
true PD is 0.91, the level the best public models reach on the real file.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit

from .facts import load_facts

SCALE = 0.966
INTERCEPT = -6.095

_SPAN_KNOTS = np.array([0.0, 10.0, 16.0, 25.0, 35.0, 50.0, 70.0, 100.0, 260.0])
_SPAN_EFFECT = np.array([0.0, -0.6, -0.9, -0.4, 0.5, 1.4, 2.0, 2.5, 2.8])
_WORST_0_3M = {1.0: -0.3, 2.0: 1.0, 3.0: 1.8, 4.0: 2.3}
_LAST_ARCHIVED = {0.0: 0.4, 1.0: -0.5, 2.0: 0.4, 3.0: 1.6, 5.0: 2.5}
_MAX_ARCHIVED_24M = {3.0: 0.5, 5.0: 1.0}


def _lookup(values: np.ndarray, table: dict[float, float], default: float = 0.0) -> np.ndarray:
    out = np.full(values.shape, default)
    for code, effect in table.items():
        out[values == code] = effect
    return out


def _group_effect() -> dict[str, float]:
    facts = load_facts()
    rates = facts["columns"]["merchant_group"]["default_rate_by_level"]["rate_labelled_6dp"]
    base = facts["default_rate"]
    return {g: 0.8 * float(np.log(r / base)) for g, r in rates.items()}


def risk(frame: pd.DataFrame) -> np.ndarray:
    """The unscaled log-odds of default of each row (see the module docstring)."""
    f = {c: frame[c].to_numpy() for c in frame.columns}
    span = f["avg_payment_span_0_12m"].astype(float)
    span_na = np.isnan(span)
    r = np.where(span_na, 0.9, np.interp(np.nan_to_num(span), _SPAN_KNOTS, _SPAN_EFFECT))
    r += 0.8 - 0.55 * np.log1p(f["num_arch_ok_0_12m"])
    r += 0.4 - 0.3 * np.log1p(f["num_arch_ok_12_24m"])
    worst = f["account_worst_status_0_3m"].astype(float)
    r += _lookup(worst, _WORST_0_3M, default=-0.1)
    r += _lookup(f["status_last_archived_0_24m"], _LAST_ARCHIVED)
    r += _lookup(f["status_max_archived_0_24_months"], _MAX_ARCHIVED_24M)
    r += 0.22 * np.log1p(f["num_unpaid_bills"])
    div = f["num_active_div_by_paid_inv_0_12m"].astype(float)
    r += np.where(np.isnan(div), 0.0, 0.9 * np.minimum(np.nan_to_num(div), 1.5))
    age = f["age"].astype(float)
    r += np.clip(-0.03 * (age - 36.0), -1.0, 0.6)
    groups = _group_effect()
    r += np.array([groups.get(g, 0.0) for g in f["merchant_group"]])
    hours = f["time_hours"].astype(float)
    r += np.where(hours < 6.0, 0.5 * (1.0 - hours / 6.0), 0.0)
    r += np.where(f["has_paid"] == 0.0, 0.35, 0.0)
    r += np.where((age < 25.0) & span_na, 0.5, 0.0)
    r += np.where((np.nan_to_num(worst) >= 2.0) & (np.nan_to_num(span) > 40.0), 0.6, 0.0)
    return r


def true_pd(frame: pd.DataFrame) -> np.ndarray:
    """The probability of default each row was labelled with."""
    return expit(INTERCEPT + SCALE * risk(frame))


def expected_auc(pd_true: np.ndarray, score: np.ndarray | None = None) -> float:
    """ROC AUC expected when labels are drawn as Bernoulli(pd_true), for ``score`` (default: pd_true).

    Each pair (i defaults, j does not) counts with weight ``p_i (1 - p_j)``; ties count half.
    """
    score = pd_true if score is None else score
    order = np.argsort(score, kind="stable")
    s, p = score[order], pd_true[order]
    q = 1.0 - p
    # Group ties so that they count half.
    _, start, counts = np.unique(s, return_index=True, return_counts=True)
    p_grp = np.add.reduceat(p, start)
    q_grp = np.add.reduceat(q, start)
    q_below = np.concatenate([[0.0], np.cumsum(q_grp)[:-1]])
    wins = np.sum(p_grp * q_below) + 0.5 * np.sum(p_grp * q_grp)
    return float(wins / (p.sum() * q.sum()))


def _tune(rows: int = 400_000, seed: int = 12345, target_auc: float = 0.91) -> None:
    """Print the SCALE and INTERCEPT that give the published default rate and ``target_auc``."""
    from scipy.optimize import brentq

    from .generator import generate_features

    rate = load_facts()["default_rate"]
    r = risk(generate_features(rows, np.random.default_rng(seed)))

    def intercept(scale: float) -> float:
        return brentq(lambda b: expit(b + scale * r).mean() - rate, -15.0, 5.0)

    scale = brentq(lambda s: expected_auc(expit(intercept(s) + s * r)) - target_auc, 0.3, 3.0, xtol=1e-4)
    print(f"SCALE = {scale:.3f}\nINTERCEPT = {intercept(scale):.3f}")


if __name__ == "__main__":
    _tune()
