"""Fitting calibrators on out-of-fold margins, and choosing between them.

:func:`choose` fits Platt and isotonic calibration with an inner cross-validation, so the choice
is judged on rows neither calibrator saw, and keeps the one with the lower log loss (Brier breaks
ties). The calibrators themselves (applying them) are :mod:`klarna_pd.model.calibration`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from ..model.calibration import PD_MAX, PD_MIN, Calibrator, Isotonic, Platt
from . import metrics


def fit_platt(margin: np.ndarray, y: np.ndarray) -> Platt:
    lr = LogisticRegression(C=1e6, solver="lbfgs", max_iter=1000)
    lr.fit(np.asarray(margin, dtype=float).reshape(-1, 1), y)
    return Platt(float(lr.coef_[0, 0]), float(lr.intercept_[0]))


def fit_isotonic(margin: np.ndarray, y: np.ndarray) -> Isotonic:
    iso = IsotonicRegression(y_min=PD_MIN, y_max=PD_MAX, out_of_bounds="clip", increasing=True)
    iso.fit(np.asarray(margin, dtype=float), np.asarray(y, dtype=float))
    return Isotonic(list(iso.X_thresholds_), list(iso.y_thresholds_))


FITTERS = {"platt": fit_platt, "isotonic": fit_isotonic}


def choose(
    margin: np.ndarray, y: np.ndarray, *, seed: int = 0, folds: int = 5
) -> tuple[Calibrator, dict[str, Any], np.ndarray]:
    """Pick and fit the calibrator for out-of-fold margins.

    Args:
        margin: out-of-fold raw margins of the booster.
        y: the outcomes.
        seed: seed of the inner folds.
        folds: inner folds used to compare the methods (fewer when the rarer outcome has fewer rows).

    Returns:
        The chosen calibrator fitted on all rows; the comparison (cross-validated log loss,
        Brier and ECE of each method, which was chosen, and the inner folds); and the chosen
        method's cross-fitted PDs, each from a calibrator that did not see its row: the honest
        evidence of calibration (the calibrator's PDs on the rows it was fitted on are calibrated
        by construction: isotonic's deciles match their default rates exactly).
    """
    margin = np.asarray(margin, dtype=float)
    y = np.asarray(y, dtype=float)
    # No more folds than rows of the rarer outcome (training needs at least 2 of each): a file with
    # 3 defaults printed scikit-learn's warning about its least populated class.
    folds = max(2, min(folds, int(min(y.sum(), len(y) - y.sum()))))
    scores: dict[str, dict[str, float]] = {}
    cross_fitted: dict[str, np.ndarray] = {}
    for name, fit in FITTERS.items():
        pred = cross_fitted[name] = np.empty_like(margin)
        for tr, va in StratifiedKFold(folds, shuffle=True, random_state=seed).split(margin, y):
            pred[va] = fit(margin[tr], y[tr]).transform(margin[va])
        scores[name] = {"log_loss": metrics.log_loss(y, pred), "brier": metrics.brier(y, pred), "ece": metrics.ece(y, pred)}
    chosen = min(scores, key=lambda k: (scores[k]["log_loss"], scores[k]["brier"]))
    report = {"chosen": chosen, "cross_validated": scores, "folds": folds}
    return FITTERS[chosen](margin, y), report, cross_fitted[chosen]
