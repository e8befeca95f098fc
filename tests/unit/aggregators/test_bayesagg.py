"""BayesAgg-MTL mathematics against Monte Carlo, autograd and its invariants (ALGORITHMS.md §4)."""

import math

import pytest
import torch
import torch.nn.functional as F

from sk_mtbnn.aggregators.bayesagg import (
    BayesAgg,
    binary_curvature,
    binary_gradient_moments,
    check_bayesagg,
    classification_posterior,
    multiclass_gradient_moments,
    newton_step,
    posterior_samples,
    precision_weighted_mean,
    regression_gradient_moments,
)
from sk_mtbnn.nn.blr import with_bias

D64 = torch.float64


def random_gaussian(dim, seed, scale=0.5):
    gen = torch.Generator().manual_seed(seed)
    mean = torch.randn(dim, generator=gen, dtype=D64)
    A = scale * torch.randn(dim, dim, generator=gen, dtype=D64)
    return mean, A @ A.T + 0.05 * torch.eye(dim, dtype=D64)


def mc_gradients(h, loss_of_h, weights):
    """Per-sample gradients dl/dh by autograd, one per weight draw: (J, B, F)."""
    grads = []
    for w in weights:
        hh = h.clone().requires_grad_(True)
        grads.append(torch.autograd.grad(loss_of_h(hh, w).sum(), hh)[0])
    return torch.stack(grads)


def within_mc_error(estimate, samples, k=5.0):
    """|estimate - mean(samples)| below k standard errors of the sample mean."""
    n = samples.shape[0]
    se = samples.std(0) / math.sqrt(n)
    return bool(torch.all((estimate - samples.mean(0)).abs() <= k * se + 1e-12))


def test_regression_moments_match_monte_carlo_with_the_bias():
    F_, B, T = 3, 4, 2
    h = torch.randn(B, F_, generator=torch.Generator().manual_seed(0), dtype=D64)
    y = torch.randn(B, T, generator=torch.Generator().manual_seed(1), dtype=D64)
    gaussians = [random_gaussian(F_ + 1, seed=10 + t) for t in range(T)]
    mean = torch.stack([m for m, _ in gaussians])
    cov = torch.stack([c for _, c in gaussians])
    mu, var = regression_gradient_moments(h, y, mean, cov)
    assert mu.shape == var.shape == (B, T, F_)
    n = 100_000
    for t in range(T):
        w = torch.distributions.MultivariateNormal(mean[t], cov[t]).sample((n,))
        # The squared loss of a head with bias: l = (y - w^T [h, 1])^2.
        g = mc_gradients(h, lambda hh, w, t=t: (y[:, t] - with_bias(hh) @ w).square(), w[:2000])
        assert torch.allclose(
            g, 2 * w[:2000, None, :F_] * ((with_bias(h) @ w[:2000].T).T - y[:, t])[..., None]
        )
        # All draws, in closed form per draw (checked against autograd above).
        g = 2 * w[:, None, :F_] * ((with_bias(h) @ w.T).T - y[:, t])[..., None]  # (n, B, F)
        assert within_mc_error(mu[:, t], g)
        # The variance: compare with the MC variance, whose standard error is
        # estimated from the fourth central moment.
        centred = (g - g.mean(0)).square()
        assert within_mc_error(var[:, t], centred)


def test_regression_moments_never_build_per_sample_matrices():
    # O(D) memory per sample and task: the largest intermediate is (B, T, D).
    h = torch.randn(512, 64, dtype=D64)
    mean, cov = random_gaussian(65, seed=3)
    mu, var = regression_gradient_moments(h, torch.zeros(512, 1, dtype=D64), mean[None], cov[None])
    assert mu.shape == (512, 1, 64) and torch.all(var > -1e-9)


def test_binary_moments_match_a_large_sample_estimate():
    F_, B = 3, 5
    gen = torch.Generator().manual_seed(4)
    h = torch.randn(B, F_, generator=gen, dtype=D64)
    y = torch.tensor([0.0, 1.0, 1.0, 0.0, 1.0], dtype=D64)
    mean, cov = random_gaussian(F_ + 1, seed=5)
    draws = posterior_samples(mean, torch.linalg.inv(cov), 20_000, torch.Generator().manual_seed(6))
    mu, var = binary_gradient_moments(h, y[:, None], draws[None])
    mu, var = mu[:, 0], var[:, 0]
    w = torch.distributions.MultivariateNormal(mean, cov).sample((4000,))
    g = mc_gradients(
        h,
        lambda hh, w: F.binary_cross_entropy_with_logits(with_bias(hh) @ w, y, reduction="none"),
        w,
    )
    # Two independent Monte Carlo estimates (20,000 and 4,000 draws): their
    # difference has standard error sqrt(1/20000 + 1/4000) * sd; allow 5.
    sd = g.std(0)
    assert torch.all((mu - g.mean(0)).abs() <= 5 * sd * math.sqrt(1 / 20_000 + 1 / 4000) + 1e-12)
    sd2 = (g - g.mean(0)).square().std(0)
    assert torch.all((var - g.var(0)).abs() <= 5 * sd2 * math.sqrt(1 / 20_000 + 1 / 4000) + 1e-9)


