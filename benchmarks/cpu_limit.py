"""Training and serving under a CPU limit: threads sized from the machine's cores or from the CPUs
the process may use (klarna_pd.cpus.available_cpus).

    python benchmarks/cpu_limit.py [--cpus 1] [--repeats 2] [--rows 99976] [--folds 3] [--seconds 15]

Each run is a process in a cgroup of its own with a CPU quota (cgroup v1 cpu controller or v2
cpu.max, as a pod's CPU limit; needs root), so that it may use ``--cpus`` CPUs' worth of time
on a machine with more cores:

- training (``klarna_pd.training.train``, synthetic rows, ``--folds``): LightGBM with one thread per
  core of the machine (``num_threads=os.cpu_count()``, what LightGBM's OpenMP does by itself), the
  same with libgomp's threads sleeping rather than spinning while they wait
  (``OMP_WAIT_POLICY=PASSIVE``), and the default, one thread per available CPU;
- serving (``bentoml serve``, one applicant per request, wrk at 16 connections from outside the
  cgroup): one worker per core of the machine against the default, one per available CPU.

Runs of the two kinds are interleaved; medians reported. Writes benchmarks/results/cpu_limit.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import ROOT, Server, free_port, write_results, wrk

sys.path.insert(0, str(ROOT))

CGROUP = Path("/sys/fs/cgroup")

_TRAIN = """
import json, os, sys, time
from klarna_pd.cpus import available_cpus
from klarna_pd.data.files import read_dataset
from klarna_pd.spec import klarna_spec
from klarna_pd.training import TrainConfig, train
data, folds, threads = sys.argv[1], int(sys.argv[2]), sys.argv[3]
params = {"num_threads": os.cpu_count()} if threads.startswith("cores") else {}
dataset = read_dataset(data, klarna_spec())
wall, cpu = time.perf_counter(), time.process_time()
train(dataset, TrainConfig(folds=folds, seed=0, params=params), log=lambda *_: None)
print(json.dumps({"threads": params.get("num_threads", available_cpus()),
                  "wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu}))
"""


@contextlib.contextmanager
def cpu_limited(cpus: float):
    """A cgroup with a CPU quota of ``cpus``; yields its cgroup.procs file."""
    period = 100_000
    v1 = CGROUP / "cpu"
    if (v1 / "cpu.cfs_quota_us").exists():
        group = v1 / f"klarna-pd-bench-{os.getpid()}"
        group.mkdir()
        (group / "cpu.cfs_period_us").write_text(str(period))
        (group / "cpu.cfs_quota_us").write_text(str(int(cpus * period)))
    elif "cpu" in (CGROUP / "cgroup.controllers").read_text().split():
        group = CGROUP / f"klarna-pd-bench-{os.getpid()}"
        group.mkdir()
        (group / "cpu.max").write_text(f"{int(cpus * period)} {period}")
    else:
        raise SystemExit("no cgroup cpu controller to limit with (needs cgroup v1 cpu or v2 cpu.max, and root)")
    try:
        yield group / "cgroup.procs"
    finally:
        deadline = time.monotonic() + 10
        while True:
            try:
                group.rmdir()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)


def _join(procs: Path):
    return lambda: procs.write_text(str(os.getpid()))


def train_once(procs: Path, data: Path, folds: int, threads: str) -> dict:
    env = dict(os.environ)
    # libgomp's threads spin while they wait for work; passive ones sleep, and leave the time to others.
    env["OMP_WAIT_POLICY"] = "PASSIVE" if threads == "cores-passive" else "ACTIVE"
    out = subprocess.run([sys.executable, "-c", _TRAIN, str(data), str(folds), threads], cwd=ROOT, env=env,
                         capture_output=True, text=True, preexec_fn=_join(procs), check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def serve_once(procs: Path, model_tag: str, workers: str, body: bytes, seconds: int, home: Path) -> dict:
    port = free_port()
    env = {"KLARNA_PD_MODEL_TAG": model_tag, "BENTOML_HOME": str(home)}
    if workers == "cores":
        env["KLARNA_PD_WORKERS"] = str(os.cpu_count())
    argv = [sys.executable, "-m", "bentoml", "serve", "service:KlarnaPD", "--port", str(port), "--host", "127.0.0.1"]
    # The server and its workers start inside the cgroup (children stay in their parent's cgroup).
    launcher = [sys.executable, "-c", f"open({str(procs)!r}, 'w').write(str(__import__('os').getpid())); "
                f"__import__('os').execvp({argv[0]!r}, {argv!r})"]
    server = Server(launcher, env=env, ready=f"http://127.0.0.1:{port}/readyz")
    try:
        wrk(f"http://127.0.0.1:{port}/predict", body, connections=16, seconds=3)  # warm-up
        load = wrk(f"http://127.0.0.1:{port}/predict", body, connections=16, seconds=seconds)
    finally:
        server.stop()
    return {"workers": env.get("KLARNA_PD_WORKERS", "available"), "requests_per_s": load.requests_per_s,
            "p50_ms": load.p50_ms, "p99_ms": load.p99_ms, "errors": load.errors}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpus", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--rows", type=int, default=99_976)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=15)
    args = parser.parse_args()
    from klarna_pd.data.batch import Batch
    from klarna_pd.data.records import to_records
    from klarna_pd.spec import klarna_spec
    from klarna_pd.store.local import load_model
    from klarna_pd.synth import generate, write_synthetic
    from klarna_pd.training import TrainConfig
    from klarna_pd.training.pipeline import run

    cores = os.cpu_count()
    with tempfile.TemporaryDirectory(prefix="bench-cpus-") as tmp:
        tmp = Path(tmp)
        os.environ["BENTOML_HOME"] = str(tmp / "bentoml")
        data = tmp / "dataset.csv"
        write_synthetic(data, rows=args.rows, seed=0)
        small = tmp / "small.csv"
        write_synthetic(small, rows=6_000, seed=1)
        tag = run(small, klarna_spec(), tmp / "out", TrainConfig(folds=3), synthetic=True, log=lambda *_: None).model_tag
        frame, _ = generate(1, seed=11)
        body = json.dumps({"applicants": to_records(Batch.from_frame(frame, load_model(tag).spec), with_id=False)}).encode()

        training: dict[str, list[dict]] = {"cores": [], "cores-passive": [], "available": []}
        serving: dict[str, list[dict]] = {"cores": [], "available": []}
        loads = []
        with cpu_limited(args.cpus) as procs:
            for _ in range(args.repeats):
                for kind in training:
                    loads.append(os.getloadavg()[0])
                    training[kind].append(train_once(procs, data, args.folds, kind))
                    print("train", kind, training[kind][-1], file=sys.stderr)
            for _ in range(args.repeats):
                for kind in ("cores", "available"):
                    serving[kind].append(serve_once(procs, tag, kind, body, args.seconds, tmp / "bentoml"))
                    print("serve", kind, serving[kind][-1], file=sys.stderr)

    def med(runs, key):
        return statistics.median(r[key] for r in runs)

    rows = []
    for kind, label in (("cores", f"one per core of the machine ({cores})"),
                        ("cores-passive", f"one per core ({cores}), OMP_WAIT_POLICY=PASSIVE"),
                        ("available", "one per available CPU (the default)")):
        t = training[kind]
        rows.append([f"training, LightGBM threads: {label}", str(t[0]["threads"]), f"{med(t, 'wall_s'):.1f} s wall, "
                     f"{med(t, 'cpu_s'):.1f} s CPU", ""])
    for kind, label in (("cores", f"one per core of the machine ({cores})"), ("available", "one per available CPU (the default)")):
        s = serving[kind]
        workers = cores if kind == "cores" else min(cores, math.ceil(args.cpus))
        rows.append([f"serving, workers: {label}", str(workers), f"{med(s, 'requests_per_s'):,.0f} req/s",
                     f"p50 {med(s, 'p50_ms'):.1f} ms, p99 {med(s, 'p99_ms'):.1f} ms, errors {sum(r['errors'] for r in s)}"])
    notes = [
        f"Every run in a cgroup with a quota of {args.cpus:g} CPU on this {cores}-core machine, as a pod with "
        f"`resources.limits.cpu: {args.cpus:g}`. Training: {args.rows:,} synthetic rows, {args.folds} folds plus the final "
        f"fit; serving: one applicant per /predict request, wrk at 16 connections for {args.seconds} s (after a 3-s warm-up) "
        "from outside the cgroup. Medians of "
        f"{args.repeats} interleaved runs.",
        "Training runs: " + "; ".join(f"{k} {r['threads']} threads {r['wall_s']:.1f} s" for k in training for r in training[k]),
        f"Load average (1 min) of the machine at the start of each training run: {', '.join(f'{x:.1f}' for x in loads)} "
        "(the machine is shared: other jobs ran meanwhile).",
    ]
    write_results("cpu_limit", f"Training and serving under a {args.cpus:g}-CPU limit",
                  ["run", "threads / workers", "time / throughput", "latency"], rows, notes,
                  {"training": training, "serving": serving, "load_average": loads, "cpus": args.cpus})
    return 0


if __name__ == "__main__":
    sys.exit(main())
