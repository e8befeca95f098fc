"""VBLL heads against the authors' ``vbll`` package, closed forms and Monte Carlo."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from sk_mtbnn.nn.blr import linear_stats, with_bias
from sk_mtbnn.nn.covariance import COVARIANCES
from sk_mtbnn.nn.heads import GaussianVBLLHead, StudentTVBLLHead, _standard_gamma

vbll = pytest.importorskip("vbll")

F = 4  # features per task; D = F + 1 with the bias input
D = F + 1


@pytest.fixture(autouse=True)
def no_grad():
    with torch.no_grad():
        yield


def random_head(cls, covariance, n_tasks=1, seed=0, **kw):
    head = cls(n_tasks, F, covariance=covariance, rank=2, seed=seed, **kw).double()
    gen = torch.Generator().manual_seed(seed + 100)
    with torch.no_grad():
        for p in head.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return head


def batch(n=9, n_tasks=1, seed=0):
    gen = torch.Generator().manual_seed(seed)
    phi = torch.randn(n_tasks, n, F, generator=gen, dtype=torch.float64)
    y = torch.randn(n, n_tasks, generator=gen, dtype=torch.float64)
    return phi, y


def copy_into_vbll_regression(head, covariance, reg_weight):
    """A ``vbll.Regression`` layer with the same distribution as task 0 of ``head``.

    vbll has no bias: it receives the features with the constant 1 appended.
    Its names differ: ``W_logdiag`` is a log std (diagonal), a log Cholesky
    diagonal (dense) or a log *variance* (low rank), ``noise_logdiag`` a log std.
    """
    layer = vbll.Regression(
        D,
        1,
        reg_weight,
        parameterization=covariance,
        prior_scale=1.0,
        wishart_scale=head.wishart_scale,
        cov_rank=2,
        dof=head.dof,
    ).double()
    cov = head.covariance
    with torch.no_grad():
        layer.W_mean.copy_(head.mean[:1])
        layer.noise_logdiag.copy_(head.log_noise_std[:1])
        if covariance == "diagonal":
            layer.W_logdiag.copy_(cov.log_std[:1])
        elif covariance == "dense":
            layer.W_logdiag.copy_(cov.cholesky_log_diag[:1])
            layer.W_offdiag.copy_(cov.cholesky_offdiag[:1])
        else:
            layer.W_logdiag.copy_(2 * cov.log_std[:1])
            layer.W_offdiag.copy_(cov.factor[:1])
    return layer


@pytest.mark.parametrize("covariance", COVARIANCES)
def test_gaussian_loss_equals_vbll_reference(covariance):
    head = random_head(GaussianVBLLHead, covariance, prior_scale=1.0, wishart_scale=0.3, dof=2.0)
    phi, y = batch()
    reg = 0.1
    ours = (head.expected_nll(phi, y).mean() + reg * head.regularizer()[0]).detach()
    layer = copy_into_vbll_regression(head, covariance, reg)
    theirs = layer(with_bias(phi)[0]).train_loss_fn(y)
    # vbll's KL drops the constant -D/2 of the Gaussian KL; otherwise the
    # objectives are identical, so agreement is to float64 rounding.
    np.testing.assert_allclose(float(ours), float(theirs.detach()) - reg * 0.5 * D, rtol=1e-10)
    ours_val = head.predictive_nll(phi, y).mean().detach()
    np.testing.assert_allclose(float(ours_val), float(layer(with_bias(phi)[0]).val_loss_fn(y)))


@pytest.mark.parametrize("covariance", ["diagonal", "dense", "lowrank"])
def test_student_t_loss_equals_vbll_reference(covariance):
    head = random_head(StudentTVBLLHead, covariance, prior_scale=1.0, wishart_scale=0.4, dof=3.0)
    phi, y = batch(seed=1)
    reg = 0.2
    ours = head.expected_nll(phi, y).mean() + reg * head.regularizer()[0]
    # vbll.tRegression: prior variance prior_scale * 2 / D, noise prior
    # Gamma(dof, rate = 1 / wishart_scale). Ours: prior_scale / D and
    # Gamma(dof / 2, wishart_scale / 2).
    layer = vbll.tRegression(
        D,
        1,
        reg,
        parameterization=covariance,
        prior_scale=0.5,
        wishart_scale=2.0 / 0.4,
        cov_rank=2,
        dof=3.0 / 2,
    ).double()
    cov = head.covariance
    with torch.no_grad():
        layer.W_mean.copy_(head.mean[:1])
        layer.noise_log_dof.copy_(torch.log(head.shape()[:1]))
        layer.noise_log_rate.copy_(head.log_rate[:1])
        if covariance == "diagonal":
            layer.W_logdiag.copy_(cov.log_std[:1])
        elif covariance == "dense":
            layer.W_logdiag.copy_(cov.cholesky_log_diag[:1])
            layer.W_offdiag.copy_(cov.cholesky_offdiag[:1])
        else:
            layer.W_logdiag.copy_(2 * cov.log_std[:1])
            layer.W_offdiag.copy_(cov.factor[:1])
    out = layer(with_bias(phi)[0])
    # vbll drops 0.5 log(2 pi) per point and -D/2 in the KL. Its Gamma KL
    # comes from torch.distributions (lgamma/digamma evaluated differently):
    # agreement to ~1e-9 relative, not to the last bit.
    np.testing.assert_allclose(
        float(ours),
        float(out.train_loss_fn(y)) + 0.5 * math.log(2 * math.pi) - reg * 0.5 * D,
        rtol=1e-8,
    )
    np.testing.assert_allclose(
        float(head.predictive_nll(phi, y).mean()), float(out.val_loss_fn(y)), rtol=1e-8
    )


def test_gaussian_kl_matches_torch_distributions():
    head = random_head(GaussianVBLLHead, "dense", n_tasks=2)
    S = head.covariance.matrix()
    for t in range(2):
        q = torch.distributions.MultivariateNormal(head.mean[t], covariance_matrix=S[t])
        p = torch.distributions.MultivariateNormal(
            torch.zeros(D, dtype=torch.float64), head.prior_var * torch.eye(D, dtype=torch.float64)
        )
        expected = torch.distributions.kl_divergence(q, p)
        np.testing.assert_allclose(float(head.gaussian_kl()[t]), float(expected), rtol=1e-10)


def test_noise_prior_is_inverse_gamma():
    # The inverse-Wishart prior on sigma^2 in one dimension is
    # InvGamma(dof / 2, wishart_scale / 2): differences of the regulariser
    # between two noise levels must equal differences of -log pdf.
    head = GaussianVBLLHead(1, F, covariance="diagonal", wishart_scale=0.3, dof=2.0).double()
    values = []
    for log_std in (-1.0, 0.4):
        with torch.no_grad():
            head.log_noise_std.fill_(log_std)
        values.append(float(head.regularizer()[0] - head.gaussian_kl()[0]))
    ref = stats.invgamma(a=1.0, scale=0.15)
    expected = -(ref.logpdf(np.exp(0.8)) - ref.logpdf(np.exp(-2.0)))
    np.testing.assert_allclose(values[1] - values[0], expected, rtol=1e-10)


def test_gamma_kl_matches_monte_carlo():
    head = random_head(StudentTVBLLHead, "diagonal")
    shape = head.shape().detach().numpy()
    rate = head.rate().detach().numpy()
    gamma_kl = head.regularizer() - head.gaussian_kl(mean_factor=head.shape() / head.rate())
    # KL(q || p) = E_q[log q(tau) - log p(tau)], estimated with scipy's densities
    # (independent of torch): 200,000 draws give a standard error below 1% of
    # this KL (1.8 nats), so rtol=0.03 is more than 3 standard errors.
    rng = np.random.RandomState(0)
    for t in range(len(shape)):
        q = stats.gamma(a=shape[t], scale=1.0 / rate[t])
        p = stats.gamma(a=head.prior_shape, scale=1.0 / head.prior_rate)
        tau = q.rvs(200_000, random_state=rng)
        np.testing.assert_allclose(
            float(gamma_kl[t]), np.mean(q.logpdf(tau) - p.logpdf(tau)), rtol=0.03
        )


@pytest.mark.parametrize("cls", [GaussianVBLLHead, StudentTVBLLHead])
@pytest.mark.parametrize("covariance", COVARIANCES)
def test_expected_nll_is_the_monte_carlo_expectation(cls, covariance):
    head = random_head(cls, covariance)
    phi, y = batch(n=3)
    n = 400_000
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        if cls is GaussianVBLLHead:
            w = head.weight_samples(n, gen)[:, 0]  # (n, D)
            f = with_bias(phi)[0] @ w.T  # (B, n)
            log_lik = -0.5 * (
                math.log(2 * math.pi)
                + 2 * head.log_noise_std[0]
                + (y[:, :1] - f) ** 2 / head.noise_var()[0]
            )
        else:
            tau = _standard_gamma(head.shape(), n, gen)[:, 0] / head.rate()[0]
            w = head.mean[0] + head.covariance.sample_noise(n, gen)[:, 0] / tau.sqrt()[:, None]
            f = with_bias(phi)[0] @ w.T
            log_lik = 0.5 * (torch.log(tau) - math.log(2 * math.pi) - tau * (y[:, :1] - f) ** 2)
        mc = -log_lik.mean(1).numpy()
        se = log_lik.std(1).numpy() / math.sqrt(n)
        exact = head.expected_nll(phi, y)[0].numpy()
    # Monte Carlo standard error per point; 5 of them.
    assert np.all(np.abs(mc - exact) < 5 * se + 1e-12)


@pytest.mark.parametrize("cls", [GaussianVBLLHead, StudentTVBLLHead])
def test_samples_match_predictive_mean_and_joint_covariance(cls):
    head = random_head(cls, "dense")
    if cls is StudentTVBLLHead:
        # With alpha near 2 the variance of 1 / tau is infinite and sample
        # covariances converge very slowly; alpha = 30 keeps moments finite.
        with torch.no_grad():
            head.log_shape_minus_one.fill_(math.log(29.0))
    phi, _ = batch(n=4)
    n = 200_000
    with torch.no_grad():
        draws = head.sample(phi, n, torch.Generator().manual_seed(3))[:, 0].numpy()  # (n, B)
        pred = head.predict(phi)
        cov = head.joint_covariance(phi)[0].numpy()
    np.testing.assert_allclose(np.diag(cov), (pred.epistemic + pred.aleatoric)[0].numpy())
    emp_mean, emp_cov = draws.mean(0), np.cov(draws.T)
    sd = np.sqrt(np.diag(cov))
    # Sample mean within 5 standard errors; the sample covariance within 5
    # standard errors of a Gaussian covariance (the Student-t head's heavier
    # tails inflate them: 8).
    k = 5 if cls is GaussianVBLLHead else 8
    assert np.all(np.abs(emp_mean - pred.mean[0].numpy()) < k * sd / math.sqrt(n))
    se_cov = np.sqrt((np.outer(sd**2, sd**2) + cov**2) / n)
    assert np.all(np.abs(emp_cov - cov) < k * se_cov)


def test_standard_gamma_sampler_matches_scipy():
    shape = torch.tensor([1.3, 4.0, 25.0], dtype=torch.float64)
    draws = _standard_gamma(shape, 20_000, torch.Generator().manual_seed(0)).numpy()
    for k, a in enumerate(shape.tolist()):
        # Kolmogorov-Smirnov: a correct sampler fails at level 1e-3 once in a thousand runs.
        assert stats.kstest(draws[:, k], stats.gamma(a).cdf).pvalue > 1e-3


def blr(phi, y, noise_var, prior_var):
    """Exact Bayesian linear regression in numpy (bias column appended)."""
    P = np.column_stack([phi, np.ones(len(phi))])
    precision = np.eye(P.shape[1]) / prior_var + P.T @ P / noise_var
    cov = np.linalg.inv(precision)
    return cov @ P.T @ y / noise_var, cov


@pytest.mark.parametrize("covariance", ["dense", "diagonal"])
def test_gaussian_condition_on_is_bayesian_linear_regression(covariance):
    head = random_head(GaussianVBLLHead, covariance, n_tasks=2)
    phi, y = batch(n=30, n_tasks=2)
    y_missing = y.clone()
    y_missing[20:, 1] = float("nan")  # task 1 labelled on its first 20 rows only
    head.condition_on(linear_stats(phi, y_missing))
    for t, rows in enumerate([30, 20]):
        m, S = blr(
            phi[t][:rows].numpy(), y[:rows, t].numpy(), float(head.noise_var()[t]), head.prior_var
        )
        np.testing.assert_allclose(head.mean[t].detach().numpy(), m, rtol=1e-9, atol=1e-12)
        got = head.covariance.matrix()[t].detach().numpy()
        if covariance == "dense":
            np.testing.assert_allclose(got, S, rtol=1e-8, atol=1e-12)
        else:
            np.testing.assert_allclose(np.diag(got), 1 / np.diag(np.linalg.inv(S)), rtol=1e-9)


def test_student_t_condition_on_is_the_normal_gamma_posterior():
    head = random_head(StudentTVBLLHead, "dense")
    phi, y = batch(n=25)
    head.condition_on(linear_stats(phi, y))
    P = np.column_stack([phi[0].numpy(), np.ones(25)])
    yy = y[:, 0].numpy()
    precision = np.eye(D) / head.prior_var + P.T @ P
    m = np.linalg.solve(precision, P.T @ yy)
    # Conjugate Normal-Gamma update (prior mean 0).
    a = head.prior_shape + 25 / 2
    b = head.prior_rate + 0.5 * (yy @ yy - m @ precision @ m)
    np.testing.assert_allclose(head.mean[0].detach().numpy(), m, rtol=1e-9)
    np.testing.assert_allclose(
        head.covariance.matrix()[0].detach().numpy(), np.linalg.inv(precision), rtol=1e-8
    )
    np.testing.assert_allclose(float(head.shape()[0]), a, rtol=1e-10)
    np.testing.assert_allclose(float(head.rate()[0]), b, rtol=1e-10)


def test_student_t_predictive_variance_is_finite_and_split():
    head = random_head(StudentTVBLLHead, "diagonal")
    phi, _ = batch(n=5)
    pred = head.predict(phi)
    dof = 2 * head.shape()
    scale2 = (head.covariance.quad(with_bias(phi)) + 1) * head.rate() / head.shape()
    # Var of StudentT(dof, loc, scale) is scale^2 dof / (dof - 2).
    expected = scale2 * dof / (dof - 2)
    np.testing.assert_allclose(
        (pred.epistemic + pred.aleatoric).detach().numpy(), expected.detach().numpy(), rtol=1e-10
    )
    assert float(head.shape().min()) > 1.0


def test_linear_stats_accumulate_over_chunks_and_skip_missing_labels():
    phi, y = batch(n=12, n_tasks=2)
    y[[3, 7], 0] = float("nan")
    whole = linear_stats(phi, y)
    chunked = linear_stats(phi[:, :5], y[:5]) + linear_stats(phi[:, 5:], y[5:])
    for a, b in zip(whole, chunked):
        torch.testing.assert_close(a, b)
    rows = [i for i in range(12) if i not in (3, 7)]
    P = with_bias(phi[0][rows])
    torch.testing.assert_close(whole.gram[0], P.T @ P)
    torch.testing.assert_close(whole.moment[0], P.T @ y[rows, 0])
    assert whole.count.tolist() == [10.0, 12.0]
