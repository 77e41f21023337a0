"""Property-based fuzzing of the running service from its own OpenAPI document (schemathesis).

Valid and invalid requests generated from the schema the server publishes at ``/docs.json``: none
may get a 5xx, and the server must still be ready and scoring afterwards. The budget and seed are
fixed so CI runs the same requests in the same time.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from .test_service import post

pytestmark = [pytest.mark.service, pytest.mark.slow]

EXAMPLES = 400  # per operation and phase
SEED = 20261124


def test_generated_requests_never_get_a_server_error(server, tmp_path):
    doc = httpx.get(f"{server}/docs.json").json()
    assert "Applicant" in doc["components"]["schemas"], "the published schema lost the applicant type"
    schema = tmp_path / "openapi.json"
    schema.write_text(json.dumps(doc))
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("st")), "run", str(schema), "--url", server,
         "--checks", "not_a_server_error", "--max-examples", str(EXAMPLES), "--seed", str(SEED),
         "--mode", "all", "--request-timeout", "30", "--no-color"],
        capture_output=True, text=True, timeout=900,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    generated = int(re.search(r"(\d+) generated", out).group(1))
    assert generated >= 1_000, out[-2000:]
    operations = sum(len(ops) for ops in doc["paths"].values())
    assert operations == 8 and re.search(rf"Tested: {operations}\b", out), out[-2000:]  # every documented endpoint
    assert httpx.get(f"{server}/readyz").status_code == 200
    resp = post(server, "/predict", {"applicants": [{"age": 30}]})
    assert resp.status_code == 200 and 0 < resp.json()[0]["pd"] < 1
