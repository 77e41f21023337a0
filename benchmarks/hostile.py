"""Hostile load: can one client hurt the others? (issue 15)

    python benchmarks/hostile.py [--model klarna-pd:latest] [--seconds 8]

Against one `bentoml serve` worker (the pod's setting): default, with adaptive batching, and with
the chart's settings (the environment its default values render: harness.chart_server_env; with the
compiled trees, run once they are compiled), three adversarial runs each, beside a prober that
calls /livez every 100 ms:

- **poison + normal**: one connection sending an applicant with a 310-digit ordinal code, 16
  sending normal single applicants;
- **burst, then normal**: 16 concurrent 10,000-applicant requests, then single applicants at c=2;
- **empty-object bodies**: 32 concurrent 16 MB bodies of `[{},{},...]` (5.5 million objects each).

Reports status counts per kind of request, the slowest /livez answer and the worker's peak RSS
(VmHWM), against the chart's memory limit. Writes benchmarks/results/hostile.md (and .json).
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import psutil
from harness import ROOT, Server, chart_server_env, free_port, wait_compiled, write_results

sys.path.insert(0, str(ROOT))

CHART_LIMIT_MIB = 1536
JSON = {"content-type": "application/json"}


def _server(model: str, **env: str) -> tuple[Server, str]:
    port = free_port()
    server = Server([sys.executable, "-m", "bentoml", "serve", "service:KlarnaPD", "--port", str(port), "--host", "127.0.0.1"],
                    env={"KLARNA_PD_MODEL_TAG": model, "KLARNA_PD_WORKERS": "1", "BENTOML_DO_NOT_TRACK": "True",
                         **env},
                    ready=f"http://127.0.0.1:{port}/readyz")
    return server, f"http://127.0.0.1:{port}"


def _worker(server: Server) -> psutil.Process:
    return next(p for p in psutil.Process(server.proc.pid).children(recursive=True) if "worker" in " ".join(p.cmdline()))


def _peak_mib(process: psutil.Process) -> float:
    status = open(f"/proc/{process.pid}/status").read()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024


class Prober:
    """Calls /livez every 100 ms in a thread; records the slowest answer (a failure counts as inf)."""

    def __init__(self, url: str) -> None:
        self.url, self.times, self.stop = url, [], threading.Event()
        self.thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        with httpx.Client() as client:
            while not self.stop.is_set():
                t0 = time.monotonic()
                try:
                    ok = client.get(f"{self.url}/livez", timeout=5).status_code == 200
                except httpx.HTTPError:
                    ok = False
                self.times.append(time.monotonic() - t0 if ok else float("inf"))
                time.sleep(0.1)

    def __enter__(self) -> Prober:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()


def _post(client: httpx.Client, url: str, body: bytes, timeout: float = 120) -> str:
    try:
        return str(client.post(f"{url}/predict", content=body, headers=JSON, timeout=timeout).status_code)
    except httpx.HTTPError as exc:
        return type(exc).__name__


def _at_once(url: str, body: bytes, n: int) -> collections.Counter:
    """``n`` concurrent requests with ``body``: their statuses."""

    def send(_):
        with httpx.Client() as client:
            return _post(client, url, body)

    with ThreadPoolExecutor(n) as pool:
        return collections.Counter(pool.map(send, range(n)))


def _for_seconds(url: str, seconds: int, loads: list[tuple[collections.Counter, bytes]]) -> None:
    """One client per (counter, body), each posting its body back to back for ``seconds``."""
    stop = time.monotonic() + seconds

    def loop(counter: collections.Counter, body: bytes) -> None:
        with httpx.Client() as client:
            while time.monotonic() < stop:
                counter[_post(client, url, body, 30)] += 1

    threads = [threading.Thread(target=loop, args=load) for load in loads]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _poison(url: str, one: bytes, seconds: int) -> dict:
    poison = b'{"applicants": [{"account_status": 1' + b"0" * 310 + b"}]}"
    counts = {"poison": collections.Counter(), "normal": collections.Counter()}
    _for_seconds(url, seconds, [(counts["poison"], poison)] + [(counts["normal"], one)] * 16)
    return counts


def _burst(url: str, big: bytes, one: bytes, seconds: int) -> dict:
    counts = {"burst (10,000 applicants)": _at_once(url, big, 16), "normal after": collections.Counter()}
    _for_seconds(url, seconds, [(counts["normal after"], one)] * 2)
    return counts


def _empties(url: str) -> dict:
    body = b'{"applicants": [' + b",".join([b"{}"] * 5_500_000) + b"]}"
    return {"empty-object bodies (16 MB)": _at_once(url, body, 32)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="klarna-pd:latest")
    parser.add_argument("--seconds", type=int, default=8)
    args = parser.parse_args()
    from serve import _records

    from klarna_pd.store.local import load_model

    records = _records(load_model(args.model).spec, 10_000)
    one = json.dumps({"applicants": records[:1]}).encode()
    big = json.dumps({"applicants": records}).encode()
    rows, raw = [], {}
    modes = (("default", {}), ("batching on", {"KLARNA_PD_ADAPTIVE_BATCHING": "true"}),
             ("the chart's", chart_server_env()))
    for mode, env in modes:
        for name, run in (("poison + normal", lambda u: _poison(u, one, args.seconds)),
                          ("burst, then normal", lambda u: _burst(u, big, one, args.seconds)),
                          ("empty-object bodies", _empties)):
            server, url = _server(args.model, **env)  # a fresh worker: its peak RSS is this run's
            try:
                wait_compiled(url, env)
                with Prober(url) as prober:
                    counts = run(url)
                peak = _peak_mib(_worker(server))
            finally:
                server.stop()
            slowest = max(prober.times) if prober.times else float("nan")
            raw[f"{mode} | {name}"] = {"counts": {k: dict(v) for k, v in counts.items()}, "slowest_livez_s": slowest,
                                       "peak_rss_mib": peak}
            for kind, c in counts.items():
                statuses = ", ".join(f"{s}: {n:,}" for s, n in sorted(c.items()))
                rows.append([mode, name, kind, statuses, f"{slowest * 1000:,.0f}", f"{peak:,.0f}"])
            print(rows[-1], file=sys.stderr)
    five_xx = sum(n for r in raw.values() for c in r["counts"].values() for s, n in c.items() if s.startswith("5") and s != "503")
    worst_rss = max(r["peak_rss_mib"] for r in raw.values())
    slowest = max(r["slowest_livez_s"] for r in raw.values())
    notes = [
        "One worker per server (the chart's default), a fresh server per run; the client and prober share the 2 cores.",
        f"5xx other than 503: {five_xx}. Slowest /livez answer over all runs: {slowest * 1000:,.0f} ms (the chart's "
        f"liveness probe allows 2 s, 3 times). Worst worker peak RSS: {worst_rss:,.0f} MiB against the chart's "
        f"limit of {CHART_LIMIT_MIB:,} MiB.",
        "503s are the fast \"overloaded\" answer with Retry-After (the byte budget), during the burst only: the "
        "normal requests after it are all answered.",
    ]
    write_results("hostile", "Hostile load: no request can hurt another",
                  ["mode", "run", "requests", "statuses", "slowest /livez ms", "worker peak RSS MiB"], rows, notes, raw)
    return 0


if __name__ == "__main__":
    sys.exit(main())
