"""Discrimination, calibration and stability measures for PD models.

All take ``y`` (0/1 outcomes) and ``p`` (predicted PDs or scores) as 1-d arrays.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from ..model.reference import psi, psi_from_shares  # noqa: F401  (one PSI, shared with drift monitoring)

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
    """Bin index of each prediction, bins holding about equal numbers of rows."""
    order = np.argsort(p, kind="stable")
    idx = np.empty(len(p), dtype=int)
    idx[order] = np.minimum((np.arange(len(p)) * bins) // max(len(p), 1), bins - 1)
    return idx


def calibration_table(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    """Per bin of about equal size (by PD): rows, mean predicted PD, observed default rate."""
    y, p = _check(y, p)
    idx = _quantile_bins(p, bins)
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
