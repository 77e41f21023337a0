"""Issue 14's "before": the main job's configuration before that issue (the refit served, two
monotone constraints, the old parameters), frozen here so that the quality test and
benchmarks/train.py compare against the same thing whatever today's defaults become."""

from __future__ import annotations

from klarna_pd.spec import DatasetSpec
from klarna_pd.training import TrainConfig

PARAMS = {
    "learning_rate": 0.05, "num_leaves": 7, "min_data_in_leaf": 150, "feature_fraction": 0.5,
    "bagging_fraction": 0.8, "bagging_freq": 1, "lambda_l2": 10.0, "path_smooth": 10.0, "cat_smooth": 50.0,
    "min_data_per_group": 200, "max_cat_threshold": 32, "cat_l2": 10.0,
    # Defaults then, set here so that a later default cannot slip into the baseline.
    "feature_fraction_bynode": 1.0, "monotone_constraints_method": "advanced",
}
MONOTONE = {"account_worst_status_0_3m": 1, "account_worst_status_3_6m": 1}


def spec(current: DatasetSpec) -> DatasetSpec:
    """``current`` with the monotone constraints of before (two) instead of its own."""
    raw = current.to_dict()
    raw["features"] = [{**f, "monotone": MONOTONE.get(f["name"], 0)} for f in raw["features"]]
    return DatasetSpec.model_validate(raw)


def config(**overrides) -> TrainConfig:
    """The training configuration of before (``overrides``: folds, seed)."""
    return TrainConfig(params=PARAMS, predictor="refit", **overrides)
