"""Cross-validated, calibrated LightGBM PD models.

1. Stratified k-fold cross-validation, repeated R times with other seeds, early stopping inside
   each fold on that fold's held-out rows: out-of-fold (OOF) margins for every labelled row (with
   R > 1 the mean of the R models that did not see it), the rounds each fold needed, and the
   R x k fold models. With a tuning budget the folds become
   the outer loop of a nested search instead (:mod:`klarna_pd.training.tuning`).
2. Calibration chosen and fitted on the OOF margins (:func:`klarna_pd.training.calibration.choose`);
   the OOF PDs are its cross-fitted ones, so that the calibration evidence is out of sample too.
3. The served booster: by default one booster refit on all labelled rows for the folds' mean
   number of rounds; or (``predictor="folds"``) the mean of the fold models, merged into one
   booster (:mod:`klarna_pd.training.ensemble`), so the calibrator is fitted on margins of the very
   models it serves. The mean is a little closer to the true PD (benchmarks/results/train.md) but
   holds k times the trees, and every scorer pays for them (README, Training).
4. PDs for the unlabelled rows from the final model: the encoder's matrix through
   :meth:`PDModel.predict_matrix`, the second half of the :meth:`PDModel.predict` every scorer
   takes.

Every figure in the report comes from the OOF predictions, never from rows a booster or a
calibrator was fitted on; only the AUC and ROC read the OOF margins through the served calibrator
(``TrainResult.oof_ranked``), since calibration is monotone and ranks as served.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import lightgbm as lgb
import numpy as np
from sklearn.model_selection import StratifiedKFold

from ..cpus import available_cpus
from ..data.files import Dataset
from ..model import PDModel, reference
from ..model.encoder import Encoder
from . import calibration, ensemble, metrics

# Chosen on the synthetic stand-in by closeness to its true PD (mean |PD - true PD| out of fold and
# on the 10,000 scored rows) and out-of-fold AUC, 10 folds, against the settings before issue 14
# (7 leaves, feature_fraction 0.5, cat_smooth 50, min_data_per_group 200): small trees (the leaves
# follow the number of events, see leaves_for), each seeing 30 % of the features (most of the 41
# are weak), and heavier smoothing of categorical splits for the 57 merchant categories of which
# only the 12 groups carry risk. The numbers behind it: README "Training", benchmarks/results/train.md.
DEFAULT_PARAMS: dict[str, Any] = {
    "objective": "binary",
    "learning_rate": 0.05,
    "num_leaves": 4,  # train() sets it from the number of events (leaves_for) unless params do
    "min_data_in_leaf": 150,
    "feature_fraction": 0.3,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 10.0,
    "path_smooth": 10.0,
    "cat_smooth": 200.0,
    "cat_l2": 50.0,
    "min_data_per_group": 500,
    "max_cat_threshold": 32,
    "metric": "binary_logloss",
    "deterministic": True,
    # Column-wise histograms: the trees are bit-identical to row-wise ones, and the same on 1 and
    # 2 threads (checked on the stand-in); a fold trains ~1.4x faster here, since only the features
    # a tree samples (feature_fraction) get histograms.
    "force_col_wise": True,
    "verbosity": -1,
}


#: Unless the parameters set num_leaves, a tree gets one leaf per this many rows of the rarer
#: outcome in a fold's training rows, within LEAVES: the evidence for interactions grows with the
#: number of events, not of rows. 1,159 defaults per fold on the Klarna-sized file give 4 leaves
#: (small, nearly additive trees were closest to the true PD there); UCI Taiwan's 5,309 give 18,
#: where its repayment-status interactions pay (benchmarks/results/train.md, README "Training").
MINORITY_ROWS_PER_LEAF = 300
LEAVES = (4, 31)


def leaves_for(minority_rows: float) -> int:
    """Leaves per tree for a fold with ``minority_rows`` rows of the rarer outcome."""
    return int(min(max(round(minority_rows / MINORITY_ROWS_PER_LEAF), LEAVES[0]), LEAVES[1]))


PREDICTORS = ("folds", "refit")
#: Largest seed: LightGBM and NumPy take 32-bit seeds (each repeat adds one).
MAX_SEED = 2**32 - 1
#: Labelled rows (at most) whose PDs and features make the model's drift reference.
REFERENCE_ROWS = 20_000


@dataclass(frozen=True)
class TrainConfig:
    """How to train.

    Args:
        folds: cross-validation folds (at least 2).
        seed: seeds the folds, LightGBM's sampling, the calibration comparison and the search.
        params: LightGBM parameters overriding :data:`DEFAULT_PARAMS`.
        max_rounds: upper bound on boosting rounds per fold.
        early_stopping_rounds: stop a fold after this many rounds without improvement.
        min_level_count: training rows a categorical level needs for its own code.
        monotone: apply the spec's monotone constraints.
        predictor: what is served: ``"refit"``, one booster refit on all labelled rows for the
            folds' mean number of rounds, or ``"folds"``, the mean margin of the fold models merged
            into one booster (k times the trees). Default (None): ``"folds"`` for a tuned run
            (each fold may win different parameters), ``"refit"`` otherwise.
        repeats: repeated stratified cross-validation, each repeat with its own seed
            (``seed``, ``seed + 1``, ...): a row's OOF margin is the mean over the repeats, and
            every repeat's fold models join the served mean.
        tune_seconds: a time budget for a nested search of the main LightGBM parameters (0: no
            search; see :mod:`klarna_pd.training.tuning`).
        tune_trials: search with exactly this many trials per outer fold instead of a time
            budget (reproducible to the bit; 0: by time).
        constraint_sets: extra constraint sets whose OOF AUC is measured next to the main run's,
            by name: feature -> direction (+1 or -1; 0 or ``None`` takes the spec's declared
            direction). An empty set measures the model without constraints.
    """

    folds: int = 10
    seed: int = 0
    params: Mapping[str, Any] = field(default_factory=dict)
    max_rounds: int = 5000
    early_stopping_rounds: int = 100
    min_level_count: int = 20
    monotone: bool = True
    predictor: str | None = None
    repeats: int = 1
    tune_seconds: float = 0.0
    tune_trials: int = 0
    constraint_sets: Mapping[str, Mapping[str, int | None]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.predictor is None:  # the one place this default is decided (train.py passes None)
            object.__setattr__(self, "predictor", "folds" if self.tuned else "refit")

    def lgb_params(self, encoder: Encoder, monotone: Mapping[str, int] | None = None) -> dict[str, Any]:
        """LightGBM parameters: the defaults, this config's overrides, the seed and the constraints.

        Args:
            encoder: the fitted encoder (its spec declares the monotone directions).
            monotone: feature -> direction to apply (default: the spec's declared directions when
                ``self.monotone``, none otherwise).
        """
        params = dict(DEFAULT_PARAMS)
        params.update(self.params)
        if not params.get("num_threads"):  # unset or 0: one per CPU this process may use, as in scoring
            params["num_threads"] = available_cpus()
        params["seed"] = self.seed
        features = encoder.spec.features
        if monotone is None:
            monotone = {f.name: f.monotone for f in features if f.monotone and self.monotone}
        if any(monotone.values()):
            params["monotone_constraints"] = [int(monotone.get(f.name, 0)) for f in features]
            params.setdefault("monotone_constraints_method", "advanced")
        else:
            params.pop("monotone_constraints", None)
        return params

    def constraint_set(self, name: str, spec_features: Sequence[Any]) -> dict[str, int]:
        """The set ``name`` as feature -> direction, declared directions filled in from the spec.

        Raises:
            ValueError: a feature the spec does not have, a direction other than -1/+1, or no
                direction given for a feature the spec declares none for.
        """
        declared = {f.name: f.monotone for f in spec_features}
        out: dict[str, int] = {}
        for feature, direction in self.constraint_sets[name].items():
            if feature not in declared:
                raise ValueError(f"constraint set {name!r}: no feature {feature!r} in the spec")
            direction = direction or declared[feature]
            if direction not in (-1, 1):
                raise ValueError(
                    f"constraint set {name!r}: {feature!r} declares no monotone direction in the spec; "
                    f"give one as {feature}:+1 or {feature}:-1"
                )
            out[feature] = int(direction)
        return out

    @property
    def tuned(self) -> bool:
        """Whether a parameter search runs."""
        return bool(self.tune_seconds or self.tune_trials)

    def check(self, n_rows: int, n_defaults: int) -> None:
        """:meth:`check_settings`, then whether the labelled rows can fill the folds."""
        self.check_settings()
        if n_defaults < self.folds or n_rows - n_defaults < self.folds:
            raise ValueError(
                f"{self.folds}-fold cross-validation needs at least {self.folds} rows of each outcome; "
                f"the labelled rows have {n_defaults} defaults and {n_rows - n_defaults} non-defaults"
            )

    def check_settings(self) -> None:
        """Refuse settings out of range, before any data is read.

        Raises:
            ValueError: naming the setting, what it must be and what it is.
        """
        # Each repeat adds one to the seed; a tuned run seeds each outer fold's search with
        # seed + 1000 * repeat + fold (klarna_pd.training.tuning).
        top = MAX_SEED - (1000 * (self.repeats - 1) + self.folds if self.tuned else self.repeats - 1)
        if not 0 <= self.seed <= top:
            tuned = ", tuned" if self.tuned else ""
            raise ValueError(f"seed must be from 0 to {MAX_SEED:,} (LightGBM's and NumPy's range; with "
                             f"{self.repeats} repeat(s) of {self.folds} folds{tuned}, to {top:,}), "
                             f"got {self.seed}")
        if self.folds < 2:
            raise ValueError(f"folds must be at least 2, got {self.folds}")
        if self.max_rounds < 1:
            raise ValueError(f"max_rounds must be at least 1, got {self.max_rounds}")
        if self.early_stopping_rounds < 1:
            raise ValueError(f"early_stopping_rounds must be at least 1, got {self.early_stopping_rounds}")
        if self.predictor not in PREDICTORS:
            raise ValueError(f"predictor must be one of {', '.join(PREDICTORS)}, got {self.predictor!r}")
        if self.repeats < 1:
            raise ValueError(f"repeats must be at least 1, got {self.repeats}")
        if self.tune_seconds < 0:
            raise ValueError(f"tune_seconds must not be negative, got {self.tune_seconds}")
        if self.tune_trials < 0:
            raise ValueError(f"tune_trials must not be negative, got {self.tune_trials}")
        if self.tuned and self.predictor != "folds":
            raise ValueError("a tuned run serves its fold models (each fold may win different parameters): "
                             f"predictor must be 'folds', got {self.predictor!r}")

    def check_constraint_sets(self, spec_features: Sequence[Any]) -> None:
        for name in self.constraint_sets:
            self.constraint_set(name, spec_features)


@dataclass
class Fold:
    """One fitted fold of (repeated) cross-validation."""

    repeat: int
    index: int
    valid: np.ndarray
    booster: lgb.Booster
    rounds: int
    auc: float
    params: dict[str, Any]


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
    """PDs of the labelled rows of the drift reference (all, or REFERENCE_ROWS of them)."""
    importance: dict[str, dict[str, float]]
    calibration: dict[str, Any]
    seconds: dict[str, float]
    params: dict[str, Any]
    predictor: str = "refit"
    folds: list[Fold] = field(default_factory=list)
    repeat_oof_margin: list[np.ndarray] = field(default_factory=list)
    tuning: dict[str, Any] | None = None
    constraints: dict[str, Any] = field(default_factory=dict)
    unlabelled_matrix: np.ndarray | None = None
    """The rows to score as the encoder coded them (their PDs are ``unlabelled_pd``)."""

    @cached_property
    def oof_ranked(self) -> np.ndarray:
        """The OOF margins through the served calibrator: the order the served model puts the rows in
        (what AUC and ROC judge). ``oof_pd``, each row's PD from a calibrator that did not see it,
        is what calibration is judged on; its calibrators differ a little per fold, which would
        blur the pooled ranking (OOF AUC 0.90233 against 0.90243 on the stand-in)."""
        return self.model.calibrator.transform(self.oof_margin)


def _dataset(matrix: np.ndarray, y: np.ndarray | None, encoder: Encoder, params: dict[str, Any]) -> lgb.Dataset:
    return lgb.Dataset(
        matrix,
        label=y,
        feature_name=encoder.feature_names_,
        categorical_feature=encoder.categorical_indices_,
        params={k: params[k] for k in ("min_data_per_group", "max_cat_threshold", "cat_smooth") if k in params},
        free_raw_data=False,
    )


def splits(y: np.ndarray, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The stratified (train, held-out) row indices of one repeat; the same for a given seed."""
    return list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))


