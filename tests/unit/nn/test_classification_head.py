"""Classification heads with Gauss-Newton posteriors: curvature and Newton step against
autograd, Monte Carlo gradient moments against independent draws, the probit
predictive against Monte Carlo, and its limit far from the data."""

import math

import pytest
import torch
import torch.nn.functional as F

from sk_mtbnn.nn.blr import with_bias
from sk_mtbnn.nn.classification_head import (
    ClassificationHead,
    binary_curvature,
    binary_gradient_moments,
    multiclass_gradient_moments,
    newton_step,
    posterior_samples,
    softmax_curvature,
)

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


def assert_two_estimates_agree(mu, var, g, n_ours, n_ref):
    # Two independent Monte Carlo estimates (n_ours and n_ref draws): their
    # difference has standard error sd * sqrt(1/n_ours + 1/n_ref); allow 5.
    spread = math.sqrt(1 / n_ours + 1 / n_ref)
    assert torch.all((mu - g.mean(0)).abs() <= 5 * g.std(0) * spread + 1e-12)
    sd2 = (g - g.mean(0)).square().std(0)
    assert torch.all((var - g.var(0)).abs() <= 5 * sd2 * spread + 1e-9)


def head_with_data(n_classes=(2, 3, 2), n=40, width=3, seed=0, prior_var=2.0):
    gen = torch.Generator().manual_seed(seed)
    head = ClassificationHead(width, n_classes, prior_var).double()
    with torch.no_grad():
        for p in head.parameters():
            p.copy_(0.5 * torch.randn(p.shape, generator=gen, dtype=D64))
    h = torch.randn(n, width, generator=gen, dtype=D64)
    y = torch.stack([torch.randint(0, c, (n,), generator=gen).to(D64) for c in n_classes], dim=1)
    if len(n_classes) == 3:
        y[::5, 1] = float("nan")  # missing labels of the multiclass task
        y[::3, 2] = float("nan")  # and of a binary one
    return head, h, y


# ----------------------------------------------------------------- moments
def test_binary_moments_match_a_large_sample_estimate():
    F_, B = 3, 5
    gen = torch.Generator().manual_seed(4)
    h = torch.randn(B, F_, generator=gen, dtype=D64)
    y = torch.tensor([0.0, 1.0, 1.0, 0.0, 1.0], dtype=D64)
    mean, cov = random_gaussian(F_ + 1, seed=5)
    chol = torch.linalg.cholesky(torch.linalg.inv(cov))
    draws = posterior_samples(mean, chol, 20_000, torch.Generator().manual_seed(6))
    mu, var = binary_gradient_moments(h, y[:, None], draws[None])
    w = torch.distributions.MultivariateNormal(mean, cov).sample((4000,))
    g = mc_gradients(
        h,
        lambda hh, w: F.binary_cross_entropy_with_logits(with_bias(hh) @ w, y, reduction="none"),
        w,
    )
    assert_two_estimates_agree(mu[:, 0], var[:, 0], g, 20_000, 4000)


def test_multiclass_moments_match_a_large_sample_estimate():
    F_, B, C = 3, 4, 3
    gen = torch.Generator().manual_seed(7)
    h = torch.randn(B, F_, generator=gen, dtype=D64)
    y = torch.tensor([0, 2, 1, 2])
    mean_flat, cov = random_gaussian(C * (F_ + 1), seed=8, scale=0.3)
    chol = torch.linalg.cholesky(torch.linalg.inv(cov))
    draws = posterior_samples(mean_flat, chol, 20_000, torch.Generator().manual_seed(9))
    mu, var = multiclass_gradient_moments(h, y, draws.reshape(20_000, C, F_ + 1))
    w = torch.distributions.MultivariateNormal(mean_flat, cov).sample((4000,))
    g = mc_gradients(
        h,
        lambda hh, w: F.cross_entropy(with_bias(hh) @ w.reshape(C, -1).T, y, reduction="none"),
        w,
    )
    assert_two_estimates_agree(mu, var, g, 20_000, 4000)


