"""Deep ensembles (n_estimators > 1): the mixture predictive and its invariances."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone

from sk_mtbnn import BayesAggMTLRegressor, SparseMultiTaskBNNRegressor


@pytest.fixture(scope="module")
def data():
    rng = np.random.RandomState(0)
    X = rng.uniform(-2, 2, size=(80, 1))
    y = np.column_stack([np.sin(2 * X[:, 0]), np.cos(X[:, 0])]) + 0.1 * rng.randn(80, 2)
    y[::3, 1] = np.nan
    return X, y


def small(cls=SparseMultiTaskBNNRegressor, **kw):
    params = {"hidden_layer_sizes": (16,), "max_epochs": 15, "random_state": 0}
    return cls(**{**params, **kw})


@pytest.fixture(scope="module")
def ensemble(data):
    return small(n_estimators=3).fit(*data)


def test_mixture_moments_follow_the_law_of_total_variance(ensemble, data):
    X = np.linspace(-3, 3, 7)[:, None]
    parts = [(*m.decompose_uncertainty(X), m.predict(X)) for m in ensemble.estimators_]
    means = np.stack([p[2] for p in parts])
    mean = ensemble.predict(X)
    np.testing.assert_allclose(mean, means.mean(0), rtol=1e-12)
    epistemic, aleatoric = ensemble.decompose_uncertainty(X)
    expected_epi = np.mean([p[0] for p in parts], axis=0) + means.var(0)
    np.testing.assert_allclose(epistemic, expected_epi, rtol=1e-12)
    np.testing.assert_allclose(aleatoric, np.mean([p[1] for p in parts], axis=0), rtol=1e-12)
    _, std = ensemble.predict(X, return_std=True)
    np.testing.assert_allclose(std**2, epistemic + aleatoric, rtol=1e-12)


def test_mixture_moments_and_covariance_match_monte_carlo(ensemble):
    X = np.linspace(-3, 3, 5)[:, None]
    n = 40_000
    draws = ensemble.sample_y(X, n_samples=n, random_state=1)  # (m, T, n)
    mean, std = ensemble.predict(X, return_std=True)
    _, cov = ensemble.predict(X, return_cov=True)
    # Monte Carlo standard error of a mean is std / sqrt(n); 5 of them bound
    # the error for 10 comparisons with overwhelming probability.
    assert np.all(np.abs(draws.mean(-1) - mean) < 5 * std / np.sqrt(n))
    # The sample variance of a (heavy-ish tailed) mixture has relative
    # standard error about sqrt(2 / n) * sqrt(kurtosis / 3); 5% is > 5 of them.
    np.testing.assert_allclose(draws.std(-1), std, rtol=0.05)
    for t in range(2):
        empirical = np.cov(draws[:, t, :])
        np.testing.assert_allclose(empirical, cov[..., t], atol=0.05 * cov[..., t].max())
        np.testing.assert_allclose(np.sqrt(np.diag(cov[..., t])), std[:, t], rtol=1e-10)


def test_members_are_different_and_seeded(ensemble, data):
    X = data[0][:5]
    preds = [m.predict(X) for m in ensemble.estimators_]
    assert not np.allclose(preds[0], preds[1])
    assert len({m.random_state for m in ensemble.estimators_}) == 3


def test_results_do_not_depend_on_n_jobs(ensemble, data):
    parallel = small(n_estimators=3, n_jobs=2).fit(*data)
    X = np.linspace(-3, 3, 9)[:, None]
    for a, b in zip(ensemble.predict(X, return_std=True), parallel.predict(X, return_std=True)):
        np.testing.assert_array_equal(a, b)


def test_ensemble_pickles_and_clones(ensemble, data):
    X = data[0][:6]
    restored = pickle.loads(pickle.dumps(ensemble))
    np.testing.assert_array_equal(restored.predict(X), ensemble.predict(X))
    assert clone(ensemble).get_params() == ensemble.get_params()
    assert not hasattr(clone(ensemble), "estimators_")


def test_bayesagg_regressor_ensemble(data):
    est = small(BayesAggMTLRegressor, n_estimators=2).fit(*data)
    mean, std = est.predict(data[0][:4], return_std=True)
    assert mean.shape == std.shape == (4, 2) and np.all(std > 0)
    assert len(est.estimators_) == 2


def test_evidence_members_after_the_first_take_its_relevances(monkeypatch):
    import sk_mtbnn._training.random_features as rf

    rng = np.random.RandomState(0)
    X = rng.uniform(-2, 2, size=(60, 3))
    y = np.column_stack([np.sin(2 * X[:, 0]), X[:, 1]]) + 0.1 * rng.randn(60, 2)
    searches = []
    search = rf._ard_search
    monkeypatch.setattr(rf, "_ard_search", lambda *a: searches.append(1) or search(*a))
    params = {"hidden_layer_sizes": (32, 32), "random_state": 0}
    single = SparseMultiTaskBNNRegressor(**params, n_estimators=1).fit(X, y)
    per_member, searches[:] = len(searches), []
    ensemble = SparseMultiTaskBNNRegressor(**params, n_estimators=3).fit(X, y)
    assert single.regime_ == "evidence" and per_member == 3  # shared, then each task's
    assert len(searches) == per_member  # the first member's search only
    assert all(m.regime_ == "evidence" for m in ensemble.estimators_)
