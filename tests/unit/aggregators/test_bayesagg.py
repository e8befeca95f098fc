"""BayesAgg-MTL: the regression gradient moments against Monte Carlo and a float64 reference,
the precision-weighted aggregation against its invariants."""

import math

import pytest
import torch

from sk_mtbnn._training.net import regression_gradient_moments
from sk_mtbnn.aggregators import BayesAgg, GradientMoments
from sk_mtbnn.aggregators.bayesagg import check_bayesagg, precision_weighted_mean
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


def moments_by_expansion(h, y, mean, cov):
    """The moments as E[g g^T] - E[g] E[g]^T (the paper's expansion): a float64 reference."""
    hb = with_bias(h)
    a = torch.einsum("tde,be->btd", cov, hb)
    s = hb @ mean.T
    q = (a * hb.unsqueeze(1)).sum(-1)
    Ah = a + s.unsqueeze(-1) * mean
    diag_cov = torch.diagonal(cov, dim1=-2, dim2=-1)
    diag_A, centred = diag_cov + mean.square(), diag_cov - mean.square()
    yy = y.unsqueeze(-1)
    e_g = 2.0 * (Ah - yy * mean)
    third = 2.0 * mean * Ah + s.unsqueeze(-1) * centred
    fourth = 2.0 * Ah.square() + s.square().unsqueeze(-1) * centred + q.unsqueeze(-1) * diag_A
    e_gg = 4.0 * (yy.square() * diag_A - 2.0 * yy * third + fourth)
    return e_g[..., :-1], (e_gg - e_g.square())[..., :-1]


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
    assert mu.shape == (512, 1, 64) and torch.all(var >= 0)


def tight_posteriors(n_rows, n_features=16, n_tasks=3, batch=256, noise=0.1, seed=0):
    """Exact Bayesian linear-regression posteriors of ``n_tasks`` heads on ``n_rows`` rows."""
    gen = torch.Generator().manual_seed(seed)
    dim = n_features + 1
    means, covs = [], []
    for _ in range(n_tasks):
        P = with_bias(torch.randn(n_rows, n_features, generator=gen, dtype=D64))
        y = P @ torch.randn(dim, generator=gen, dtype=D64)
        y = y + noise * torch.randn(n_rows, generator=gen, dtype=D64)
        cov = torch.linalg.inv(torch.eye(dim, dtype=D64) + P.T @ P / noise**2)
        covs.append(0.5 * (cov + cov.T))
        means.append(covs[-1] @ P.T @ y / noise**2)
    mean, cov = torch.stack(means), torch.stack(covs)
    h = torch.randn(batch, n_features, generator=gen, dtype=D64)
    y = with_bias(h) @ mean.T + noise * torch.randn(batch, n_tasks, generator=gen, dtype=D64)
    return [a.float() for a in (h, y, mean, cov)]


def test_regression_variance_is_accurate_in_float32_with_tight_posteriors():
    # N = 1e5 rows make the posteriors tight: E[g^2] and E[g]^2 agree to ~7
    # digits, so computing Var[g] as their difference in float32 cancels (it
    # gave 19% of the variances <= 0 here, and a combined gradient off by
    # 146%). The closed form as a sum of non-negative terms does not.
    h, y, mean, cov = tight_posteriors(100_000)
    mu, var = regression_gradient_moments(h, y, mean, cov)
    # The reference: the paper's expansion, in float64 on the same (float32)
    # inputs; its own cancellation error there is ~1e-7 relative.
    mu64, var64 = moments_by_expansion(*(a.double() for a in (h, y, mean, cov)))
    assert torch.all(var > 0)
    # float32 rounding of non-negative O(1) terms: a relative error of a few
    # 1e-6 (measured 2e-6); 1e-4 leaves room for other summation orders.
    assert float(((var.double() - var64).abs() / var64).max()) < 1e-4
    # The mean's residual m^T h - y is a float32 difference of O(5) terms
    # (absolute error ~1e-6, times |2 m| <= 4): measured 1.2e-5.
    torch.testing.assert_close(mu.double(), mu64, rtol=1e-4, atol=5e-5)
    labelled = torch.ones(y.shape, dtype=torch.bool)
    g, _ = precision_weighted_mean(mu, var, labelled, s=0.5)
    g64, _ = precision_weighted_mean(mu64, var64, labelled, s=0.5)
    # The combined gradient inherits those errors (measured 4e-6 relative).
    assert float((g.double() - g64).norm() / g64.norm()) < 1e-3


