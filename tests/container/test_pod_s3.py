"""The chart's pod serving a model from S3: its init container pulls and verifies the model
(`model.uri`) from moto's S3 server on the host's loopback before the server starts."""

import json
import time
from pathlib import Path

import boto3
import httpx
import pytest

from klarna_pd.store.s3 import push

from .podman import INIT, SERVER, chart_deployment, free_port

pytestmark = [pytest.mark.container, pytest.mark.slow]


def _s3_deployment(image: str, verify_key: Path, uri: str, s3_env: dict[str, str], port: int, *,
                   restart: str = "OnFailure") -> dict:
    """The Deployment of `helm install ... --set model.uri=<uri>`, on the host's network so that the
    init container reaches moto's server on the host's loopback, given the S3 endpoint that the
    real S3 and IRSA provide on EKS.

    The restart policy: podman 4.3 (Debian 12) gives init containers the pod's, and with Always
    restarts one that finished, so the pod never starts (containers/podman#16343, fixed in 4.6 by
    #18481). OnFailure is what a kubelet does with init containers: retried when they fail, never
    after success."""
    deployment = chart_deployment({"model": {"uri": uri}}, image, verify_key=verify_key)
    pod = deployment["spec"]["template"]["spec"]
    pod["hostNetwork"] = True
    pod["restartPolicy"] = restart
    for init in pod["initContainers"]:
        init["env"] += [{"name": k, "value": v} for k, v in s3_env.items()]
    for server in pod["containers"]:
        server.pop("ports")  # on the host's network podman refuses port mappings
        # A free port on the host's loopback rather than 3000, which anything on the host may hold.
        server["env"] += [{"name": "BENTOML_HOST", "value": "127.0.0.1"}, {"name": "BENTOML_PORT", "value": str(port)}]
    return deployment


@pytest.fixture()
def pushed(s3, small_trained, monkeypatch):
    """The small model pushed to S3 (`python -m klarna_pd.store push`) under a prefix of its own."""
    url, env = s3
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return push(small_trained.model_tag, f"s3://models/run-{time.monotonic_ns()}", log=lambda *_: None)


def test_the_init_container_pulls_the_model_and_the_server_serves_it(image, verify_key, pods, s3, pushed, small_trained,
                                                                     small_model, applicants):
    port = free_port()
    pod = pods(_s3_deployment(image, verify_key, pushed, s3[1], port), port=port)
    ready_after = pod.wait_ready()  # after the init container succeeded: podman then removes it
    status, body = pod.http("POST", "/predict", {"applicants": applicants})
    assert status == 200, body
    assert [r["pd"] for r in json.loads(body)] == small_model.predict_records(applicants).tolist()
    info = json.loads(pod.http("GET", "/metadata")[1])
    assert info["model_tag"] == small_trained.model_tag and info["source"] == "/var/lib/klarna-pd/model"
    print(f"pulled from S3 and ready {ready_after:.1f} s after kube play")


def test_a_tampered_model_is_refused_and_never_served(image, verify_key, pods, s3, pushed):
    bucket, _, prefix = pushed.removeprefix("s3://").partition("/")
    boto3.client("s3").put_object(Bucket=bucket, Key=f"{prefix}/booster.txt", Body=b"tree\nshrinkage=5\n")
    port = free_port()
    # One attempt (Never): a kubelet would retry the init container, and the server would wait all the same.
    pod = pods(_s3_deployment(image, verify_key, pushed, s3[1], port, restart="Never"), port=port, check=False)
    assert pod.failure and "init container" in pod.failure and "exited with code 1" in pod.failure, pod.failure
    init = pod.state(INIT)
    assert init["status"] == "exited" and init["exit_code"] == 1, init
    log = pod.logs(INIT)
    assert "booster.txt is 17 bytes, the manifest says" in log and "refusing the model" in log, log
    server = pod.state(SERVER)
    assert server["status"] == "created" and server["started_at"].startswith("0001-01-01"), server
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
