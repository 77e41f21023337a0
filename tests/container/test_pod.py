"""The chart's pod, started for real: the Deployment real Helm renders, run by `podman kube play`
on the image `bentoml containerize` built, spoken to over the pod's loopback from inside the pod."""

import json
import re
import time

import pytest
import yaml

from ..helpers.records import arrow_body
from .podman import CHART, SERVER, Pod, chart_deployment, podman

pytestmark = [pytest.mark.container, pytest.mark.slow]


@pytest.fixture(scope="module")
def default_pod(image, verify_key):
    """The pod of `helm install klarna-pd` with the chart's default values: the model built into the image."""
    pod = Pod(chart_deployment(None, image, verify_key=verify_key)).play()
    try:
        pod.ready_after = pod.wait_ready()
        yield pod
    finally:
        pod.remove()


def test_the_pod_with_default_values_becomes_ready(default_pod):
    status, _ = default_pod.http("GET", "/readyz")
    assert status == 200
    print(f"ready {default_pod.ready_after:.1f} s after kube play")


def test_it_serves_the_same_pds_as_the_library(default_pod, small_trained, small_model, applicants):
    status, body = default_pod.http("POST", "/predict", {"applicants": applicants})
    assert status == 200, body
    assert [r["pd"] for r in json.loads(body)] == small_model.predict_records(applicants).tolist()
    status, body = default_pod.http("GET", "/metadata")
    assert status == 200 and json.loads(body)["model_tag"] == small_trained.model_tag


def test_it_scores_an_arrow_body_the_same(default_pod, small_model, applicants):
    """Columnar bodies need pyarrow in the image (requirements-serve.txt)."""
    status, body = default_pod.http("POST", "/predict", arrow_body(applicants),
                                    content_type="application/vnd.apache.arrow.stream")
    assert status == 200, body
    assert [r["pd"] for r in json.loads(body)] == small_model.predict_records(applicants).tolist()


def test_the_chart_settings_reached_the_server(default_pod):
    values = yaml.safe_load((CHART / "values.yaml").read_text())["settings"]
    status, body = default_pod.http("GET", "/metadata")
    info = json.loads(body)
    assert info["batching"] == {"adaptive": values["adaptiveBatching"], "batch_max_applicants": values["batchMaxApplicants"],
                                "max_batch_size": values["maxBatchSize"], "max_latency_ms": values["maxLatencyMs"]}
    assert info["limits"] == {"max_applicants": values["maxApplicants"], "max_body_bytes": values["maxBodyBytes"],
                              "max_reasons": values["maxReasons"]}
    # The chart turns the compiled trees on; each worker compiles them in the background.
    deadline = time.monotonic() + 60
    while json.loads(default_pod.http("GET", "/metadata")[1])["compiled_trees"] is not values["compiledTrees"]:
        assert time.monotonic() < deadline, "the pod's worker did not compile its trees within 60 s"
        time.sleep(0.5)
    assert _declared_body(default_pod, values["maxBodyBytes"]) == (200, "")
    status, message = _declared_body(default_pod, values["maxBodyBytes"] + 1)
    assert status == 413 and f"over the limit of {values['maxBodyBytes']:,} bytes" in message


# Headers only: a request declaring a body of a given size, answered before any body is sent
# when the size is over the limit (a 200 with no answer yet otherwise).
_DECLARE = """
import http.client, socket, sys
conn = http.client.HTTPConnection("127.0.0.1", 3000, timeout=5)
conn.putrequest("POST", "/predict")
conn.putheader("Content-Type", "application/json")
conn.putheader("Content-Length", sys.argv[1])
conn.endheaders()
try:
    resp = conn.getresponse()
    print(resp.status, resp.read().decode())
except socket.timeout:
    print(200)  # still waiting for the body: the size was accepted
"""


def _declared_body(pod, size: int) -> tuple[int, str]:
    out = pod.exec(SERVER, "python", "-c", _DECLARE, str(size)).stdout.strip()
    status, _, message = out.partition(" ")
    return int(status), message


def test_it_runs_as_non_root_with_a_read_only_root_and_no_capabilities(default_pod):
    status = default_pod.exec(SERVER, "cat", "/proc/1/status").stdout  # the server process itself
    uids = re.search(r"^Uid:\s+(.+)$", status, re.M).group(1).split()
    assert set(uids) == {"1034"}, uids
    assert re.search(r"^CapEff:\s+0+$", status, re.M), status
    denied = default_pod.exec(SERVER, "sh", "-c", "echo x > /probe")
    assert denied.returncode != 0 and "Read-only file system" in denied.stderr
    for writable in ("/tmp", "/var/lib/bentoml"):  # the chart's emptyDirs
        assert default_pod.exec(SERVER, "sh", "-c", f"echo x > {writable}/probe").returncode == 0, writable