def test_regression_variance_with_a_degenerate_covariance():
    # A deterministic weight (zero variance) and zero covariance: Var[g] is
    # that of the remaining Gaussian terms, and the mean that of the point mass.
    h = torch.randn(6, 2, generator=torch.Generator().manual_seed(4), dtype=D64)
    y = torch.randn(6, 1, generator=torch.Generator().manual_seed(5), dtype=D64)
    mean, cov = random_gaussian(3, seed=6)
    cov[0, :] = cov[:, 0] = 0.0  # w_0 known exactly
    mu, var = regression_gradient_moments(h, y, mean[None], cov[None])
    mu_ref, var_ref = moments_by_expansion(h, y, mean[None], cov[None])
    torch.testing.assert_close(mu, mu_ref)
    torch.testing.assert_close(var, var_ref)  # float64: both forms agree to rounding
    point = torch.zeros_like(cov)
    mu0, var0 = regression_gradient_moments(h, y, mean[None], point[None])
    torch.testing.assert_close(var0, torch.zeros_like(var0))
    expected = 2 * mean[:2] * (with_bias(h) @ mean - y[:, 0])[:, None]
    torch.testing.assert_close(mu0[:, 0], expected)


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


def test_bayesagg_returns_the_update_for_the_summed_losses():
    # Per sample, the precision-weighted mean times the number of labelled
    # tasks: with equal variances, the sum of the labelled tasks' gradients.
    gen = torch.Generator().manual_seed(14)
    mu = torch.randn(4, 3, 2, generator=gen, dtype=D64)
    lab = torch.tensor([[1, 1, 1], [1, 0, 1], [0, 0, 1], [0, 0, 0]], dtype=torch.bool)
    agg = BayesAgg(ls_epochs=0)
    agg.reset([3, 3, 3], torch.Generator())
    g = agg.combine(GradientMoments(mu, torch.ones_like(mu), lab, "regression"))
    torch.testing.assert_close(g, (mu * lab.unsqueeze(-1)).sum(1))


@pytest.mark.parametrize(("loss", "s"), [("regression", 0.3), ("classification", 0.9)])
def test_bayesagg_takes_the_exponent_of_the_loss_family(loss, s):
    gen = torch.Generator().manual_seed(15)
    mu = torch.randn(3, 2, 4, generator=gen, dtype=D64)
    var = torch.rand(3, 2, 4, generator=gen, dtype=D64) + 0.1
    lab = torch.ones(3, 2, dtype=torch.bool)
    agg = BayesAgg(s_regression=0.3, s_classification=0.9, ls_epochs=0)
    agg.reset([3, 3], torch.Generator())
    expected, _ = precision_weighted_mean(mu, var, lab, s)
    torch.testing.assert_close(agg.combine(GradientMoments(mu, var, lab, loss)), 2 * expected)


def test_recorded_task_weights_average_over_labelled_samples_and_dimensions():
    agg = BayesAgg(ls_epochs=0, s_regression=1.0)
    agg.reset([4, 4], torch.Generator())
    mu = torch.zeros(2, 2, 2, dtype=D64)
    var = torch.tensor([[[1.0, 1.0], [4.0, 4.0]], [[1.0, 1.0], [1.0, 1.0]]], dtype=D64)
    agg.combine(GradientMoments(mu, var, torch.ones(2, 2, dtype=torch.bool), "regression"))
    agg.end_epoch()
    # Sample 0: weights 0.8 / 0.2; sample 1: 0.5 / 0.5.
    assert agg.task_weights_[0].tolist() == pytest.approx([0.65, 0.35])


def test_warm_up_epochs_are_counted_by_end_epoch():
    agg = BayesAgg(ls_epochs=2)
    agg.reset([1, 1], torch.Generator())
    states = []
    for _ in range(3):
        states.append(agg.warming_up)
        agg.end_epoch()
    assert states == [True, True, False] and len(agg.task_weights_) == 1


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
