"""The fit skeleton: validation before any fitted state changes, clear parameter errors."""

import numpy as np
import pytest
import torch

from sk_mtbnn import BayesAggMTLClassifier, BayesAggMTLRegressor, SparseMultiTaskBNNRegressor

FAST = {"hidden_layer_sizes": (8,), "max_epochs": 5, "random_state": 0}


@pytest.fixture(scope="module")
def data():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(50, 3))
    y = np.column_stack([X[:, 0], X[:, 1] - X[:, 2]]) + 0.1 * rng.randn(50, 2)
    return X, y


@pytest.mark.parametrize("cls", [SparseMultiTaskBNNRegressor, BayesAggMTLRegressor])
@pytest.mark.parametrize(
    ("change", "refit"),
    [
        ({"learning_rate": -1.0}, "same"),  # invalid parameter
        ({}, "one_task_bad_shape"),  # invalid data: 3 rows of y for 50 of X
        ({}, "nan_X"),  # invalid data: NaN in X with another number of features
    ],
)
def test_a_failed_refit_leaves_the_fitted_model_as_it_was(cls, data, change, refit):
    X, y = data
    est = cls(**FAST).fit(X, y)
    before = est.predict(X[:5], return_std=True)
    state = (est.n_tasks_, est.n_features_in_)
    est.set_params(**change)
    X2, y2 = X, y
    if refit == "one_task_bad_shape":
        y2 = y[:3, 0]
    elif refit == "nan_X":
        X2 = np.full((50, 4), np.nan)
    with pytest.raises(ValueError):
        est.fit(X2, y2)
    assert (est.n_tasks_, est.n_features_in_) == state
    after = est.predict(X[:5], return_std=True)
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)


def test_a_refit_replaces_all_state_of_the_previous_fit(data):
    X, y = data
    est = SparseMultiTaskBNNRegressor(n_estimators=2, **FAST).fit(X, y)
    assert hasattr(est, "estimators_")
    est.set_params(n_estimators=1).fit(X, y[:, 0])
    assert not hasattr(est, "estimators_") and est.n_tasks_ == 1
    assert est.predict(X[:3]).shape == (3,)


def test_constructor_arguments_after_the_first_are_keyword_only():
    with pytest.raises(TypeError):
        SparseMultiTaskBNNRegressor((8,), (4,))
    assert SparseMultiTaskBNNRegressor((8,)).hidden_layer_sizes == (8,)


@pytest.mark.parametrize(
    ("cls", "params", "match"),
    [
        (SparseMultiTaskBNNRegressor, {"verbose": "x"}, "'verbose' parameter"),
        (SparseMultiTaskBNNRegressor, {"task_inputs": 5}, "'task_inputs' parameter"),
        (SparseMultiTaskBNNRegressor, {"refine_head": "yes"}, "'refine_head' parameter"),
        (SparseMultiTaskBNNRegressor, {"normalize_y": None}, "'normalize_y' parameter"),
        (SparseMultiTaskBNNRegressor, {"n_estimators": 0}, "'n_estimators' parameter"),
        (SparseMultiTaskBNNRegressor, {"optimizer": torch.optim.LBFGS}, "needs a closure"),
        (SparseMultiTaskBNNRegressor, {"validation_fraction": 0.99}, "leaves no row to train"),
        (BayesAggMTLRegressor, {"hidden_layer_sizes": ()}, "at least 1 entry"),
    ],
)
def test_parameter_errors_name_the_parameter(data, cls, params, match):
    with pytest.raises(ValueError, match=match):
        cls(**{**FAST, **params}).fit(*data)


def test_classifier_bayesagg_needs_a_hidden_layer(data):
    X, y = data
    with pytest.raises(ValueError, match="at least one layer"):
        BayesAggMTLClassifier(**{**FAST, "hidden_layer_sizes": ()}).fit(X, y > 0)


def test_ctrl_c_during_training_warns_and_leaves_a_refined_consistent_model(
    data, ctrl_c_after_two_epochs
):
    X, y = data
    with pytest.warns(UserWarning, match="interrupted after 2 of 30 epochs"):
        est = SparseMultiTaskBNNRegressor(**{**FAST, "max_epochs": 30}).fit(X, y)
    assert est.training_interrupted_ and est.n_epochs_ == 2
    # The heads were still conditioned in closed form on the weights reached.
    assert np.isfinite(est.elbo_) and np.all(est.noise_std_ < 1.0)


def test_early_stopping_is_not_an_interruption(data):
    X, y = data
    est = SparseMultiTaskBNNRegressor(**{**FAST, "max_epochs": 2000, "n_iter_no_change": 1})
    est.fit(X, y)
    assert est.n_epochs_ < 2000 and not est.training_interrupted_
