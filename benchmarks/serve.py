"""Serving throughput and latency, side by side in one run, with wrk.

    python benchmarks/serve.py [--model klarna-pd:latest] [--seconds 15] [--repeats 3] [--no-profile]

Servers, all up at once and measured in turns (repeats interleaved, medians reported):

- ``service``: ``bentoml serve service:KlarnaPD``, adaptive batching on, 2 workers (one per core);
- ``service, batching off``: the same with ``KLARNA_PD_ADAPTIVE_BATCHING=false``;
- ``service, 1 worker``: one worker, what one core of a pod gives (sizes the HPA);
- ``reference``: Flask + waitress, one-row DataFrame + sklearn Pipeline on the same trees.

wrk runs on the same two cores as the servers, as a client on the node would. Writes
benchmarks/results/serve.md (and .json); with profiling, the py-spy summary goes there too.
"""

from __future__ import annotations

import argparse
import collections
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from harness import ROOT, Load, Server, free_port, median_load, write_results

sys.path.insert(0, str(ROOT))


def _records(model_tag: str, n: int) -> list[dict]:
    from klarna_pd.data.batch import Batch
    from klarna_pd.data.records import to_records
    from klarna_pd.store.local import load_model
    from klarna_pd.synth import generate

    frame, _ = generate(n, seed=11)
    spec = load_model(model_tag).spec
    return to_records(Batch.from_frame(frame, spec), with_id=False)


def _bento(model_tag: str, **env: str) -> Server:
    port = free_port()
    return Server(
        [sys.executable, "-m", "bentoml", "serve", "service:KlarnaPD", "--port", str(port), "--host", "127.0.0.1"],
        env={"KLARNA_PD_MODEL_TAG": model_tag, **env},
        ready=f"http://127.0.0.1:{port}/readyz",
    ), f"http://127.0.0.1:{port}"


