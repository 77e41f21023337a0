"""Shared pieces of the benchmarks: processes, the wrk load generator, result tables."""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def chart_server_env() -> dict[str, str]:
    """The server's ``KLARNA_PD_*`` environment as the chart's default values render it (the real
    Helm library, as the tests render the chart): benchmarks of "the chart's settings" follow the
    chart when its values change."""
    import helm_python as helm
    import yaml

    chart = helm.Chart.load(ROOT / "helm" / "klarna-pd")
    out = chart.render(None, name="klarna-pd", namespace="risk", is_install=True)
    docs = [d for path, text in out.items() if path.endswith(".yaml") for d in yaml.safe_load_all(text) if d]
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    server = deployment["spec"]["template"]["spec"]["containers"][0]
    # The pod's mounts and Secrets (verify key, model directory, API keys) are not the benchmark's.
    pod_only = {"KLARNA_PD_VERIFY_KEY", "KLARNA_PD_MODEL_DIR", "KLARNA_PD_API_KEYS"}
    return {e["name"]: e["value"] for e in server["env"]
            if e["name"].startswith("KLARNA_PD_") and "value" in e and e["name"] not in pod_only}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 120.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer 200 within {timeout} s")


def wait_compiled(url: str, env: dict[str, str] | None = None, timeout: float = 120.0) -> None:
    """Until the klarna-pd server at ``url`` scores with its compiled trees (its workers compile
    them in the background after start); an error if it does not within ``timeout`` seconds. With
    ``env``, the server's environment: only if it turns the compiled trees on."""
    import httpx

    if env is not None and env.get("KLARNA_PD_COMPILED_TREES") != "true":
        return
    deadline = time.monotonic() + timeout
    while httpx.get(f"{url}/metadata").json().get("compiled_trees") is not True:
        if time.monotonic() > deadline:
            raise SystemExit(f"{url} still scores with LightGBM after {timeout:.0f} s: is lleaves installed?")
        time.sleep(0.2)


class Server:
    """A server process in its own session, stopped with its children."""

    def __init__(self, argv: list[str], *, env: dict[str, str] | None = None, cwd: Path = ROOT, ready: str) -> None:
        self.log = tempfile.NamedTemporaryFile(prefix="bench-server-", suffix=".log", delete=False)
        self.proc = subprocess.Popen(
            argv, cwd=cwd, env={**os.environ, **(env or {})}, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            wait_http(ready)
        except Exception:
            self.stop()
            raise RuntimeError(Path(self.log.name).read_text()[-3000:]) from None

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


@dataclass
class Load:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int
    cpu_us: float = 0.0
    """Server CPU (all its processes) per request, in microseconds: less noisy than wall time."""


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip())
    if not m:
        raise ValueError(f"cannot read wrk latency {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def wrk(url: str, body: bytes, *, connections: int, seconds: int, threads: int | None = None,
        content_type: str = "application/json", headers: dict[str, str] | None = None) -> Load:
    """POST ``body`` with wrk; latency percentiles and throughput as wrk reports them.

    The body is read by the wrk script from a file, so any bytes (an Arrow stream) can be sent.
    """
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed for this benchmark: apt-get install wrk")
    threads = threads or min(2, connections)
    with tempfile.NamedTemporaryFile("wb", suffix=".body", delete=False) as data:
        data.write(body)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(f'local f = assert(io.open("{data.name}", "rb"))\nwrk.body = f:read("*all")\nf:close()\n')
        lua.write(f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "{content_type}"\n')
        for name, value in (headers or {}).items():
            lua.write(f'wrk.headers["{name}"] = "{value}"\n')
    try:
        out = subprocess.run(
            ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", lua.name, url],
            capture_output=True, text=True, check=True,
        ).stdout
    finally:
        os.unlink(lua.name)
        os.unlink(data.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(bad.group(1)) if bad else 0) + (sum(int(g) for g in sock.groups()) if sock else 0)
    return Load(rps, p50, p99, errors, total)


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and all its children, so far."""
    import psutil

    procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def median_load(loads: list[Load]) -> Load:
    return Load(
        requests_per_s=statistics.median(x.requests_per_s for x in loads),
        p50_ms=statistics.median(x.p50_ms for x in loads),
        p99_ms=statistics.median(x.p99_ms for x in loads),
        errors=sum(x.errors for x in loads),
        requests=sum(x.requests for x in loads),
        cpu_us=statistics.median(x.cpu_us for x in loads),
    )


def write_results(name: str, title: str, header: list[str], rows: list[list[str]], notes: list[str], raw: dict) -> Path:
    """Print a Markdown table and write it (and the raw numbers as JSON) to benchmarks/results/."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    lines = [f"# {title}", "", f"Machine: {machine()}. Run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.", ""]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    lines += ["", *notes, ""]
    text = "\n".join(lines)
    print(text)
    md = RESULTS / f"{name}.md"
    md.write_text(text)
    (RESULTS / f"{name}.json").write_text(json.dumps(raw, indent=1, default=lambda o: asdict(o)) + "\n")
    print(f"wrote {md}", file=sys.stderr)
    return md


def top_frames(raw: Path, n: int = 12) -> list[str]:
    """The ``n`` frames with the most self time in a py-spy ``--format raw`` profile, as percentages."""
    import collections

    counts: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        if not stack:
            continue
        total += int(samples)
        counts[stack.split(";")[-1]] += int(samples)
    return [f"{100 * c / max(total, 1):5.1f}%  {name}" for name, c in counts.most_common(n)]
