"""Training-time distributions of scores and features, against which live traffic is compared.

A reference holds, for the PD and for every feature, bins and the share of training rows in each:

- numeric, ordinal, boolean: interior bin edges at the deciles of the present values (repeated
  edges dropped), plus a bin for missing;
- categorical: one bin per level the encoder knows, one for "other", one for missing.

:func:`shares` puts new values into the same bins, so that :func:`psi_from_shares`
compares like with like. The population stability index (PSI) lives here too: drift monitoring in
the server and the training report both compute it, and neither should need the other.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .encoder import Encoder

_DECILES = np.linspace(0.0, 1.0, 11)[1:-1]


def _edges(values: np.ndarray) -> list[float]:
    present = values[~np.isnan(values)]
    if present.size == 0:
        return []
    return [float(x) for x in np.unique(np.quantile(present, _DECILES))]


def bin_index(values: np.ndarray, entry: dict[str, Any]) -> np.ndarray:
    """Bin of each encoded value under a reference entry; missing is the last bin."""
    values = np.asarray(values, dtype=float)
    missing_bin = entry["bins"] - 1
    if entry["kind"] == "categorical":
        # Encoded categoricals are codes 0..K (K = other); they are their own bins.
        idx = np.where(np.isnan(values), missing_bin, values)
        return idx.astype(np.int64)
    idx = np.searchsorted(np.asarray(entry["edges"]), values, side="right")
    return np.where(np.isnan(values), missing_bin, idx).astype(np.int64)


def shares(values: np.ndarray, entry: dict[str, Any]) -> np.ndarray:
    """Share of ``values`` in each of the entry's bins."""
    counts = np.bincount(bin_index(values, entry), minlength=entry["bins"])
    return counts / max(len(values), 1)


def build(encoder: Encoder, matrix: np.ndarray, pd_values: np.ndarray) -> dict[str, Any]:
    """The reference of encoded training rows and their PDs.

    Args:
        encoder: the fitted encoder (gives feature names, kinds and levels).
        matrix: encoded training rows.
        pd_values: the model's PDs of those rows.
    """
    features: dict[str, Any] = {}
    kinds = {f.name: f.kind for f in encoder.spec.features}
    for j, name in enumerate(encoder.feature_names_):
        col = matrix[:, j]
        if kinds[name] == "categorical":
            levels = encoder.levels_[name]
            entry = {"kind": "categorical", "labels": [*levels, "<other>", "<missing>"], "bins": len(levels) + 2}
        else:
            edges = _edges(col)
            entry = {"kind": kinds[name], "edges": edges, "bins": len(edges) + 2}
        entry["shares"] = [float(x) for x in shares(col, entry)]
        features[name] = entry
    score_entry = {"kind": "numeric", "edges": _edges(np.asarray(pd_values, dtype=float))}
    score_entry["bins"] = len(score_entry["edges"]) + 2
    score_entry["shares"] = [float(x) for x in shares(np.asarray(pd_values, dtype=float), score_entry)]
    return {"rows": int(len(matrix)), "score": score_entry, "features": features}


def psi_from_shares(expected: np.ndarray, actual: np.ndarray, floor: float = 1e-4) -> float:
    """PSI of two vectors of bin shares (each summing to 1).

    Shares of 0 are floored at ``floor`` so that an empty bin does not make the index infinite.
    Rule of thumb: < 0.1 stable, 0.1-0.25 watch, > 0.25 act.
    """
    e = np.maximum(np.asarray(expected, dtype=float), floor)
    a = np.maximum(np.asarray(actual, dtype=float), floor)
    return float(np.sum((a - e) * np.log(a / e)))


def psi(expected: np.ndarray, actual: np.ndarray, bins: int = 10) -> float:
    """Population stability index of ``actual`` against ``expected``, in bins at the deciles of ``expected``."""
    expected = np.asarray(expected, dtype=float)
    actual = np.asarray(actual, dtype=float)
    if expected.size == 0 or actual.size == 0:
        raise ValueError("psi needs two non-empty samples")
    edges = np.unique(np.quantile(expected, np.linspace(0.0, 1.0, bins + 1)[1:-1]))
    e = np.bincount(np.searchsorted(edges, expected, side="right"), minlength=len(edges) + 1) / expected.size
    a = np.bincount(np.searchsorted(edges, actual, side="right"), minlength=len(edges) + 1) / actual.size
    return psi_from_shares(e, a)