def test_multiclass_moments_match_a_large_sample_estimate():
    F_, B, C = 3, 4, 3
    gen = torch.Generator().manual_seed(7)
    h = torch.randn(B, F_, generator=gen, dtype=D64)
    y = torch.tensor([0, 2, 1, 2])
    mean_flat, cov = random_gaussian(C * (F_ + 1), seed=8, scale=0.3)
    draws = posterior_samples(
        mean_flat, torch.linalg.inv(cov), 20_000, torch.Generator().manual_seed(9)
    )
    mu, var = multiclass_gradient_moments(h, y, draws.reshape(20_000, C, F_ + 1))
    w = torch.distributions.MultivariateNormal(mean_flat, cov).sample((4000,))
    g = mc_gradients(
        h,
        lambda hh, w: F.cross_entropy(with_bias(hh) @ w.reshape(C, -1).T, y, reduction="none"),
        w,
    )
    sd = g.std(0)
    assert torch.all((mu - g.mean(0)).abs() <= 5 * sd * math.sqrt(1 / 20_000 + 1 / 4000) + 1e-12)
    sd2 = (g - g.mean(0)).square().std(0)
    assert torch.all((var - g.var(0)).abs() <= 5 * sd2 * math.sqrt(1 / 20_000 + 1 / 4000) + 1e-9)


@pytest.mark.parametrize("n_classes", [1, 3])
def test_classification_posterior_is_the_ggn_newton_step(n_classes):
    F_, B = 3, 12
    gen = torch.Generator().manual_seed(10)
    h = torch.randn(B, F_, generator=gen, dtype=D64)
    y = (
        torch.randint(0, 2, (B,), generator=gen)
        if n_classes == 1
        else torch.randint(0, n_classes, (B,), generator=gen)
    )
    W = 0.5 * torch.randn(n_classes, F_ + 1, generator=gen, dtype=D64)
    P = n_classes * (F_ + 1)
    mu0 = 0.1 * torch.randn(P, generator=gen, dtype=D64)
    L0 = 2.0 * torch.eye(P, dtype=D64)
    mean, precision = classification_posterior(h, y, W, mu0, L0)

    def nll(wflat):
        logits = with_bias(h) @ wflat.reshape(n_classes, -1).T
        if n_classes == 1:
            return F.binary_cross_entropy_with_logits(logits[:, 0], y.to(D64), reduction="sum")
        return F.cross_entropy(logits, y, reduction="sum")

    w = W.reshape(-1)
    grad = torch.autograd.functional.jacobian(nll, w)
    # For a linear head the loss Hessian equals the generalised Gauss-Newton
    # matrix, so autograd's Hessian is an independent reference.
    hessian = torch.autograd.functional.hessian(nll, w)
    expected_precision = hessian + L0
    expected_mean = w - torch.linalg.solve(expected_precision, grad + L0 @ (w - mu0))
    torch.testing.assert_close(precision, expected_precision)
    torch.testing.assert_close(mean, expected_mean)


def test_equal_variances_give_the_plain_mean():
    gen = torch.Generator().manual_seed(11)
    mu = torch.randn(6, 3, 4, generator=gen, dtype=D64)
    var = torch.rand(6, 1, 4, generator=gen, dtype=D64).expand(6, 3, 4)
    g, w = precision_weighted_mean(mu, var, torch.ones(6, 3, dtype=torch.bool), s=0.7)
    torch.testing.assert_close(g, mu.mean(1))
    torch.testing.assert_close(w, torch.full_like(w, 1 / 3))


def test_huge_variance_in_one_dimension_gets_almost_no_weight():
    mu = torch.tensor([[[1.0, 1.0], [-1.0, -1.0]]], dtype=D64)
    var = torch.tensor([[[1.0, 1.0], [1e12, 1.0]]], dtype=D64)
    g, w = precision_weighted_mean(mu, var, torch.ones(1, 2, dtype=torch.bool), s=0.5)
    assert w[0, 1, 0] < 1e-5  # task 1, dimension 0
    assert g[0, 0] == pytest.approx(1.0, abs=1e-5)  # task 0 decides dimension 0
    assert g[0, 1] == pytest.approx(0.0, abs=1e-12)  # equal precision: plain mean


