"""Evidence of Bayesian linear heads against independent references.

References: the multivariate normal density of ``y ~ N(0, v Phi Phi^T + diag(noise))``
(scipy), numerical integration over the weight of a one-weight model, and
scikit-learn's ``BayesianRidge`` (MacKay's evidence maximisation).
"""

import numpy as np
import pytest
import torch
from scipy import integrate, optimize, stats
from sklearn.linear_model import BayesianRidge

from sk_mtbnn.nn.blr import isotropic_prior, linear_stats, posterior, with_bias
from sk_mtbnn.nn.evidence import (
    NOISE_VAR_BOUNDS,
    _spectrum,
    feature_spectrum,
    log_conditional_evidence,
    log_marginal_likelihood,
    maximise_conditional_evidence,
    maximise_evidence,
    maximise_evidence_of_features,
    task_constant_alpha,
)
from sk_mtbnn.nn.evidence_rows import log_marginal_likelihood_rows, maximise_evidence_rows


def problem(n=40, f=3, n_tasks=1, noise=0.3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    phi = torch.randn(n_tasks, n, f, generator=gen, dtype=torch.float64)
    w = torch.randn(n_tasks, f, generator=gen, dtype=torch.float64)
    y = torch.einsum("tnf,tf->nt", phi, w) + 0.5
    y = y + noise * torch.randn(n, n_tasks, generator=gen, dtype=torch.float64)
    return phi, y


def direct_lml(phi_t, y_t, prior_var, noise_diag):
    """``log N(y | 0, v P P^T + diag(noise))`` with the bias column appended."""
    p = with_bias(torch.as_tensor(phi_t)).numpy()
    cov = prior_var * p @ p.T + np.diag(np.broadcast_to(noise_diag, len(y_t)))
    return stats.multivariate_normal(np.zeros(len(y_t)), cov).logpdf(np.asarray(y_t))


@pytest.mark.parametrize("n", [5, 40])  # fewer and more rows than the D = 4 weights
def test_log_marginal_likelihood_is_the_gaussian_density_of_the_targets(n):
    phi, y = problem(n=n, n_tasks=2)
    y[1, 1] = float("nan")
    got = log_marginal_likelihood(
        linear_stats(phi, y), torch.tensor([0.7, 2.0], dtype=torch.float64), 0.2
    )
    for t in range(2):
        rows = ~torch.isnan(y[:, t])
        expected = direct_lml(phi[t][rows], y[rows, t], [0.7, 2.0][t], 0.2)
        # Both exact in float64 (Cholesky of D x D vs N x N): agree to rounding.
        np.testing.assert_allclose(float(got[t]), expected, rtol=1e-10)


def test_one_weight_evidence_matches_numerical_integration():
    # Bias only (no features): y_n = w + noise, w ~ N(0, v).
    y = torch.tensor([[0.3], [1.1], [0.8]], dtype=torch.float64)
    phi = torch.zeros(1, 3, 0, dtype=torch.float64)
    v, s2 = 0.8, 0.25

    def integrand(w):
        like = np.prod(stats.norm(w, np.sqrt(s2)).pdf(y[:, 0].numpy()))
        return like * stats.norm(0.0, np.sqrt(v)).pdf(w)

    value, err = integrate.quad(integrand, -15, 15, epsabs=1e-14, epsrel=1e-12)
    got = float(log_marginal_likelihood(linear_stats(phi, y), v, s2)[0])
    # quad's error estimate is ~1e-14 relative; allow 1e-9 on the log.
    assert err < 1e-12
    np.testing.assert_allclose(got, np.log(value), rtol=1e-9)


def bayesian_ridge(phi_t, y_t):
    """BayesianRidge on the features with the bias column, no intercept, flat hyperpriors."""
    reg = BayesianRidge(
        fit_intercept=False,
        alpha_1=0.0,
        alpha_2=0.0,
        lambda_1=0.0,
        lambda_2=0.0,
        tol=1e-13,
        max_iter=100_000,
        compute_score=True,
    )
    return reg.fit(with_bias(phi_t).numpy(), y_t.numpy())


@pytest.mark.parametrize(("n", "f"), [(60, 3), (25, 10)])
def test_maximise_evidence_matches_bayesian_ridge(n, f):
    phi, y = problem(n=n, f=f, n_tasks=2, seed=1)
    stats_ = linear_stats(phi, y)
    ev = maximise_evidence(stats_)
    prior = torch.stack([1.0 / torch.as_tensor(ev.prior_var[t]) for t in range(2)])
    for t in range(2):
        ref = bayesian_ridge(phi[t], y[:, t])
        # BayesianRidge iterates MacKay's fixed point to convergence (tol on the
        # coefficients 1e-13); L-BFGS-B stops at a gradient of 1e-9: the
        # variances agree to 1e-5 relative, the log evidence to 1e-9.
        np.testing.assert_allclose(float(ev.noise_var[t]), 1.0 / ref.alpha_, rtol=1e-5)
        np.testing.assert_allclose(float(ev.prior_var[t]), 1.0 / ref.lambda_, rtol=1e-5)
        np.testing.assert_allclose(float(ev.log_evidence[t]), ref.scores_[-1], rtol=1e-9)
        m0, L0 = isotropic_prior(1, f + 1, float(ev.prior_var[t]), phi)
        sub = type(stats_)(*(s[t : t + 1] for s in stats_))
        mean, _ = posterior(sub, ev.noise_var[t : t + 1], m0, L0)
        np.testing.assert_allclose(mean[0].numpy(), ref.coef_, rtol=1e-4, atol=1e-6)
    assert prior.shape == (2,)


def test_optimum_satisfies_mackays_conditions():
    phi, y = problem(n=50, f=6, seed=2)
    stats_ = linear_stats(phi, y)
    ev = maximise_evidence(stats_)
    a, b = 1.0 / float(ev.prior_var[0]), 1.0 / float(ev.noise_var[0])
    p = with_bias(phi[0]).numpy()
    eig = np.linalg.eigvalsh(b * p.T @ p)
    gamma = np.sum(eig / (a + eig))
    m = b * np.linalg.solve(a * np.eye(7) + b * p.T @ p, p.T @ y[:, 0].numpy())
    rss = np.sum((y[:, 0].numpy() - p @ m) ** 2)
    # Eqs. (3.92) and (3.95) of Bishop (2006); gradient tolerance 1e-9 -> 1e-5.
    np.testing.assert_allclose(a, gamma / (m @ m), rtol=1e-5)
    np.testing.assert_allclose(1.0 / b, rss / (50 - gamma), rtol=1e-5)


def test_degenerate_tasks_are_finite_and_documented():
    phi, y = problem(n=12, f=20, n_tasks=4, seed=3)  # count < D = 21
    y[:, 1] = 2.0  # constant targets: the bias explains them, noise -> floor
    y[1:, 2] = float("nan")  # one label: noise not identifiable -> fallback
    y[:, 3] = float("nan")  # no label
    ev = maximise_evidence(linear_stats(phi, y), fallback_noise_var=0.5)
    for values in ev:
        assert torch.isfinite(values).all()
    assert float(ev.noise_var[1]) == pytest.approx(NOISE_VAR_BOUNDS[0])
    assert float(ev.noise_var[2]) == 0.5 and float(ev.noise_var[3]) == 0.5
    assert float(ev.prior_var[3]) == pytest.approx(1.0 / 21)
    assert float(ev.log_evidence[3]) == 0.0
    # The single label of task 2: the evidence is that of N(0, v |phi|^2 + 0.5).
    expected = direct_lml(phi[2][:1], y[:1, 2], float(ev.prior_var[2]), 0.5)
    np.testing.assert_allclose(float(ev.log_evidence[2]), expected, rtol=1e-9)


def test_fixed_noise_fits_only_the_prior():
    phi, y = problem(seed=4)
    ev = maximise_evidence(linear_stats(phi, y), noise_var=0.05)
    assert float(ev.noise_var[0]) == pytest.approx(0.05)
    res = optimize.minimize_scalar(
        lambda lv: -direct_lml(phi[0], y[:, 0], np.exp(lv), 0.05), bounds=(-8, 5), method="bounded"
    )
    # Brent's method to xatol 1e-5 on log v.
    np.testing.assert_allclose(np.log(float(ev.prior_var[0])), res.x, atol=1e-3)


def direct_optimum(phi_t, y_t, alpha):
    """Maximise the direct Gaussian density over (log v, log s2) with Nelder-Mead."""
    res = optimize.minimize(
        lambda x: -direct_lml(phi_t, y_t, np.exp(x[0]), np.exp(x[1]) + alpha),
        x0=np.log([0.5, 0.2]),
        method="Nelder-Mead",
        options={"xatol": 1e-8, "fatol": 1e-12, "maxiter": 4000},
    )
    return np.exp(res.x), -res.fun


def test_scalar_alpha_adds_to_the_fitted_noise():
    phi, y = problem(n=30, f=2, noise=0.6, seed=5)
    ev = maximise_evidence(linear_stats(phi, y), alpha=0.1)
    (v, s2), lml = direct_optimum(phi[0], y[:, 0].numpy(), 0.1)
    # Nelder-Mead to 1e-8 in the log-parameters; the optimum is flat to second
    # order, so the variances agree to ~1e-4 and the log evidence to 1e-9.
    np.testing.assert_allclose([float(ev.prior_var[0]), float(ev.noise_var[0])], [v, s2], rtol=1e-3)
    np.testing.assert_allclose(float(ev.log_evidence[0]), lml, rtol=1e-9)


def test_per_row_alpha_matches_exact_heteroscedastic_regression():
    phi, y = problem(n=30, f=2, noise=0.5, seed=6)
    alpha = torch.linspace(0.01, 0.6, 30, dtype=torch.float64)
    got = log_marginal_likelihood_rows(phi, y, 0.4, 0.15, alpha)
    expected = direct_lml(phi[0], y[:, 0], 0.4, 0.15 + alpha.numpy())
    np.testing.assert_allclose(float(got[0]), expected, rtol=1e-10)

    ev = maximise_evidence_rows(phi, y, alpha)
    res = optimize.minimize(
        lambda x: -direct_lml(phi[0], y[:, 0], np.exp(x[0]), np.exp(x[1]) + alpha.numpy()),
        x0=np.log([0.5, 0.2]),
        method="Nelder-Mead",
        options={"xatol": 1e-8, "fatol": 1e-12, "maxiter": 4000},
    )
    # Golden-section search to 1e-5 in log s2 with an inner L-BFGS-B on log v.
    np.testing.assert_allclose(
        [float(ev.prior_var[0]), float(ev.noise_var[0])], np.exp(res.x), rtol=1e-3
    )
    np.testing.assert_allclose(float(ev.log_evidence[0]), -res.fun, rtol=1e-8)


def test_per_row_alpha_with_a_column_per_task_and_missing_labels():
    phi, y = problem(n=25, f=2, n_tasks=2, seed=7)
    y[3, 0] = float("nan")
    alpha = torch.rand(25, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    got = log_marginal_likelihood_rows(
        phi, y, torch.tensor([0.3, 1.0], dtype=torch.float64), 0.1, alpha
    )
    for t in range(2):
        rows = ~torch.isnan(y[:, t])
        expected = direct_lml(phi[t][rows], y[rows, t], [0.3, 1.0][t], 0.1 + alpha[rows, t].numpy())
        np.testing.assert_allclose(float(got[t]), expected, rtol=1e-10)


def test_conditional_evidence_is_the_joint_predictive_density():
    phi, y = problem(n=30, f=3, seed=8)
    train, valid = linear_stats(phi[:, :20], y[:20]), linear_stats(phi[:, 20:], y[20:])
    v, s2 = 0.6, 0.1
    got = float(log_conditional_evidence(train, valid, v, s2)[0])
    p_tr, p_va = (with_bias(phi[0, rows]).numpy() for rows in (slice(0, 20), slice(20, 30)))
    cov_w = np.linalg.inv(np.eye(4) / v + p_tr.T @ p_tr / s2)
    mean_w = cov_w @ p_tr.T @ y[:20, 0].numpy() / s2
    pred = stats.multivariate_normal(p_va @ mean_w, p_va @ cov_w @ p_va.T + s2 * np.eye(10))
    np.testing.assert_allclose(got, pred.logpdf(y[20:, 0].numpy()), rtol=1e-9)


def test_maximise_conditional_evidence_matches_a_derivative_free_search():
    # Ten weights for twenty training rows: shrinkage pays on the held-out
    # rows, so the optimum is interior (with few weights it can run to the
    # prior bound, a flat prior).
    phi, y = problem(n=30, f=10, noise=1.0, seed=8)
    train, valid = linear_stats(phi[:, :20], y[:20]), linear_stats(phi[:, 20:], y[20:])
    ev = maximise_conditional_evidence(train, valid)

    def negative(x):
        return -float(log_conditional_evidence(train, valid, np.exp(x[0]), np.exp(x[1]))[0])

    res = optimize.minimize(
        negative,
        np.log([0.5, 0.2]),
        method="Nelder-Mead",
        options={"xatol": 1e-9, "fatol": 1e-13, "maxiter": 4000},
    )
    # L-BFGS-B (gradient 1e-9) and Nelder-Mead (1e-9 in the log-parameters):
    # the same optimum to 1e-4 in the variances, 1e-9 in the objective.
    np.testing.assert_allclose(
        [float(ev.prior_var[0]), float(ev.noise_var[0])], np.exp(res.x), rtol=1e-4
    )
    np.testing.assert_allclose(float(ev.log_evidence[0]), -res.fun, rtol=1e-9)


def test_conditional_evidence_without_held_out_labels_falls_back_to_the_evidence():
    phi, y = problem(n=30, f=3, n_tasks=2, seed=10)
    y[20:, 1] = float("nan")
    train, valid = linear_stats(phi[:, :20], y[:20]), linear_stats(phi[:, 20:], y[20:])
    ev = maximise_conditional_evidence(train, valid)
    alone = maximise_evidence(linear_stats(phi[1:, :20], y[:20, 1:]))
    assert float(ev.log_evidence[1]) == 0.0
    np.testing.assert_allclose(float(ev.noise_var[1]), float(alone.noise_var[0]), rtol=1e-6)


def test_tasks_are_independent():
    phi, y = problem(n=30, f=3, n_tasks=3, seed=9)
    y[::4, 1] = float("nan")
    together = maximise_evidence(linear_stats(phi, y))
    for t in range(3):
        alone = maximise_evidence(linear_stats(phi[t : t + 1], y[:, t : t + 1]))
        for a, b in zip(together, alone):
            # Summed objectives of independent tasks: the same optimum per task
            # up to L-BFGS-B's stopping tolerance.
            np.testing.assert_allclose(float(a[t]), float(b[0]), rtol=1e-4)


def test_a_warm_start_near_the_optimum_finds_bayesian_ridges_optimum():
    phi, y = problem(n=60, f=5, n_tasks=2, seed=1)
    stats_ = linear_stats(phi, y)
    cold = maximise_evidence(stats_)
    # A start a factor 3 off in both variances (as the ARD search's nearby features give).
    near = cold._replace(prior_var=cold.prior_var * 3, noise_var=cold.noise_var / 3)
    warm = maximise_evidence(stats_, warm_start=near)
    for t in range(2):
        ref = bayesian_ridge(phi[t], y[:, t])
        # As above: L-BFGS-B's gradient tolerance against MacKay's fixed point.
        np.testing.assert_allclose(float(warm.noise_var[t]), 1.0 / ref.alpha_, rtol=1e-5)
        np.testing.assert_allclose(float(warm.log_evidence[t]), ref.scores_[-1], rtol=1e-9)


@pytest.mark.parametrize("same_rows", [False, True])
def test_the_kernel_route_of_fewer_rows_than_inputs_matches_the_gram_route(same_rows):
    gen = torch.Generator().manual_seed(7)
    phi = torch.randn(3, 40, 64, generator=gen, dtype=torch.float64)  # 40 rows < 65 inputs
    if same_rows:
        phi = phi[:1].expand(3, 40, 64)  # a shared backbone: one decomposition serves all
    y = torch.randn(40, 3, generator=gen, dtype=torch.float64)
    if not same_rows:  # missing labels, and a task with one label
        y[torch.rand(40, 3, generator=gen) < 0.3] = float("nan")
        y[1:, 2] = float("nan")
    kernel = feature_spectrum(phi, y)
    gram = _spectrum(linear_stats(phi, y))
    # Both hold the gram's eigenvalues (sorted ascending after padding zeros)
    # and the squared projections of Phi^T y; eigenvalues of the same matrix
    # by two float64 routes agree to round-off, 1e-8 of the largest.
    scale = gram.values.max()
    np.testing.assert_allclose(np.sort(kernel.values), np.sort(gram.values), atol=1e-8 * scale)
    np.testing.assert_allclose(kernel.proj2.sum(1), gram.proj2.sum(1), rtol=1e-9)
    np.testing.assert_allclose(kernel.yy, gram.yy, rtol=1e-12)
    np.testing.assert_array_equal(kernel.count, gram.count)
    got = maximise_evidence_of_features(phi, y)
    expected = maximise_evidence(linear_stats(phi, y))
    # The same optimisation of the same function: the optimum agrees to the
    # Newton tolerance, and the evidence there (independently, by Cholesky).
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-9)
    direct = log_marginal_likelihood(linear_stats(phi, y), got.prior_var, got.noise_var)
    torch.testing.assert_close(got.log_evidence, direct, rtol=1e-9, atol=1e-9)


def test_the_kernel_route_falls_back_to_the_gram_with_enough_rows():
    gen = torch.Generator().manual_seed(8)
    phi = torch.randn(2, 30, 5, generator=gen, dtype=torch.float64)
    y = torch.randn(30, 2, generator=gen, dtype=torch.float64)
    for a, b in zip(feature_spectrum(phi, y), _spectrum(linear_stats(phi, y))):
        np.testing.assert_array_equal(a, b)


def test_task_constant_alpha_recognises_one_value_per_task():
    per_task = torch.tensor([[0.1, 0.2]]).expand(5, 2)
    torch.testing.assert_close(task_constant_alpha(per_task), torch.tensor([0.1, 0.2]).double())
    assert float(task_constant_alpha(0.3)) == 0.3
    assert float(task_constant_alpha(np.full(4, 0.5))) == 0.5  # per row, all equal
    assert task_constant_alpha(np.array([0.1, 0.2, 0.1])) is None  # per row
    varying = per_task.clone()
    varying[3, 1] = 0.25
    assert task_constant_alpha(varying) is None


def test_a_known_noise_per_task_is_each_tasks_scalar_alpha():
    phi, y = problem(n=60, f=4, n_tasks=3, seed=3)
    y[::4, 1] = float("nan")
    alpha = torch.tensor([0.01, 0.2, 0.05], dtype=torch.float64)
    got = maximise_evidence(linear_stats(phi, y), alpha=alpha)
    # Reference 1: each task alone with its scalar alpha (the tasks are independent).
    for t in range(3):
        alone = maximise_evidence(
            linear_stats(phi[t : t + 1], y[:, t : t + 1]), alpha=float(alpha[t])
        )
        for a, b in zip(got, alone):
            torch.testing.assert_close(a[t : t + 1], b, rtol=1e-6, atol=1e-9)  # same optimiser
    # Reference 2: the per-row route (weighted statistics, a golden-section search over
    # the log noise) with the same alpha on every row of each task; its 32 steps end
    # within 1e-5 of the optimum in log noise (evidence_rows), well inside 1e-3.
    rows = maximise_evidence_rows(phi, y, alpha.expand(60, 3))
    torch.testing.assert_close(got.log_evidence, rows.log_evidence, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(got.noise_var, rows.noise_var, rtol=1e-3, atol=1e-9)


def test_the_kernel_route_gives_a_task_without_labels_the_documented_defaults():
    phi, y = problem(n=12, f=30, n_tasks=2, seed=9)
    y[:, 1] = float("nan")
    got = maximise_evidence_of_features(phi, y)
    expected = maximise_evidence(linear_stats(phi, y))
    assert float(got.log_evidence[1]) == 0.0 and float(got.prior_var[1]) == 1.0 / 31
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-9)  # as in the test above


def test_an_alpha_of_the_wrong_shape_is_refused():
    phi, y = problem(n=10, f=2, n_tasks=3)
    with pytest.raises(ValueError, match="one value per task"):
        maximise_evidence(linear_stats(phi, y), alpha=torch.full((10,), 0.1))
