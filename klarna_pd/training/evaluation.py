"""The validation results of a training run, as the ``metrics.json`` document."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..versions import library_versions
from . import metrics
from .cv import TrainResult

def evaluate(result: TrainResult) -> dict[str, Any]:
    """Discrimination, calibration and stability of a training run (from out-of-fold predictions).

    The keys ``cv_auc_mean``, ``cv_auc_std``, ``fold_auc``, ``oof_auc``, ``gini``, ``ks``,
    ``pr_auc``, ``brier``, ``log_loss``, ``ece`` describe the calibrated OOF PDs;
    ``calibration`` holds the same measures before and after calibration and the comparison
    of the calibration methods; ``psi_labelled_vs_unlabelled`` compares the final model's PDs of
    the rows it scored with those of the labelled rows.
    """
    y = result.y
    uncalibrated = 1.0 / (1.0 + np.exp(-result.oof_margin))
    after = metrics.summary(y, result.oof_pd)
    before = metrics.summary(y, uncalibrated)
    doc: dict[str, Any] = {
        "cv_auc_mean": float(np.mean(result.fold_auc)),
        "cv_auc_std": float(np.std(result.fold_auc, ddof=1)) if len(result.fold_auc) > 1 else 0.0,
        "fold_auc": [float(a) for a in result.fold_auc],
        "fold_best_iterations": result.best_iterations,
        "oof_auc": after["auc"],
        "gini": after["gini"],
        "ks": after["ks"],
        "pr_auc": after["pr_auc"],
        "brier": after["brier"],
        "log_loss": after["log_loss"],
        "ece": after["ece"],
        "calibration": {
            "method": result.calibration["chosen"],
            "methods_cross_validated": result.calibration["cross_validated"],
            "before": {k: before[k] for k in ("brier", "log_loss", "ece")},
            "after": {k: after[k] for k in ("brier", "log_loss", "ece")},
            "table_before": metrics.calibration_table(y, uncalibrated),
            "table_after": metrics.calibration_table(y, result.oof_pd),
        },
        "rows": {
            "labelled": int(len(y)),
            "unlabelled": int(len(result.unlabelled_pd)),
            "defaults": int(y.sum()),
        },
        "default_rate": float(y.mean()),
        "mean_pd_unlabelled": float(result.unlabelled_pd.mean()) if len(result.unlabelled_pd) else None,
        "psi_labelled_vs_unlabelled": (
            metrics.psi(result.labelled_pd, result.unlabelled_pd) if len(result.unlabelled_pd) else None
        ),
        "params": {k: v for k, v in result.params.items()},
        "feature_importance": dict(
            sorted(result.importance.items(), key=lambda kv: -kv[1]["mean_abs_shap"])
        ),
        "library_versions": library_versions(),
        "seconds": {k: round(v, 3) for k, v in result.seconds.items()},
    }
    return doc
