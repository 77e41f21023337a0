"""The main job: how long it takes, how much memory it needs, and how close it gets to the true PD.

    python benchmarks/train.py [--repeats 3] [--tune 120] [--skip-quality]

On a freshly generated 99,976-row synthetic file (seed 0) with its true PD:

1. Time and memory: ``python train.py`` (the default) ``--repeats`` times and ``python train.py
   --tune SECONDS`` once, each in its own process (wall time, CPU time and peak RSS from wait4),
   with a temporary BENTOML_HOME. Goal for the default: under 60 s and 2 GiB on 2 cores.
2. Quality of both runs against the truth: out-of-fold AUC against the true PD's AUC on the same
   rows, mean |PD - true PD| out of fold and for the served model on the 10,000 rows it scored.
3. What to serve, measured on those 10,000 rows (never trained on, true PD known; expected log
   loss and Brier under the true PD, so no label noise): one model refit on all rows (the default), the mean of
   the fold models' margins (``--predictor folds``), the mean of their PDs, and a blend of refit and mean,
   each through the same calibrator; and today's (pre-issue-14) configuration on the same folds.
4. The OOF AUC of the constraint sets: none, the two constraints of before, the spec's, and the
   spec's plus the payment spans a reviewer might also expect.

Writes benchmarks/results/train.md (and .json).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import ROOT, write_results

SPANS = {"avg_payment_span_0_12m": 1, "avg_payment_span_0_3m": 1}


def one_run(data: Path, out: Path, home: Path, *extra: str) -> dict[str, float]:
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "train.py", "--data", str(data), "--out", str(out), *extra],
        cwd=ROOT, env={**os.environ, "BENTOML_HOME": str(home)}, stdout=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"train.py {' '.join(extra)} failed with status {status}")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mib": usage.ru_maxrss / 1024}


def quality_of_outputs(out: Path, truth, labelled) -> dict[str, float]:
    import numpy as np
    import pandas as pd

    doc = json.loads((out / "metrics.json").read_text())
    served = pd.read_csv(out / "predictions.csv", sep=";", float_precision="round_trip")["pd"].to_numpy()
    return {
        "oof_auc": doc["oof_auc"],
        "cv_auc": f"{doc['cv_auc_mean']:.4f} ± {doc['cv_auc_std']:.4f}",
        "served_gap": float(np.mean(np.abs(served - truth[~labelled]))),
        "log_loss_folds": f"{doc['stability']['log_loss']['mean']:.5f} ± {doc['stability']['log_loss']['std']:.5f}",
        "trials": (doc.get("tuning") or {}).get("trials_run", 0),
        "winner": (doc.get("tuning") or {}).get("winner_median"),
    }


def _expected(true_pd, p) -> dict[str, float]:
    import numpy as np

    q = np.clip(p, 1e-15, 1 - 1e-15)
    return {
        "gap": float(np.mean(np.abs(p - true_pd))),
        "log_loss": float(-np.mean(true_pd * np.log(q) + (1 - true_pd) * np.log(1 - q))),
        "brier": float(np.mean((p - true_pd) ** 2 + true_pd * (1 - true_pd))),
    }


def predictor_comparison(data: Path) -> dict:
    """Refit vs mean of margins vs mean of PDs vs blend, and today's configuration, on the unlabelled rows."""
    import numpy as np

    from klarna_pd.data.files import read_dataset
    from klarna_pd.spec import klarna_spec
    from klarna_pd.training import TrainConfig, ensemble, train
    from tests.helpers import baseline

    spec = klarna_spec()
    dataset = read_dataset(data, spec)
    truth = np.loadtxt(data.parent / "truth.csv", delimiter=";", skiprows=1, usecols=1)
    labelled = dataset.is_labelled
    t_l, t_u = truth[labelled], truth[~labelled]
    declared = {f.name: f.monotone for f in spec.features if f.monotone}
    config = TrainConfig(constraint_sets={
        "none": {}, "before issue 14 (2)": baseline.MONOTONE, "spec + payment spans": {**declared, **SPANS},
    })
    started = time.perf_counter()
    result = train(dataset, config, log=lambda *_: None)
    seconds = time.perf_counter() - started
    model = result.model
    xu = model.encoder.encode(dataset.unlabelled())
    cal = model.calibrator.transform
    fold_margins = np.array([f.booster.predict(xu, raw_score=True, num_iteration=f.rounds) for f in result.folds])
    refit = model.booster  # the default predictor: one booster refit on all labelled rows
    refit_margin = refit.predict(xu, raw_score=True)
    served = {
        "refit on all rows (default)": cal(refit_margin),
        "mean of fold margins (--predictor folds)": cal(fold_margins.mean(axis=0)),
        "mean of fold PDs": np.mean([cal(mm) for mm in fold_margins], axis=0),
        "blend: half refit, half mean": cal(0.5 * refit_margin + 0.5 * fold_margins.mean(axis=0)),
    }
    assert np.allclose(served["refit on all rows (default)"], result.unlabelled_pd, rtol=0, atol=1e-12)
    xl = model.encoder.encode(dataset.labelled())
    folds_booster = ensemble.merge_mean([f.booster for f in result.folds], [f.rounds for f in result.folds])
    # Before issue 14 (tests/helpers/baseline.py, the quality test's baseline too).
    today = train(read_dataset(data, baseline.spec(spec)), baseline.config(), log=lambda *_: None)
    served["before issue 14 (refit, old parameters)"] = today.unlabelled_pd
    from klarna_pd.training import metrics as m

    speed = {}
    for name, booster in (("refit (default)", refit), ("mean of folds", folds_booster)):
        booster.predict(xl[:1000], raw_score=True)
        started = time.perf_counter()
        booster.predict(xl, raw_score=True)
        speed[name] = {"trees": booster.num_trees(), "rows_per_s": len(xl) / (time.perf_counter() - started)}
    true_auc = m.auc(result.y, t_l)
    return {
        "predict_speed": speed,
        "seconds_default_with_constraint_sets": seconds,
        "true_auc": true_auc,
        "served": {name: _expected(t_u, p) for name, p in served.items()},
        "oof": {
            "default": {"auc": m.auc(result.y, result.oof_margin), "gap": float(np.mean(np.abs(result.oof_pd - t_l)))},
            "before issue 14": {"auc": m.auc(today.y, today.oof_margin), "gap": float(np.mean(np.abs(today.oof_pd - t_l)))},
        },
        "constraints": result.constraints,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of the default job (default: 3)")
    parser.add_argument("--tune", type=float, default=120.0, help="budget of the timed tuned run (default: 120 s)")
    parser.add_argument("--skip-quality", action="store_true", help="only the timed runs")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    import numpy as np
    import pandas as pd

    from klarna_pd.synth import write_synthetic
    from klarna_pd.training import metrics as m

    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        tmp = Path(tmp)
        data = tmp / "dataset.csv"
        write_synthetic(data, rows=99_976, seed=0, truth=tmp / "truth.csv")
        truth = np.loadtxt(tmp / "truth.csv", delimiter=";", skiprows=1, usecols=1)
        labels = pd.read_csv(data, sep=";", usecols=["default"])["default"].to_numpy()
        labelled = ~np.isnan(labels)
        true_auc = m.auc(labels[labelled], truth[labelled])
        runs = [one_run(data, tmp / f"out{i}", tmp / "bentoml") for i in range(args.repeats)]
        default_q = quality_of_outputs(tmp / "out0", truth, labelled)
        tuned_run = one_run(data, tmp / "tuned", tmp / "bentoml", "--tune", f"{args.tune:g}")
        tuned_q = quality_of_outputs(tmp / "tuned", truth, labelled)
        comparison = None if args.skip_quality else predictor_comparison(data)
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    rows = [
        ["wall time", f"{med['wall_s']:.1f} s", f"{tuned_run['wall_s']:.1f} s", "< 60 s (default)"],
        ["CPU time", f"{med['cpu_s']:.1f} s", f"{tuned_run['cpu_s']:.1f} s", ""],
        ["peak memory (RSS)", f"{med['peak_rss_mib']:.0f} MiB", f"{tuned_run['peak_rss_mib']:.0f} MiB", "< 2048 MiB"],
        ["CV AUC (10 folds)", default_q["cv_auc"], tuned_q["cv_auc"], ""],
        ["OOF AUC / true PD's AUC", f"{default_q['oof_auc']:.4f} / {true_auc:.4f} = {default_q['oof_auc'] / true_auc:.4f}",
         f"{tuned_q['oof_auc']:.4f} / {true_auc:.4f} = {tuned_q['oof_auc'] / true_auc:.4f}", ">= 0.995"],
        ["log loss per fold (calibrated)", default_q["log_loss_folds"], tuned_q["log_loss_folds"], ""],
        ["served model: mean abs gap to true PD, 10,000 scored rows", f"{default_q['served_gap']:.6f}",
         f"{tuned_q['served_gap']:.6f}", ""],
        ["search trials", "-", str(tuned_q["trials"]), ""],
    ]
    notes = [
        f"Default: median of {args.repeats} runs of `python train.py` (10-fold CV, calibration, the refit on all labelled rows, "
        f"10,000 rows scored, report, model store); tuned: one run of `python train.py --tune {args.tune:g}`; on the "
        "99,976-row synthetic file, each run its own process. The machine is shared: other jobs may have been running.",
        "Per default run: " + "; ".join(
            f"{r['wall_s']:.1f} s wall, {r['cpu_s']:.1f} s CPU, {r['peak_rss_mib']:.0f} MiB" for r in runs),
        f"Tuned run's median winner over the outer folds: {tuned_q['winner']}.",
    ]
    if comparison:
        notes += [
            "",
            "## What to serve (10,000 scored rows, true PD known; expected log loss and Brier under the true PD)",
            "",
            "| served | mean abs gap | log loss | Brier |",
            "|---|---|---|---|",
            *[f"| {name} | {q['gap']:.6f} | {q['log_loss']:.6f} | {q['brier']:.6f} |"
              for name, q in comparison["served"].items()],
            "",
            "Out of fold (labelled rows): default AUC {:.4f}, mean abs gap {:.6f}; before issue 14 AUC {:.4f}, gap {:.6f}; "
            "true PD's AUC {:.4f}.".format(
                comparison["oof"]["default"]["auc"], comparison["oof"]["default"]["gap"],
                comparison["oof"]["before issue 14"]["auc"], comparison["oof"]["before issue 14"]["gap"],
                comparison["true_auc"]),
            "",
            "Raw `Booster.predict` on the 89,976 labelled rows: " + "; ".join(
                f"{name} {v['trees']:,} trees, {v['rows_per_s']:,.0f} rows/s" for name, v in comparison["predict_speed"].items()) + ".",
            "",
            "## Constraint sets (same folds and parameters; OOF AUC)",
            "",
            "| set | constrained features | OOF AUC | main run minus this |",
            "|---|---|---|---|",
            *[f"| {name} | {len(s['features'])} | {s['oof_auc']:.4f} | {s.get('main_minus_this_auc', 0.0):+.4f} |"
              for name, s in comparison["constraints"]["sets"].items()],
        ]
    write_results(
        "train", "Main job: time, memory and closeness to the true PD", ["measure", "default", f"--tune {args.tune:g}", "goal"],
        rows, notes, {"runs": runs, "median": med, "tuned_run": tuned_run, "default": default_q, "tuned": tuned_q,
                      "true_auc": true_auc, "comparison": comparison},
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
