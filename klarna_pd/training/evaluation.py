"""The validation results of a training run, as the ``metrics.json`` document."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..versions import library_versions
from . import metrics
from .cv import TrainResult
from .masterscale import master_scale


def _bin_noise(table: list[dict[str, float]]) -> float:
    """Row-weighted mean standard error of a bin's observed default rate if its PDs were exact."""
    n = sum(r["rows"] for r in table)
    return float(sum(r["rows"] * np.sqrt(r["mean_pd"] * (1 - r["mean_pd"]) / r["rows"]) for r in table) / n)


def true_pd_comparison(result: TrainResult, labelled: np.ndarray, scored: np.ndarray) -> dict[str, Any]:
    """How close the model comes to the known true PD of synthetic rows.

    Args:
        result: the training run.
        labelled: true PD of the labelled rows, in the order of ``result.y``.
        scored: true PD of the scored rows, in the order of ``result.unlabelled_pd``.

    Returns:
        ``auc_labelled`` (ROC AUC of the true PD itself: the ceiling), ``oof_auc``,
        ``mean_abs_error_labelled`` (mean |OOF PD - true PD|), ``mean_abs_error_scored``
        (mean |PD - true PD| of the scored rows: the one accuracy measured on rows without outcomes),
        ``mean_true_pd_scored`` and ``mean_pd_scored``.
    """
    out: dict[str, Any] = {
        "auc_labelled": metrics.auc(result.y, labelled),
        "oof_auc": metrics.auc(result.y, result.oof_ranked),
        "mean_abs_error_labelled": float(np.mean(np.abs(result.oof_pd - labelled))),
        "mean_abs_error_scored": None,
        "mean_true_pd_scored": None,
        "mean_pd_scored": None,
    }
    if len(scored):
        out.update(
            mean_abs_error_scored=float(np.mean(np.abs(result.unlabelled_pd - scored))),
            mean_true_pd_scored=float(np.mean(scored)),
            mean_pd_scored=float(np.mean(result.unlabelled_pd)),
        )
    return out


def _spread(values: list[float]) -> dict[str, Any]:
    return {
        "mean": float(np.mean(values)),
        "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
        "min": float(np.min(values)),
        "max": float(np.max(values)),
    }


def stability(result: TrainResult) -> dict[str, Any]:
    """Spread over the folds (of every repeat) of AUC and of the calibrated PDs' log loss, Brier and ECE.

    Each fold is judged on its own held-out rows, by its AUC and by the cross-fitted OOF PDs of
    those rows (``oof_pd``: the calibrator of the whole run was fitted on them), so the spread says
    how much one held-out tenth of the data can move these figures.
    """
    per_fold: dict[str, list[float]] = {"auc": [], "log_loss": [], "brier": [], "ece": []}
    for fold in result.folds:
        y = result.y[fold.valid]
        p = result.oof_pd[fold.valid]
        per_fold["auc"].append(fold.auc)
        per_fold["log_loss"].append(metrics.log_loss(y, p))
        per_fold["brier"].append(metrics.brier(y, p))
        per_fold["ece"].append(metrics.ece(y, p))
    doc: dict[str, Any] = {
        "folds": len(result.folds),
        "repeats": len(result.repeat_oof_margin),
        "per_fold": {k: [float(v) for v in vals] for k, vals in per_fold.items()},
        **{k: _spread(vals) for k, vals in per_fold.items()},
    }
    if len(result.repeat_oof_margin) > 1:
        # Each repeat alone: what a single k-fold run would have reported.
        doc["oof_auc_per_repeat"] = [metrics.auc(result.y, m) for m in result.repeat_oof_margin]
        doc["oof_auc_over_repeats"] = _spread(doc["oof_auc_per_repeat"])
    return doc




