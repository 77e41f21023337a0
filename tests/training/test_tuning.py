"""The options of the main job on the small file: the nested search, repeated CV, constraint sets."""

import numpy as np
import pytest

from klarna_pd.cpus import available_cpus
from klarna_pd.data.files import read_dataset
from klarna_pd.model.encoder import Encoder
from klarna_pd.training import TrainConfig, train
from klarna_pd.training.cv import LEAVES, leaves_for, splits
from klarna_pd.training.evaluation import evaluate
from klarna_pd.training.tuning import SEARCH_SPACE, nested_search

pytestmark = [pytest.mark.training]


@pytest.fixture(scope="module")
def encoded(synthetic_small, klarna_spec):
    labelled = read_dataset(synthetic_small, klarna_spec).labelled()
    encoder = Encoder(spec=klarna_spec).fit(labelled)
    return encoder.encode(labelled), labelled.target, encoder


def test_the_search_never_sees_the_outer_held_out_rows(encoded):
    """Scrambling the numbers of outer fold 1's held-out rows leaves fold 1's search, winner and
    model exactly as they were (they saw only its training rows), while fold 2, which trains on
    those rows, changes."""
    matrix, y, encoder = encoded
    config = TrainConfig(folds=3, seed=4, tune_trials=2, max_rounds=60, params={"num_threads": 1}, predictor="folds")
    _, folds_a, doc_a = nested_search(matrix, y, encoder, config, log=lambda *_: None)
    held_out = splits(y, 3, 4)[0][1]
    numeric = [j for j in range(matrix.shape[1]) if j not in encoder.categorical_indices_]
    scrambled = matrix.copy()
    rng = np.random.default_rng(0)
    scrambled[np.ix_(held_out, numeric)] = rng.permutation(scrambled[np.ix_(held_out, numeric)].ravel()).reshape(
        len(held_out), len(numeric))
    _, folds_b, doc_b = nested_search(scrambled, y, encoder, config, log=lambda *_: None)
    assert folds_a[0].booster.model_to_string() == folds_b[0].booster.model_to_string()
    assert doc_a["outer_folds"][0]["winner"] == doc_b["outer_folds"][0]["winner"]
    assert folds_a[1].booster.model_to_string() != folds_b[1].booster.model_to_string()
    assert doc_a["trials_run"] == 6 and doc_a["trials_per_fold_asked"] == 2
    assert doc_a["outer_folds"][0]["trials"] == 2
    assert set(doc_a["search_space"]) == set(SEARCH_SPACE) == set(doc_a["winner_median"])


def test_the_first_trial_is_the_default_and_inside_the_space(encoded):
    _, _, encoder = encoded
    params = TrainConfig().lgb_params(encoder)
    for name, (low, high, _, _) in SEARCH_SPACE.items():
        assert low <= params[name] <= high, name


def test_a_tuned_run_serves_its_fold_models_and_reports_the_search(synthetic_small, klarna_spec):
    dataset = read_dataset(synthetic_small, klarna_spec)
    config = TrainConfig(folds=3, seed=2, tune_trials=2, max_rounds=60, params={"num_threads": 1}, predictor="folds")
    a = train(dataset, config, log=lambda *_: None)
    m = evaluate(a)
    assert m["tuning"]["trials_run"] == 6
    assert [f["winner"] for f in m["tuning"]["outer_folds"]] == [
        {k: v for k, v in f.params.items() if k in SEARCH_SPACE} for f in a.folds]
    assert m["predictor"]["fold_models"] == 3
    with pytest.raises(ValueError, match="predictor must be 'folds', got 'refit'"):
        train(dataset, TrainConfig(folds=3, tune_trials=1, predictor="refit"), log=lambda *_: None)


def test_the_library_decides_the_default_predictor_and_threads(encoded):
    """One rule for the CLI and the library: a tuned run serves its fold models, others the refit;
    0 threads, as in scoring, means one per CPU the process may use (not LightGBM's every core)."""
    assert TrainConfig().predictor == "refit"
    assert TrainConfig(tune_trials=2).predictor == TrainConfig(tune_seconds=5).predictor == "folds"
    assert TrainConfig(tune_trials=2, predictor="folds").predictor == "folds"
    _, _, encoder = encoded
    for params in ({}, {"num_threads": 0}):
        assert TrainConfig(params=params).lgb_params(encoder)["num_threads"] == available_cpus()
    assert TrainConfig(params={"num_threads": 3}).lgb_params(encoder)["num_threads"] == 3


def test_repeats_and_constraint_sets(synthetic_small, klarna_spec):
    dataset = read_dataset(synthetic_small, klarna_spec)
    config = TrainConfig(
        folds=3, seed=0, repeats=2, max_rounds=100, params={"num_threads": 1}, predictor="folds",
        constraint_sets={"none": {}, "spans": {"avg_payment_span_0_12m": 1, "num_unpaid_bills": None}},
    )
    result = train(dataset, config, log=lambda *_: None)
    m = evaluate(result)
    st = m["stability"]
    assert st["folds"] == 6 and st["repeats"] == 2 and len(st["oof_auc_per_repeat"]) == 2
    # The OOF margin of a row is the mean of its two repeats' margins: an honest mean of two models.
    np.testing.assert_allclose(result.oof_margin, np.mean(result.repeat_oof_margin, axis=0))
    assert m["oof_auc"] != st["oof_auc_per_repeat"][0]
    assert m["predictor"]["trees"] == sum(f.rounds for f in result.folds)
    sets = m["constraints"]["sets"]
    assert sets["none"]["features"] == {}
    assert sets["spans"]["features"] == {"avg_payment_span_0_12m": 1, "num_unpaid_bills": 1}
    for name in ("none", "spans"):
        assert sets[name]["main_minus_this_auc"] == pytest.approx(sets["main run"]["oof_auc"] - sets[name]["oof_auc"])


@pytest.mark.parametrize(("sets", "message"), [
    ({"x": {"no_such_feature": 1}}, "constraint set 'x': no feature 'no_such_feature' in the spec"),
    ({"x": {"age": None}}, "'age' declares no monotone direction in the spec; give one as age:\\+1 or age:-1"),
])
def test_bad_constraint_sets_are_refused(synthetic_small, klarna_spec, sets, message):
    dataset = read_dataset(synthetic_small, klarna_spec)
    with pytest.raises(ValueError, match=message):
        train(dataset, TrainConfig(folds=3, constraint_sets=sets), log=lambda *_: None)


@pytest.mark.parametrize(("minority", "leaves"), [(0, 4), (1_159, 4), (1_400, 5), (5_309, 18), (100_000, 31)])
def test_leaves_follow_the_number_of_events(minority, leaves):
    assert leaves_for(minority) == leaves
    assert LEAVES[0] <= leaves <= LEAVES[1]
