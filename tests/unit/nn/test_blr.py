"""Bayesian linear regression from sufficient statistics."""

import numpy as np
import torch

from sk_mtbnn.nn.blr import (
    heldout_noise_var,
    isotropic_prior,
    linear_stats,
    posterior,
    residual_variance,
    row_precisions,
    with_bias,
)


def test_posterior_with_a_general_gaussian_prior_matches_numpy():
    gen = torch.Generator().manual_seed(0)
    phi = torch.randn(1, 40, 3, generator=gen, dtype=torch.float64)
    y = torch.randn(40, 1, generator=gen, dtype=torch.float64)
    m0 = torch.randn(1, 4, generator=gen, dtype=torch.float64)
    A = torch.randn(4, 4, generator=gen, dtype=torch.float64)
    L0 = (A @ A.T + torch.eye(4, dtype=torch.float64)).unsqueeze(0)
    noise = torch.tensor([0.3], dtype=torch.float64)
    mean, precision = posterior(linear_stats(phi, y), noise, m0, L0)
    P = np.column_stack([phi[0].numpy(), np.ones(40)])
    prec = L0[0].numpy() + P.T @ P / 0.3
    expected = np.linalg.solve(prec, L0[0].numpy() @ m0[0].numpy() + P.T @ y[:, 0].numpy() / 0.3)
    np.testing.assert_allclose(precision[0].numpy(), prec, rtol=1e-12)
    np.testing.assert_allclose(mean[0].numpy(), expected, rtol=1e-10)


def test_heldout_noise_recovers_the_true_noise_level():
    gen = torch.Generator().manual_seed(1)
    w = torch.randn(6, generator=gen, dtype=torch.float64)
    phi = torch.randn(1, 3000, 5, generator=gen, dtype=torch.float64)
    y = phi[0] @ w[:5] + w[5] + 0.4 * torch.randn(3000, generator=gen, dtype=torch.float64)
    y = y[:, None]
    train = linear_stats(phi[:, :2000], y[:2000])
    start = torch.tensor([5.0], dtype=torch.float64)  # a poor starting value
    var = heldout_noise_var(train, phi[:, 2000:], y[2000:], 1.0, start, min_labels=10)
    # 1000 held-out residuals: the variance estimate has relative standard
    # error sqrt(2 / 1000) = 4.5%; allow 15%.
    np.testing.assert_allclose(float(var[0]), 0.16, rtol=0.15)


def test_heldout_noise_keeps_start_with_too_few_labels():
    phi = torch.randn(1, 30, 2, dtype=torch.float64)
    y = torch.randn(30, 1, dtype=torch.float64)
    train = linear_stats(phi[:, :25], y[:25])
    start = torch.tensor([0.7], dtype=torch.float64)
    assert heldout_noise_var(train, phi[:, 25:], y[25:], 1.0, start, min_labels=10) == start


def test_isotropic_prior_shapes():
    m0, L0 = isotropic_prior(3, 4, 0.5, torch.zeros(1, dtype=torch.float64))
    assert m0.shape == (3, 4) and L0.shape == (3, 4, 4)
    torch.testing.assert_close(L0[2], 2.0 * torch.eye(4, dtype=torch.float64))


def test_residual_variance_from_statistics():
    gen = torch.Generator().manual_seed(3)
    phi = torch.randn(2, 30, 3, generator=gen, dtype=torch.float64)
    y = torch.randn(30, 2, generator=gen, dtype=torch.float64)
    y[:5, 1] = float("nan")
    m = torch.randn(2, 4, generator=gen, dtype=torch.float64)
    got = residual_variance(linear_stats(phi, y), m)
    for t, rows in enumerate([slice(None), slice(5, None)]):
        resid = y[rows, t] - with_bias(phi[t][rows]) @ m[t]
        torch.testing.assert_close(got[t], resid.square().mean())