def test_aggregation_is_permutation_equivariant_in_the_tasks():
    gen = torch.Generator().manual_seed(12)
    mu = torch.randn(5, 4, 3, generator=gen, dtype=D64)
    var = torch.rand(5, 4, 3, generator=gen, dtype=D64) + 0.1
    lab = torch.rand(5, 4, generator=gen) > 0.3
    perm = torch.tensor([2, 0, 3, 1])
    s = torch.tensor([0.5, 0.3, 1.0, 0.8], dtype=D64)
    g, w = precision_weighted_mean(mu, var, lab, s)
    g_p, w_p = precision_weighted_mean(mu[:, perm], var[:, perm], lab[:, perm], s[perm])
    torch.testing.assert_close(g, g_p)
    torch.testing.assert_close(w[:, perm], w_p)


def test_s_to_zero_gives_the_plain_mean_over_labelled_tasks():
    gen = torch.Generator().manual_seed(13)
    mu = torch.randn(5, 3, 4, generator=gen, dtype=D64)
    var = torch.rand(5, 3, 4, generator=gen, dtype=D64) * 100 + 0.01
    lab = torch.tensor([[1, 1, 1], [1, 0, 1], [0, 0, 1], [1, 1, 0], [1, 1, 1]], dtype=torch.bool)
    g, _ = precision_weighted_mean(mu, var, lab, s=1e-12)
    expected = (mu * lab.unsqueeze(-1)).sum(1) / lab.sum(1, keepdim=True)
    torch.testing.assert_close(g, expected)


def test_sample_without_labels_gets_zero_gradient():
    g, w = precision_weighted_mean(
        torch.ones(2, 2, 3),
        torch.ones(2, 2, 3),
        torch.tensor([[True, False], [False, False]]),
        s=0.5,
    )
    assert torch.all(g[1] == 0) and torch.all(w[1] == 0)
    torch.testing.assert_close(g[0], torch.ones(3))


def test_recorded_task_weights_average_over_labelled_samples_and_dimensions():
    agg = BayesAgg(ls_epochs=0)
    agg.reset([4, 4], torch.Generator())
    mu = torch.zeros(2, 2, 2, dtype=D64)
    var = torch.tensor([[[1.0, 1.0], [4.0, 4.0]], [[1.0, 1.0], [1.0, 1.0]]], dtype=D64)
    agg.combine(mu, var, torch.ones(2, 2, dtype=torch.bool), s=1.0)
    agg.end_epoch()
    # Sample 0: weights 0.8 / 0.2; sample 1: 0.5 / 0.5.
    assert agg.task_weights_[0].tolist() == pytest.approx([0.65, 0.35])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"gamma": 0.0}, "gamma must be a positive"),
        ({"s_regression": 1.5}, "in \\(0, 1\\]"),
        ({"n_mc_samples": 0}, "n_mc_samples must be an integer >= 1"),
    ],
)
def test_hyper_parameters_are_validated(kwargs, match):
    with pytest.raises(ValueError, match=match):
        check_bayesagg(BayesAgg(**kwargs))


def test_posterior_samples_have_the_inverse_precision_as_covariance():
    mean, cov = random_gaussian(4, seed=20)
    draws = posterior_samples(
        mean, torch.linalg.inv(cov), 200_000, torch.Generator().manual_seed(0)
    )
    emp = torch.cov(draws.T)
    sd = torch.sqrt(torch.diagonal(cov))
    se = torch.sqrt((torch.outer(sd**2, sd**2) + cov**2) / 200_000)
    assert torch.all((emp - cov).abs() < 5 * se)
    assert torch.all((draws.mean(0) - mean).abs() < 5 * sd / math.sqrt(200_000))


def test_batched_binary_posteriors_equal_one_task_at_a_time():
    gen = torch.Generator().manual_seed(21)
    h = torch.randn(15, 3, generator=gen, dtype=D64)
    y = torch.randint(0, 2, (15, 3), generator=gen).to(D64)
    y[[2, 5, 9], 1] = float("nan")  # task 1 misses three labels
    W = torch.randn(3, 4, generator=gen, dtype=D64)
    m0 = torch.zeros(3, 4, dtype=D64)
    L0 = torch.eye(4, dtype=D64).expand(3, 4, 4)
    mean, precision = newton_step(W, *binary_curvature(h, y, W), m0, L0)
    for t in range(3):
        rows = ~torch.isnan(y[:, t])
        m_t, p_t = classification_posterior(h[rows], y[rows, t].long(), W[t : t + 1], m0[t], L0[t])
        torch.testing.assert_close(mean[t], m_t)
        torch.testing.assert_close(precision[t], p_t)
