"""Task-relatedness priors over the heads, wired into SparseMultiTaskBNNRegressor."""

import numpy as np
import pytest
from sklearn.cluster import AgglomerativeClustering
from sklearn.metrics import adjusted_rand_score

from sk_mtbnn import SparseMultiTaskBNNRegressor
from sk_mtbnn.datasets import make_multitask_regression

FAST = {"hidden_layer_sizes": (32, 32), "max_epochs": 60, "regime": "network"}


def two_groups(seed):
    return make_multitask_regression(
        300,
        n_features=3,
        n_tasks=6,
        n_latent=1,
        n_groups=2,
        noise=0.1,
        random_state=seed,
        return_groups=True,
    )


def groups_of(similarity):
    clusters = AgglomerativeClustering(n_clusters=2, metric="precomputed", linkage="average")
    return clusters.fit_predict(1 - similarity)


@pytest.mark.parametrize(
    "prior",
    [
        "clustering",
        pytest.param("hierarchical", marks=pytest.mark.slow),
        pytest.param("group_sparsity", marks=pytest.mark.slow),
    ],
)
def test_fitted_relatedness_recovers_two_groups_of_tasks(prior):
    # The target: adjusted Rand index 1.0 on 3 seeds. Measured at the
    # estimator level for these three priors (gumbel_softmax: 0.32, 1.0, 0.0).
    for seed in range(3):
        X, Y, groups = two_groups(seed)
        est = SparseMultiTaskBNNRegressor(head_prior=prior, random_state=seed, **FAST).fit(X, Y)
        assert est.task_similarity_.shape == (6, 6)
        assert adjusted_rand_score(groups, groups_of(est.task_similarity_)) == 1.0


def test_gating_takes_task_features_and_checks_them():
    X, Y, groups = two_groups(0)
    features = np.column_stack([groups, np.ones(6)]).astype(float)
    est = SparseMultiTaskBNNRegressor(head_prior="gating", random_state=0, **FAST)
    est.fit(X, Y, task_features=features)
    assert adjusted_rand_score(groups, groups_of(est.task_similarity_)) == 1.0
    with pytest.raises(ValueError, match="needs task features"):
        SparseMultiTaskBNNRegressor(head_prior="gating", **FAST).fit(X, Y)
    with pytest.raises(ValueError, match="one row of features per task"):
        est.fit(X, Y, task_features=features[:3])
    with pytest.raises(ValueError, match="used by head_prior='gating' only"):
        SparseMultiTaskBNNRegressor(**FAST).fit(X, Y, task_features=features)


@pytest.mark.slow
def test_a_head_prior_keeps_predictions_finite_and_the_regime_network():
    X, Y, _ = two_groups(1)
    est = SparseMultiTaskBNNRegressor(
        head_prior="hierarchical", hidden_layer_sizes=(16, 16), n_iter_no_change=2, random_state=0
    ).fit(X[:40], Y[:40])
    assert est.regime_ == "network"  # the priors condition mini-batch-trained heads
    assert np.isfinite(est.predict(X, return_std=True)[1]).all()


def test_a_head_prior_keeps_every_task_on_the_shared_features():
    # The prior relates the heads on the shared features; sharing="auto" sent two of
    # these six tasks to private features (seed 0), which broke the recovered groups.
    X, Y, _ = two_groups(0)
    est = SparseMultiTaskBNNRegressor(head_prior="clustering", random_state=0, **FAST).fit(X, Y)
    assert est.shared_tasks_.all()


def test_the_noise_is_chosen_under_the_fitted_task_prior(monkeypatch):
    from sk_mtbnn.estimators import _regression

    calls = []
    real = _regression.heldout_noise_var

    def spy(*args, **kwargs):
        calls.append(kwargs.get("prior"))
        result = real(*args, **kwargs)
        calls[-1] = (calls[-1], result)
        return result

    monkeypatch.setattr(_regression, "heldout_noise_var", spy)
    X, Y, _ = two_groups(0)
    reg = SparseMultiTaskBNNRegressor(head_prior="hierarchical", random_state=0, **FAST).fit(X, Y)
    # First under the isotropic prior, then under the task prior fitted to the training rows
    # (a per-task mean and precision); the head keeps the second choice.
    assert len(calls) == 2 and calls[0][0] is None
    (mean, precision), noise = calls[1]
    assert mean.shape[0] == Y.shape[1] and precision.shape[0] == Y.shape[1]
    head_noise = reg.net_.module_.head.noise_var().detach().double()
    # float32 storage of the head's log noise std: relative 1e-6.
    np.testing.assert_allclose(head_noise.numpy(), noise.numpy(), rtol=1e-5)
