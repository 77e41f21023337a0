"""Shared fixtures: synthetic data -> a trained model in a temporary BentoML home -> a live server.

Every session gets its own ``BENTOML_HOME`` (as BentoML's own pytest plugin does), set before
BentoML is imported, so tests never touch a developer's model store.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
PROFILE = SHARED / "data" / "klarna" / "profile.json"
UCI = SHARED / "data" / "uci_taiwan" / "UCI_Credit_Card.csv"

_HOME = Path(tempfile.mkdtemp(prefix="klarna-pd-bentoml-"))
os.environ["BENTOML_HOME"] = str(_HOME)
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def bentoml_home() -> Path:
    return _HOME


@pytest.fixture(scope="session")
def klarna_spec():
    from klarna_pd.spec import klarna_spec as spec

    return spec()


@pytest.fixture(scope="session")
def synthetic_full(tmp_path_factory) -> tuple[Path, Path]:
    """The full-size synthetic stand-in (99,976 rows, seed 0) and its true PDs."""
    from klarna_pd.synth import write_synthetic

    d = tmp_path_factory.mktemp("synth_full")
    data, truth = d / "dataset.csv", d / "truth.csv"
    write_synthetic(data, rows=99_976, seed=0, truth=truth)
    return data, truth


@pytest.fixture(scope="session")
def synthetic_small(tmp_path_factory) -> Path:
    """A 6,000-row synthetic file for quick tests."""
    from klarna_pd.synth import write_synthetic

    data = tmp_path_factory.mktemp("synth_small") / "dataset.csv"
    write_synthetic(data, rows=6_000, seed=1)
    return data


@pytest.fixture(scope="session")
def trained(synthetic_full, tmp_path_factory, bentoml_home):
    """The main job on the full synthetic file: 10 folds, model saved to the session's store."""
    from klarna_pd.pipeline import run
    from klarna_pd.spec import klarna_spec
    from klarna_pd.training import TrainConfig

    out = tmp_path_factory.mktemp("outputs")
    data, _ = synthetic_full
    summary = run(data, klarna_spec(), out, TrainConfig(folds=10, seed=0), synthetic=True, log=lambda *_: None)
    return summary


@pytest.fixture(scope="session")
def model(trained):
    from klarna_pd.store import load_model

    return load_model(trained.model_tag)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_home() -> Path:
    """A BentoML home of its own for one server, sharing the session's model store and Bentos.

    Every `bentoml serve` empties $BENTOML_HOME/prometheus_multiproc_dir when it starts, so two
    servers on one home wipe each other's /metrics (seen: the session server lost its klarna_pd
    metrics when another test started a server)."""
    home = Path(tempfile.mkdtemp(prefix="serve-home-", dir=_HOME))
    for shared in ("models", "bentos"):
        (_HOME / shared).mkdir(exist_ok=True)
        (home / shared).symlink_to(_HOME / shared, target_is_directory=True)
    return home


def start_server(target: str, *, env: dict[str, str] | None = None, cwd: Path = ROOT, timeout: float = 90.0):
    """Start ``bentoml serve <target>`` on a free port; return (process, base URL) once ready."""
    import httpx

    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="bentoml-serve-", suffix=".log", delete=False)
    proc = subprocess.Popen(
        [sys.executable, "-m", "bentoml", "serve", target, "--port", str(port), "--host", "127.0.0.1"],
        cwd=cwd,
        # One worker unless a test asks for more (the default follows the machine's CPUs).
        env={**os.environ, "BENTOML_HOME": str(_server_home()), "KLARNA_PD_WORKERS": "1", **(env or {})},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"bentoml serve exited with {proc.returncode}:\n{Path(log.name).read_text()[-4000:]}")
        try:
            if httpx.get(f"{url}/livez", timeout=1.0).status_code == 200:
                proc.log_path = log.name  # type: ignore[attr-defined]
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    stop_server(proc)
    raise RuntimeError(f"bentoml serve did not come up in {timeout} s:\n{Path(log.name).read_text()[-4000:]}")


def stop_server(proc: subprocess.Popen) -> None:
    import signal

    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wait_ready(url: str, timeout: float = 60.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} not ready after {timeout} s")


@pytest.fixture(scope="session")
def server(trained):
    """A real ``bentoml serve`` of the trained model, over HTTP."""
    proc, url = start_server("service:KlarnaPD", env={"KLARNA_PD_MODEL_TAG": trained.model_tag})
    try:
        wait_ready(url)
        yield url
    finally:
        stop_server(proc)


@pytest.fixture(scope="session")
def sample_records(synthetic_full, klarna_spec):
    """200 labelled rows of the synthetic file as JSON-ready applicant records."""
    from klarna_pd.data import read_dataset

    frame = read_dataset(synthetic_full[0], klarna_spec).frame.head(200)
    return frame, records_of(frame, klarna_spec)


def records_of(frame, spec) -> list[dict]:
    """Rows of a typed frame as the JSON objects a client would send (NaN -> null)."""
    from klarna_pd.schema import json_records

    return json_records(frame, spec)