def test_posterior_samples_have_the_inverse_precision_as_covariance():
    mean, cov = random_gaussian(4, seed=20)
    chol = torch.linalg.cholesky(torch.linalg.inv(cov))
    draws = posterior_samples(mean, chol, 200_000, torch.Generator().manual_seed(0))
    emp = torch.cov(draws.T)
    sd = torch.sqrt(torch.diagonal(cov))
    se = torch.sqrt((torch.outer(sd**2, sd**2) + cov**2) / 200_000)
    assert torch.all((emp - cov).abs() < 5 * se)
    assert torch.all((draws.mean(0) - mean).abs() < 5 * sd / math.sqrt(200_000))


def test_head_moments_are_those_of_each_task_and_neutral_where_unlabelled():
    head, h, y = head_with_data()
    posteriors = head.posteriors(head.curvature(h, y))
    mu, var = head.gradient_moments(h, y, posteriors, 5, torch.Generator().manual_seed(1))
    assert mu.shape == var.shape == (len(h), 3, 3)
    rows = torch.isnan(y[:, 1])
    assert torch.all(mu[rows, 1] == 0) and torch.all(var[rows, 1] == 1)
    # The same draws, task by task through the moment functions: groups are
    # drawn in order (the binary tasks first, stacked), from one generator.
    gen = torch.Generator().manual_seed(1)
    binary = posterior_samples(posteriors[0].mean, posteriors[0].cholesky, 5, gen)
    multi = posterior_samples(posteriors[1].mean, posteriors[1].cholesky, 5, gen)
    mu_b, var_b = binary_gradient_moments(h, torch.nan_to_num(y[:, [0, 2]]), binary)
    torch.testing.assert_close(mu[:, [0, 2]], mu_b)
    torch.testing.assert_close(var[:, [0, 2]], var_b)
    mu_m, _ = multiclass_gradient_moments(h[~rows], y[~rows, 1].long(), multi[0].reshape(5, 3, 4))
    torch.testing.assert_close(mu[~rows, 1], mu_m)


# ------------------------------------------------------ curvature, posterior
@pytest.mark.parametrize("n_classes", [2, 3])
def test_posterior_is_the_ggn_newton_step(n_classes):
    head, h, y = head_with_data(n_classes=(n_classes,), n=12, seed=10)
    gen = torch.Generator().manual_seed(11)
    W = head.weights(0).detach()
    P = W.numel()
    mu0 = 0.1 * torch.randn(1, P, generator=gen, dtype=D64)
    L0 = 2.0 * torch.eye(P, dtype=D64)[None]
    (post,) = head.posteriors(head.curvature(h, y), [(mu0, L0)])
    labels = y[:, 0].long()

    def nll(wflat):
        logits = with_bias(h) @ wflat.reshape(W.shape).T
        if n_classes == 2:
            return F.binary_cross_entropy_with_logits(logits[:, 0], labels.to(D64), reduction="sum")
        return F.cross_entropy(logits, labels, reduction="sum")

    w = W.reshape(-1)
    grad = torch.autograd.functional.jacobian(nll, w)
    # For a linear head the loss Hessian equals the generalised Gauss-Newton
    # matrix, so autograd's Hessian is an independent reference.
    expected_precision = torch.autograd.functional.hessian(nll, w) + L0[0]
    expected_mean = w - torch.linalg.solve(expected_precision, grad + L0[0] @ (w - mu0[0]))
    torch.testing.assert_close(post.precision[0], expected_precision)
    torch.testing.assert_close(post.mean[0], expected_mean)
    torch.testing.assert_close(post.cholesky[0] @ post.cholesky[0].T, expected_precision)


def test_batched_binary_posteriors_equal_one_task_at_a_time():
    gen = torch.Generator().manual_seed(21)
    h = torch.randn(15, 3, generator=gen, dtype=D64)
    y = torch.randint(0, 2, (15, 3), generator=gen).to(D64)
    y[[2, 5, 9], 1] = float("nan")  # task 1 misses three labels
    W = torch.randn(3, 4, generator=gen, dtype=D64)
    m0 = torch.zeros(3, 4, dtype=D64)
    L0 = torch.eye(4, dtype=D64).expand(3, 4, 4)
    batched = newton_step(W, *binary_curvature(h, y, W), m0, L0)
    for t in range(3):
        rows = ~torch.isnan(y[:, t])
        one = newton_step(
            W[t : t + 1],
            *binary_curvature(h[rows], y[rows, t : t + 1], W[t : t + 1]),
            m0[:1],
            L0[:1],
        )
        torch.testing.assert_close(batched.mean[t], one.mean[0])
        torch.testing.assert_close(batched.precision[t], one.precision[0])


