"""Serving: throughput and latency against the ceilings of Python HTTP and of BentoML, side by side.

    python benchmarks/serve.py [--model klarna-pd:latest] [--seconds 8] [--repeats 3] [--no-profile]

All servers are up at once and measured in turns (repeats interleaved, medians reported); wrk runs
on the same two cores, as a client on the node would. Every BentoML server has 2 workers.

- ``bare ASGI``: uvicorn + httptools answering constant JSON, the floor of Python HTTP;
- ``BentoML ceiling``: a BentoML service answering constant JSON from a mounted Starlette route
  (the issue's ceiling) and from an ASGI middleware, with BentoML's defaults and then with each
  setting the real service uses (access log off, request metrics off, tracing excluded);
- ``klarna-pd``: the service as configured by default (batching off), with adaptive batching, and
  with the compiled trees (``KLARNA_PD_COMPILED_TREES``, on in the chart);
- ``reference``: Flask + waitress, one-row DataFrame + scikit-learn Pipeline on the same trees.

Also: the burst-then-quiet sequence (latency memory), 1,000-applicant JSON bodies, 10,000-row
Arrow bodies, and a py-spy profile of the workers split into transport, framework, validation,
encoding, model and response. Writes benchmarks/results/serve.md (and .json).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import ROOT, Load, Server, free_port, median_load, tree_cpu_seconds, wait_compiled, wrk, write_results

sys.path.insert(0, str(ROOT))

ARROW = "application/vnd.apache.arrow.stream"
COMPILED = "klarna-pd, compiled trees"


def _records(spec, n: int) -> list[dict]:
    from klarna_pd.data.batch import Batch
    from klarna_pd.data.records import to_records
    from klarna_pd.synth import generate

    frame, _ = generate(n, seed=11)
    return to_records(Batch.from_frame(frame, spec), with_id=False)


def _arrow_body(records: list[dict], spec) -> bytes:
    import pyarrow as pa

    columns = {}
    for f in spec.features:
        values = [r.get(f.name) for r in records]
        columns[f.name] = pa.array(values, pa.string() if f.kind == "categorical" else
                                   pa.bool_() if f.kind == "boolean" else pa.float64())
    table = pa.table(columns)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    return sink.getvalue().to_pybytes()


def _bento(target: str, cwd: Path = ROOT, **env: str) -> tuple[Server, str]:
    port = free_port()
    server = Server(
        [sys.executable, "-m", "bentoml", "serve", target, "--port", str(port), "--host", "127.0.0.1"],
        env={"BENTOML_DO_NOT_TRACK": "True", **env}, cwd=cwd, ready=f"http://127.0.0.1:{port}/readyz",
    )
    return server, f"http://127.0.0.1:{port}"


def _measure(server: Server, url: str, body: bytes, *, connections: int, seconds: int, **kw) -> Load:
    before = tree_cpu_seconds(server.proc.pid)
    load = wrk(url, body, connections=connections, seconds=seconds, **kw)
    load.cpu_us = (tree_cpu_seconds(server.proc.pid) - before) * 1e6 / max(load.requests, 1)
    return load


# -- the profile, by category ------------------------------------------------------------------

CATEGORIES = [  # a sample belongs to the first category matched from its leaf frame upwards
    ("model", ("lightgbm/", "model/single_row.py", "model/pdmodel.py", "model/calibration.py", "model/compiled.py",
               "lleaves/", "scipy/")),
    ("encoding", ("model/encoder.py",)),
    ("parsing and validation", ("(wire.py", "(applicants.py", "data/records.py", "data/kinds.py", "data/arrow.py",
                                "(columnar.py", "pydantic")),
    ("drift and metrics", ("(drift.py", "(monitoring.py", "prometheus_client", "model/reference.py")),
    ("our request path", ("(gateway.py", "(admission.py", "(auth.py", "(protocol.py", "(requests.py", "(scorer.py",
                          "klarna_pd/")),
    ("framework", ("bentoml", "_bentoml", "starlette/", "opentelemetry/", "anyio/", "simple_di")),
    ("transport", ("uvicorn/", "httptools", "selectors", "asyncio/events.py", "asyncio/timeouts.py",
                   "asyncio/tasks.py", "asyncio/base_events.py", "asyncio/futures.py")),
    # uvloop's C code (socket reads and writes) runs inside the loop's run frame.
    ("event loop: uvloop's C code", ("asyncio/runners.py",)),
]


def _profile(server: Server, url: str, body: bytes, seconds: int, connections: int, **kw) -> dict[str, float]:
    """Share of the workers' CPU samples per category while wrk loads the server (py-spy, every
    worker: the kernel may hand a few connections all to one)."""
    import psutil

    workers = [p.pid for p in psutil.Process(server.proc.pid).children(recursive=True) if "worker" in " ".join(p.cmdline())]
    raws = [Path(tempfile.mktemp(suffix=".txt")) for _ in workers]
    spies = [subprocess.Popen(
        [str(Path(sys.executable).with_name("py-spy")), "record", "-p", str(pid), "-d", str(seconds - 1),
         "-f", "raw", "-o", str(raw), "--nonblocking"],  # CPU only: idle threads (drift, pools) left out
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    ) for pid, raw in zip(workers, raws)]
    wrk(url, body, connections=connections, seconds=seconds, **kw)
    for spy in spies:
        spy.wait()
    counts: collections.Counter[str] = collections.Counter()
    for raw in raws:
        for line in (raw.read_text().splitlines() if raw.exists() else []):
            stack, _, n = line.rpartition(" ")
            if not stack:
                continue
            frames = stack.split(";")
            counts[next((name for f in reversed(frames) for name, needles in CATEGORIES
                         if any(nd in f for nd in needles)), "other")] += int(n)
        raw.unlink(missing_ok=True)
    total = sum(counts.values()) or 1
    return {k: round(100 * v / total, 1) for k, v in counts.most_common()}


def _burst_then_quiet(server: Server, url: str, body: bytes, seconds: int) -> dict[str, float]:
    """c=1 p50 before a c=64 burst, right after it, and after 10 s of rest."""
    before = wrk(url, body, connections=1, threads=1, seconds=seconds).p50_ms
    burst = wrk(url, body, connections=64, seconds=8)
    after = wrk(url, body, connections=1, threads=1, seconds=seconds).p50_ms
    time.sleep(10)
    rested = wrk(url, body, connections=1, threads=1, seconds=seconds).p50_ms
    return {"before_ms": before, "burst_rps": burst.requests_per_s, "burst_errors": burst.errors, "after_ms": after,
            "after_10s_ms": rested, "ratio": after / before}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="klarna-pd:latest")
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-profile", action="store_true")
    args = parser.parse_args()

    from klarna_pd.store.local import load_model

    model = load_model(args.model)
    records = _records(model.spec, 10_000)
    one = json.dumps(records[0]).encode()
    pred1 = json.dumps({"applicants": records[:1]}).encode()
    pred1000 = json.dumps({"applicants": records[:1000]}).encode()
    arrow = _arrow_body(records, model.spec)

    ceiling = "benchmarks/servers/ceiling_service.py:Ceiling"
    servers: dict[str, tuple[Server, str]] = {}
    port = free_port()
    servers["bare ASGI"] = (Server([sys.executable, "benchmarks/servers/bare_asgi.py", "--port", str(port)],
                                   ready=f"http://127.0.0.1:{port}/"), f"http://127.0.0.1:{port}")
    servers["BentoML, defaults"] = _bento(ceiling)
    servers["BentoML, access log off"] = _bento(ceiling, CEILING_ACCESS_LOG="false")
    servers["BentoML, + metrics off"] = _bento(ceiling, CEILING_ACCESS_LOG="false", CEILING_METRICS="false")
    servers["BentoML, + tracing excluded"] = _bento(ceiling, CEILING_ACCESS_LOG="false", CEILING_METRICS="false",
                                                    CEILING_TRACING="false")
    model_env = {"KLARNA_PD_MODEL_TAG": args.model, "KLARNA_PD_WORKERS": "2"}
    servers["klarna-pd"] = _bento("service:KlarnaPD", **model_env)
    servers["klarna-pd, batching on"] = _bento("service:KlarnaPD", **model_env, KLARNA_PD_ADAPTIVE_BATCHING="true")
    servers[COMPILED] = _bento("service:KlarnaPD", **model_env, KLARNA_PD_COMPILED_TREES="true")
    ref_port = free_port()
    servers["reference"] = (
        Server([sys.executable, "benchmarks/reference_app.py", "--model", args.model, "--port", str(ref_port)],
               ready=f"http://127.0.0.1:{ref_port}/healthz"),
        f"http://127.0.0.1:{ref_port}",
    )
    # (server, path, label, body, rows per request, connections, extra wrk options)
    plan: list[tuple] = [
        ("bare ASGI", "/", "constant", pred1, 1, 64, ()),
        ("BentoML, defaults", "/const", "constant, mounted route", pred1, 1, 64, ()),
        ("BentoML, access log off", "/const", "constant, mounted route", pred1, 1, 64, ()),
        ("BentoML, + metrics off", "/const", "constant, mounted route", pred1, 1, 64, ()),
        ("BentoML, + tracing excluded", "/const", "constant, mounted route", pred1, 1, 64, ()),
        ("BentoML, + tracing excluded", "/mw", "constant, middleware", pred1, 1, 64, ()),
        ("klarna-pd", "/predict", "1 applicant", pred1, 1, 64, ()),
        ("klarna-pd", "/estimate-default-probability", "1 applicant (legacy)", one, 1, 64, ()),
        ("klarna-pd, batching on", "/predict", "1 applicant", pred1, 1, 64, ()),
        ("reference", "/estimate-default-probability", "1 applicant (legacy)", one, 1, 64, ()),
        ("klarna-pd", "/predict", "1 applicant", pred1, 1, 1, ()),
        ("klarna-pd", "/predict", "1,000 applicants (JSON)", pred1000, 1000, 4, ()),
        ("klarna-pd", "/predict", "10,000 rows (Arrow in, Arrow out)", arrow, 10_000, 4,
         (("content_type", ARROW), ("accept", ARROW))),
        (COMPILED, "/predict", "1 applicant", pred1, 1, 64, ()),
        (COMPILED, "/predict", "1,000 applicants (JSON)", pred1000, 1000, 4, ()),
        (COMPILED, "/predict", "10,000 rows (Arrow in, Arrow out)", arrow, 10_000, 4,
         (("content_type", ARROW), ("accept", ARROW))),
    ]
    results: dict[tuple, list[Load]] = collections.defaultdict(list)
    bursts: dict[str, list[dict]] = collections.defaultdict(list)
    profiles: dict[str, dict[str, float]] = {}
    try:
        plain_pds = _check_arrow_matches_json(servers["klarna-pd"][1], arrow, records)
        wait_compiled(servers[COMPILED][1])
        if _check_arrow_matches_json(servers[COMPILED][1], arrow, records) != plain_pds:
            raise SystemExit("the compiled trees gave other PDs than LightGBM")
        for name, (srv, url) in servers.items():  # warm every server and its connections
            path = {"bare ASGI": "/", "reference": "/estimate-default-probability"}.get(name, "/const" if name.startswith("BentoML") else "/predict")
            wrk(url + path, one if name == "reference" else pred1, connections=16, seconds=3)
        for rep in range(args.repeats):
            for key in plan:
                server, path, label, body, rows, conns, extra = key
                srv, url = servers[server]
                load = _measure(srv, url + path, body, connections=conns, seconds=args.seconds, **_wrk_options(extra))
                results[key].append(load)
                print(f"[{rep + 1}/{args.repeats}] {server:28s} {path:30s} {label:34s} c={conns:<3d} "
                      f"{load.requests_per_s:9.1f} req/s p50 {load.p50_ms:7.2f} ms p99 {load.p99_ms:7.2f} ms "
                      f"errors {load.errors} cpu {load.cpu_us:6.0f} us/req", file=sys.stderr)
            for name in ("klarna-pd", "klarna-pd, batching on"):
                srv, url = servers[name]
                bursts[name].append(_burst_then_quiet(srv, url + "/predict", pred1, seconds=5))
                print(f"[{rep + 1}/{args.repeats}] burst then quiet, {name}: {bursts[name][-1]}", file=sys.stderr)
        if not args.no_profile:
            srv, url = servers["klarna-pd"]
            profiles["/predict, 1 applicant, c=64"] = _profile(srv, url + "/predict", pred1, args.seconds, 64)
            profiles["/predict, 1,000 applicants, c=4"] = _profile(srv, url + "/predict", pred1000, args.seconds, 4)
            profiles["/predict, 10,000 rows Arrow, c=4"] = _profile(srv, url + "/predict", arrow, args.seconds, 4,
                                                                    content_type=ARROW, headers={"Accept": ARROW})
            srv, url = servers[COMPILED]
            profiles["compiled trees, /predict, 1,000 applicants, c=4"] = _profile(srv, url + "/predict", pred1000,
                                                                                   args.seconds, 4)
            profiles["compiled trees, /predict, 10,000 rows Arrow, c=4"] = _profile(
                srv, url + "/predict", arrow, args.seconds, 4, content_type=ARROW, headers={"Accept": ARROW})
    finally:
        for srv, _ in servers.values():
            srv.stop()
    return _report(args, plan, results, bursts, profiles)


def _wrk_options(extra: tuple) -> dict:
    options = dict(extra)
    accept = options.pop("accept", None)
    return {**options, **({"headers": {"Accept": accept}} if accept else {})}


def _check_arrow_matches_json(url: str, arrow: bytes, records: list[dict]) -> list[float]:
    """The Arrow answer must be the JSON answer's PDs to the last bit (checked once, not timed); the PDs."""
    import httpx
    import pyarrow as pa

    out = httpx.post(f"{url}/predict", content=arrow, headers={"content-type": ARROW, "accept": ARROW}, timeout=60)
    out.raise_for_status()
    arrow_pds = pa.ipc.open_stream(out.content).read_all().column("pd").to_pylist()
    json_pds = []
    for start in range(0, len(records), 1000):
        resp = httpx.post(f"{url}/predict", json={"applicants": records[start:start + 1000]}, timeout=60)
        json_pds += [r["pd"] for r in resp.json()]
    if arrow_pds != json_pds:
        raise SystemExit("Arrow and JSON bodies gave different PDs")
    return json_pds


