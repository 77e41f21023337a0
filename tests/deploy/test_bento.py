"""`bentoml build` into the session's BENTOML_HOME, then `bentoml serve` of the built Bento."""

import os
import subprocess
import sys

import httpx
import pytest
import yaml

from ..helpers.paths import ROOT
from ..helpers.servers import start_server, stop_server, wait_ready

pytestmark = [pytest.mark.deploy]


@pytest.fixture(scope="module")
def bento_tag(small_trained, bentoml_home):
    proc = subprocess.run(
        [sys.executable, "-m", "bentoml", "build", "-o", "tag"],
        cwd=ROOT, env={**os.environ, "KLARNA_PD_MODEL_TAG": small_trained.model_tag}, capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    tag = proc.stdout.strip().rsplit("__tag__:", 1)[-1]
    assert tag.startswith("klarna-pd:")
    return tag


def test_the_bento_packs_the_service_the_package_and_the_model(bento_tag, small_trained, bentoml_home):
    name, version = bento_tag.split(":")
    root = bentoml_home / "bentos" / name / version
    info = yaml.safe_load((root / "bento.yaml").read_text())
    assert info["service"] == "service:KlarnaPD"
    assert [m["tag"] for m in info["services"][0]["models"]] == [small_trained.model_tag]
    assert (root / "src" / "klarna_pd" / "specs" / "klarna.yaml").exists()
    assert (root / "src" / "klarna_pd" / "resources" / "klarna_facts.json").exists()
    assert not (root / "src" / "tests").exists()
    pinned = (root / "env" / "python" / "requirements.txt").read_text()
    assert "bentoml==1.4.39" in pinned and "lightgbm==4.7.0" in pinned and "boto3==" in pinned
    dockerfile = (root / "env" / "docker" / "Dockerfile").read_text()
    assert "USER bentoml" in dockerfile  # the image runs as non-root


def test_the_built_bento_serves(bento_tag, small_model, sample_records):
    proc, url = start_server(bento_tag, cwd=ROOT.parent)  # from elsewhere: nothing from the checkout
    try:
        wait_ready(url)
        _, records = sample_records
        resp = httpx.post(f"{url}/predict", json={"applicants": records[:10]}, timeout=30)
        assert resp.status_code == 200
        assert [r["pd"] for r in resp.json()] == small_model.predict_records(records[:10]).tolist()
    finally:
        stop_server(proc)
