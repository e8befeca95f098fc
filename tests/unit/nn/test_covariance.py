"""Covariance parameterisations against dense-matrix computations and Monte Carlo."""

import numpy as np
import pytest
import torch

from sk_mtbnn.nn.covariance import COVARIANCES, make_covariance

T, D = 3, 5


def perturbed(kind, seed=0):
    """A covariance module with random (non-initial) parameter values."""
    cov = make_covariance(kind, T, D, init_std=0.5, rank=2, seed=seed).double()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in cov.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return cov


@pytest.mark.parametrize("kind", COVARIANCES)
def test_quad_trace_logdet_match_the_dense_matrix(kind):
    cov = perturbed(kind)
    S = cov.matrix().detach().numpy()
    phi = torch.randn(T, 7, D, dtype=torch.float64)
    expected_quad = np.einsum("tbi,tij,tbj->tb", phi.numpy(), S, phi.numpy())
    # float64 throughout: agreement to rounding error.
    np.testing.assert_allclose(cov.quad(phi).detach().numpy(), expected_quad, rtol=1e-10)
    np.testing.assert_allclose(cov.trace().detach().numpy(), np.trace(S, axis1=1, axis2=2))
    np.testing.assert_allclose(
        cov.logdet().detach().numpy(), np.linalg.slogdet(S)[1], rtol=1e-10, atol=1e-12
    )
    assert np.all(np.linalg.eigvalsh(S) > 0)


@pytest.mark.parametrize("kind", COVARIANCES)
def test_samples_have_the_covariance(kind):
    cov = perturbed(kind, seed=1)
    n = 200_000
    with torch.no_grad():
        draws = cov.sample_noise(n, torch.Generator().manual_seed(0)).numpy()  # (n, T, D)
    S = cov.matrix().detach().numpy()
    emp = np.einsum("nti,ntj->tij", draws, draws) / n
    # Standard error of an empirical covariance entry is about
    # sqrt((S_ii S_jj + S_ij^2) / n); allow 5 of them.
    se = np.sqrt((np.einsum("tii,tjj->tij", S, S) + S**2) / n)
    assert np.all(np.abs(emp - S) < 5 * se)
    assert np.abs(draws.mean(0)).max() < 5 * np.sqrt(S.diagonal(axis1=1, axis2=2).max() / n)


def test_dense_set_from_precision_inverts_it():
    cov = perturbed("dense")
    A = torch.randn(T, D, D, dtype=torch.float64)
    precision = A @ A.transpose(1, 2) + torch.eye(D, dtype=torch.float64)
    assert cov.set_from_precision(precision)
    np.testing.assert_allclose(
        cov.matrix().detach().numpy(), np.linalg.inv(precision.numpy()), rtol=1e-9, atol=1e-12
    )


def test_diagonal_set_from_precision_is_the_mean_field_optimum():
    cov = perturbed("diagonal")
    A = torch.randn(T, D, D, dtype=torch.float64)
    precision = A @ A.transpose(1, 2) + torch.eye(D, dtype=torch.float64)
    cov.set_from_precision(precision)
    # The KL(q || N(m, Lambda^-1))-optimal diagonal Gaussian has S_ii = 1 / Lambda_ii.
    expected = 1.0 / np.diagonal(precision.numpy(), axis1=1, axis2=2)
    np.testing.assert_allclose(
        np.diagonal(cov.matrix().detach().numpy(), axis1=1, axis2=2), expected, rtol=1e-12
    )


def test_lowrank_factor_is_not_initialised_at_zero():
    # U = 0 is a stationary point of the loss: a zero factor would never learn.
    cov = make_covariance("lowrank", T, D, init_std=1.0, rank=2)
    assert torch.all(cov.factor.abs().sum((1, 2)) > 0)


def test_unknown_covariance_is_a_clear_error():
    with pytest.raises(ValueError, match="covariance must be one of"):
        make_covariance("full", T, D, 1.0)
