"""A budgeted search of the main LightGBM parameters, nested inside the cross-validation.

The folds of the main cross-validation are the outer loop. For each outer fold the search sees only
that fold's training rows: a trial's parameters are scored by the mean log loss of an inner
stratified 3-fold cross-validation of those rows, early stopping on the inner held-out rows giving
the trial's rounds. The fold's winner is then fitted on all of the fold's training rows for the
winner's rounds, and predicts the outer held-out rows, which no trial has seen. The out-of-fold
figures of a tuned run are therefore those of the whole procedure, search included, and the
served model is the mean of these fold models (each fold may win other parameters).

The sampler is optuna's TPE, seeded per fold; each fold's first trial is the default parameters,
so no fold ends below the default on its inner score. The budget is shared out over the outer
folds as they come; a trial that has started runs to its end, and every fold runs at least the
default trial, so a small budget on a slow machine can end past its deadline. With
``tune_trials`` every fold runs exactly that many trials instead, and the same seed and data then
give the same run (a timed search stops after however many trials the machine managed:
metrics.json records them).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ..model.encoder import Encoder
from . import metrics
from .cv import Fold, TrainConfig, fit_fold, splits

INNER_FOLDS = 3

#: name: (low, high, log scale, integer). The rounds are not searched: early stopping on the inner
#: held-out rows finds them for each learning rate.
SEARCH_SPACE: dict[str, tuple[float, float, bool, bool]] = {
    "learning_rate": (0.02, 0.15, True, False),
    "num_leaves": (3, 31, True, True),
    "min_data_in_leaf": (20, 600, True, True),
    "lambda_l2": (0.1, 100.0, True, False),
    "path_smooth": (0.1, 100.0, True, False),
    "feature_fraction": (0.3, 1.0, False, False),
    "bagging_fraction": (0.5, 1.0, False, False),
}


def _suggest(trial: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, (low, high, log, integer) in SEARCH_SPACE.items():
        if integer:
            out[name] = trial.suggest_int(name, int(low), int(high), log=log)
        else:
            out[name] = trial.suggest_float(name, low, high, log=log)
    return out


def _inner_score(
    matrix: np.ndarray, y: np.ndarray, rows: np.ndarray, encoder: Encoder, params: dict[str, Any],
    config: TrainConfig, seed: int,
) -> tuple[float, int]:
    """Mean inner held-out log loss and mean best rounds of ``params`` on ``rows`` only."""
    losses, rounds = [], []
    for tr, va in splits(y[rows], INNER_FOLDS, seed):
        _, r, margin = fit_fold(matrix, y, rows[tr], rows[va], encoder, params, config)
        losses.append(metrics.log_loss(y[rows[va]], 1.0 / (1.0 + np.exp(-margin))))
        rounds.append(r)
    return float(np.mean(losses)), max(1, int(round(float(np.mean(rounds)))))


def nested_search(
    matrix: np.ndarray,
    y: np.ndarray,
    encoder: Encoder,
    config: TrainConfig,
    *,
    log: Callable[[str], None] = print,
) -> tuple[list[np.ndarray], list[Fold], dict[str, Any]]:
    """Nested cross-validation with a search in every outer fold.

    Args:
        matrix: encoded labelled rows.
        y: their outcomes.
        encoder: the fitted encoder.
        config: folds, repeats, seed, the budget (``tune_seconds``) or the trials per fold
            (``tune_trials``), and the parameters the search starts from.
        log: where progress lines go.

    Returns:
        The OOF margins of each repeat, the outer folds' models, and the record of the search
        (space, budget, trials, each fold's winner, the median winner).
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    base = config.lgb_params(encoder)
    default = {name: base[name] for name in SEARCH_SPACE}
    outer = [(r, k, tr, va) for r in range(config.repeats)
             for k, (tr, va) in enumerate(splits(y, config.folds, config.seed + r), start=1)]
    started = time.perf_counter()
    margins = [np.zeros(len(y)) for _ in range(config.repeats)]
    folds: list[Fold] = []
    records: list[dict[str, Any]] = []
    for n, (r, k, tr, va) in enumerate(outer):
        fold_started = time.perf_counter()
        seed = config.seed + 1000 * r + k
        remaining = config.tune_seconds - (fold_started - started)
        timeout = max(0.0, remaining / (len(outer) - n))
        rounds_of: dict[int, int] = {}

        def objective(trial: Any) -> float:
            params = {**base, **_suggest(trial), "seed": seed}
            loss, rounds_of[trial.number] = _inner_score(matrix, y, tr, encoder, params, config, seed)
            return loss

        study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed))
        study.enqueue_trial(default)
        # The default always runs, even when earlier folds used up the budget (optuna checks the
        # timeout before it starts a trial).
        study.optimize(objective, n_trials=1)
        if config.tune_trials > 1:
            study.optimize(objective, n_trials=config.tune_trials - 1)
        elif not config.tune_trials and timeout > time.perf_counter() - fold_started:
            study.optimize(objective, timeout=timeout - (time.perf_counter() - fold_started))
        best = study.best_trial
        params = {**base, **best.params, "seed": seed}
        rounds = rounds_of[best.number]
        booster, rounds, margins[r][va] = fit_fold(matrix, y, tr, va, encoder, params, config, rounds=rounds)
        folds.append(Fold(r, k, va, booster, rounds, metrics.auc(y[va], margins[r][va]), params))
        records.append({
            "repeat": r + 1,
            "fold": k,
            "trials": len(study.trials),
            "seconds": round(time.perf_counter() - fold_started, 2),
            "default_inner_log_loss": study.trials[0].value,
            "best_inner_log_loss": best.value,
            "winner": dict(best.params),
            "rounds": rounds,
            "outer_auc": folds[-1].auc,
        })
        log(f"fold {k}/{config.folds}: {len(study.trials)} trials, inner log loss {study.trials[0].value:.5f} (default) "
            f"-> {best.value:.5f}, outer AUC {folds[-1].auc:.4f}, {rounds} rounds, {records[-1]['seconds']:.1f} s")
    winners = [rec["winner"] for rec in records]
    median = {
        name: (int(round(float(np.median([w[name] for w in winners])))) if SEARCH_SPACE[name][3]
               else float(np.median([w[name] for w in winners])))
        for name in SEARCH_SPACE
    }
    doc = {
        "method": "nested cross-validation: optuna TPE per outer fold, each trial scored by inner "
                  f"{INNER_FOLDS}-fold log loss on the outer fold's training rows only",
        "optuna_version": optuna.__version__,
        "budget_seconds": config.tune_seconds,
        "trials_per_fold_asked": config.tune_trials or None,
        "seconds": round(time.perf_counter() - started, 2),
        "trials_run": int(sum(rec["trials"] for rec in records)),
        "search_space": {
            name: {"low": low, "high": high, "log": log, "integer": integer}
            for name, (low, high, log, integer) in SEARCH_SPACE.items()
        },
        "default": default,
        "outer_folds": records,
        "winner_median": median,
        "folds_won_by_default": sum(rec["best_inner_log_loss"] >= rec["default_inner_log_loss"] for rec in records),
    }
    return margins, folds, doc
