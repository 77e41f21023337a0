"""Real ``bentoml serve`` processes for the tests, each with a BentoML home of its own."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .paths import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_home(session_home: Path) -> Path:
    """A BentoML home of its own for one server, sharing the session's model store, Bentos and keys.

    Every `bentoml serve` empties $BENTOML_HOME/prometheus_multiproc_dir when it starts, so two
    servers on one home wipe each other's /metrics (seen: the session server lost its klarna_pd
    metrics when another test started a server)."""
    home = Path(tempfile.mkdtemp(prefix="serve-home-", dir=session_home))
    # klarna-pd-keys: the development key pair the session's models are signed with.
    for shared in ("models", "bentos", "klarna-pd-keys"):
        (session_home / shared).mkdir(exist_ok=True)
        (home / shared).symlink_to(session_home / shared, target_is_directory=True)
    return home


def start_server(target: str, *, env: dict[str, str] | None = None, cwd: Path = ROOT, timeout: float = 90.0):
    """Start ``bentoml serve <target>`` on a free port; return (process, base URL) once it answers /livez."""
    import httpx

    port = free_port()
    session_home = Path(os.environ["BENTOML_HOME"])
    # In the session's home, removed with it (1,400 logs were left in /tmp); a failure quotes the log.
    log = tempfile.NamedTemporaryFile(prefix="bentoml-serve-", suffix=".log", delete=False, dir=session_home)
    proc = subprocess.Popen(
        [sys.executable, "-m", "bentoml", "serve", target, "--port", str(port), "--host", "127.0.0.1"],
        cwd=cwd,
        # One worker unless a test asks for more (the default follows the machine's CPUs).
        env={**os.environ, "BENTOML_HOME": str(server_home(session_home)),
             "KLARNA_PD_WORKERS": "1", **(env or {})},
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


def stop_server(proc: subprocess.Popen | None, grace: float = 20.0) -> None:
    """SIGTERM to the server's process group, SIGKILL after ``grace`` seconds."""
    if proc is not None and proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
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