def _report(args, plan, results, bursts, profiles) -> int:
    med = {key: median_load(v) for key, v in results.items()}
    rows = []
    for key in plan:
        server, path, label, _, n, c, _ = key
        m = med[key]
        rows.append([server, f"`{path}`", label, str(c), f"{m.requests_per_s:,.0f}", f"{m.requests_per_s * n:,.0f}",
                     f"{m.p50_ms:.2f}", f"{m.p99_ms:.2f}", str(m.errors), f"{m.cpu_us:,.0f}"])

    def get(server, path, c=64, label=None):
        return next(med[k] for k in plan if k[0] == server and k[1] == path and k[5] == c and (label is None or k[2] == label))

    ceiling = get("BentoML, + tracing excluded", "/const")
    mw = get("BentoML, + tracing excluded", "/mw")
    predict = get("klarna-pd", "/predict", label="1 applicant")
    legacy = get("klarna-pd", "/estimate-default-probability")
    batched = get("klarna-pd, batching on", "/predict")
    reference = get("reference", "/estimate-default-probability")
    json1000 = get("klarna-pd", "/predict", c=4, label="1,000 applicants (JSON)")
    arrow = get("klarna-pd", "/predict", c=4, label="10,000 rows (Arrow in, Arrow out)")
    json1000_c = get(COMPILED, "/predict", c=4, label="1,000 applicants (JSON)")
    arrow_c = get(COMPILED, "/predict", c=4, label="10,000 rows (Arrow in, Arrow out)")
    predict_c = get(COMPILED, "/predict", label="1 applicant")
    steps = ["BentoML, defaults", "BentoML, access log off", "BentoML, + metrics off", "BentoML, + tracing excluded"]
    ablation = [f"{s.removeprefix('BentoML, ')}: {get(s, '/const').requests_per_s:,.0f} req/s, "
                f"{get(s, '/const').cpu_us:,.0f} us CPU/request" for s in steps]

    def mark(ok: bool) -> str:
        return "met" if ok else "NOT met"

    burst_lines = []
    for name, runs in bursts.items():
        ratio = statistics.median(r["ratio"] for r in runs)
        b, a, r10 = (statistics.median(r[k] for r in runs) for k in ("before_ms", "after_ms", "after_10s_ms"))
        burst_lines.append(f"- {name}: c=1 p50 {b:.2f} ms before a c=64 burst, {a:.2f} ms right after "
                           f"({ratio:.2f}x), {r10:.2f} ms after 10 s of rest; goal <= 1.5x: {mark(ratio <= 1.5)}")
    notes = [
        f"Medians of {args.repeats} interleaved runs of {args.seconds} s; wrk on the same 2 cores; BentoML servers "
        "with 2 workers. `CPU us/req`: CPU time of all the server's processes per request (less noisy than wall time).",
        "",
        "Goals (issue 16):",
        f"- `/predict`, 1 applicant, c=64: {predict.requests_per_s:,.0f} req/s = "
        f"{predict.requests_per_s / ceiling.requests_per_s:.2f} of BentoML's mounted-route ceiling with the same settings "
        f"({ceiling.requests_per_s:,.0f}; goal >= 0.9: {mark(predict.requests_per_s >= 0.9 * ceiling.requests_per_s)}), "
        f"{predict.requests_per_s / mw.requests_per_s:.2f} of the middleware ceiling ({mw.requests_per_s:,.0f}); "
        f"p99 {predict.p99_ms:.1f} ms (goal <= 15: {mark(predict.p99_ms <= 15)}); non-2xx {predict.errors} "
        f"(goal 0: {mark(predict.errors == 0)}).",
        f"- legacy endpoint, c=64: {legacy.requests_per_s:,.0f} req/s = {legacy.requests_per_s / ceiling.requests_per_s:.2f} "
        f"of the ceiling ({mark(legacy.requests_per_s >= 0.9 * ceiling.requests_per_s)}), p99 {legacy.p99_ms:.1f} ms, "
        f"non-2xx {legacy.errors}.",
        f"- `/predict`, 1,000 JSON applicants per request: {json1000.requests_per_s * 1000:,.0f} rows/s "
        f"(goal >= 150,000: {mark(json1000.requests_per_s * 1000 >= 150_000)}).",
        f"- Arrow body, 10,000 rows per request: {arrow.requests_per_s * 10_000:,.0f} rows/s "
        f"(goal >= 500,000: {mark(arrow.requests_per_s * 10_000 >= 500_000)}); its PDs equal the JSON answer's "
        "to the last bit (checked before timing).",
        f"- with the compiled trees (`KLARNA_PD_COMPILED_TREES`, on in the chart; the same PDs to the last bit as "
        f"LightGBM's, checked before timing): 1,000 JSON applicants {json1000_c.requests_per_s * 1000:,.0f} rows/s "
        f"({mark(json1000_c.requests_per_s * 1000 >= 150_000)}), Arrow {arrow_c.requests_per_s * 10_000:,.0f} rows/s "
        f"({mark(arrow_c.requests_per_s * 10_000 >= 500_000)}), 1 applicant at c=64 {predict_c.requests_per_s:,.0f} "
        f"req/s (one row stays on LightGBM's single-row API).",
        *burst_lines,
        f"- adaptive batching on, c=64: {batched.requests_per_s:,.0f} req/s, p99 {batched.p99_ms:.1f} ms, "
        f"non-2xx {batched.errors} (off: {predict.requests_per_s:,.0f}, p99 {predict.p99_ms:.1f} ms).",
        f"- against the seed-style reference (Flask + waitress): {predict.requests_per_s / reference.requests_per_s:.0f}x "
        f"its {reference.requests_per_s:,.0f} req/s.",
        "",
        "What BentoML's settings buy (constant answer from a mounted route, c=64):",
        *[f"- {line}" for line in ablation],
    ]
    for title, shares in profiles.items():
        notes += ["", f"Where the workers' CPU time goes (py-spy samples of busy threads), {title}:", "",
                  "| part | share |", "|---|---|", *[f"| {k} | {v:.1f} % |" for k, v in shares.items()]]
    write_results(
        "serve", "Serving: throughput and latency against the ceilings",
        ["server", "path", "body", "conns", "req/s", "rows/s", "p50 ms", "p99 ms", "non-2xx", "CPU us/req"],
        rows, notes,
        {"results": {" | ".join(map(str, (k[0], k[1], k[2], k[5]))): v for k, v in results.items()},
         "bursts": bursts, "profiles": profiles},
    )
    return 0


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
