"""Adaptive batching in the chart's pod shape: one worker on one CPU, the chart's settings.

    python benchmarks/batching.py [--model klarna-pd:latest] [--seconds 5] [--repeats 3]

Two `bentoml serve` processes with the environment the chart renders (benchmarks/harness.py
chart_server_env: workers, limits, drift, compiled trees), one with KLARNA_PD_ADAPTIVE_BATCHING
off and one with it on, each pinned to CPU 0 as a pod with `resources.limits.cpu: 1`; wrk on
CPU 1 sends one applicant per /predict request at 1 and at 64 connections. Runs of the two
servers are interleaved (after their trees are compiled); medians reported, with the servers' CPU
time per request. Writes benchmarks/results/batching.md (and .json).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from harness import ROOT, Server, chart_server_env, median_load, wait_compiled, write_results

sys.path.insert(0, str(ROOT))

SERVER_CPU, CLIENT_CPU = 0, 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="klarna-pd:latest")
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if len(os.sched_getaffinity(0)) < 2:
        raise SystemExit("needs two CPUs: one for the server (the pod's limit), one for wrk")
    from serve import _bento, _measure, _records

    from klarna_pd.store.local import load_model

    body = json.dumps({"applicants": _records(load_model(args.model).spec, 1)}).encode()
    chart = chart_server_env()
    modes = {"off": "false", "on": "true"}
    servers: dict[str, tuple[Server, str]] = {}
    everywhere = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {SERVER_CPU})  # the servers inherit it
    try:
        for mode, flag in modes.items():
            env = {**chart, "KLARNA_PD_ADAPTIVE_BATCHING": flag, "KLARNA_PD_MODEL_TAG": args.model}
            servers[mode] = _bento("service:KlarnaPD", **env)
        os.sched_setaffinity(0, {CLIENT_CPU})
        for _, url in servers.values():
            wait_compiled(url, chart)
        loads: dict[tuple[str, int], list] = {}
        for _ in range(args.repeats):
            for mode, (server, url) in servers.items():
                for connections in (1, 64):
                    load = _measure(server, f"{url}/predict", body, connections=connections,
                                    seconds=args.seconds, threads=1)
                    loads.setdefault((mode, connections), []).append(load)
                    print(mode, connections, load, file=sys.stderr)
    finally:
        os.sched_setaffinity(0, everywhere)
        for server, _ in servers.values():
            server.stop()
    rows, raw = [], {}
    for (mode, connections), runs in loads.items():
        m = median_load(runs)
        raw[f"{mode} c={connections}"] = runs
        rows.append([mode, str(connections), f"{m.requests_per_s:,.0f}", f"{m.p50_ms:.2f}", f"{m.p99_ms:.2f}",
                     str(m.errors), f"{m.cpu_us:,.0f}"])
    off1, on1 = (median_load(loads[(m, 1)]) for m in modes)
    off64, on64 = (median_load(loads[(m, 64)]) for m in modes)
    notes = [
        f"One applicant per /predict request; each server: the chart's default environment ({len(chart)} "
        f"KLARNA_PD_* settings: workers {chart.get('KLARNA_PD_WORKERS')}, compiled trees "
        f"{chart.get('KLARNA_PD_COMPILED_TREES')}) with adaptive batching off or on, pinned to CPU "
        f"{SERVER_CPU}; wrk (one thread) pinned to CPU {CLIENT_CPU}. Medians of {args.repeats} interleaved "
        f"runs of {args.seconds} s.",
        f"Batching on against off: at 1 connection p50 {on1.p50_ms:.2f} ms against {off1.p50_ms:.2f} ms; "
        f"at 64 connections {on64.requests_per_s:,.0f} req/s against {off64.requests_per_s:,.0f} "
        f"({on64.requests_per_s / off64.requests_per_s:.2f}x).",
        "1-connection p50 of each round, in order (the first before any 64-connection run; BentoML's batcher "
        "learns its wait from the load it has seen): off "
        + ", ".join(f"{r.p50_ms:.2f}" for r in loads[("off", 1)]) + " ms; on "
        + ", ".join(f"{r.p50_ms:.2f}" for r in loads[("on", 1)]) + " ms.",
    ]
    header = ["batching", "connections", "req/s", "p50 ms", "p99 ms", "non-2xx", "server CPU us/req"]
    title = "Adaptive batching in the chart's pod shape (one worker, one CPU)"
    write_results("batching", title, header, rows, notes, raw)
    return 0


if __name__ == "__main__":
    sys.exit(main())