def test_weighted_statistics_give_the_posterior_under_per_row_noise():
    gen = torch.Generator().manual_seed(4)
    phi = torch.randn(2, 30, 3, generator=gen, dtype=torch.float64)
    y = torch.randn(30, 2, generator=gen, dtype=torch.float64)
    y[:4, 0] = float("nan")
    noise = torch.tensor([0.2, 0.5], dtype=torch.float64)
    alpha = torch.rand(30, generator=gen, dtype=torch.float64)
    weights = row_precisions(noise, alpha, 30)
    stats = linear_stats(phi, y, weights)
    m0, L0 = isotropic_prior(2, 4, 0.7, phi)
    mean, precision = posterior(stats, torch.ones(2, dtype=torch.float64), m0, L0)
    for t, rows in enumerate([slice(4, None), slice(None)]):
        P = with_bias(phi[t][rows]).numpy()
        W = np.diag(1.0 / (noise[t].item() + alpha[rows].numpy()))
        prec = np.eye(4) / 0.7 + P.T @ W @ P
        expected = np.linalg.solve(prec, P.T @ W @ y[rows, t].numpy())
        np.testing.assert_allclose(precision[t].numpy(), prec, rtol=1e-12)
        np.testing.assert_allclose(mean[t].numpy(), expected, rtol=1e-10)
        assert float(stats.count[t]) == P.shape[0]


def test_row_precisions_broadcast_scalar_row_and_cell_alpha():
    noise = torch.tensor([0.1, 0.3], dtype=torch.float64)
    cell = torch.tensor([[0.0, 0.2], [0.4, 0.6]], dtype=torch.float64)
    torch.testing.assert_close(row_precisions(noise, 0.1, 2), 1 / (noise + 0.1).expand(2, 2))
    rows = torch.tensor([0.0, 1.0], dtype=torch.float64)
    torch.testing.assert_close(row_precisions(noise, rows, 2), 1 / (noise + rows[:, None]))
    torch.testing.assert_close(row_precisions(noise, cell, 2), 1 / (noise + cell))


def test_heldout_noise_under_a_general_prior_matches_a_grid_search():
    gen = torch.Generator().manual_seed(3)
    phi = torch.randn(2, 60, 3, generator=gen, dtype=torch.float64)
    w = torch.randn(2, 3, generator=gen, dtype=torch.float64)
    y = torch.einsum("tnf,tf->nt", phi, w) + 0.5 * torch.randn(
        60, 2, generator=gen, dtype=torch.float64
    )
    train = linear_stats(phi[:, :6], y[:6])
    # A task prior: a mean off the true weights (bias 0) and a strong, correlated precision.
    m0 = torch.cat([w, torch.zeros(2, 1, dtype=torch.float64)], 1) + 0.5
    A = torch.randn(2, 4, 4, generator=gen, dtype=torch.float64)
    L0 = 20.0 * (A @ A.transpose(1, 2) + torch.eye(4, dtype=torch.float64))
    start = torch.tensor([1.0, 1.0], dtype=torch.float64)
    found = heldout_noise_var(train, phi[:, 6:], y[6:], 1.0, start, 10, prior=(m0, L0))
    # Reference: the held-out Gaussian log-likelihood under the posterior given the training
    # rows, written out with numpy on a grid of 4,001 log-variances in start +- 7 (step
    # 0.0035: the bounded Brent search's optimum is within a grid step, 0.35% in variance).
    P = np.concatenate([phi[:, 6:].numpy(), np.ones((2, 54, 1))], axis=2)
    Ptr = np.concatenate([phi[:, :6].numpy(), np.ones((2, 6, 1))], axis=2)
    for t in range(2):
        best, best_ll = None, -np.inf
        for log_var in np.linspace(-7.0, 7.0, 4001):
            var = np.exp(log_var)
            prec = L0[t].numpy() + Ptr[t].T @ Ptr[t] / var
            mean = np.linalg.solve(
                prec, L0[t].numpy() @ m0[t].numpy() + Ptr[t].T @ y[:6, t].numpy() / var
            )
            pred_var = np.einsum("bi,ij,bj->b", P[t], np.linalg.inv(prec), P[t]) + var
            resid = y[6:, t].numpy() - P[t] @ mean
            ll = -0.5 * np.sum(np.log(pred_var) + resid**2 / pred_var)
            if ll > best_ll:
                best, best_ll = var, ll
        np.testing.assert_allclose(float(found[t]), best, rtol=0.01)
    # The isotropic prior gives another answer on these 6 training rows: the prior matters.
    iso = heldout_noise_var(train, phi[:, 6:], y[6:], 1.0, start, 10)
    assert not torch.allclose(iso, found, rtol=0.05)
