"""Predictions before fit come from the prior, as in GaussianProcessRegressor.

Ported from scikit-learn's ``sklearn/gaussian_process/tests/test_gpr.py``
(``test_prior``, ``test_sample_y_shape_with_prior``,
``test_predict_shape_with_prior``, ``test_no_fit_default_predict``,
``test_n_targets_error``), with the estimator swapped in.
"""

import numpy as np
import pytest
from numpy.testing import assert_almost_equal, assert_array_almost_equal

from sk_mtbnn import SparseMultiTaskBNNRegressor

FAST = {"hidden_layer_sizes": (32, 32), "max_epochs": 5, "random_state": 0}


def f(x):
    return x * np.sin(x)


X = np.atleast_2d([1.0, 3.0, 5.0, 6.0, 7.0, 8.0]).T
X2 = np.atleast_2d([2.0, 4.0, 5.5, 6.5, 7.5]).T
y = f(X).ravel()


@pytest.mark.parametrize("params", [{}, {"hidden_layer_sizes": (16,)}, {"prior_scale": 4.0}])
def test_prior(params):
    # test_gpr.py::test_prior: the prior has mean 0; its variance is the head
    # prior's ``prior_var * ||phi(x)||^2`` (a network's random features are not
    # stationary, so the variances differ between inputs, unlike an RBF GP's).
    gpr = SparseMultiTaskBNNRegressor(random_state=0, **params)
    y_mean, y_cov = gpr.predict(X, return_cov=True)
    assert_almost_equal(y_mean, 0, 5)
    _, y_std = gpr.predict(X, return_std=True)
    assert_almost_equal(np.diag(y_cov), y_std**2, 10)
    # The prior's samples have these moments (Monte Carlo, 200k draws: the
    # standard error of a variance is var * sqrt(2 / n) ~ 0.3%; 3% is 10 of them).
    samples = gpr.sample_y(X, n_samples=200_000, random_state=1)
    assert np.all(np.abs(samples.mean(1)) < 5 * y_std / np.sqrt(200_000))
    np.testing.assert_allclose(samples.var(1), y_std**2, rtol=0.03)
    np.testing.assert_allclose(np.cov(samples), y_cov, atol=0.03 * y_cov.max())
    epistemic, aleatoric = gpr.decompose_uncertainty(X)
    assert_almost_equal(epistemic, y_std**2, 10)
    assert np.all(aleatoric == 0)  # the prior of the latent function, as GPR's


@pytest.mark.parametrize("n_targets", [None, 1, 2, 3])
@pytest.mark.parametrize("n_samples", [1, 5])
def test_sample_y_shape_with_prior(n_targets, n_samples):
    rng = np.random.RandomState(1024)
    X = rng.randn(10, 3)
    y = rng.randn(10, n_targets if n_targets is not None else 1)
    model = SparseMultiTaskBNNRegressor(n_targets=n_targets, **FAST)
    shape_before_fit = model.sample_y(X, n_samples=n_samples).shape
    model.fit(X, y)
    shape_after_fit = model.sample_y(X, n_samples=n_samples).shape
    assert shape_before_fit == shape_after_fit


@pytest.mark.parametrize("n_targets", [None, 1, 2, 3])
def test_predict_shape_with_prior(n_targets):
    rng = np.random.RandomState(1024)
    n_sample = 10
    X = rng.randn(n_sample, 3)
    y = rng.randn(n_sample, n_targets if n_targets is not None else 1)
    model = SparseMultiTaskBNNRegressor(n_targets=n_targets, **FAST)
    mean_prior, cov_prior = model.predict(X, return_cov=True)
    _, std_prior = model.predict(X, return_std=True)
    model.fit(X, y)
    mean_post, cov_post = model.predict(X, return_cov=True)
    _, std_post = model.predict(X, return_std=True)
    assert mean_prior.shape == mean_post.shape
    assert cov_prior.shape == cov_post.shape
    assert std_prior.shape == std_post.shape


def test_no_fit_default_predict():
    # The defaults spelt out give the same prior (random_state fixes the
    # random features; GPR's default kernel needs no seed).
    gpr1 = SparseMultiTaskBNNRegressor(random_state=0)
    _, y_std1 = gpr1.predict(X, return_std=True)
    _, y_cov1 = gpr1.predict(X, return_cov=True)
    gpr2 = SparseMultiTaskBNNRegressor(
        hidden_layer_sizes=(128, 128), activation="silu", prior_scale=1.0, random_state=0
    )
    _, y_std2 = gpr2.predict(X, return_std=True)
    _, y_cov2 = gpr2.predict(X, return_cov=True)
    assert_array_almost_equal(y_std1, y_std2)
    assert_array_almost_equal(y_cov1, y_cov2)


def test_n_targets_error():
    rng = np.random.RandomState(0)
    X = rng.randn(10, 3)
    y = rng.randn(10, 2)
    model = SparseMultiTaskBNNRegressor(n_targets=1, **FAST)
    with pytest.raises(ValueError, match="The number of targets seen in `y`"):
        model.fit(X, y)


def test_predicting_the_prior_stores_nothing():
    model = SparseMultiTaskBNNRegressor(**FAST)
    before = dict(vars(model))
    model.predict(X, return_std=True)
    assert vars(model) == before
