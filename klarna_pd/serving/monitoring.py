"""Prometheus metrics of the service, exported on ``/metrics``.

The service keeps its own request metrics instead of BentoML's (turned off in service.py):
BentoML labels requests by their raw path, so every random 404 path made a new series (3,000
probes grew /metrics from 153 KB to 11 MB), and its latency buckets start at 5 ms, where a
one-applicant request takes about one. Here requests are labelled by route template (every unknown
path shares ``other``) and the buckets start at 250 us.

prometheus_client is imported only when the first metric is made: BentoML sets
``PROMETHEUS_MULTIPROC_DIR`` in each worker after the service module is imported, and a
prometheus_client imported before that would keep its values where ``/metrics`` cannot see them.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

PD_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.5, 1.0)
#: The reason label of a refused request on klarna_pd_rejected_requests_total.
REASONS = {
    400: "malformed",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    408: "timeout",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    503: "unavailable",
}
LATENCY_BUCKETS = (0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# name -> (prometheus_client class name, documentation, labels, extra keyword arguments). Each
# metric is made on first use: a gauge made early would show 0 where nothing was measured yet.
_SPECS: dict[str, tuple[str, str, tuple[str, ...], dict[str, Any]]] = {
    "requests": ("Counter", "HTTP requests answered, by route template (unknown paths: other), method and status",
                 ("route", "method", "status"), {}),
    "duration": ("Histogram", "Time from the request's headers to the last byte of the answer, by route template",
                 ("route",), {"buckets": LATENCY_BUCKETS}),
    "in_progress": ("Gauge", "Requests being answered now, by route template", ("route",),
                    {"multiprocess_mode": "livesum"}),
    "inflight_bytes": ("Gauge", "Request body bytes held by the worker now (bounded by KLARNA_PD_MAX_INFLIGHT_BYTES)",
                       (), {"multiprocess_mode": "livesum"}),
    "rejected": ("Counter", "Requests refused, by reason (malformed, invalid, too_large, unauthorized, overloaded, ...)",
                 ("reason", "status"), {}),
    "pd": ("Histogram", "PDs returned to clients", ("endpoint",), {"buckets": PD_BUCKETS}),
    "rows": ("Counter", "Applicants scored", ("endpoint",), {}),
    # Several workers: the largest value among live ones, the conservative reading.
    "score_psi": ("Gauge", "PSI of the PDs of the last scored applicants against training (<0.1 stable, "
                           "0.1-0.25 watch, >0.25 act)", (), {"multiprocess_mode": "livemax"}),
    "feature_psi": ("Gauge", "PSI of each feature of the last scored applicants against training", ("feature",),
                    {"multiprocess_mode": "livemax"}),
    "unknown": ("Counter", "Applicants whose category level the model has no code for (unseen in training, or too "
                           "rare there)", ("feature",), {}),
}
_NAMES = {
    "requests": "klarna_pd_requests_total", "duration": "klarna_pd_request_duration_seconds",
    "in_progress": "klarna_pd_requests_in_progress", "inflight_bytes": "klarna_pd_inflight_body_bytes",
    "rejected": "klarna_pd_rejected_requests_total", "pd": "klarna_pd_served_pd", "rows": "klarna_pd_scored_rows_total",
    "score_psi": "klarna_pd_score_psi", "feature_psi": "klarna_pd_feature_psi", "unknown": "klarna_pd_unknown_levels_total",
}
_lock = threading.Lock()
_metrics: dict[str, Any] = {}


def _get(key: str) -> Any:
    metric = _metrics.get(key)
    if metric is None:
        with _lock:
            metric = _metrics.get(key)
            if metric is None:
                import prometheus_client

                kind, doc, labels, extra = _SPECS[key]
                metric = _metrics[key] = getattr(prometheus_client, kind)(_NAMES[key], doc, list(labels), **extra)
    return metric


_children: dict[tuple, Any] = {}


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    """One answered request (children cached: ``labels()`` costs more than the increment)."""
    key = (route, method, status)
    child = _children.get(key)
    if child is None:
        child = _children[key] = (_get("requests").labels(route=route, method=method, status=str(status)),
                                  _get("duration").labels(route=route))
    child[0].inc()
    child[1].observe(seconds)


def in_progress(route: str, delta: int) -> None:
    key = ("in_progress", route)
    child = _children.get(key)
    if child is None:
        child = _children[key] = _get("in_progress").labels(route=route)
    child.inc(delta)


def count_rejected(reason: str, status: int) -> None:
    _get("rejected").labels(reason=reason, status=str(status)).inc()


def set_inflight_bytes(n: int) -> None:
    _get("inflight_bytes").set(n)


def exposition() -> tuple[bytes, str]:
    """Every worker's metrics (prometheus_client's multiprocess collector), and the content type."""
    import os

    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)
    else:  # one process outside `bentoml serve` (in-process tests): its own registry
        from prometheus_client import REGISTRY as registry  # noqa: N811
    return generate_latest(registry), CONTENT_TYPE_LATEST


def observe_pds(endpoint: str, pds: np.ndarray) -> None:
    """Record served PDs: a few rows one by one, many rows one bucket update per bucket."""
    key = ("pds", endpoint)
    children = _children.get(key)
    if children is None:
        hist = _get("pd").labels(endpoint=endpoint)
        buckets, total = getattr(hist, "_buckets", None), getattr(hist, "_sum", None)
        if buckets is None or total is None or len(buckets) != len(PD_BUCKETS) + 1:
            buckets = None  # prometheus_client changed its internals: only the public way
        children = _children[key] = (_get("rows").labels(endpoint=endpoint), hist, buckets, total)
    rows, hist, buckets, total = children
    rows.inc(len(pds))
    if len(pds) <= 4 or buckets is None:
        for p in pds.tolist():  # the public way
            hist.observe(p)
        return
    counts = np.bincount(np.searchsorted(PD_BUCKETS, pds, side="left"), minlength=len(buckets))
    for i, c in enumerate(counts.tolist()):
        if c:
            buckets[i].inc(c)
    total.inc(float(np.sum(pds)))


def set_psi(kind: str, name: str, value: float) -> None:
    if kind == "score":
        _get("score_psi").set(value)
    else:
        _get("feature_psi").labels(feature=name).set(value)


def count_unknown_levels(feature: str, n: int) -> None:
    _get("unknown").labels(feature=feature).inc(n)
