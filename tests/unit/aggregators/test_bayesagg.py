"""BayesAgg-MTL: the regression gradient moments against Monte Carlo, the precision-weighted
aggregation against its invariants."""

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


@pytest.mark.parametrize(("loss", "s"), [("regression", 0.3), ("classification", 0.9)])
def test_bayesagg_takes_the_exponent_of_the_loss_family(loss, s):
    gen = torch.Generator().manual_seed(15)
    mu = torch.randn(3, 2, 4, generator=gen, dtype=D64)
    var = torch.rand(3, 2, 4, generator=gen, dtype=D64) + 0.1
    lab = torch.ones(3, 2, dtype=torch.bool)
    agg = BayesAgg(s_regression=0.3, s_classification=0.9, ls_epochs=0)
    agg.reset([3, 3], torch.Generator())
    expected, _ = precision_weighted_mean(mu, var, lab, s)
    torch.testing.assert_close(agg.combine(GradientMoments(mu, var, lab, loss)), expected)


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
