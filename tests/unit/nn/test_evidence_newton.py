"""The damped Newton ascent of the evidence against finite differences and multi-start L-BFGS-B."""

import numpy as np
import pytest
import torch
from scipy.optimize import minimize, minimize_scalar

from sk_mtbnn.nn import _newton
from sk_mtbnn.nn.blr import linear_stats
from sk_mtbnn.nn.evidence import (
    NOISE_VAR_BOUNDS,
    PRIOR_VAR_BOUNDS,
    _spectrum,
    maximise_evidence,
)


def _negative_log_evidence(x, spec, alpha, log_det_noise):
    """Reference: ``-sum_t log p(y_t)``, its gradient in ``x = (log v..., log s2...)`` and
    ``log p(y_t)``, written out from Eq. (3.86) of Bishop (2006) in the eigenbasis, with the
    first derivatives in ``a = 1/v`` and ``b = 1/(s2 + alpha)`` taken by hand (the form
    the package's earlier L-BFGS-B objective used; independent of ``_newton``'s code).
    """
    values, proj2, yy, count = spec
    n_tasks, dim = values.shape
    prior_var, noise_var = np.exp(x[:n_tasks]), np.exp(x[n_tasks:])
    a = 1.0 / prior_var
    assert log_det_noise is None
    b = 1.0 / (noise_var + alpha)
    d = a[:, None] + b[:, None] * values
    q = proj2 / d
    lml = 0.5 * (
        dim * np.log(a)
        + count * np.log(b)
        - b * yy
        + b**2 * q.sum(1)
        - np.log(d).sum(1)
        - count * np.log(2 * np.pi)
    )
    d_a = 0.5 * (dim / a - b**2 * (q / d).sum(1) - (1.0 / d).sum(1))
    d_b = 0.5 * (
        count / b - yy + 2 * b * q.sum(1) - b**2 * (q * values / d).sum(1) - (values / d).sum(1)
    )
    grad = np.concatenate([-a * d_a, -(b**2) * noise_var * d_b])
    return -lml.sum(), -grad, lml


def _spec(n=40, f=6, n_tasks=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    phi = torch.randn(n_tasks, n, f, generator=gen, dtype=torch.float64)
    w = (
        torch.randn(n_tasks, f, generator=gen, dtype=torch.float64)
        * torch.tensor([[0.0], [1.0], [3.0]])[:n_tasks]
    )
    y = torch.einsum("tnf,tf->nt", phi, w) + 0.3 * torch.randn(
        n, n_tasks, generator=gen, dtype=torch.float64
    )
    return _spectrum(linear_stats(phi, y))


@pytest.mark.parametrize("alpha", [0.0, 0.2])
def test_gradient_and_hessian_match_finite_differences(alpha):
    spec = _spec()
    x = np.random.RandomState(0).randn(3, 2)
    value, grad, hess = _newton._derivatives(x, spec, alpha, None)
    # The value and gradient against the reference written out above (another code).
    _, neg_grad, lml = _negative_log_evidence(np.concatenate([x[:, 0], x[:, 1]]), spec, alpha, None)
    np.testing.assert_allclose(value, lml, rtol=1e-12)
    np.testing.assert_allclose(grad, -neg_grad.reshape(2, 3).T, rtol=1e-10, atol=1e-12)
    eps = 1e-5
    for k in range(2):
        step = np.zeros_like(x)
        step[:, k] = eps
        up = _newton._derivatives(x + step, spec, alpha, None)[1]
        down = _newton._derivatives(x - step, spec, alpha, None)[1]
        # Central differences: error O(eps^2 * third derivative), about 1e-9 here, and
        # rounding O(machine eps * |grad| / eps), about 1e-10.
        np.testing.assert_allclose((up - down) / (2 * eps), hess[:, :, k], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("seed", range(6))
def test_the_ascent_finds_the_best_of_many_lbfgsb_starts(seed):
    spec = _spec(n=30 + 10 * seed, f=4 + seed, seed=seed)
    found = maximise_evidence_from_spec(spec)
    bounds = [tuple(np.log(PRIOR_VAR_BOUNDS)), tuple(np.log(NOISE_VAR_BOUNDS))]
    rng = np.random.RandomState(seed)
    for t in range(3):
        one = type(spec)(*(a[t : t + 1] for a in spec))
        best = -np.inf
        for _ in range(20):  # a reference: the best of 20 random L-BFGS-B starts in the box
            x0 = [rng.uniform(*bounds[0]), rng.uniform(*bounds[1])]
            result = minimize(
                lambda x, one=one: _negative_log_evidence(x, one, 0.0, None)[:2],
                x0,
                jac=True,
                method="L-BFGS-B",
                bounds=bounds,
                options={"ftol": 1e-14, "gtol": 1e-10},
            )
            best = max(best, -result.fun)
        # Both stop at a gradient below 1e-8: their optima agree to far below 1e-6 nats.
        assert found[t] >= best - 1e-6, (t, found[t], best)


def maximise_evidence_from_spec(spec):
    lower = np.log([[PRIOR_VAR_BOUNDS[0], NOISE_VAR_BOUNDS[0]]] * 3)
    upper = np.log([[PRIOR_VAR_BOUNDS[1], NOISE_VAR_BOUNDS[1]]] * 3)
    terms = [(spec, 1.0)]
    x = _newton.maximise(_newton.grid_start(terms, 0.0, lower, upper), terms, 0.0, lower, upper)
    return _newton._derivatives(x, spec, 0.0, None)[0]


def test_a_fixed_noise_stays_fixed_and_the_prior_is_optimal():
    gen = torch.Generator().manual_seed(4)
    phi = torch.randn(2, 50, 3, generator=gen, dtype=torch.float64)
    y = phi.sum(-1).T + 0.2 * torch.randn(50, 2, generator=gen, dtype=torch.float64)
    ev = maximise_evidence(linear_stats(phi, y), noise_var=0.04)
    np.testing.assert_allclose(ev.noise_var.numpy(), 0.04, rtol=1e-12)
    spec = _spectrum(linear_stats(phi, y))
    for t in range(2):
        one = type(spec)(*(a[t : t + 1] for a in spec))
        # Reference: a bounded scalar search over log v alone (Brent, xatol 1e-10).
        ref = minimize_scalar(
            lambda u, one=one: _negative_log_evidence(np.array([u, np.log(0.04)]), one, 0.0, None)[
                0
            ],
            bounds=tuple(np.log(PRIOR_VAR_BOUNDS)),
            method="bounded",
            options={"xatol": 1e-10},
        )
        np.testing.assert_allclose(float(ev.log_evidence[t]), -ref.fun, rtol=0, atol=1e-7)
