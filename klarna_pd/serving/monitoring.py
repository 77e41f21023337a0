"""Prometheus metrics of the service, exported on ``/metrics`` next to BentoML's own.

prometheus_client is imported only when the first metric is made: BentoML sets
``PROMETHEUS_MULTIPROC_DIR`` in each worker after the service module is imported, and a
prometheus_client imported before that would keep its values where ``/metrics`` cannot see them.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

PD_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.5, 1.0)

_lock = threading.Lock()
_metrics: dict[str, Any] = {}


def _get() -> dict[str, Any]:
    if not _metrics:
        with _lock:
            if not _metrics:
                from prometheus_client import Counter, Gauge, Histogram

                _metrics["rejected"] = Counter(
                    "klarna_pd_rejected_requests_total",
                    "Requests refused, by reason (malformed, invalid, too_large, unauthorized, ...)",
                    ["reason", "status"],
                )
                _metrics["pd"] = Histogram(
                    "klarna_pd_served_pd",
                    "PDs returned to clients",
                    ["endpoint"],
                    buckets=PD_BUCKETS,
                )
                _metrics["rows"] = Counter("klarna_pd_scored_rows_total", "Applicants scored", ["endpoint"])
                # Several workers: the largest value among live ones, the conservative reading.
                _metrics["score_psi"] = Gauge(
                    "klarna_pd_score_psi",
                    "PSI of the PDs of the last scored applicants against training (<0.1 stable, 0.1-0.25 watch, >0.25 act)",
                    multiprocess_mode="livemax",
                )
                _metrics["feature_psi"] = Gauge(
                    "klarna_pd_feature_psi",
                    "PSI of each feature of the last scored applicants against training",
                    ["feature"],
                    multiprocess_mode="livemax",
                )
                _metrics["unknown"] = Counter(
                    "klarna_pd_unknown_levels_total",
                    "Applicants whose category level the model has no code for (unseen in training, or too rare there)",
                    ["feature"],
                )
    return _metrics


def count_rejected(reason: str, status: int) -> None:
    _get()["rejected"].labels(reason=reason, status=str(status)).inc()


def observe_pds(endpoint: str, pds: np.ndarray) -> None:
    """Record served PDs: one bucket update per bucket, not one per row."""
    m = _get()
    m["rows"].labels(endpoint=endpoint).inc(len(pds))
    hist = m["pd"].labels(endpoint=endpoint)
    buckets = getattr(hist, "_buckets", None)
    total = getattr(hist, "_sum", None)
    if buckets is None or total is None or len(buckets) != len(PD_BUCKETS) + 1:
        for p in pds:  # prometheus_client changed its internals: take the slow, public way
            hist.observe(float(p))
        return
    counts = np.bincount(np.searchsorted(PD_BUCKETS, pds, side="left"), minlength=len(buckets))
    for i, c in enumerate(counts):
        if c:
            buckets[i].inc(int(c))
    total.inc(float(np.sum(pds)))


def set_psi(kind: str, name: str, value: float) -> None:
    m = _get()
    if kind == "score":
        m["score_psi"].set(value)
    else:
        m["feature_psi"].labels(feature=name).set(value)


def count_unknown_levels(feature: str, n: int) -> None:
    _get()["unknown"].labels(feature=feature).inc(n)
