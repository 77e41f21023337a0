"""The suite's split over pytest-xdist workers (tests/helpers/workers.py): groups and CPU shares."""

import json
import os
import subprocess
import sys

import pytest

from ..helpers import workers
from ..helpers.paths import ROOT

pytestmark = pytest.mark.unit


def test_expensive_session_fixtures_share_a_worker_and_modules_stay_whole():
    container = {workers.group(f"tests/container/{m}::t") for m in ("test_pod.py", "test_image.py")}
    spark = {workers.group(f"tests/{m}::t[a@b]") for m in ("batch/test_batch.py", "batch/test_safety.py",
                                                            "data/test_skew.py")}
    assert container == {"container"} and spark == {"spark"}
    assert workers.group("tests/unit/test_auth.py::test_a[x]") == "tests/unit/test_auth.py"
    assert set(workers.LONGEST_FIRST) >= {"container", "spark"}


@pytest.mark.skipif(len(workers.MACHINE_CPUS) < 2, reason="needs two CPUs to share out")
def test_each_worker_gets_its_own_share_of_the_cpus():
    code = ("import json, os; from tests.helpers import workers; workers.pin_to_share(); "
            "print(json.dumps(sorted(os.sched_getaffinity(0))))")
    cpus = sorted(workers.MACHINE_CPUS)

    def run(env):  # from every CPU of the run, as xdist starts its workers (this one may be pinned)
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                             check=True, preexec_fn=lambda: os.sched_setaffinity(0, cpus))
        return json.loads(out.stdout)

    shares = []
    for i in range(2):
        env = {**os.environ, "PYTEST_XDIST_WORKER": f"gw{i}", "PYTEST_XDIST_WORKER_COUNT": "2"}
        shares.append(run(env))
    assert shares == [cpus[0::2], cpus[1::2]]
    # More workers than CPUs: nobody is pinned (two workers would share one CPU's share).
    env = {**os.environ, "PYTEST_XDIST_WORKER": "gw0", "PYTEST_XDIST_WORKER_COUNT": str(len(cpus) + 1)}
    assert run(env) == cpus
