"""Batch scoring throughput and memory: the raw-predict ceiling, the local engine, Spark local.

    python benchmarks/batch.py [--model klarna-pd:latest] [--rows 1000000 10000000] [--repeats 3] [--no-spark]
                               [--no-compiled]

Measured in one run on the same model and machine:

- raw ``Booster.predict`` on an in-memory array of the 1M-row file (the ceiling);
- ``python -m klarna_pd.batch`` end to end (CSV in, CSV out) for each row count, each run its own
  process (wall time, peak RSS from wait4);
- the same with ``--compiled-trees`` (the trees compiled by lleaves),
  its runs interleaved with the plain ones, and the compiled trees' in-memory ceiling;
- the same with ``--engine spark --spark-master local[2]`` on the first row count.

Goal: the local engine reaches at least 50 % of the raw-predict rows/s, with flat memory (peak RSS
under 1 GiB for 10M rows). Writes benchmarks/results/batch.md and .json, with the profile of the
local engine on 1M rows (py-spy).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import ROOT, top_frames, write_results

sys.path.insert(0, str(ROOT))


# A small parent for each measured run. Linux carries the peak RSS of the process that forks into
# the child's ru_maxrss, so forking straight from this (large) benchmark process reported its size
# rather than the child's: 1,776 MiB for every run in the first version of this table.
_LAUNCHER = (
    "import os, subprocess, sys\n"
    "p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)\n"
    "_, status, usage = os.wait4(p.pid, 0)\n"
    "print(usage.ru_maxrss, file=sys.stderr)\n"
    "sys.exit(os.waitstatus_to_exitcode(status))\n"
)


def _run(argv: list[str]) -> dict[str, float]:
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _LAUNCHER, *argv], cwd=ROOT, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {proc.stderr[-2000:]}")
    return {"wall_s": wall, "peak_rss_mib": int(proc.stderr.strip().splitlines()[-1]) / 1024}


def _ceiling(model_tag: str, data: Path, repeats: int, *, compiled: bool = False) -> dict[str, float]:

    from klarna_pd.data.files import read_dataset
    from klarna_pd.store.local import load_model

    model = load_model(model_tag)
    matrix = model.encoder.encode(read_dataset(data, model.spec, require_target=False).batch)
    if compiled and not model.compile_trees():
        raise SystemExit("the trees could not be compiled (see above)")
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        model.margin(matrix, num_threads=os.cpu_count())
        times.append(time.perf_counter() - started)
    return {"rows": len(matrix), "seconds": statistics.median(times), "rows_per_s": len(matrix) / statistics.median(times)}


def _profile(model_tag: str, data: Path, out: Path) -> list[str]:
    raw = Path(tempfile.mktemp(suffix=".txt"))
    subprocess.run(
        [str(Path(sys.executable).with_name("py-spy")), "record", "-f", "raw", "-o", str(raw), "--threads", "--",
         sys.executable, "-m", "klarna_pd.batch", "--model", model_tag, "--input", str(data), "--output", str(out), "--quiet"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True,
    )
    return top_frames(raw, 10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="klarna-pd:latest")
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-spark", action="store_true")
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--no-compiled", action="store_true", help="leave out the runs with --compiled-trees")
    args = parser.parse_args()
    from klarna_pd.model import compiled
    from klarna_pd.synth import write_synthetic

    with_compiled = not args.no_compiled
    if with_compiled and not compiled.available():
        raise SystemExit("lleaves is not installed (requirements-serve.txt); or run with --no-compiled")

    raw: dict = {"local": {}, "spark": None}
    rows_out = []
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        tmp = Path(tmp)
        files = {}
        for n in args.rows:
            files[n] = tmp / f"in_{n}.csv"
            print(f"generating {n:,} rows", file=sys.stderr)
            write_synthetic(files[n], rows=n, seed=21)
        first = args.rows[0]
        ceiling = _ceiling(args.model, files[first], args.repeats)
        raw["ceiling"] = ceiling
        rows_out.append(["raw `Booster.predict`, in memory", f"{first:,}", f"{ceiling['rows_per_s']:,.0f}", "100 %", "", ""])
        if with_compiled:
            raw["ceiling_compiled"] = c = _ceiling(args.model, files[first], args.repeats, compiled=True)
            rows_out.append(["compiled trees, in memory", f"{first:,}", f"{c['rows_per_s']:,.0f}",
                             f"{100 * c['rows_per_s'] / ceiling['rows_per_s']:.0f} %", "", ""])
        variants = {"local engine, CSV in -> CSV out": []}
        if with_compiled:
            variants["local engine, `--compiled-trees`"] = ["--compiled-trees"]
            raw["local_compiled"] = {}
        for n in args.rows:
            runs: dict[str, list] = {name: [] for name in variants}
            for _ in range(args.repeats):  # the variants interleaved: the machine's drift hits both
                for name, flags in variants.items():
                    runs[name].append(_run([sys.executable, "-m", "klarna_pd.batch", "--model", args.model, "--input",
                                            str(files[n]), "--output", str(tmp / "out.csv"), "--quiet", *flags]))
            for name, variant_runs in runs.items():
                wall = statistics.median(r["wall_s"] for r in variant_runs)
                rss = max(r["peak_rss_mib"] for r in variant_runs)
                raw["local" if not variants[name] else "local_compiled"][n] = variant_runs
                rows_out.append([name, f"{n:,}", f"{n / wall:,.0f}",
                                 f"{100 * n / wall / ceiling['rows_per_s']:.0f} %", f"{wall:.1f}", f"{rss:,.0f}"])
                print(f"{name} {n:,}: {n / wall:,.0f} rows/s, {rss:,.0f} MiB", file=sys.stderr)
        if not args.no_spark:
            runs = [
                _run([sys.executable, "-m", "klarna_pd.batch", "--engine", "spark", "--spark-master", "local[2]",
                      "--model", args.model, "--input", str(files[first]), "--output", str(tmp / "out_spark.csv"), "--quiet"])
                for _ in range(max(1, args.repeats - 2))
            ]
            wall = statistics.median(r["wall_s"] for r in runs)
            raw["spark"] = runs
            rows_out.append(["Spark local[2], mapInPandas", f"{first:,}", f"{first / wall:,.0f}",
                             f"{100 * first / wall / ceiling['rows_per_s']:.0f} %", f"{wall:.1f}",
                             f"{max(r['peak_rss_mib'] for r in runs):,.0f} (driver)"])
        profile = [] if args.no_profile else _profile(args.model, files[first], tmp / "out_prof.csv")
    notes = [
        f"Medians of {args.repeats} runs (Spark: {max(1, args.repeats - 2)}); the wall time of the local engine includes "
        "starting Python and loading the model; peak RSS is the largest of the runs (wait4 ru_maxrss).",
        "Goals: local engine at least 50 % of raw predict; peak RSS under 1 GiB at 10M rows. `of ceiling`: of raw "
        "`Booster.predict` (LightGBM); the compiled trees give the same PDs to the last bit.",
    ]
    if profile:
        notes += ["", f"Profile of the local engine on {first:,} rows (py-spy, self time, all threads):", "```", *profile, "```"]
    write_results("batch", "Batch scoring: throughput and memory",
                  ["what", "rows", "rows/s", "of ceiling", "wall s", "peak RSS MiB"], rows_out, notes, raw)
    return 0


if __name__ == "__main__":
    sys.exit(main())
