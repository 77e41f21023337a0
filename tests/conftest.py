"""Fixtures, chained: synthetic data -> a trained model in a temporary BentoML home -> a live server.

Most tests stand on a small model (6,000 synthetic rows, 3 folds, a few seconds); the full main job
(99,976 rows, 10 folds) runs only where model quality is the subject. Every session gets its own
``BENTOML_HOME`` (as BentoML's own pytest plugin does), set before BentoML is imported, so tests
never touch a developer's model store. Helpers live in ``tests/helpers``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from .helpers import workers
from .helpers.paths import ROOT
from .helpers.records import records_of
from .helpers.servers import start_server, stop_server, wait_ready

_HOME = Path(tempfile.mkdtemp(prefix="klarna-pd-bentoml-"))
os.environ["BENTOML_HOME"] = str(_HOME)
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_HOME, ignore_errors=True)


# -- several workers (pytest -n 2: pytest-xdist) ---------------------------------------------

workers.pin_to_share()


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config):
    """``-n auto``: one worker per CPU the run may use (affinity and cgroup quota), the count the
    servers and training follow; xdist's own count is the machine's physical cores. ``-n logical``
    and PYTEST_XDIST_AUTO_NUM_WORKERS keep their xdist meaning."""
    if config.option.numprocesses == "logical" or os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None
    from klarna_pd.cpus import available_cpus

    return available_cpus()


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """Whole groups (``tests/helpers/workers.py``) go to a worker, the longest first, for the
    default distribution (``-n`` alone) and the per-scope ones; ``--dist each``, ``loadfile`` and
    ``worksteal`` keep xdist's meaning. (xdist's own ``--dist loadgroup`` does not group under
    pytest 9, whose node ids it can no longer rewrite.)"""
    if config.getvalue("dist") not in ("load", "loadscope", "loadgroup"):
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ByGroup(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return workers.group(nodeid)

    config.option.loadscopereorder = False  # the workers' collection order, set below
    return ByGroup(config, log)


def pytest_collection_modifyitems(config, items):
    if os.environ.get("PYTEST_XDIST_WORKER"):  # the order only matters to the scheduler
        rank = {g: i for i, g in enumerate(workers.LONGEST_FIRST)}
        items.sort(key=lambda item: rank.get(workers.group(item.nodeid), len(rank)))


@pytest.fixture(scope="session")
def bentoml_home() -> Path:
    return _HOME


@pytest.fixture(scope="session")
def klarna_spec():
    from klarna_pd.spec import klarna_spec as spec

    return spec()


# -- data -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def synthetic_small(tmp_path_factory) -> Path:
    """A 6,000-row synthetic file (seed 1): the data of most tests."""
    from klarna_pd.synth import write_synthetic

    data = tmp_path_factory.mktemp("synth_small") / "dataset.csv"
    write_synthetic(data, rows=6_000, seed=1)
    return data


@pytest.fixture(scope="session")
def synthetic_full(tmp_path_factory) -> tuple[Path, Path]:
    """The full-size synthetic stand-in (99,976 rows, seed 0) and its true PDs: quality tests only."""
    from klarna_pd.synth import write_synthetic

    d = tmp_path_factory.mktemp("synth_full")
    data, truth = d / "dataset.csv", d / "truth.csv"
    write_synthetic(data, rows=99_976, seed=0, truth=truth)
    return data, truth


@pytest.fixture(scope="session")
def sample_records(synthetic_small, klarna_spec):
    """200 rows of the small synthetic file: the typed frame and the same rows as JSON records."""
    from klarna_pd.data.files import read_dataset

    frame = read_dataset(synthetic_small, klarna_spec).frame.head(200)
    return frame, records_of(frame, klarna_spec)


# -- models -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def small_trained(synthetic_small, tmp_path_factory, bentoml_home):
    """The main job on the small file with 3 folds (seconds), model saved to the session's store."""
    from klarna_pd.training import TrainConfig
    from klarna_pd.training.pipeline import run

    out = tmp_path_factory.mktemp("small_outputs")
    return run(synthetic_small, _spec(), out, TrainConfig(folds=3, seed=0), synthetic=True, log=lambda *_: None)


@pytest.fixture(scope="session")
def small_model(small_trained):
    from klarna_pd.store.local import load_model

    return load_model(small_trained.model_tag)


@pytest.fixture(scope="session")
def trained(synthetic_full, tmp_path_factory, bentoml_home):
    """The main job on the full synthetic file, 10 folds: where model quality is the subject."""
    from klarna_pd.training import TrainConfig
    from klarna_pd.training.pipeline import run

    out = tmp_path_factory.mktemp("outputs")
    data, _ = synthetic_full
    return run(data, _spec(), out, TrainConfig(folds=10, seed=0), synthetic=True, log=lambda *_: None)


@pytest.fixture(scope="session")
def model(trained):
    from klarna_pd.store.local import load_model

    return load_model(trained.model_tag)


def _spec():
    from klarna_pd.spec import klarna_spec

    return klarna_spec()


@pytest.fixture(scope="session")
def spark():
    """One local Spark session for the whole run (the JVM takes seconds to start)."""
    pytest.importorskip("pyspark", reason="pyspark not installed (requirements-spark.txt)")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("no Java runtime (Spark needs Java 17): install openjdk-17-jre-headless")
    from klarna_pd.batch.spark import session

    s = session("local[2]")
    s.sparkContext.setLogLevel("ERROR")
    yield s
    s.stop()


# -- servers ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def server(small_trained):
    """A real ``bentoml serve`` of the small model, over HTTP."""
    proc, url = start_server("service:KlarnaPD", env={"KLARNA_PD_MODEL_TAG": small_trained.model_tag}, cwd=ROOT)
    try:
        wait_ready(url)
        yield url
    finally:
        stop_server(proc)
