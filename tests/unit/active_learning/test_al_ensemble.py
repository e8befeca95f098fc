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


@pytest.fixture(scope="module")
def with_twins():
    # An ensemble whose first member trains its features and so has an untrained
    # twin (tests/unit/estimators/test_untrained_twins.py uses the same recipe).
    import sk_mtbnn._training.full_batch as full_batch
    from sk_mtbnn import SparseMultiTaskBNNRegressor
    from sk_mtbnn.datasets import load_enb

    X, y = load_enb(return_X_y=True)
    rows = np.random.RandomState(1).choice(len(X), 250, replace=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(full_batch, "significantly_better", lambda new, old: True)
        est = SparseMultiTaskBNNRegressor(
            hidden_layer_sizes=(64, 64), n_estimators=3, random_state=0
        ).fit(X[rows], y[rows])
    pool = np.concatenate([X[rows][:20], X[rows][:20] * 2.0 - X.mean(0)])
    return est, pool


def test_pool_scores_include_the_untrained_twins_floor(with_twins):
    est, pool = with_twins
    assert any(t is not None for t in est.untrained_twins_)
    scores = pool_scores(est, pool)
    scale = est.estimators_[0]._y_scale
    epistemic, _ = est.decompose_uncertainty(pool)
    # Against the estimator's own floored moments (its public API): round-off only.
    np.testing.assert_allclose(scores.epistemic_std * scale, np.sqrt(epistemic), rtol=1e-10)
    np.testing.assert_allclose(scores.total_std * scale, est.predict(pool, True)[1], rtol=1e-10)
    plain = np.mean([m.decompose_uncertainty(pool)[0] for m in est.estimators_], axis=0)
    plain = plain + np.stack([m.predict(pool) for m in est.estimators_]).var(0)
    assert (epistemic > plain * 1.01).any(), "the floor must be active on this pool"