def _profile(server: Server, url: str, body: bytes, seconds: int, connections: int) -> list[str]:
    """Top self-time frames of the busiest worker while wrk loads it (py-spy)."""
    from harness import top_frames, wrk

    import psutil

    workers = [p.pid for p in psutil.Process(server.proc.pid).children(recursive=True) if "worker" in " ".join(p.cmdline())]
    if not workers:
        return ["(no worker process found to profile)"]
    raw = Path(tempfile.mktemp(suffix=".txt"))
    spy = subprocess.Popen(
        [str(Path(sys.executable).with_name("py-spy")), "record", "-p", str(workers[0]), "-d", str(seconds - 2), "-f", "raw", "-o", str(raw), "--nonblocking"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    wrk(url, body, connections=connections, seconds=seconds)
    spy.wait()
    return top_frames(raw)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="klarna-pd:latest")
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-profile", action="store_true")
    args = parser.parse_args()
    from harness import top_frames, wrk

    records = _records(args.model, 1000)
    one = json.dumps(records[0]).encode()
    pred = {n: json.dumps({"applicants": records[:n]}).encode() for n in (1, 100, 1000)}

    servers = {}
    servers["service"] = _bento(args.model, KLARNA_PD_WORKERS="2")
    servers["service, batching off"] = _bento(args.model, KLARNA_PD_WORKERS="2", KLARNA_PD_ADAPTIVE_BATCHING="false")
    servers["service, 1 worker"] = _bento(args.model, KLARNA_PD_WORKERS="1")
    ref_port = free_port()
    servers["reference"] = (
        Server([sys.executable, "benchmarks/reference_app.py", "--model", args.model, "--port", str(ref_port)],
               ready=f"http://127.0.0.1:{ref_port}/healthz"),
        f"http://127.0.0.1:{ref_port}",
    )
    # (server, endpoint, body name, body, rows per request, connections)
    plan = []
    for c in (1, 16, 64):
        plan.append(("service", "/predict", "1 applicant", pred[1], 1, c))
        plan.append(("service", "/estimate-default-probability", "1 applicant (legacy)", one, 1, c))
        plan.append(("reference", "/estimate-default-probability", "1 applicant (legacy)", one, 1, c))
    plan.append(("service, batching off", "/predict", "1 applicant", pred[1], 1, 64))
    plan.append(("service, 1 worker", "/predict", "1 applicant", pred[1], 1, 64))
    plan.append(("service, 1 worker", "/estimate-default-probability", "1 applicant (legacy)", one, 1, 64))
    for n, c in ((100, 4), (1000, 4)):
        plan.append(("service", "/predict", f"{n} applicants", pred[n], n, c))
        plan.append(("service, 1 worker", "/predict", f"{n} applicants", pred[n], n, 2))
    results: dict[tuple, list[Load]] = collections.defaultdict(list)
    profiles: dict[str, list[str]] = {}
    try:
        for name, (_, url) in servers.items():  # warm every server and its connections
            body = one if name == "reference" else pred[1]
            path = "/estimate-default-probability" if name == "reference" else "/predict"
            wrk(url + path, body, connections=16, seconds=3)
        for rep in range(args.repeats):
            for key in plan:
                server, path, label, body, rows, conns = key
                load = wrk(servers[server][1] + path, body, connections=conns, seconds=args.seconds)
                results[key].append(load)
                print(f"[{rep + 1}/{args.repeats}] {server:22s} {path:30s} {label:22s} c={conns:<3d} "
                      f"{load.requests_per_s:9.1f} req/s p50 {load.p50_ms:7.1f} ms p99 {load.p99_ms:7.1f} ms "
                      f"errors {load.errors}", file=sys.stderr)
        if not args.no_profile:
            srv, url = servers["service, 1 worker"]
            profiles["1 applicant, /predict, c=64 (1 worker)"] = _profile(srv, url + "/predict", pred[1], args.seconds, 64)
            profiles["1000 applicants, /predict, c=2 (1 worker)"] = _profile(srv, url + "/predict", pred[1000], args.seconds, 2)
    finally:
        for srv, _ in servers.values():
            srv.stop()

    med = {key: median_load(v) for key, v in results.items()}
    rows = []
    for key in plan:
        server, path, label, _, n, c = key
        m = med[key]
        rows.append([server, f"`{path}`", label, str(c), f"{m.requests_per_s:,.0f}", f"{m.requests_per_s * n:,.0f}",
                     f"{m.p50_ms:.1f}", f"{m.p99_ms:.1f}", str(m.errors)])
    ref64 = med[("reference", "/estimate-default-probability", "1 applicant (legacy)", one, 1, 64)]
    svc64 = med[("service", "/predict", "1 applicant", pred[1], 1, 64)]
    leg64 = med[("service", "/estimate-default-probability", "1 applicant (legacy)", one, 1, 64)]
    off64 = med[("service, batching off", "/predict", "1 applicant", pred[1], 1, 64)]
    b1000 = med[("service", "/predict", "1000 applicants", pred[1000], 1000, 4)]
    notes = [
        f"Medians of {args.repeats} interleaved runs of {args.seconds} s each; wrk shares the 2 cores with the servers.",
        "",
        "Goals:",
        f"- c=64, one applicant: `/predict` {svc64.requests_per_s:,.0f} req/s = {svc64.requests_per_s / ref64.requests_per_s:.1f}x "
        f"the reference's {ref64.requests_per_s:,.0f} (goal 5x), p99 {svc64.p99_ms:.0f} ms vs {ref64.p99_ms:.0f} ms "
        f"(goal: lower); legacy endpoint {leg64.requests_per_s / ref64.requests_per_s:.1f}x, p99 {leg64.p99_ms:.0f} ms.",
        f"- batched `/predict`, 1,000 applicants per request: {b1000.requests_per_s * 1000:,.0f} rows/s (goal 100,000).",
        f"- adaptive batching on vs off at c=64: {svc64.requests_per_s:,.0f} vs {off64.requests_per_s:,.0f} req/s, "
        f"p99 {svc64.p99_ms:.0f} vs {off64.p99_ms:.0f} ms.",
    ]
    for title, lines in profiles.items():
        notes += ["", f"Profile (py-spy, self time), {title}:", "```", *lines, "```"]
    write_results(
        "serve",
        "Serving: throughput and latency",
        ["server", "endpoint", "body", "conns", "req/s", "rows/s", "p50 ms", "p99 ms", "errors"],
        rows,
        notes,
        {"results": {" | ".join(map(str, (k[0], k[1], k[2], k[5]))): v for k, v in results.items()}, "profiles": profiles},
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
