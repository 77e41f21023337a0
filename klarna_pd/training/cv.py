"""Cross-validated, calibrated LightGBM PD models.

1. Stratified k-fold cross-validation, early stopping inside each fold on that fold's held-out
   rows: gives out-of-fold (OOF) margins for every labelled row and the rounds each fold needed.
2. Calibration chosen and fitted on the OOF margins (:func:`klarna_pd.training.calibration.choose`).
3. The final booster refit on all labelled rows for the mean number of rounds the folds chose.
4. PDs for the unlabelled rows from the final model through :meth:`PDModel.predict`, the path
   every other scorer takes.

Every figure in the report comes from the OOF predictions, never from rows a model was fitted on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
from sklearn.model_selection import StratifiedKFold

from ..cpus import available_cpus
from ..data.files import Dataset
from ..model import PDModel, reference
from ..model.encoder import Encoder
from . import calibration, metrics

# Sensible for ~100k rows at a ~1.4 % default rate: small trees with large leaves, feature
# subsampling and smoothing so that ~1,300 defaults are not memorised; categorical smoothing for
# the long tail of merchant categories. Chosen among a handful of settings by out-of-fold AUC and
# closeness to the true PD on the synthetic stand-in (benchmarks/train.py reports the time).
DEFAULT_PARAMS: dict[str, Any] = {
    "objective": "binary",
    "learning_rate": 0.05,
    "num_leaves": 7,
    "min_data_in_leaf": 150,
    "feature_fraction": 0.5,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 10.0,
    "path_smooth": 10.0,
    "cat_smooth": 50.0,
    "min_data_per_group": 200,
    "max_cat_threshold": 32,
    "metric": "binary_logloss",
    "deterministic": True,
    "force_row_wise": True,
    "verbosity": -1,
}


@dataclass(frozen=True)
class TrainConfig:
    """How to train.

    Args:
        folds: cross-validation folds (at least 2).
        seed: seeds the folds, LightGBM's sampling and the calibration comparison.
        params: LightGBM parameters overriding :data:`DEFAULT_PARAMS`.
        max_rounds: upper bound on boosting rounds per fold.
        early_stopping_rounds: stop a fold after this many rounds without improvement.
        min_level_count: training rows a categorical level needs for its own code.
        monotone: apply the spec's monotone constraints.
    """

    folds: int = 10
    seed: int = 0
    params: Mapping[str, Any] = field(default_factory=dict)
    max_rounds: int = 5000
    early_stopping_rounds: int = 100
    min_level_count: int = 20
    monotone: bool = True

    def lgb_params(self, encoder: Encoder) -> dict[str, Any]:
        params = dict(DEFAULT_PARAMS)
        params.update(self.params)
        params.setdefault("num_threads", available_cpus())
        params["seed"] = self.seed
        if self.monotone and any(f.monotone for f in encoder.spec.features):
            params["monotone_constraints"] = [f.monotone for f in encoder.spec.features]
            params.setdefault("monotone_constraints_method", "advanced")
        return params

    def check(self, n_rows: int, n_defaults: int) -> None:
        if self.folds < 2:
            raise ValueError(f"folds must be at least 2, got {self.folds}")
        if self.max_rounds < 1:
            raise ValueError(f"max_rounds must be at least 1, got {self.max_rounds}")
        if self.early_stopping_rounds < 1:
            raise ValueError(f"early_stopping_rounds must be at least 1, got {self.early_stopping_rounds}")
        if n_defaults < self.folds or n_rows - n_defaults < self.folds:
            raise ValueError(
                f"{self.folds}-fold cross-validation needs at least {self.folds} rows of each outcome; "
                f"the labelled rows have {n_defaults} defaults and {n_rows - n_defaults} non-defaults"
            )


@dataclass
class TrainResult:
    """Everything training learned and measured, before anything is written."""

    model: PDModel
    y: np.ndarray
    oof_margin: np.ndarray
    oof_pd: np.ndarray
    fold_auc: list[float]
    best_iterations: list[int]
    unlabelled_ids: np.ndarray
    unlabelled_pd: np.ndarray
    labelled_pd: np.ndarray
    importance: dict[str, dict[str, float]]
    calibration: dict[str, Any]
    seconds: dict[str, float]
    params: dict[str, Any]


def _dataset(matrix: np.ndarray, y: np.ndarray | None, encoder: Encoder, params: dict[str, Any]) -> lgb.Dataset:
    return lgb.Dataset(
        matrix,
        label=y,
        feature_name=encoder.feature_names_,
        categorical_feature=encoder.categorical_indices_,
        params={k: params[k] for k in ("min_data_per_group", "max_cat_threshold", "cat_smooth") if k in params},
        free_raw_data=False,
    )


def cross_validate(
    matrix: np.ndarray,
    y: np.ndarray,
    encoder: Encoder,
    config: TrainConfig,
    *,
    log: Callable[[str], None] = print,
) -> tuple[np.ndarray, list[float], list[int]]:
    """Out-of-fold margins, per-fold AUC and per-fold best rounds."""
    params = config.lgb_params(encoder)
    oof = np.zeros(len(y))
    fold_auc: list[float] = []
    best: list[int] = []
    splitter = StratifiedKFold(config.folds, shuffle=True, random_state=config.seed)
    for k, (tr, va) in enumerate(splitter.split(matrix, y), start=1):
        started = time.perf_counter()
        train_set = _dataset(matrix[tr], y[tr], encoder, params)
        valid_set = train_set.create_valid(matrix[va], label=y[va])
        booster = lgb.train(
            params,
            train_set,
            num_boost_round=config.max_rounds,
            valid_sets=[valid_set],
            callbacks=[lgb.early_stopping(config.early_stopping_rounds, verbose=False)],
        )
        rounds = booster.best_iteration or booster.current_iteration()
        oof[va] = booster.predict(matrix[va], raw_score=True, num_iteration=rounds, num_threads=params["num_threads"])
        fold_auc.append(metrics.auc(y[va], oof[va]))
        best.append(int(rounds))
        log(f"fold {k}/{config.folds}: AUC {fold_auc[-1]:.4f}, {rounds} rounds, {time.perf_counter() - started:.1f} s")
    return oof, fold_auc, best


def _importance(model: PDModel, matrix: np.ndarray, sample: int, seed: int) -> dict[str, dict[str, float]]:
    gain = model.booster.feature_importance(importance_type="gain")
    rng = np.random.default_rng(seed)
    rows = matrix if len(matrix) <= sample else matrix[rng.choice(len(matrix), sample, replace=False)]
    shap = np.abs(model.contributions(rows)[:, :-1]).mean(axis=0)
    total_gain = gain.sum() or 1.0
    return {
        name: {"gain": float(gain[j] / total_gain), "mean_abs_shap": float(shap[j])}
        for j, name in enumerate(model.encoder.feature_names_)
    }


def train(dataset: Dataset, config: TrainConfig | None = None, *, log: Callable[[str], None] = print) -> TrainResult:
    """Train, calibrate and score; nothing is written.

    Args:
        dataset: a validated dataset with labelled rows (and possibly rows to score).
        config: training settings (defaults: :class:`TrainConfig`).
        log: where progress lines go.

    Raises:
        ValueError: too few labelled rows of either outcome for the folds asked for.
    """
    config = config or TrainConfig()
    spec = dataset.spec
    seconds: dict[str, float] = {}
    labelled = dataset.labelled()
    unlabelled = dataset.unlabelled()
    y = labelled.target
    config.check(len(y), int(y.sum()))

    started = time.perf_counter()
    encoder = Encoder(spec=spec, min_level_count=config.min_level_count).fit(labelled)
    matrix = encoder.encode(labelled)
    seconds["encode"] = time.perf_counter() - started

    started = time.perf_counter()
    oof_margin, fold_auc, best = cross_validate(matrix, y, encoder, config, log=log)
    seconds["cross_validation"] = time.perf_counter() - started

    started = time.perf_counter()
    calibrator, cal_report = calibration.choose(oof_margin, y, seed=config.seed)
    oof_pd = calibrator.transform(oof_margin)
    seconds["calibration"] = time.perf_counter() - started
    log(f"calibration: {cal_report['chosen']} (cross-validated log loss "
        + ", ".join(f"{k} {v['log_loss']:.5f}" for k, v in cal_report["cross_validated"].items()) + ")")

    started = time.perf_counter()
    params = config.lgb_params(encoder)
    rounds = max(1, int(round(float(np.mean(best)))))
    booster = lgb.train(params, _dataset(matrix, y, encoder, params), num_boost_round=rounds)
    seconds["final_fit"] = time.perf_counter() - started
    log(f"final model: {rounds} rounds on {len(y):,} labelled rows, {seconds['final_fit']:.1f} s")

    started = time.perf_counter()
    model = PDModel(spec=spec, encoder=encoder, booster=booster, calibrator=calibrator)
    labelled_pd = model.predict_matrix(matrix)
    unlabelled_pd = model.predict(unlabelled) if len(unlabelled) else np.empty(0)
    model.reference = reference.build(encoder, matrix, labelled_pd)
    seconds["predict"] = time.perf_counter() - started

    started = time.perf_counter()
    importance = _importance(model, matrix, sample=20_000, seed=config.seed)
    seconds["importance"] = time.perf_counter() - started

    return TrainResult(
        model=model,
        y=y,
        oof_margin=oof_margin,
        oof_pd=oof_pd,
        fold_auc=fold_auc,
        best_iterations=best,
        unlabelled_ids=unlabelled.ids,
        unlabelled_pd=unlabelled_pd,
        labelled_pd=labelled_pd,
        importance=importance,
        calibration=cal_report,
        seconds=seconds,
        params={**params, "num_boost_round": rounds},
    )

