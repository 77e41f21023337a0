"""Calibrators: a booster's raw score (log-odds margin) -> a PD that matches observed default rates.

Two kinds, both stored as JSON:

- ``platt``: ``pd = sigmoid(a * margin + b)``. Keeps the ranking, smooth, two numbers.
- ``isotonic``: a non-decreasing step function of the margin, interpolated linearly between steps.
  More flexible; can tie scores.

Only applying them lives here (the server needs nothing more); fitting and choosing between them
is training's job (:mod:`klarna_pd.training.calibration`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import expit

# PDs are kept strictly inside (0, 1): a PD of exactly 0 or 1 is never a credible estimate.
PD_MIN = 1e-6
PD_MAX = 1.0 - 1e-6


def _clip(pd: np.ndarray) -> np.ndarray:
    # The same numbers as np.clip, at a fraction of its call overhead on one-row requests.
    return np.minimum(np.maximum(pd, PD_MIN), PD_MAX)


class Calibrator:
    method: str = ""

    def transform(self, margin: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError


class Platt(Calibrator):
    """``pd = sigmoid(a * margin + b)``."""

    method = "platt"

    def __init__(self, a: float, b: float) -> None:
        if not (np.isfinite(a) and np.isfinite(b)):
            raise ValueError(f"platt calibrator needs finite parameters, got a={a}, b={b}")
        self.a_, self.b_ = float(a), float(b)

    def transform(self, margin: np.ndarray) -> np.ndarray:
        return _clip(expit(self.a_ * np.asarray(margin, dtype=float) + self.b_))

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "a": self.a_, "b": self.b_}


class Isotonic(Calibrator):
    """A non-decreasing step function through the points (x, y), linear in between."""

    method = "isotonic"

    def __init__(self, x: list[float], y: list[float]) -> None:
        x, y = [float(v) for v in x], [float(v) for v in y]
        if len(x) != len(y) or not x or np.any(np.diff(x) < 0) or np.any(np.diff(y) < 0) or not np.all(np.isfinite(x + y)):
            raise ValueError("isotonic calibrator needs equal-length, finite, non-decreasing x and y")
        self._x, self._y = np.array(x), np.array(y)  # np.interp converts lists on every call

    def transform(self, margin: np.ndarray) -> np.ndarray:
        return _clip(np.interp(np.asarray(margin, dtype=float), self._x, self._y))

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "x": self._x.tolist(), "y": self._y.tolist()}


METHODS = ("platt", "isotonic")


def from_dict(raw: dict[str, Any]) -> Calibrator:
    """Rebuild a calibrator saved with ``to_dict``.

    Raises:
        ValueError: an unknown method or unusable parameters.
    """
    method = raw.get("method")
    if method == "platt":
        return Platt(raw["a"], raw["b"])
    if method == "isotonic":
        return Isotonic(raw["x"], raw["y"])
    raise ValueError(f"calibrator method must be one of {list(METHODS)}, got {method!r}")
