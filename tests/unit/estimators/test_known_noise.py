"""GaussianProcessRegressor's alpha: known noise variance of the training targets."""

import numpy as np
import pytest
import torch

import sk_mtbnn._training.full_batch as full_batch
from sk_mtbnn import BayesAggMTLRegressor, SparseMultiTaskBNNRegressor
from sk_mtbnn._training.random_features import features64


@pytest.fixture(scope="module")
def noisy():
    rng = np.random.RandomState(0)
    X = rng.uniform(-2, 2, size=(40, 1))
    known_std = 0.05 + 0.3 * rng.rand(40)  # measurement errors the experimenter knows
    y = np.sin(2 * X[:, 0]) + known_std * rng.randn(40)
    return X, y, known_std**2


def test_head_is_exact_bayesian_linear_regression_with_known_noise(noisy):
    X, y, alpha = noisy
    est = SparseMultiTaskBNNRegressor(alpha=alpha, n_estimators=1, random_state=0).fit(X, y)
    assert est.regime_ == "evidence"
    module = est._inference_module
    z = torch.as_tensor((X - est._x_mean) / est._x_scale)
    phi = features64(module, z)[0].numpy()
    Phi = np.column_stack([phi, np.ones(len(phi))])  # the head's bias input
    t = (y - est._y_mean[0]) / est._y_scale[0]
    noise = (est.noise_std_[0] / est._y_scale[0]) ** 2 + alpha / est._y_scale[0] ** 2
    # Exact posterior with per-row noise (numpy, independent of the package):
    # A = I / v + Phi^T W Phi, m = A^-1 Phi^T W t, W = diag(1 / (s2 + alpha_n)).
    W = 1.0 / noise
    A = np.eye(Phi.shape[1]) / est._evidence_prior_var[0] + Phi.T @ (W[:, None] * Phi)
    m = np.linalg.solve(A, Phi.T @ (W * t))
    mean, std = est.predict(X, return_std=True)
    # float64 throughout, but A is ill-conditioned (random features): 1e-6.
    np.testing.assert_allclose((mean - est._y_mean[0]) / est._y_scale[0], Phi @ m, atol=1e-6)
    assert np.all(np.isfinite(std))
    epistemic = np.einsum("nd,de,ne->n", Phi, np.linalg.inv(A), Phi)
    np.testing.assert_allclose(
        est.decompose_uncertainty(X)[0] / est._y_scale[0] ** 2, epistemic, rtol=1e-5
    )


def test_known_noise_is_not_double_counted(noisy):
    X, y, alpha = noisy
    without = SparseMultiTaskBNNRegressor(n_estimators=1, random_state=0).fit(X, y)
    known = SparseMultiTaskBNNRegressor(alpha=alpha, n_estimators=1, random_state=0).fit(X, y)
    # The fitted noise models only what alpha does not explain.
    assert known.noise_std_[0] < without.noise_std_[0]


@pytest.mark.parametrize(
    ("alpha", "match"),
    [(np.ones(7), "one entry per row"), (-np.ones(40), ">= 0"), (np.ones((40, 3)), "shape")],
)
def test_bad_alpha_is_refused(noisy, alpha, match):
    X, y, _ = noisy
    with pytest.raises(ValueError, match=match):
        SparseMultiTaskBNNRegressor(alpha=alpha).fit(X, y)


def test_an_array_alpha_needs_the_evidence_regime(noisy):
    X, y, alpha = noisy
    with pytest.raises(ValueError, match="needs regime"):
        SparseMultiTaskBNNRegressor(alpha=alpha, regime="network").fit(X, y)


def test_bayesagg_regressor_subtracts_a_scalar_alpha_from_its_noise():
    rng = np.random.RandomState(1)
    X = rng.uniform(-2, 2, size=(120, 1))
    y = np.column_stack([np.sin(2 * X[:, 0]), X[:, 0] ** 2]) + 0.3 * rng.randn(120, 2)
    kw = {"hidden_layer_sizes": (16,), "max_epochs": 15, "random_state": 0}
    without = BayesAggMTLRegressor(**kw).fit(X, y)
    alpha = 0.05  # known measurement variance, below the ~0.09 the data carry
    known = BayesAggMTLRegressor(alpha=alpha, **kw).fit(X, y)
    # alpha does not change training (same seed, same features): the total
    # noise is the same and alpha is taken out of it exactly; float32 heads
    # copied back from float64, hence rtol 1e-5.
    np.testing.assert_allclose(known.noise_std_**2, without.noise_std_**2 - alpha, rtol=1e-5)
    mean_without = without.predict(X[:5])
    np.testing.assert_allclose(known.predict(X[:5]), mean_without, rtol=1e-4, atol=1e-6)


def test_bayesagg_regressor_refuses_an_array_alpha():
    X = np.linspace(0, 1, 20)[:, None]
    with pytest.raises(ValueError, match="alpha"):
        BayesAggMTLRegressor(alpha=np.ones(20)).fit(X, X[:, 0])


def test_a_scalar_alpha_on_several_tasks_keeps_the_statistics_path(monkeypatch):
    import sk_mtbnn._training.random_features as rf

    # Standardised task by task, a scalar alpha is one value per task: the fast
    # statistics-based evidence applies (it went through the per-row search, about
    # ten times slower, which also ruled out training the features).
    def per_row(*args, **kwargs):
        raise AssertionError("the per-row evidence was used for a per-task constant alpha")

    monkeypatch.setattr(rf, "maximise_evidence_rows", per_row)
    rng = np.random.RandomState(0)
    X = rng.uniform(-2, 2, size=(120, 2))
    y = np.column_stack([np.sin(2 * X[:, 0]), 3 * X[:, 1]]) + 0.1 * rng.randn(120, 2)
    with monkeypatch.context() as patch:  # any held-out gain trains the features here
        patch.setattr(full_batch, "significantly_better", lambda new, old: True)
        est = SparseMultiTaskBNNRegressor(alpha=0.01, n_estimators=1, random_state=0).fit(X, y)
    assert est.regime_ == "evidence" and est.n_training_steps_ > 0
    # The true noise variance is alpha (0.01): the fitted noise is what remains,
    # near its floor. Measured (trained, 20 steps) 5e-7 and 1.2e-5, against 0.0094
    # and 0.0051 with alpha=0; 0.003 separates the two.
    assert np.all(est.noise_std_**2 < 0.003), est.noise_std_**2
