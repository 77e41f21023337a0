"""How long the main job takes and how much memory it needs: 100k rows, 10 folds.

    python benchmarks/train.py [--repeats 3]

Runs ``python train.py`` on a freshly generated 99,976-row synthetic file, each run in its own
process (wall time, CPU time and peak RSS of that process from wait4), with a temporary
BENTOML_HOME. Goal: under 60 s and 2 GiB on a 2-core machine. Writes benchmarks/results/train.md.
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

from harness import ROOT, write_results


def one_run(data: Path, out: Path, home: Path) -> dict[str, float]:
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "train.py", "--data", str(data), "--out", str(out)],
        cwd=ROOT, env={**os.environ, "BENTOML_HOME": str(home)}, stdout=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"train.py failed with status {status}")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mib": usage.ru_maxrss / 1024}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from klarna_pd.synth import write_synthetic

    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        tmp = Path(tmp)
        data = tmp / "dataset.csv"
        write_synthetic(data, rows=99_976, seed=0)
        runs = [one_run(data, tmp / f"out{i}", tmp / "bentoml") for i in range(args.repeats)]
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    rows = [
        ["wall time", f"{med['wall_s']:.1f} s", "< 60 s", "yes" if med["wall_s"] < 60 else "NO"],
        ["CPU time", f"{med['cpu_s']:.1f} s", "", ""],
        ["peak memory (RSS)", f"{med['peak_rss_mib']:.0f} MiB", "< 2048 MiB", "yes" if med["peak_rss_mib"] < 2048 else "NO"],
    ]
    notes = [
        f"Median of {args.repeats} runs of `python train.py` (10-fold CV, calibration, final fit, 10,000 rows scored, "
        "report, model store) on the 99,976-row synthetic file; each run its own process.",
        "Per run: " + "; ".join(f"{r['wall_s']:.1f} s wall, {r['cpu_s']:.1f} s CPU, {r['peak_rss_mib']:.0f} MiB" for r in runs),
    ]
    write_results("train", "Main job: time and memory", ["measure", "median", "goal", "met"], rows, notes, {"runs": runs, "median": med})
    return 0


if __name__ == "__main__":
    sys.exit(main())
