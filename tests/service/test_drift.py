"""Live drift gauges on /metrics: a real server fed traffic like training, then shifted traffic."""

import re
import time

import httpx
import numpy as np
import pytest

from klarna_pd.data.files import read_dataset
from klarna_pd.serving.drift import DriftMonitor

from ..helpers.records import records_of
from ..helpers.servers import start_server, stop_server, wait_ready
from .test_service import post

WINDOW = 4_000


def _gauges(url: str) -> tuple[float, dict[str, float], dict[str, float]]:
    text = httpx.get(f"{url}/metrics").text
    score = re.search(r"^klarna_pd_score_psi (\S+)$", text, re.M)
    features = {m[1]: float(m[2]) for m in re.finditer(r'^klarna_pd_feature_psi\{feature="([^"]+)"\} (\S+)$', text, re.M)}
    unknown = {m[1]: float(m[2]) for m in re.finditer(r'^klarna_pd_unknown_levels_total\{feature="([^"]+)"\} (\S+)$', text, re.M)}
    return (float(score.group(1)) if score else float("nan")), features, unknown


def _send(url: str, records: list[dict]) -> None:
    for i in range(0, len(records), 1_000):
        resp = post(url, "/predict", {"applicants": records[i : i + 1_000]})
        assert resp.status_code == 200, resp.text[:300]
    time.sleep(1.1)  # the server's gauges refresh at most once a second here (default 15 s), when rows are scored
    assert post(url, "/predict", {"applicants": records[:1]}).status_code == 200


@pytest.mark.service
@pytest.mark.slow
def test_psi_gauges_stay_low_for_training_like_traffic_and_rise_for_shifted(small_trained, synthetic_small, klarna_spec):
    frame = read_dataset(synthetic_small, klarna_spec).frame
    frame = frame[frame[klarna_spec.target].notna()].sample(WINDOW, random_state=3)
    like_training = records_of(frame, klarna_spec)
    shifted = [{**r, "age": min((r["age"] or 30) + 25, 120), "account_worst_status_0_3m": 4,
                "merchant_category": "Spaceships"} for r in like_training]
    env = {"KLARNA_PD_MODEL_TAG": small_trained.model_tag, "KLARNA_PD_DRIFT_WINDOW": str(WINDOW),
           "KLARNA_PD_DRIFT_MIN_ROWS": "1000", "KLARNA_PD_DRIFT_REFRESH_SECONDS": "1"}
    proc, url = start_server("service:KlarnaPD", env=env)
    try:
        wait_ready(url)
        score, _, _ = _gauges(url)
        assert np.isnan(score), "no PSI before min_rows applicants were scored"
        _send(url, like_training)
        score, features, unknown = _gauges(url)
        assert score < 0.1, score
        assert len(features) == len(klarna_spec.features)
        worst = max(features, key=features.get)
        assert features[worst] < 0.1, (worst, features[worst])
        _send(url, shifted)
        score, features, unknown = _gauges(url)
    finally:
        stop_server(proc)
    assert score > 0.25, score
    assert features["age"] > 0.25 and features["account_worst_status_0_3m"] > 0.25 and features["merchant_category"] > 0.25
    assert features["merchant_group"] < 0.1  # untouched features stay put
    assert unknown["merchant_category"] >= WINDOW


@pytest.mark.unit
def test_the_window_wraps_and_keeps_only_the_latest_rows():
    rng = np.random.default_rng(0)
    train = rng.normal(size=20_000)
    from klarna_pd.model import reference as ref

    entry = {"kind": "numeric", "edges": ref._edges(train)}
    entry["bins"] = len(entry["edges"]) + 2
    entry["shares"] = list(ref.shares(train, entry))
    reference = {"score": entry, "features": {"x": entry}}
    published = {}
    monitor = DriftMonitor(reference, ["x"], {}, window=1_000, min_rows=500, refresh_seconds=0.0,
                           gauges=lambda kind, name, value: published.__setitem__((kind, name), value))
    monitor.observe(rng.normal(size=(300, 1)), rng.normal(size=300))
    assert monitor.refresh_if_ready() is None and not published  # fewer than min_rows
    for _ in range(7):  # 2,100 shifted rows through a 1,000-row window, in uneven pieces
        shifted = rng.normal(loc=2.0, size=300)
        monitor.observe(shifted[:, None], shifted)
    assert monitor.filled == 1_000
    monitor.refresh_if_ready()
    assert published[("feature", "x")] > 1.0 and published[("score", "score")] > 1.0
    for _ in range(4):
        calm = rng.normal(size=250)
        monitor.observe(calm[:, None], calm)
    monitor.refresh_if_ready()
    assert published[("feature", "x")] < 0.05  # the shifted rows have all left the window


@pytest.mark.unit
def test_the_gauges_are_refreshed_off_the_request_path():
    """observe() only copies rows; a background thread publishes the PSI soon after."""
    rng = np.random.default_rng(1)
    from klarna_pd.model import reference as ref

    train = rng.normal(size=5_000)
    entry = {"kind": "numeric", "edges": ref._edges(train)}
    entry["bins"] = len(entry["edges"]) + 2
    entry["shares"] = list(ref.shares(train, entry))
    published = {}
    monitor = DriftMonitor({"score": entry, "features": {"x": entry}}, ["x"], {}, window=500, min_rows=100,
                           refresh_seconds=0.05, gauges=lambda kind, name, value: published.__setitem__((kind, name), value))
    rows = rng.normal(size=200)
    monitor.observe(rows[:, None], rows)
    assert not published  # nothing computed inside observe()
    deadline = time.monotonic() + 5
    while not published and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ("score", "score") in published and ("feature", "x") in published
