"""scikit-learn compliance of every public estimator.

One central ``parametrize_with_checks`` run fed by a table of fast constructor
settings, and a table of expected failures (empty: every check passes).
"""

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from sk_mtbnn import SparseMultiTaskBNNRegressor

#: Fast settings per estimator: small networks and short training, so the
#: ~50 checks per estimator run in seconds. Training must still reach the
#: checks' own accuracy bars (R^2 > 0.5 on check_regressors_train's data).
FAST_ESTIMATORS = [
    SparseMultiTaskBNNRegressor(hidden_layer_sizes=(16,), max_epochs=40, random_state=0),
]

#: Checks that are expected to fail, with the reason. Kept empty.
EXPECTED_FAILED_CHECKS: dict = {}


@parametrize_with_checks(
    FAST_ESTIMATORS,
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS.get(type(est).__name__, {}),
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


@pytest.fixture
def data(multitask_data):
    return multitask_data


def test_pipeline_with_return_std(data, fast_params):
    X, y = data
    pipe = make_pipeline(StandardScaler(), SparseMultiTaskBNNRegressor(**fast_params))
    pipe.fit(X, y)
    mean, std = pipe.predict(X[:7], return_std=True)
    assert mean.shape == std.shape == (7, 2)
    assert np.all(std > 0)


def test_grid_search_over_hidden_size_and_learning_rate(data, fast_params):
    X, y = data
    fast_params.pop("hidden_layer_sizes")
    search = GridSearchCV(
        SparseMultiTaskBNNRegressor(**fast_params),
        {"hidden_layer_sizes": [(8,), (16, 16)], "learning_rate": [1e-3, 1e-2]},
        cv=2,
    )
    search.fit(X, y)  # y has NaN labels: score skips them
    assert set(search.best_params_) == {"hidden_layer_sizes", "learning_rate"}
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))


def test_clone_is_unfitted_with_same_params(data, fast_params):
    est = SparseMultiTaskBNNRegressor(**fast_params).fit(*data)
    copy = clone(est)
    assert copy.get_params() == est.get_params()
    assert not hasattr(copy, "net_")


def test_pickle_round_trip_gives_identical_predictions(data, fast_params):
    X, y = data
    est = SparseMultiTaskBNNRegressor(**fast_params).fit(X, y)
    restored = pickle.loads(pickle.dumps(est))
    for a, b in zip(est.predict(X, return_std=True), restored.predict(X, return_std=True)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(est.sample_y(X[:5], 3), restored.sample_y(X[:5], 3))


def test_same_random_state_gives_identical_predictions(data, fast_params):
    X, y = data
    a = SparseMultiTaskBNNRegressor(**fast_params).fit(X, y).predict(X, return_std=True)
    b = SparseMultiTaskBNNRegressor(**fast_params).fit(X, y).predict(X, return_std=True)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)


def test_different_random_state_gives_different_predictions(data, fast_params):
    X, y = data
    a = SparseMultiTaskBNNRegressor(**fast_params).fit(X, y).predict(X)
    fast_params["random_state"] = 1
    b = SparseMultiTaskBNNRegressor(**fast_params).fit(X, y).predict(X)
    assert not np.allclose(a, b)
