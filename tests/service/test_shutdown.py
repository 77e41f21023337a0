"""Graceful shutdown: SIGTERM while requests are in flight lets every one of them finish.

Kubernetes sends SIGTERM to the container's main process after the preStop hook; the chart's
``terminationGracePeriodSeconds`` must cover the preStop pause plus the drain measured here.
"""

import http.client
import json
import os
import re
import signal
import time

import httpx
import pytest
import yaml

from ..helpers.paths import ROOT
from ..helpers.servers import start_server, stop_server, wait_ready

pytestmark = [pytest.mark.service, pytest.mark.slow]

IN_FLIGHT = 8
APPLICANTS = 40_000  # about half a second of work each, so that all are in flight together


def _in_progress(url: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=5).text
    m = re.search(r'^klarna_pd_requests_in_progress\{route="/predict"\} (\S+)$', text, re.M)
    return float(m.group(1)) if m else 0.0


def test_sigterm_lets_in_flight_requests_finish(small_trained):
    # Large requests and a generous batcher budget, so that the queue is not shed with 503s.
    env = {"KLARNA_PD_MODEL_TAG": small_trained.model_tag, "KLARNA_PD_MAX_LATENCY_MS": "29000",
           "KLARNA_PD_MAX_APPLICANTS": str(APPLICANTS), "KLARNA_PD_MAX_BATCH_SIZE": str(APPLICANTS)}
    proc, url = start_server("service:KlarnaPD", env=env)
    try:
        wait_ready(url)
        body = json.dumps({"applicants": [{"age": 30, "merchant_group": "Entertainment"}] * APPLICANTS}).encode()
        host, port = url.removeprefix("http://").split(":")
        # Whole requests sent first (sendall returns once the server has taken the bytes), so all
        # of them were accepted before SIGTERM; the answers are read afterwards.
        conns = []
        for _ in range(IN_FLIGHT):
            conn = http.client.HTTPConnection(host, int(port), timeout=120)
            conn.request("POST", "/predict", body=body, headers={"content-type": "application/json"})
            conns.append(conn)
        waiting = _in_progress(url)
        sent = time.monotonic()
        os.kill(proc.pid, signal.SIGTERM)  # the main process only, as the kubelet does
        results: list[object] = []
        for conn in conns:
            try:
                resp = conn.getresponse()
                payload = resp.read()
                results.append(len(json.loads(payload)) if resp.status == 200 else resp.status)
            except (OSError, http.client.HTTPException) as exc:
                results.append(repr(exc))
        proc.wait(timeout=60)
        drained = time.monotonic() - sent
    finally:
        stop_server(proc)
    assert waiting >= IN_FLIGHT // 2, f"only {waiting} requests were in flight at SIGTERM"
    assert results == [APPLICANTS] * IN_FLIGHT, results
    values = yaml.safe_load((ROOT / "helm" / "klarna-pd" / "values.yaml").read_text())
    budget = values["terminationGracePeriodSeconds"] - values["preStopSleepSeconds"]
    print(f"{waiting:.0f} in flight at SIGTERM; drained {IN_FLIGHT} requests of {APPLICANTS:,} applicants in {drained:.1f} s after SIGTERM")
    assert drained < budget / 2, f"drained in {drained:.1f} s; the chart leaves {budget} s after preStop"
