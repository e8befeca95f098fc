"""Heteroscedastic VBLL head: closed forms, the homoscedastic special case, Monte Carlo."""

import numpy as np
import pytest
import torch
from scipy import stats

from sk_mtbnn.nn.heads import GaussianVBLLHead, make_head
from sk_mtbnn.nn.heteroscedastic import HeteroscedasticVBLLHead

F = 3
D = F + 1


def random_head(covariance="dense", n_tasks=2, seed=0, **kw):
    head = HeteroscedasticVBLLHead(n_tasks, F, covariance=covariance, seed=seed, **kw).double()
    gen = torch.Generator().manual_seed(seed + 100)
    with torch.no_grad():
        for p in head.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return head


def batch(n=9, n_tasks=2, seed=0):
    gen = torch.Generator().manual_seed(seed)
    phi = torch.randn(n_tasks, n, F, generator=gen, dtype=torch.float64)
    y = torch.randn(n, n_tasks, generator=gen, dtype=torch.float64)
    return phi, y


def numpy_noise_var(head, phi):
    """``floor + g(a^T phi + b)^2``, ``g = exp`` or softplus, recomputed in numpy."""
    a = head.noise_weight.detach().numpy()
    b = head.noise_bias.detach().numpy()
    z = np.einsum("tbf,tf->tb", phi.numpy(), a) + b[:, None]
    std = np.exp(z) if head.link == "log" else np.logaddexp(0.0, z)
    return head.min_noise_var + std**2


@pytest.mark.parametrize("link", ["log", "softplus"])
def test_noise_variance_is_the_documented_map_with_a_floor(link):
    head = random_head(min_noise_var=0.05, link=link)
    phi, _ = batch()
    np.testing.assert_allclose(head.noise_var(phi).detach(), numpy_noise_var(head, phi))
    assert bool((head.noise_var(phi - 100.0) >= 0.05).all())
    # Initially input-independent at noise_std.
    fresh = HeteroscedasticVBLLHead(2, F, link=link, noise_std=0.3, min_noise_var=0.0)
    torch.testing.assert_close(fresh.noise_var(phi.float()), torch.full((2, 9), 0.09))


@pytest.mark.parametrize("kl_weight", [1.0, 0.25])
def test_weighted_posterior_is_exact_blr_with_known_heteroscedastic_noise(kl_weight):
    head = random_head(prior_scale=2.0)
    phi, y = batch(n=30)
    y[::4, 1] = float("nan")  # missing labels are left out
    # Statistics over two row chunks, summed, as the estimators accumulate them.
    with torch.no_grad():
        stats = head.statistics(phi[:, :13], y[:13]) + head.statistics(phi[:, 13:], y[13:])
    head.condition_on(stats, kl_weight)
    noise = numpy_noise_var(head, phi)
    for t in range(2):
        rows = ~np.isnan(y[:, t].numpy())
        p = np.column_stack([phi[t].numpy(), np.ones(30)])[rows]
        w = 1.0 / noise[t][rows]
        # Lambda = I / s0 + Phi^T W Phi / k, m = Lambda^-1 Phi^T W y / k, s0 = 2 / D.
        precision = np.eye(D) * D / 2.0 + p.T @ (w[:, None] * p) / kl_weight
        mean = np.linalg.solve(precision, p.T @ (w * y[rows, t].numpy()) / kl_weight)
        # float64 linear algebra on a well-conditioned 4 x 4 system.
        np.testing.assert_allclose(head.mean[t].detach(), mean, rtol=1e-9)
        np.testing.assert_allclose(
            head.covariance.matrix()[t].detach(), np.linalg.inv(precision), rtol=1e-9, atol=1e-12
        )
    assert stats.count.tolist() == [30, 30 - 8]


def test_moments_and_losses_are_the_gaussian_closed_forms_per_point():
    head = random_head()
    phi, y = batch()
    pred = head.predict(phi)
    noise = numpy_noise_var(head, phi)
    np.testing.assert_allclose(pred.aleatoric.detach(), noise)
    total = (pred.epistemic + pred.aleatoric).detach().numpy()
    mean = pred.mean.detach().numpy()
    ref = -stats.norm.logpdf(y.T.numpy(), mean, np.sqrt(total))
    np.testing.assert_allclose(head.predictive_nll(phi, y).detach(), ref)
    # -E_q log N(y | w^T phi, s^2) = -log N(y | m^T phi, s^2) + phi^T S phi / (2 s^2).
    epistemic = pred.epistemic.detach().numpy()
    ref = -stats.norm.logpdf(y.T.numpy(), mean, np.sqrt(noise)) + epistemic / (2 * noise)
    np.testing.assert_allclose(head.expected_nll(phi, y).detach(), ref)
    # Phi S Phi^T + diag(sigma^2(phi)): the weights correlate points, the noise does not.
    p = np.concatenate([phi.numpy(), np.ones((2, 9, 1))], axis=-1)
    cov = head.covariance.matrix().detach().numpy()
    ref = p @ cov @ p.transpose(0, 2, 1) + np.einsum("tb,bc->tbc", noise, np.eye(9))
    np.testing.assert_allclose(head.joint_covariance(phi).detach(), ref, rtol=1e-10, atol=1e-12)


