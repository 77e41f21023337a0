"""One-dimensional distributions rebuilt from published quantiles, mean and std.

The profile gives, per numeric column, min, p05, p25, p50, p75, p95 and max of the present values,
plus their mean and std. A :class:`Marginal` passes through those seven points exactly. Two things
the quantiles leave open are fitted to the mean and std:

- where a run of zeros ends (e.g. ``p75 = 0`` and ``p95 = 31``: somewhere between 75 % and 95 %);
- how heavy the top 5 % is: values there follow ``p95 + (max - p95) * t**k`` for ``t`` in [0, 1],
  so a large ``k`` keeps most of that tail near p95 and only a few rows near the maximum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PROBS = (0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0)
_KEYS = ("min", "p05", "p25", "p50", "p75", "p95", "max")
_POWERS = np.geomspace(1.0, 2000.0, 120)
_MARGIN = 0.01


@dataclass(frozen=True)
class Marginal:
    """A quantile function: piecewise linear, with a power-shaped top segment."""

    probs: tuple[float, ...]
    values: tuple[float, ...]
    tail_power: float
    integer: bool

    def quantile(self, u: np.ndarray) -> np.ndarray:
        """Values at probabilities ``u`` (uniform ``u`` gives a sample of the distribution)."""
        p = np.asarray(self.probs)
        v = np.asarray(self.values)
        out = np.interp(u, p, v)
        lo_p, lo_v, hi_v = p[-2], v[-2], v[-1]
        top = u > lo_p
        if top.any():
            t = (u[top] - lo_p) / (1.0 - lo_p)
            out[top] = lo_v + (hi_v - lo_v) * t**self.tail_power
        if self.integer:
            out = np.floor(out + 0.5)
        return out

    @property
    def zero_share(self) -> float:
        """Probability of an exact zero."""
        p, v = self.probs, self.values
        if v[0] != 0.0:
            return 0.0
        share = 0.0
        for i in range(1, len(p)):
            if v[i] == 0.0:
                share = p[i]
            else:
                break
        return share

    def moments(self) -> tuple[float, float]:
        """Mean and std (rounding of integer columns ignored)."""
        m1, sd = _moments(np.asarray(self.probs), np.asarray(self.values), self.tail_power)
        return float(m1), float(sd)


def _moments(p: np.ndarray, v: np.ndarray, k: float | np.ndarray) -> tuple:
    """Mean and std for one tail power or an array of them."""
    w = np.diff(p)[:-1]
    a, b = v[:-2], v[1:-1]
    m1 = np.sum(w * (a + b) / 2.0)
    m2 = np.sum(w * (a * a + a * b + b * b) / 3.0)
    wt, at, dt = 1.0 - p[-2], v[-2], v[-1] - v[-2]
    m1 = m1 + wt * (at + dt / (k + 1.0))
    m2 = m2 + wt * (at * at + 2.0 * at * dt / (k + 1.0) + dt * dt / (2.0 * k + 1.0))
    return m1, np.sqrt(np.maximum(m2 - m1 * m1, 0.0))


def _with_zero_end(p: list[float], v: list[float], j: int, u0: float, first: float) -> tuple[list, list]:
    """Knots where zeros run up to ``u0`` (from knot j-1 on) and values then start at ``first``."""
    pk, vk = p[:j], v[:j]
    if u0 > pk[-1] + 1e-12:
        pk, vk = pk + [u0], vk + [0.0]
    return pk + [u0 + 1e-9] + p[j:], vk + [first] + v[j:]


def fit_marginal(
    quantiles: dict[str, float],
    mean: float,
    std: float,
    *,
    integer: bool,
    zero_share: float | None = None,
    min_zero_share: float = 0.0,
) -> Marginal:
    """Fit the free parts of a :class:`Marginal` to a column's published figures.

    Args:
        quantiles: ``min, p05, p25, p50, p75, p95, max`` of the present values.
        mean: mean of the present values.
        std: standard deviation of the present values.
        integer: whether values are whole numbers.
        zero_share: fix the share of zeros instead of fitting it.
        min_zero_share: lowest share of zeros allowed (zeros other columns force).

    Returns:
        The fitted marginal.
    """
    p = list(PROBS)
    v = [float(quantiles[k]) for k in _KEYS]
    if any(b < a for a, b in zip(v, v[1:])):
        raise ValueError(f"quantiles must not decrease, got {v}")
    # j: first knot with a positive value after a run of zeros starting at the minimum.
    j = next((i for i, x in enumerate(v) if x > 0.0), None) if v[0] == 0.0 else None
    first = 1.0 if integer else 0.0
    if j is not None:
        # Keep the end of the zeros clear of the published quantiles on either side, or a
        # sample's quantile there would sit on the jump and land anywhere in between.
        lo = max(p[j - 1] + (_MARGIN if j > 1 else 0.0), min_zero_share)
        hi = p[j] - (_MARGIN if j < len(p) - 1 else 1e-6)
        if zero_share is not None:
            grid_u0 = np.array([zero_share])
        else:
            # Geometric in 1 - u0: a column that is almost always zero needs a fine grid near 1.
            grid_u0 = 1.0 - np.geomspace(1.0 - lo, 1.0 - max(lo, hi), 160)
    else:
        grid_u0 = np.array([np.nan])
    best: tuple[float, float, float] | None = None
    for u0 in grid_u0:
        if j is not None:
            pk, vk = _with_zero_end(p, v, j, float(u0), min(first, v[j]))
        else:
            pk, vk = p, v
        pa, va = np.asarray(pk), np.asarray(vk)
        # A bounded column (max not far above p95, like an hour of day) keeps a straight top.
        powers = _POWERS if v[-1] > 1.2 * v[-2] else np.array([1.0])
        m1, sd = _moments(pa, va, powers)
        err = (m1 / mean - 1.0) ** 2 + 0.25 * (sd / std - 1.0) ** 2 if mean > 0 else np.zeros_like(powers)
        i = int(np.argmin(err))
        if best is None or err[i] < best[0]:
            best = (float(err[i]), float(u0), float(powers[i]))
    assert best is not None
    _, u0, k = best
    if j is not None:
        p, v = _with_zero_end(p, v, j, u0, min(first, v[j]))
    return Marginal(probs=tuple(p), values=tuple(v), tail_power=k, integer=integer)
