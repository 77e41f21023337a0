"""Discrimination, calibration and stability measures for PD models.

All take ``y`` (0/1 outcomes) and ``p`` (predicted PDs or scores) as 1-d arrays.
"""

from __future__ import annotations

import numpy as np
from scipy import stats
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from ..model.reference import psi, psi_from_shares  # noqa: F401  (one PSI, shared with drift monitoring)

#: Rows of the rarer outcome below which training warns and the report says so: DeLong's interval
#: and Hosmer-Lemeshow's chi-squared are large-sample approximations (with 3 defaults the report
#: read AUC 0.9933 (95% CI 0.9871-0.9994) and HL p 0.999), and the trees learn from few events.
FEW_EVENTS = 50

_EPS = 1e-15


def _check(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    if y.shape != p.shape or y.ndim != 1:
        raise ValueError(f"y and p must be 1-d and of equal length, got {y.shape} and {p.shape}")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("y must hold only 0 and 1")
    return y, p


def auc(y: np.ndarray, p: np.ndarray) -> float:
    """Area under the ROC curve."""
    y, p = _check(y, p)
    return float(roc_auc_score(y, p))


def gini(y: np.ndarray, p: np.ndarray) -> float:
    """Gini coefficient (accuracy ratio) = 2 AUC - 1."""
    return 2.0 * auc(y, p) - 1.0


def ks(y: np.ndarray, p: np.ndarray) -> float:
    """Kolmogorov-Smirnov statistic: the largest gap between the score CDFs of the two classes."""
    y, p = _check(y, p)
    fpr, tpr, _ = roc_curve(y, p)
    return float(np.max(tpr - fpr))


def pr_auc(y: np.ndarray, p: np.ndarray) -> float:
    """Area under the precision-recall curve (average precision)."""
    y, p = _check(y, p)
    return float(average_precision_score(y, p))


def brier(y: np.ndarray, p: np.ndarray) -> float:
    """Mean squared error of the PDs."""
    y, p = _check(y, p)
    return float(np.mean((p - y) ** 2))


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    """Mean negative log-likelihood of the outcomes under the PDs."""
    y, p = _check(y, p)
    q = np.clip(p, _EPS, 1.0 - _EPS)
    return float(-np.mean(y * np.log(q) + (1.0 - y) * np.log(1.0 - q)))


def _quantile_bins(p: np.ndarray, bins: int) -> np.ndarray:
    """Bin index of each prediction, bins holding about equal numbers of rows; equal predictions
    share the bin where the first of them falls (split by row order, a block of equal PDs, as an
    isotonic calibrator makes, moved the ECE and Hosmer-Lemeshow with the order of the rows), so a
    bin may be larger than the others, or empty."""
    ranked = np.sort(p)
    first = np.searchsorted(ranked, p, side="left")
    return np.minimum(first * bins // max(len(p), 1), bins - 1)


def calibration_table(y: np.ndarray, p: np.ndarray, bins: int = 10, *, by: np.ndarray | None = None
                      ) -> list[dict[str, float]]:
    """Per non-empty bin of about equal size by PD (:func:`_quantile_bins`): rows, mean predicted
    PD, observed default rate. ``by``: the PDs that set the bins, when they are not ``p`` (the
    table of uncalibrated PDs over the calibrated PDs' bins: the same rows in each)."""
    y, p = _check(y, p)
    idx = _quantile_bins(p if by is None else _check(y, by)[1], bins)
    table = []
    for b in range(bins):
        m = idx == b
        if m.any():
            table.append(
                {"bin": b, "rows": int(m.sum()), "mean_pd": float(p[m].mean()), "default_rate": float(y[m].mean())}
            )
    return table


def ece(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error: row-weighted mean |mean PD - default rate| over equal-size bins."""
    table = calibration_table(y, p, bins)
    n = sum(row["rows"] for row in table)
    return float(sum(row["rows"] * abs(row["mean_pd"] - row["default_rate"]) for row in table) / n)


def auc_delong(y: np.ndarray, p: np.ndarray, level: float = 0.95) -> dict[str, float]:
    """ROC AUC with DeLong's standard error and a normal confidence interval.

    DeLong, DeLong and Clarke-Pearson (1988), computed with the midrank algorithm of Sun and Xu
    (2014): O(n log n). Neither scikit-learn, SciPy nor statsmodels provides it.

    Args:
        y: 0/1 outcomes (both present).
        p: scores.
        level: coverage of the interval.

    Returns:
        ``auc``, ``se``, ``low``, ``high`` (the interval clipped to [0, 1]) and ``level``.
    """
    y, p = _check(y, p)
    pos, neg = p[y == 1.0], p[y == 0.0]
    m, n = len(pos), len(neg)
    if m < 2 or n < 2:
        raise ValueError(f"DeLong's variance needs at least 2 rows of each outcome, got {m} defaults and {n} non-defaults")
    within_pos = stats.rankdata(pos)
    within_neg = stats.rankdata(neg)
    pooled = stats.rankdata(np.concatenate([pos, neg]))
    value = float((pooled[:m].sum() - m * (m + 1) / 2) / (m * n))
    # Structural components: each default's share of non-defaults scored below it, and each
    # non-default's share of defaults scored above it (ties count one half).
    v_pos = (pooled[:m] - within_pos) / n
    v_neg = 1.0 - (pooled[m:] - within_neg) / m
    se = float(np.sqrt(np.var(v_pos, ddof=1) / m + np.var(v_neg, ddof=1) / n))
    z = float(stats.norm.ppf(0.5 + level / 2))
    return {"auc": value, "se": se, "low": max(0.0, value - z * se), "high": min(1.0, value + z * se), "level": level}


def hosmer_lemeshow(y: np.ndarray, p: np.ndarray, groups: int = 10, *, fitted: int = 2) -> dict[str, float]:
    """Hosmer-Lemeshow goodness-of-fit test over groups of about equal size by PD.

    The statistic sums (observed - expected defaults)^2 / (expected * (1 - mean PD)) over the
    groups and is compared with a chi-squared distribution of ``groups - fitted`` degrees of
    freedom: ``fitted`` parameters fitted on these rows (2 for a logistic model judged on its own
    rows; 0 for PDs out of sample, as Hosmer and Lemeshow advise for a validation sample). With
    tens of thousands of rows it detects very small miscalibration: read it with the calibration
    table, not alone.

    Returns:
        ``statistic``, ``df``, ``p_value`` (None below 3 groups), ``groups`` (non-empty ones).
    """
    y, p = _check(y, p)
    table = calibration_table(y, p, groups)
    n = np.array([r["rows"] for r in table], dtype=float)
    expected = n * np.array([r["mean_pd"] for r in table])
    observed = n * np.array([r["default_rate"] for r in table])
    stat = float(np.sum((observed - expected) ** 2 / (expected * (1.0 - expected / n))))
    df = len(table) - fitted
    # Fewer than 3 groups (PDs with fewer distinct values): no test, rather than a NaN in metrics.json.
    p_value = float(stats.chi2.sf(stat, df)) if len(table) >= 3 and df >= 1 else None
    return {"statistic": stat, "df": df, "p_value": p_value, "groups": len(table)}


def quantiles(p: np.ndarray, qs: tuple[float, ...] = (0.01, 0.1, 0.5, 0.9, 0.99)) -> dict[str, float]:
    """Quantiles of ``p``, keyed ``"p1"``, ``"p10"``, ... (empty input: an empty dict)."""
    p = np.asarray(p, dtype=float)
    if not len(p):
        return {}
    return {f"p{100 * q:g}": float(v) for q, v in zip(qs, np.quantile(p, qs))}


def summary(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """The standard set: auc, gini, ks, pr_auc, brier, log_loss, ece."""
    return {
        "auc": auc(y, p),
        "gini": gini(y, p),
        "ks": ks(y, p),
        "pr_auc": pr_auc(y, p),
        "brier": brier(y, p),
        "log_loss": log_loss(y, p),
        "ece": ece(y, p),
    }