def fit_fold(
    matrix: np.ndarray,
    y: np.ndarray,
    tr: np.ndarray,
    va: np.ndarray,
    encoder: Encoder,
    params: dict[str, Any],
    config: TrainConfig,
    *,
    rounds: int | None = None,
) -> tuple[lgb.Booster, int, np.ndarray]:
    """Fit on rows ``tr``; the booster, its rounds and its margins on rows ``va``.

    With ``rounds`` the booster trains for exactly that many rounds and never looks at ``va``;
    without, it stops early on ``va`` (at most ``config.max_rounds``).
    """
    train_set = _dataset(matrix[tr], y[tr], encoder, params)
    if rounds is not None:
        booster = lgb.train(params, train_set, num_boost_round=rounds)
    else:
        valid_set = train_set.create_valid(matrix[va], label=y[va])
        booster = lgb.train(
            params,
            train_set,
            num_boost_round=config.max_rounds,
            valid_sets=[valid_set],
            callbacks=[lgb.early_stopping(config.early_stopping_rounds, verbose=False)],
        )
        rounds = booster.best_iteration or booster.current_iteration()
    return booster, int(rounds), booster.predict(matrix[va], raw_score=True, num_iteration=rounds,
                                                 num_threads=params.get("num_threads") or available_cpus())