def evaluate(result: TrainResult, *, true_pd: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, Any]:
    """Discrimination, calibration and stability of a training run (from out-of-fold predictions).

    The keys ``cv_auc_mean``, ``cv_auc_std``, ``fold_auc``, ``oof_auc``, ``gini``, ``ks`` and
    ``pr_auc`` describe the order the served model puts the OOF rows in (``oof_ranked``), ``brier``,
    ``log_loss`` and ``ece`` the cross-fitted calibrated OOF PDs (``oof_pd``);
    ``auc_ci`` is DeLong's confidence interval of the OOF AUC (``auc``, ``se``, ``low``, ``high``,
    ``level``); ``hosmer_lemeshow`` the Hosmer-Lemeshow test of the OOF PDs in deciles
    (``statistic``, ``df``, ``p_value``, ``groups``); ``calibration`` holds the measures before
    and after calibration, the decile tables, the comparison of the calibration methods and
    ``ece_noise`` (the sampling error of a decile's observed rate, for reading the ECE);
    ``master_scale`` the grades, per-grade tests and concentration
    (:func:`klarna_pd.training.masterscale.master_scale`); ``pd_distribution`` quantiles (``p1``
    ... ``p99``) of the PDs of the labelled rows (``labelled_oof``: out-of-fold;
    ``labelled_final``: the final model's) and of the rows it scored (``scored``);
    ``psi_labelled_vs_unlabelled`` compares the final model's PDs of the rows it scored with those
    of the labelled rows; ``true_pd`` (synthetic data only, else None) is
    :func:`true_pd_comparison`.

    Args:
        result: the training run.
        true_pd: the known true PD of the labelled and of the scored rows (synthetic data), or None.
    """
    y = result.y
    uncalibrated = 1.0 / (1.0 + np.exp(-result.oof_margin))
    after = metrics.summary(y, result.oof_pd)  # calibration: cross-fitted PDs
    ranked = metrics.summary(y, result.oof_ranked)  # discrimination: the served model's order
    before = metrics.summary(y, uncalibrated)
    table_after = metrics.calibration_table(y, result.oof_pd)
    doc: dict[str, Any] = {
        "cv_auc_mean": float(np.mean(result.fold_auc)),
        "cv_auc_std": float(np.std(result.fold_auc, ddof=1)) if len(result.fold_auc) > 1 else 0.0,
        "fold_auc": [float(a) for a in result.fold_auc],
        "fold_best_iterations": result.best_iterations,
        "oof_auc": ranked["auc"],
        "gini": ranked["gini"],
        "ks": ranked["ks"],
        "pr_auc": ranked["pr_auc"],
        "brier": after["brier"],
        "log_loss": after["log_loss"],
        "ece": after["ece"],
        "auc_ci": metrics.auc_delong(y, result.oof_ranked),
        # Cross-fitted PDs: nothing was fitted on the rows judged (degrees of freedom = groups).
        "hosmer_lemeshow": metrics.hosmer_lemeshow(y, result.oof_pd, fitted=0),
        "calibration": {
            "method": result.calibration["chosen"],
            "methods_cross_validated": result.calibration["cross_validated"],
            "comparison_folds": result.calibration["folds"],
            "before": {k: before[k] for k in ("brier", "log_loss", "ece")},
            "after": {k: after[k] for k in ("brier", "log_loss", "ece")},
            "table_before": metrics.calibration_table(y, uncalibrated, by=result.oof_pd),
            "table_after": table_after,
            "ece_noise": _bin_noise(table_after),
        },
        "master_scale": master_scale(y, result.oof_pd, result.unlabelled_pd),
        "pd_distribution": {
            "labelled_oof": metrics.quantiles(result.oof_pd),
            "labelled_final": metrics.quantiles(result.labelled_pd),
            "scored": metrics.quantiles(result.unlabelled_pd),
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
        "true_pd": None if true_pd is None else true_pd_comparison(result, *true_pd),
        "params": {k: v for k, v in result.params.items()},
        "predictor": {
            "kind": result.predictor,
            "fold_models": len(result.folds) if result.predictor == "folds" else 0,
            "trees": result.model.booster.num_trees(),
        },
        "stability": stability(result),
        "constraints": result.constraints,
        "tuning": result.tuning,
        "feature_importance": dict(
            sorted(result.importance.items(), key=lambda kv: -kv[1]["mean_abs_shap"])
        ),
        "library_versions": library_versions(),
        "seconds": {k: round(v, 3) for k, v in result.seconds.items()},
    }
    return doc
