"""The image that ships, built once per session: the small model -> `bentoml build` ->
`bentoml containerize --backend podman` on the stand-in base image."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import boto3
import httpx
import pytest

from ..helpers import workers
from ..helpers.paths import ROOT
from ..helpers.servers import free_port
from .podman import Pod, check_tools, containerize, ensure_base_image, remove_image


@pytest.fixture(scope="package", autouse=True)
def every_cpu():
    """Pods started with every CPU of the run in their affinity, even when pytest-xdist pinned
    this worker to one: the pod's CPU count must come from its limit, and a test on a one-CPU
    worker could not tell the two apart."""
    with workers.every_cpu():
        yield


@pytest.fixture(scope="session")
def applicants(sample_records):
    """100 rows of the small model's training file as the JSON a client sends (missing -> null)."""
    return sample_records[1][:100]


@pytest.fixture(scope="session")
def image(small_trained, bentoml_home):
    """The Bento's image with the small model (6,000 rows, 3 folds) built in; removed at the end of the session."""
    check_tools()
    ensure_base_image()
    tag = small_trained.model_tag
    proc = subprocess.run(
        [sys.executable, "-m", "bentoml", "build", "-o", "tag"],
        cwd=ROOT, env={**os.environ, "KLARNA_PD_MODEL_TAG": tag}, capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    bento = proc.stdout.strip().rsplit("__tag__:", 1)[-1]
    name = f"localhost/klarna-pd-test:{bento.split(':')[1]}"
    started = time.monotonic()
    containerize(bento, name)
    print(f"\nimage {name} built in {time.monotonic() - started:.1f} s")
    try:
        yield name
    finally:
        remove_image(name)


@pytest.fixture(scope="session")
def verify_key(small_trained) -> Path:
    """The public key the session's models are signed with (training's development key pair)."""
    from klarna_pd.store.signing import PUBLIC_KEY_FILE, dev_key_dir

    return dev_key_dir() / PUBLIC_KEY_FILE


@pytest.fixture()
def pods():
    """Starts pods with `pods(deployment)`; removes every one of them afterwards."""
    started: list[Pod] = []

    def start(deployment: dict, *, port: int = 3000, check: bool = True) -> Pod:
        pod = Pod(deployment, port=port)
        started.append(pod)
        return pod.play(check=check)

    yield start
    for pod in started:
        pod.remove()


@pytest.fixture(scope="module")
def s3():
    """moto's S3 server on the host's loopback, with a bucket: (endpoint URL, client environment)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(url, timeout=1)
            break
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.2)
    env = {"AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "eu-north-1"}
    boto3.client("s3", endpoint_url=url, aws_access_key_id="testing", aws_secret_access_key="testing",
                 region_name="eu-north-1").create_bucket(
        Bucket="models", CreateBucketConfiguration={"LocationConstraint": "eu-north-1"})
    try:
        yield url, env
    finally:
        proc.terminate()
        proc.wait(timeout=10)