def test_softmax_curvature_matches_autograd():
    gen = torch.Generator().manual_seed(22)
    h = torch.randn(9, 2, generator=gen, dtype=D64)
    y = torch.randint(0, 4, (9,), generator=gen)
    W = torch.randn(4, 3, generator=gen, dtype=D64)

    def nll(wflat):
        return F.cross_entropy(with_bias(h) @ wflat.reshape(4, 3).T, y, reduction="sum")

    grad, ggn = softmax_curvature(h, y, W)
    torch.testing.assert_close(grad, torch.autograd.functional.jacobian(nll, W.reshape(-1)))
    torch.testing.assert_close(ggn, torch.autograd.functional.hessian(nll, W.reshape(-1)))


def test_curvature_adds_up_over_row_chunks_and_accepts_per_task_representations():
    head, h, y = head_with_data()
    whole = head.curvature(h, y)
    parts = head.curvature(h[:17], y[:17]) + head.curvature(h[17:], y[17:])
    per_task = head.curvature(h.expand(3, *h.shape), y)
    for a, b, c in zip(
        whole.ggn + whole.grad, parts.ggn + parts.grad, per_task.ggn + per_task.grad
    ):
        torch.testing.assert_close(a, b)
        torch.testing.assert_close(a, c)


def test_condition_on_gives_the_laplace_covariance():
    head, h, y = head_with_data()
    head.condition_on(head.curvature(h, y))
    rows = ~torch.isnan(y[:, 1])
    W = head.weights(1).detach()

    def nll(wflat):
        logits = with_bias(h[rows]) @ wflat.reshape(W.shape).T
        return F.cross_entropy(logits, y[rows, 1].long(), reduction="sum")

    hessian = torch.autograd.functional.hessian(nll, W.reshape(-1))
    expected = torch.linalg.inv(hessian + torch.eye(len(hessian), dtype=D64) / 2.0)
    torch.testing.assert_close(head.covariance(1), expected)


# ----------------------------------------------------------------- predictive
@pytest.mark.parametrize("n", [60, 400])
def test_probit_probabilities_match_monte_carlo_over_the_posterior(n):
    # A tight prior (0.1): a softmax head's GGN is singular along a common
    # shift of all its classes' weights, so that direction keeps the prior
    # variance, which the per-class probit (ignoring the logits' correlations)
    # reads as spread (0.06-0.09 off with prior 2).
    head, h, y = head_with_data(n=n, prior_var=0.1)
    head.condition_on(head.curvature(h, y))
    with torch.no_grad():
        probs = head.predict_proba(h[:10])
    gen = torch.Generator().manual_seed(3)
    for t, c in enumerate(head.n_classes):
        W = head.weights(t).detach().reshape(-1)
        draws = W[:, None] + torch.linalg.cholesky(head.covariance(t)) @ torch.randn(
            len(W), 100_000, generator=gen, dtype=D64
        )
        logits = torch.einsum("bd,cdj->bjc", with_bias(h[:10]), draws.reshape(-1, 4, 100_000))
        mc = torch.sigmoid(logits[..., 0]).mean(1) if c == 2 else logits.softmax(-1).mean(1)
        p = probs[t][:, 1] if c == 2 else probs[t]
        assert probs[t].shape == (10, c)
        torch.testing.assert_close(probs[t].sum(1), torch.ones(10, dtype=D64))
        # The probit approximation is accurate to about 0.02 (MacKay 1992;
        # measured: 0.002 binary, 0.007 multiclass); MC error with 1e5 draws ~2e-3.
        assert float((p - mc).abs().max()) < 0.02


@pytest.mark.parametrize("scale", [1e160, 1e200, 1e300])
def test_predictive_far_from_the_data_is_the_finite_limit(scale):
    # mean and std of the logits are homogeneous of degree 1 in [h, 1]: far
    # away the probit logits tend to mean / sqrt(pi var / 8) of the direction.
    head, h, y = head_with_data()
    head.condition_on(head.curvature(h, y))
    far = head.predict_proba(h[:5] * scale)
    near = head.predict_proba(h[:5] * 1e8)  # the limit up to O(1e-8) relative
    for p, q in zip(far, near):
        assert torch.all(torch.isfinite(p))
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)
