"""Query strategies on a deep ensemble (n_estimators > 1): the mixture's uncertainty."""

import numpy as np
import pytest

from sk_mtbnn.active_learning import (
    cluster_egl_sampling,
    gsy_sampling,
    igs_sampling,
    max_std_sampling,
)
from sk_mtbnn.active_learning._model import pool_scores


@pytest.fixture(scope="module")
def fitted(fitted_ensemble):
    return fitted_ensemble


def test_pool_scores_are_the_mixtures_moments(fitted):
    est, _, _, pool = fitted
    scores = pool_scores(est, pool)
    mean, std = est.predict(pool, return_std=True)
    scale = est.estimators_[0]._y_scale
    # The adapter works in standardised target units; the estimator in units of y.
    np.testing.assert_allclose(scores.total_std * scale, std, rtol=1e-10)
    offset = est.estimators_[0]._y_mean
    np.testing.assert_allclose(scores.mean * scale + offset, mean, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(
        scores.epistemic_std * scale, np.sqrt(est.decompose_uncertainty(pool)[0]), rtol=1e-10
    )
    assert np.all(scores.egl > 0)


@pytest.mark.parametrize("strategy", [cluster_egl_sampling, max_std_sampling])
def test_uncertainty_strategies_run_on_an_ensemble(fitted, strategy):
    est, X, _, pool = fitted
    idx = strategy(est, pool, n_instances=4, X_labelled=X)
    idx = np.asarray(idx[0] if isinstance(idx, tuple) else idx)
    assert len(set(idx.tolist())) == 4


@pytest.mark.parametrize("strategy", [gsy_sampling, igs_sampling])
def test_greedy_strategies_run_on_an_ensemble(fitted, strategy):
    est, X, y, pool = fitted
    idx = strategy(est, pool, n_instances=3, X_labelled=X, y_labelled=y)
    idx = np.asarray(idx[0] if isinstance(idx, tuple) else idx)
    assert len(set(idx.tolist())) == 3
