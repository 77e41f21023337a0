"""Soak: a steady request rate for minutes, watching errors, the latency tail and memory.

    python benchmarks/soak.py [--model klarna-pd:latest] [--rate 2000] [--minutes 4] [--window 20]

One ``bentoml serve service:KlarnaPD`` with the environment the chart renders (one worker, the
compiled trees, drift gauges: harness.chart_server_env) on loopback, once its trees are compiled. An open-loop
client schedules requests at a fixed rate whatever the answers (a closed loop would slow down with
a slowing server and hide it) over 32 kept-alive connections, timing each from its scheduled
moment: 70 % one applicant on ``/predict``, 20 % the legacy endpoint, 10 %
twenty applicants on ``/predict``, applicants drawn from the synthetic generator. Per window: requests,
errors, p50 and p99 latency, and the resident memory of the server's process tree.

Goals: no errors; p99 of the last window at most twice that of the first window after warm-up;
resident memory after warm-up growing by at most ``--rss-bound-mib`` (64) by the end. Writes
benchmarks/results/soak.md and .json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time

from harness import ROOT, chart_server_env, wait_compiled, write_results
from serve import _bento, _records

sys.path.insert(0, str(ROOT))


def _tree_rss_mib(pid: int) -> float:
    import psutil

    root = psutil.Process(pid)
    total = 0
    for proc in [root, *root.children(recursive=True)]:
        try:
            total += proc.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / 2**20


def _p(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    """One HTTP/1.1 request on a kept-alive connection; the response's status."""
    writer.write(request)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return status