# The client runs in a container of its own in the pod, so that the server's container can be
# signalled and stop while the client waits for its answers (on the pod's loopback).
_CLIENT = r"""
import http.client, json, re, sys, urllib.request
n, size = int(sys.argv[1]), int(sys.argv[2])
body = json.dumps({"applicants": [{"age": 30, "merchant_group": "Entertainment"}] * size}).encode()
conns = []
for _ in range(n):  # whole requests sent first: all accepted before the signal
    conn = http.client.HTTPConnection("127.0.0.1", 3000, timeout=120)
    conn.request("POST", "/predict", body=body, headers={"content-type": "application/json"})
    conns.append(conn)
metrics = urllib.request.urlopen("http://127.0.0.1:3000/metrics", timeout=10).read().decode()
found = re.findall(r'^klarna_pd_requests_in_progress\{[^}]*route="/predict"[^}]*\} (\S+)$', metrics, re.M)
print("sent", sum(float(v) for v in found), flush=True)
results = []
for conn in conns:
    try:
        resp = conn.getresponse()
        payload = resp.read()
        results.append(len(json.loads(payload)) if resp.status == 200 else resp.status)
    except (OSError, http.client.HTTPException) as exc:
        results.append(repr(exc))
print(json.dumps(results), flush=True)
"""


def test_sigterm_drains_the_requests_in_flight(image, verify_key, pods):
    """SIGTERM to the server container's main process, as the kubelet sends it after preStop.
    The ci/large-values variant: batching off and room for 80,000-applicant requests (no 503 shedding)."""
    values = yaml.safe_load((CHART / "ci" / "large-values-values.yaml").read_text())
    pod = pods(chart_deployment(values, image, verify_key=verify_key))
    pod.wait_ready()
    # Ready once one worker answers; the second may still be loading on the pod's one CPU (seen when
    # another test loaded the machine), and a worker killed while loading has nothing to clean up.
    workers, deadline = values["settings"]["workers"], time.monotonic() + 60
    while pod.logs(SERVER).count("Service klarna-pd initialized") < workers:
        assert time.monotonic() < deadline, f"not every worker started:\n{pod.logs(SERVER)[-3000:]}"
        time.sleep(0.2)
    # Large enough that most are still being scored when the signal comes (two workers, one CPU each).
    in_flight, size = 8, 80_000
    client = f"{pod.container(SERVER)}-client"
    podman("run", "-d", "--pod", pod.id, "--name", client, image, "python", "-c", _CLIENT, str(in_flight), str(size))
    deadline = time.monotonic() + 120
    while "sent" not in (log := podman("logs", client, check=False).stdout):
        assert time.monotonic() < deadline, f"the client never sent its requests:\n{log}"
        time.sleep(0.1)
    waiting = float(log.split("sent", 1)[1].split()[0])
    signalled = time.monotonic()
    podman("kill", "--signal", "TERM", pod.container(SERVER))
    podman("wait", client, timeout=120)
    drained = time.monotonic() - signalled
    results = json.loads(podman("logs", client).stdout.strip().splitlines()[-1])
    assert waiting >= in_flight // 2, f"only {waiting} requests were in flight at SIGTERM"
    assert results == [size] * in_flight, results
    # The server exited cleanly on the signal, every worker cleaned up; then the pod's restart
    # policy (Always) started it again.
    while (state := pod.state(SERVER))["restarts"] == 0 and state["status"] == "running":
        assert time.monotonic() < deadline, "the server did not stop after SIGTERM"
        time.sleep(0.2)
    assert state["exit_code"] == 0, state
    log = pod.logs(SERVER)
    assert log.count("Service instance cleanup finalized") >= workers, log[-3000:]
    print(f"{waiting:.0f} in flight at SIGTERM; all {in_flight} answered in {drained:.1f} s")


def test_threads_follow_the_pods_cpu_limit_not_the_machines_cores(default_pod):
    """The chart's resources.limits.cpu is 1: the server sees one CPU, whatever the host has."""
    limit = yaml.safe_load((CHART / "values.yaml").read_text())["resources"]["limits"]["cpu"]
    probe = "import os; from klarna_pd.cpus import available_cpus; print(available_cpus(), os.cpu_count())"
    out = default_pod.exec(SERVER, "sh", "-c", f"cd src && python -c '{probe}'").stdout.split()
    assert int(out[0]) == int(limit), out
    print(f"available_cpus() {out[0]} in the pod; os.cpu_count() {out[1]}")
