"""Mapping LightGBM's raw scores to PDs that match observed default rates.

Two calibrators, both saved as JSON:

- ``platt``: ``pd = sigmoid(a * margin + b)`` on the booster's raw margin (log-odds). Keeps the
  ranking, smooth, two numbers.
- ``isotonic``: a non-decreasing step function of the margin, fitted by pool-adjacent-violators,
  interpolated linearly between steps. More flexible; can tie scores.

:func:`choose` fits both on out-of-fold margins with an inner cross-validation, so the choice is
judged on rows neither calibrator saw, and keeps the one with the lower log loss (Brier breaks ties).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import expit
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from . import metrics

# PDs are kept strictly inside (0, 1): a PD of exactly 0 or 1 is never a credible estimate.
PD_MIN = 1e-6
PD_MAX = 1.0 - 1e-6


class Calibrator:
    method: str = ""

    def fit(self, margin: np.ndarray, y: np.ndarray) -> Calibrator:
        raise NotImplementedError

    def transform(self, margin: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError


class Platt(Calibrator):
    method = "platt"

    def fit(self, margin: np.ndarray, y: np.ndarray) -> Platt:
        lr = LogisticRegression(C=1e6, solver="lbfgs", max_iter=1000)
        lr.fit(np.asarray(margin, dtype=float).reshape(-1, 1), y)
        self.a_ = float(lr.coef_[0, 0])
        self.b_ = float(lr.intercept_[0])
        return self

    def transform(self, margin: np.ndarray) -> np.ndarray:
        return np.clip(expit(self.a_ * np.asarray(margin, dtype=float) + self.b_), PD_MIN, PD_MAX)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "a": self.a_, "b": self.b_}


class Isotonic(Calibrator):
    method = "isotonic"

    def fit(self, margin: np.ndarray, y: np.ndarray) -> Isotonic:
        iso = IsotonicRegression(y_min=PD_MIN, y_max=PD_MAX, out_of_bounds="clip", increasing=True)
        iso.fit(np.asarray(margin, dtype=float), np.asarray(y, dtype=float))
        self.x_ = [float(v) for v in iso.X_thresholds_]
        self.y_ = [float(v) for v in iso.y_thresholds_]
        return self

    def transform(self, margin: np.ndarray) -> np.ndarray:
        return np.clip(np.interp(np.asarray(margin, dtype=float), self.x_, self.y_), PD_MIN, PD_MAX)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "x": self.x_, "y": self.y_}


_METHODS: dict[str, type[Calibrator]] = {"platt": Platt, "isotonic": Isotonic}


def from_dict(raw: dict[str, Any]) -> Calibrator:
    """Rebuild a calibrator saved with ``to_dict``."""
    method = raw.get("method")
    if method == "platt":
        cal = Platt()
        cal.a_, cal.b_ = float(raw["a"]), float(raw["b"])
        if not (np.isfinite(cal.a_) and np.isfinite(cal.b_)):
            raise ValueError("platt calibrator has non-finite parameters")
        return cal
    if method == "isotonic":
        cal = Isotonic()
        cal.x_, cal.y_ = [float(v) for v in raw["x"]], [float(v) for v in raw["y"]]
        if len(cal.x_) != len(cal.y_) or not cal.x_ or np.any(np.diff(cal.x_) < 0) or np.any(np.diff(cal.y_) < 0):
            raise ValueError("isotonic calibrator needs equal-length, non-decreasing x and y")
        return cal
    raise ValueError(f"calibrator method must be one of {sorted(_METHODS)}, got {method!r}")


def choose(margin: np.ndarray, y: np.ndarray, *, seed: int = 0, folds: int = 5) -> tuple[Calibrator, dict[str, Any]]:
    """Pick and fit the calibrator for out-of-fold margins.

    Args:
        margin: out-of-fold raw margins of the booster.
        y: the outcomes.
        seed: seed of the inner folds.
        folds: inner folds used to compare the methods.

    Returns:
        The chosen calibrator fitted on all rows, and the comparison (cross-validated log loss and
        Brier of each method, and which was chosen).
    """
    margin = np.asarray(margin, dtype=float)
    y = np.asarray(y, dtype=float)
    scores: dict[str, dict[str, float]] = {}
    for name, cls in _METHODS.items():
        pred = np.empty_like(margin)
        for tr, va in StratifiedKFold(folds, shuffle=True, random_state=seed).split(margin, y):
            pred[va] = cls().fit(margin[tr], y[tr]).transform(margin[va])
        scores[name] = {"log_loss": metrics.log_loss(y, pred), "brier": metrics.brier(y, pred), "ece": metrics.ece(y, pred)}
    chosen = min(scores, key=lambda k: (scores[k]["log_loss"], scores[k]["brier"]))
    return _METHODS[chosen]().fit(margin, y), {"chosen": chosen, "cross_validated": scores}