def test_beta_nll_weights_the_terms_and_stops_their_gradient():
    plain, weighted = random_head(seed=1), random_head(seed=1, beta=0.5)
    phi, y = batch(seed=1)
    var = plain.noise_var(phi).detach()
    np.testing.assert_allclose(
        weighted.expected_nll(phi, y).detach(), plain.expected_nll(phi, y).detach() * var**0.5
    )
    # The weight is a constant for autograd: the gradient of each beta-NLL
    # term is var^beta times that of the plain term.
    for head in (plain, weighted):
        head.zero_grad()
        head.expected_nll(phi, y)[0, 2].backward()
    np.testing.assert_allclose(weighted.noise_bias.grad, plain.noise_bias.grad * var[0, 2] ** 0.5)
    np.testing.assert_allclose(weighted.mean.grad, plain.mean.grad * var[0, 2] ** 0.5)


@pytest.mark.parametrize("link", ["log", "softplus"])
def test_without_input_dependence_it_is_the_homoscedastic_gaussian_head(link):
    hetero = random_head(covariance="diagonal", min_noise_var=0.0, link=link)
    with torch.no_grad():
        hetero.noise_weight.zero_()
    gauss = GaussianVBLLHead(2, F, covariance="diagonal", seed=0).double()
    gauss.load_state_dict(
        {k: v for k, v in hetero.state_dict().items() if not k.startswith("noise_")},
        strict=False,
    )
    with torch.no_grad():
        gauss.log_noise_std.copy_(
            0.5 * torch.log(hetero.noise_var(torch.zeros(2, 1, F, dtype=torch.float64))[:, 0])
        )
    phi, y = batch()
    for a, b in zip(hetero.predict(phi), gauss.predict(phi)):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(hetero.expected_nll(phi, y), gauss.expected_nll(phi, y))
    torch.testing.assert_close(hetero.regularizer(), gauss.regularizer())
    torch.testing.assert_close(hetero.joint_covariance(phi), gauss.joint_covariance(phi))
    draws = [h.sample(phi, 3, torch.Generator().manual_seed(0)) for h in (hetero, gauss)]
    torch.testing.assert_close(*draws)
    hetero.condition_on(hetero.statistics(phi, y))
    gauss.condition_on(gauss.statistics(phi, y))
    torch.testing.assert_close(hetero.mean, gauss.mean)
    torch.testing.assert_close(hetero.covariance.matrix(), gauss.covariance.matrix())


def test_samples_have_the_predictive_moments():
    head = random_head()
    phi, _ = batch(n=4)
    n = 40000
    with torch.no_grad():
        draws = head.sample(phi, n, torch.Generator().manual_seed(0))
        pred = head.predict(phi)
        cov = head.joint_covariance(phi)
    total = pred.epistemic + pred.aleatoric
    # Standard errors: sqrt(var / n) for the mean, var * sqrt(2 / n) for the
    # variance of a Gaussian; 5 of them (seeded).
    assert bool(((draws.mean(0) - pred.mean).abs() <= 5 * torch.sqrt(total / n)).all())
    centred = draws - pred.mean
    emp = torch.einsum("ntb,ntc->tbc", centred, centred) / n
    se = torch.sqrt((cov**2 + torch.einsum("tb,tc->tbc", total, total)) / n)
    assert bool(((emp - cov).abs() <= 5 * se).all())


def test_make_head_builds_it_and_bad_options_raise():
    head = make_head("heteroscedastic", n_tasks=2, in_features=F, beta=0.5)
    assert isinstance(head, HeteroscedasticVBLLHead) and head.beta == 0.5
    with pytest.raises(ValueError, match="beta"):
        HeteroscedasticVBLLHead(1, F, beta=2.0)
    with pytest.raises(ValueError, match="link"):
        HeteroscedasticVBLLHead(1, F, link="exp")
    with pytest.raises(ValueError, match="min_noise_var"):
        HeteroscedasticVBLLHead(1, F, min_noise_var=-1.0)
