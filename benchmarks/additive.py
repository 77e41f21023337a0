"""Issue 14's out-of-fold bar: the default model, an additive model, and the mean of the two.

    python benchmarks/additive.py [--skip-uci]

The additive model is the same LightGBM job with every tree confined to one feature
(``interaction_constraints``: a boosted GAM), 3 leaves and every feature offered to every tree;
the blend is the mean of the two models' margins, calibrated on its own out-of-fold margins and
served as one booster (``ensemble.merge_mean``). Nothing here is a default: the table is what
planning needs to decide whether the bar is worth the trees.

On a freshly generated 99,976-row synthetic file (seed 0) with its true PD, 10 folds: out-of-fold
AUC against the true PD's on the same rows, mean |PD - true PD| out of fold and on the 10,000
scored rows, trees, training time, raw ``Booster.predict`` rows/s on one thread. Then the UCI
Taiwan file (5 folds): the mean of the fold AUCs. Writes benchmarks/results/additive.md (and .json).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from harness import ROOT, write_results

ADDITIVE = {"num_leaves": 3, "feature_fraction": 1.0}


def additive_params(n_features: int) -> dict:
    return {**ADDITIVE, "interaction_constraints": [[j] for j in range(n_features)]}


def fit_both(dataset, folds: int) -> dict:
    """The default and the additive job on the same folds, and their blend."""
    import numpy as np

    from klarna_pd.training import TrainConfig, calibration, ensemble, metrics, train

    out = {}
    for name, params in (("default", {}), ("additive", additive_params(len(dataset.spec.features)))):
        started = time.perf_counter()
        out[name] = {"result": train(dataset, TrainConfig(folds=folds, params=params), log=lambda *_: None),
                     "seconds": time.perf_counter() - started}
    a, b = out["default"]["result"], out["additive"]["result"]
    assert np.array_equal(a.y, b.y) and all(np.array_equal(x.valid, y.valid) for x, y in zip(a.folds, b.folds))
    margin = 0.5 * (a.oof_margin + b.oof_margin)
    calibrator, _, _ = calibration.choose(margin, a.y, seed=0)
    booster = ensemble.merge_mean([a.model.booster, b.model.booster])
    out["blend"] = {"oof_margin": margin, "calibrator": calibrator, "booster": booster,
                    "seconds": out["default"]["seconds"] + out["additive"]["seconds"]}
    for name in ("default", "additive"):
        r = out[name]["result"]
        out[name].update(oof_margin=r.oof_margin, calibrator=r.model.calibrator, booster=r.model.booster)
    for entry in out.values():
        entry["fold_auc"] = [metrics.auc(a.y[f.valid], entry["oof_margin"][f.valid]) for f in a.folds]
    return out


def rows_per_second(booster, matrix) -> float:
    booster.predict(matrix[:1000], raw_score=True, num_threads=1)
    started = time.perf_counter()
    booster.predict(matrix, raw_score=True, num_threads=1)
    return len(matrix) / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-uci", action="store_true", help="only the synthetic stand-in")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    import numpy as np

    from klarna_pd.data.files import read_dataset
    from klarna_pd.spec import klarna_spec, load_spec
    from klarna_pd.synth import write_synthetic
    from klarna_pd.training import metrics

    with tempfile.TemporaryDirectory(prefix="bench-additive-") as tmp:
        data = Path(tmp) / "dataset.csv"
        write_synthetic(data, rows=99_976, seed=0, truth=Path(tmp) / "truth.csv")
        truth = np.loadtxt(Path(tmp) / "truth.csv", delimiter=";", skiprows=1, usecols=1)
        dataset = read_dataset(data, klarna_spec())
    labelled = dataset.is_labelled
    t_l, t_u = truth[labelled], truth[~labelled]
    fits = fit_both(dataset, folds=10)
    y = fits["default"]["result"].y
    true_auc = metrics.auc(y, t_l)
    encoder = fits["default"]["result"].model.encoder
    xu = encoder.encode(dataset.unlabelled())
    assert np.array_equal(xu, fits["additive"]["result"].model.encoder.encode(dataset.unlabelled()), equal_nan=True)
    merged = fits["blend"]["booster"].predict(xu, raw_score=True)
    halves = 0.5 * (fits["default"]["booster"].predict(xu, raw_score=True)
                    + fits["additive"]["booster"].predict(xu, raw_score=True))
    assert np.allclose(merged, halves, rtol=0, atol=1e-12), "the merged booster is not the mean of the two"
    speed_rows = np.repeat(xu, 20, axis=0)
    raw: dict = {"true_auc": true_auc, "synthetic": {}, "uci": {}}
    rows = []
    for name, f in fits.items():
        cal = f["calibrator"].transform
        auc = metrics.auc(y, f["oof_margin"])
        q = {
            "oof_auc": auc, "ratio": auc / true_auc,
            "oof_gap": float(np.mean(np.abs(cal(f["oof_margin"]) - t_l))),
            "served_gap": float(np.mean(np.abs(cal(f["booster"].predict(xu, raw_score=True)) - t_u))),
            "trees": f["booster"].num_trees(), "train_s": f["seconds"],
            "rows_per_s": rows_per_second(f["booster"], speed_rows),
        }
        raw["synthetic"][name] = q
        rows.append([name, f"{auc:.5f}", f"{q['ratio']:.5f}", f"{q['oof_gap']:.6f}", f"{q['served_gap']:.6f}",
                     str(q["trees"]), f"{q['train_s']:.1f} s", f"{q['rows_per_s']:,.0f}"])
    notes = [
        f"Synthetic stand-in, 99,976 rows (seed 0), 10 folds; the true PD's AUC on the labelled rows {true_auc:.5f}; "
        "issue 14's bar: OOF AUC >= 0.995 of it. Gaps: mean |PD - true PD|, each model through its own calibrator "
        "(chosen on its out-of-fold margins). Training time: `train()` in this process (CV, calibration, refit, "
        "scoring, SHAP importance), both CPUs; the blend's is the sum of its two. Raw predict: one thread, "
        "200,000 rows.",
        f"Additive: the default's parameters with {ADDITIVE} and one feature per tree.",
    ]
    if not args.skip_uci:
        uci = ROOT.parent / "shared" / "data" / "uci_taiwan" / "UCI_Credit_Card.csv"
        if uci.exists():
            fits = fit_both(read_dataset(uci, load_spec(ROOT / "specs" / "uci_taiwan.yaml")), folds=5)
            raw["uci"] = {name: {"cv_auc_mean": float(np.mean(f["fold_auc"])), "trees": f["booster"].num_trees()}
                          for name, f in fits.items()}
            notes.append("UCI Taiwan, 5 folds, mean of the fold AUCs (issue 14's bar 0.785): " + ", ".join(
                f"{name} {q['cv_auc_mean']:.5f} ({q['trees']} trees)" for name, q in raw["uci"].items()) + ".")
        else:
            notes.append(f"UCI Taiwan: {uci} not found, skipped.")
    write_results("additive", "Issue 14: an additive model beside the default",
                  ["model", "OOF AUC", "/ true PD's", "OOF gap", "served gap", "trees", "training", "raw rows/s"],
                  rows, notes, raw)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