async def _soak(url: str, pid: int, records: list[dict], rate: float, seconds: float, window: float,
                connections: int) -> list[dict]:
    """Requests are scheduled at ``rate`` into a queue that ``connections`` kept-alive connections
    drain; latency counts from the scheduled time, so a slow server shows as queueing, not as a
    slower client (no coordinated omission)."""
    host, port = url.removeprefix("http://").split(":")
    rng = random.Random(5)
    requests = []
    for _ in range(2000):
        pick = rng.random()
        if pick < 0.7:
            path, body = "/predict", json.dumps({"applicants": [rng.choice(records)]}).encode()
        elif pick < 0.9:
            path, body = "/estimate-default-probability", json.dumps(rng.choice(records)).encode()
        else:
            path, body = "/predict", json.dumps({"applicants": rng.sample(records, 20)}).encode()
        requests.append(f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                        f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    queue: asyncio.Queue = asyncio.Queue()
    windows: list[dict] = []

    async def connection() -> None:
        reader = writer = None
        while True:
            item = await queue.get()
            if item is None:
                break
            scheduled, request, bucket = item
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection(host, int(port))
                status = await _exchange(reader, writer, request)
                key = None if status == 200 else str(status)
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                key, writer = type(exc).__name__, None
            bucket["latencies"].append((time.perf_counter() - scheduled) * 1e3)
            if key is not None:
                bucket["errors"] += 1
                bucket["statuses"][key] = bucket["statuses"].get(key, 0) + 1
        if writer is not None:
            writer.close()

    workers = [asyncio.create_task(connection()) for _ in range(connections)]
    current: dict = {"latencies": [], "errors": 0, "statuses": {}}
    start = time.perf_counter()
    next_window = start + window
    i = 0
    while True:
        now = time.perf_counter()
        if now >= next_window:
            # Requests still in flight land in the window that scheduled them (the bucket is shared).
            current.update(end_s=round(next_window - start, 1), rss_mib=_tree_rss_mib(pid), backlog=queue.qsize())
            windows.append(current)
            print(f"{next_window - start:6.0f} s  {len(current['latencies']):6d} done  p99 "
                  f"{_p(current['latencies'], 0.99):7.1f} ms  errors {current['errors']}  queued {queue.qsize()}  "
                  f"rss {current['rss_mib']:.0f} MiB", file=sys.stderr)
            current = {"latencies": [], "errors": 0, "statuses": {}}
            next_window += window
            if next_window - start > seconds + 1e-9:
                break
        due = start + i / rate
        if due > now:
            await asyncio.sleep(due - now)
        queue.put_nowait((due, requests[i % len(requests)], current))
        i += 1
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    return windows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="klarna-pd:latest")
    # The chart's HPA adds a pod at 60 % CPU: about 2,000 one-applicant req/s (results/batching.md).
    parser.add_argument("--rate", type=float, default=2000.0, help="requests per second (default 2000)")
    parser.add_argument("--minutes", type=float, default=4.0)
    parser.add_argument("--window", type=float, default=20.0, help="seconds per reported window")
    parser.add_argument("--connections", type=int, default=32, help="kept-alive client connections (default 32)")
    parser.add_argument("--warmup-windows", type=int, default=1)
    parser.add_argument("--rss-bound-mib", type=float, default=64.0)
    args = parser.parse_args()
    if args.rate <= 0 or args.minutes <= 0 or args.window <= 0 or args.connections <= 0:
        parser.error("--rate, --minutes, --window and --connections must be positive")
    from klarna_pd.store.local import load_model

    records = _records(load_model(args.model).spec, 500)
    chart = chart_server_env()
    server, url = _bento("service:KlarnaPD", **chart, KLARNA_PD_MODEL_TAG=args.model)
    try:
        wait_compiled(url, chart)
        windows = asyncio.run(_soak(url, server.proc.pid, records, args.rate, args.minutes * 60, args.window, args.connections))
    finally:
        server.stop()
    rows = [[f"{w['end_s']:.0f}", f"{len(w['latencies']):,}", f"{len(w['latencies']) / args.window:,.0f}",
             f"{_p(w['latencies'], 0.5):.1f}", f"{_p(w['latencies'], 0.99):.1f}", str(w["errors"]), f"{w['rss_mib']:.0f}"]
            for w in windows]
    steady = windows[args.warmup_windows:]
    errors = sum(w["errors"] for w in windows)
    first_p99, last_p99 = _p(steady[0]["latencies"], 0.99), _p(steady[-1]["latencies"], 0.99)
    growth = steady[-1]["rss_mib"] - steady[0]["rss_mib"]
    verdicts = [
        f"- errors: {errors} of {sum(len(w['latencies']) for w in windows):,} requests "
        f"({'met' if errors == 0 else 'NOT met'}: goal 0){'; ' + json.dumps(_statuses(windows)) if errors else ''}",
        f"- p99 after warm-up: first window {first_p99:.1f} ms, last {last_p99:.1f} ms, median of windows "
        f"{statistics.median(_p(w['latencies'], 0.99) for w in steady):.1f} ms "
        f"({'met' if last_p99 <= 2 * first_p99 else 'NOT met'}: goal last <= 2x first)",
        f"- resident memory of the server tree: {steady[0]['rss_mib']:.0f} MiB after warm-up, {steady[-1]['rss_mib']:.0f} MiB "
        f"at the end, growth {growth:+.0f} MiB ({'met' if growth <= args.rss_bound_mib else 'NOT met'}: "
        f"goal at most +{args.rss_bound_mib:.0f} MiB)",
    ]
    notes = [
        f"Open-loop client at {args.rate:.0f} req/s for {args.minutes:g} min on loopback (same 2 cores); "
        f"the server with the chart's environment (workers {chart.get('KLARNA_PD_WORKERS')}, compiled "
        f"trees {chart.get('KLARNA_PD_COMPILED_TREES')}, adaptive batching "
        f"{chart.get('KLARNA_PD_ADAPTIVE_BATCHING')}, drift window {chart.get('KLARNA_PD_DRIFT_WINDOW')}); "
        "70 % one applicant on /predict, 20 % legacy endpoint, 10 % twenty applicants on /predict. "
        f"First {args.warmup_windows} window(s) are warm-up.",
        "",
        *verdicts,
    ]
    write_results("soak", "Soak: steady rate, errors, latency tail and memory",
                  ["end s", "requests", "req/s", "p50 ms", "p99 ms", "errors", "server RSS MiB"], rows, notes,
                  {"args": vars(args), "windows": [{k: v for k, v in w.items() if k != "latencies"} | {
                      "p50_ms": _p(w["latencies"], 0.5), "p99_ms": _p(w["latencies"], 0.99), "requests": len(w["latencies"])}
                      for w in windows]})
    return 0 if errors == 0 else 1


def _statuses(windows: list[dict]) -> dict[str, int]:
    out: dict[str, int] = {}
    for w in windows:
        for k, v in w["statuses"].items():
            out[k] = out.get(k, 0) + v
    return out


if __name__ == "__main__":
    sys.exit(main())