def cross_validate(
    matrix: np.ndarray,
    y: np.ndarray,
    encoder: Encoder,
    config: TrainConfig,
    *,
    monotone: Mapping[str, int] | None = None,
    log: Callable[[str], None] = print,
) -> tuple[list[np.ndarray], list[Fold]]:
    """Out-of-fold margins of each repeat, and the fitted folds (with per-fold AUC and rounds).

    Args:
        matrix: encoded labelled rows.
        y: their outcomes.
        encoder: the fitted encoder.
        config: folds, repeats, seed, parameters.
        monotone: feature -> direction (default: as ``config`` says).
        log: where progress lines go.
    """
    params = config.lgb_params(encoder, monotone)
    margins: list[np.ndarray] = []
    fitted: list[Fold] = []
    for r in range(config.repeats):
        oof = np.zeros(len(y))
        parts = splits(y, config.folds, config.seed + r)
        for k, (tr, va) in enumerate(parts, start=1):
            started = time.perf_counter()
            fold_params = {**params, "seed": config.seed + r}
            booster, rounds, oof[va] = fit_fold(matrix, y, tr, va, encoder, fold_params, config)
            fitted.append(Fold(r, k, va, booster, rounds, metrics.auc(y[va], oof[va]), fold_params))
            label = f"fold {k}/{config.folds}" + (f" of repeat {r + 1}/{config.repeats}" if config.repeats > 1 else "")
            log(f"{label}: AUC {fitted[-1].auc:.4f}, {rounds} rounds, {time.perf_counter() - started:.1f} s")
        margins.append(oof)
    return margins, fitted


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


