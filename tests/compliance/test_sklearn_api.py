"""scikit-learn compliance of every public estimator.

One central ``parametrize_with_checks`` run fed by a table of fast constructor
settings, and a table of expected failures (empty: every check passes).
"""

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from sk_mtbnn import (
    BayesAggMTLClassifier,
    BayesAggMTLRegressor,
    IterativeMagnitudePruning,
    SparseMultiTaskBNNRegressor,
)

#: Fast settings per estimator: small networks and short training, so the
#: ~50 checks per estimator run in seconds. Training must still reach the
#: checks' own accuracy bars (R^2 > 0.5 on check_regressors_train's data).
FAST_ESTIMATORS = [
    SparseMultiTaskBNNRegressor(hidden_layer_sizes=(16,), max_epochs=40, random_state=0),
    SparseMultiTaskBNNRegressor(
        hidden_layer_sizes=(16,), max_epochs=40, n_estimators=2, random_state=0
    ),
    BayesAggMTLRegressor(hidden_layer_sizes=(16,), max_epochs=40, random_state=0),
    BayesAggMTLClassifier(hidden_layer_sizes=(16,), max_epochs=40, n_mc_samples=8, random_state=0),
    IterativeMagnitudePruning(
        SparseMultiTaskBNNRegressor(hidden_layer_sizes=(16,), max_epochs=40),
        n_rounds=1,
        prune_ratio=0.3,
        random_state=0,
    ),
]

#: Checks that are expected to fail, with the reason. Kept empty.
EXPECTED_FAILED_CHECKS: dict = {}


@parametrize_with_checks(
    FAST_ESTIMATORS,
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS.get(type(est).__name__, {}),
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


def regression_data():
    rng = np.random.RandomState(0)
    X = rng.uniform(-2, 2, size=(150, 2))
    y = np.column_stack([np.sin(2 * X[:, 0]), np.sin(2 * X[:, 0]) + X[:, 1]])
    y += 0.1 * rng.standard_normal(y.shape)
    y[::3, 1] = np.nan
    return X, y


def classification_data():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(150, 2))
    y = np.column_stack([X[:, 0] > 0, X[:, 0] + X[:, 1] > 0.5]).astype(float)
    y[::4, 1] = np.nan
    return X, y


#: (estimator class, fast settings, data) for the integration tests below.
CASES = [
    (SparseMultiTaskBNNRegressor, {}, regression_data),
    (BayesAggMTLRegressor, {}, regression_data),
    (BayesAggMTLClassifier, {"n_mc_samples": 8}, classification_data),
]
IDS = [cls.__name__ for cls, _, _ in CASES]


def make(cls, extra, **kw):
    params = {
        "hidden_layer_sizes": (16, 16),
        "max_epochs": 30,
        "validation_fraction": None,
        "random_state": 0,
        **extra,
    }
    params.update(kw)
    return cls(**params)


def outputs(est, X):
    """Everything an estimator predicts, for comparisons."""
    if hasattr(est, "predict_proba"):
        return [est.predict(X), *est.predict_proba(X)]
    return [*est.predict(X, return_std=True), est.sample_y(X[:5], 3)]


@pytest.mark.parametrize(("cls", "extra", "data"), CASES, ids=IDS)
def test_pipeline(cls, extra, data):
    X, y = data()
    pipe = make_pipeline(StandardScaler(), make(cls, extra)).fit(X, y)
    if hasattr(pipe, "predict_proba"):
        assert [p.shape for p in pipe.predict_proba(X[:7])] == [(7, 2), (7, 2)]
    else:
        mean, std = pipe.predict(X[:7], return_std=True)
        assert mean.shape == std.shape == (7, 2) and np.all(std > 0)


@pytest.mark.parametrize(("cls", "extra", "data"), CASES, ids=IDS)
def test_grid_search_over_hidden_size_and_learning_rate(cls, extra, data):
    X, y = data()
    est = make(cls, extra)
    # With missing labels, a classifier's default cv=2 would stratify, which
    # scikit-learn cannot do on NaN labels: pass a plain KFold (documented).
    search = GridSearchCV(
        est,
        {"hidden_layer_sizes": [(8,), (16, 16)], "learning_rate": [1e-3, 1e-2]},
        cv=KFold(2),
    )
    search.fit(X, y)  # y has missing labels: the scores skip them
    assert set(search.best_params_) == {"hidden_layer_sizes", "learning_rate"}
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))


@pytest.mark.parametrize(("cls", "extra", "data"), CASES, ids=IDS)
def test_clone_is_unfitted_with_same_params(cls, extra, data):
    est = make(cls, extra).fit(*data())
    copy = clone(est)
    assert copy.get_params() == est.get_params()
    assert not hasattr(copy, "net_")


@pytest.mark.parametrize(("cls", "extra", "data"), CASES, ids=IDS)
def test_pickle_round_trip_gives_identical_predictions(cls, extra, data):
    X, y = data()
    est = make(cls, extra).fit(X, y)
    restored = pickle.loads(pickle.dumps(est))
    for a, b in zip(outputs(est, X), outputs(restored, X)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(("cls", "extra", "data"), CASES, ids=IDS)
def test_same_random_state_gives_identical_predictions(cls, extra, data):
    X, y = data()
    for a, b in zip(outputs(make(cls, extra).fit(X, y), X), outputs(make(cls, extra).fit(X, y), X)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(("cls", "extra", "data"), CASES, ids=IDS)
def test_different_random_state_gives_different_predictions(cls, extra, data):
    X, y = data()
    a = outputs(make(cls, extra).fit(X, y), X)[-1]
    b = outputs(make(cls, extra, random_state=1).fit(X, y), X)[-1]
    assert not np.allclose(a, b)


def test_grid_search_with_default_stratified_cv_on_complete_labels():
    X, y = classification_data()
    y = y[:, 0]  # one complete binary task: StratifiedKFold applies
    search = GridSearchCV(
        make(BayesAggMTLClassifier, {"n_mc_samples": 8}, max_epochs=200), {"s": [0.1, 0.5]}, cv=2
    ).fit(X, y)
    assert search.best_score_ > 0.7