def _constraint_costs(
    matrix: np.ndarray, y: np.ndarray, encoder: Encoder, config: TrainConfig, main_auc: float,
    *, log: Callable[[str], None],
) -> dict[str, Any]:
    """The declared directions, and the OOF AUC of each extra constraint set next to the main run's."""
    declared = {f.name: f.monotone for f in encoder.spec.features if f.monotone}
    applied = dict(declared) if config.monotone else {}
    doc: dict[str, Any] = {"declared": declared, "applied": applied, "sets": {}}
    if not config.constraint_sets:
        return doc
    doc["sets"]["main run"] = {"features": applied, "oof_auc": main_auc}
    for name in config.constraint_sets:
        features = config.constraint_set(name, encoder.spec.features)
        started = time.perf_counter()
        margins, folds = cross_validate(matrix, y, encoder, config, monotone=features, log=lambda *_: None)
        fold_auc = [f.auc for f in folds]
        auc = metrics.auc(y, np.mean(margins, axis=0))
        doc["sets"][name] = {
            "features": dict(sorted(features.items())),
            "oof_auc": auc,
            "cv_auc_mean": float(np.mean(fold_auc)),
            "cv_auc_std": float(np.std(fold_auc, ddof=1)),
            # What the main run's constraints cost (positive) or gain (negative) against this set.
            "main_minus_this_auc": main_auc - auc,
        }
        log(f"constraint set {name!r} ({len(features)} constrained): OOF AUC {auc:.4f} "
            f"(main run {main_auc:.4f}), {time.perf_counter() - started:.1f} s")
    return doc


def train(dataset: Dataset, config: TrainConfig | None = None, *, log: Callable[[str], None] = print) -> TrainResult:
    """Train, calibrate and score; nothing is written.

    Args:
        dataset: a validated dataset with labelled rows (and possibly rows to score).
        config: training settings (defaults: :class:`TrainConfig`).
        log: where progress lines go.

    Raises:
        ValueError: too few labelled rows of either outcome for the folds asked for, or a
            setting out of range.
    """
    config = config or TrainConfig()
    spec = dataset.spec
    seconds: dict[str, float] = {}
    labelled = dataset.labelled()
    unlabelled = dataset.unlabelled()
    y = labelled.target
    config.check(len(y), int(y.sum()))
    config.check_constraint_sets(spec.features)
    if "num_leaves" not in config.params:
        minority = min(y.sum(), len(y) - y.sum()) * (config.folds - 1) / config.folds
        config = replace(config, params={**config.params, "num_leaves": leaves_for(minority)})

    started = time.perf_counter()
    encoder = Encoder(spec=spec, min_level_count=config.min_level_count).fit(labelled)
    matrix = encoder.encode(labelled)
    seconds["encode"] = time.perf_counter() - started

    started = time.perf_counter()
    tuning = None
    if config.tuned:
        from .tuning import nested_search

        margins, folds, tuning = nested_search(matrix, y, encoder, config, log=log)
        seconds["tuning"] = time.perf_counter() - started
    else:
        margins, folds = cross_validate(matrix, y, encoder, config, log=log)
        seconds["cross_validation"] = time.perf_counter() - started
    if not any(f.booster.feature_importance("split").any() for f in folds):
        least = {**DEFAULT_PARAMS, **config.params}.get("min_data_in_leaf")
        leaf = "the searched min_data_in_leaf" if config.tuned else f"{least} (min_data_in_leaf)"
        raise ValueError(
            f"no tree of any fold found a split: every applicant would get the same PD. The folds train "
            f"on about {len(y) * (config.folds - 1) // config.folds:,} labelled rows and a leaf needs "
            f"{leaf}, or no feature separates the outcomes: more labelled rows are needed")
    # With repeats, a row's OOF margin is the mean of its R OOF margins: R models, none of which saw
    # the row. That is an honest prediction of a mean of models, the kind the served booster makes,
    # so the calibrator is fitted on it too.
    oof_margin = np.mean(margins, axis=0)
    best = [f.rounds for f in folds]

    started = time.perf_counter()
    # The OOF PDs: each row's from a booster and a calibrator that did not see it.
    calibrator, cal_report, oof_pd = calibration.choose(oof_margin, y, seed=config.seed)
    seconds["calibration"] = time.perf_counter() - started
    log(f"calibration: {cal_report['chosen']} (cross-validated log loss "
        + ", ".join(f"{k} {v['log_loss']:.5f}" for k, v in cal_report["cross_validated"].items()) + ")")

    started = time.perf_counter()
    params = config.lgb_params(encoder)
    if config.predictor == "folds":
        booster = ensemble.merge_mean([f.booster for f in folds], best)
        rounds = int(round(float(np.mean(best))))
        log(f"final model: the mean of {len(folds)} fold models ({booster.num_trees():,} trees) merged into one booster")
    else:
        rounds = max(1, int(round(float(np.mean(best)))))
        booster = lgb.train(params, _dataset(matrix, y, encoder, params), num_boost_round=rounds)
        log(f"final model: {rounds} rounds refit on {len(y):,} labelled rows")
    seconds["final_fit"] = time.perf_counter() - started

    started = time.perf_counter()
    model = PDModel(spec=spec, encoder=encoder, booster=booster, calibrator=calibrator)
    # The served booster holds every fold model's trees, so scoring all labelled rows for the drift
    # reference costs seconds; 20,000 rows fix its deciles and level shares as well.
    sample = np.arange(len(matrix))
    if len(sample) > REFERENCE_ROWS:
        sample = np.sort(np.random.default_rng(config.seed).choice(len(sample), REFERENCE_ROWS, replace=False))
    labelled_pd = model.predict_matrix(matrix[sample])
    unlabelled_matrix = encoder.encode(unlabelled)  # kept: training counts its uncoded levels too
    unlabelled_pd = model.predict_matrix(unlabelled_matrix) if len(unlabelled) else np.empty(0)
    model.reference = reference.build(encoder, matrix[sample], labelled_pd)
    seconds["predict"] = time.perf_counter() - started

    started = time.perf_counter()
    # TreeSHAP runs over every fold model's trees (k times one model's): 5,000 rows rank the features.
    importance = _importance(model, matrix, sample=5_000, seed=config.seed)
    seconds["importance"] = time.perf_counter() - started

    started = time.perf_counter()
    main_auc = metrics.auc(y, oof_margin)
    constraints = _constraint_costs(matrix, y, encoder, config, main_auc, log=log)
    if config.constraint_sets:
        seconds["constraint_sets"] = time.perf_counter() - started

    return TrainResult(
        model=model,
        y=y,
        oof_margin=oof_margin,
        oof_pd=oof_pd,
        fold_auc=[f.auc for f in folds],
        best_iterations=best,
        unlabelled_ids=unlabelled.ids,
        unlabelled_pd=unlabelled_pd,
        labelled_pd=labelled_pd,
        importance=importance,
        calibration=cal_report,
        seconds=seconds,
        params={**params, "num_boost_round": rounds},
        predictor=config.predictor,
        folds=folds,
        repeat_oof_margin=margins,
        tuning=tuning,
        constraints=constraints,
        unlabelled_matrix=unlabelled_matrix,
    )
