"""A VBLL head trained to convergence on frozen features is exact Bayesian linear regression.

docs/algorithms.rst, alg-vbll: with the noise fixed, minimising the per-sample negative
ELBO over q = N(m, S) (dense S) gives
S = (D / prior_scale I + Phi^T Phi / sigma^2)^-1 and m = S Phi^T y / sigma^2.
"""

import numpy as np
import torch

from sk_mtbnn._training.net import TaskLosses
from sk_mtbnn.nn.blr import linear_stats
from sk_mtbnn.nn.heads import GaussianVBLLHead


def test_trained_dense_head_equals_exact_bayesian_linear_regression():
    torch.manual_seed(0)
    n, F = 200, 3
    phi = torch.randn(1, n, F, dtype=torch.float64)
    w_true = torch.tensor([1.0, -0.5, 0.25], dtype=torch.float64)
    y = (phi[0] @ w_true + 0.3 + 0.2 * torch.randn(n, dtype=torch.float64))[:, None]

    head = GaussianVBLLHead(1, F, covariance="dense", prior_scale=2.0).double()
    with torch.no_grad():
        head.log_noise_std.fill_(np.log(0.25))
    head.log_noise_std.requires_grad_(False)  # sigma fixed
    # The training objective itself: mean expected NLL + (1 / N) * regulariser.
    loss_fn = TaskLosses(torch.tensor([1.0 / n], dtype=torch.float64))
    params = [p for p in head.parameters() if p.requires_grad]
    start_grad = max(
        float(g.abs().max()) for g in torch.autograd.grad(loss_fn(head, phi, y)[0].sum(), params)
    )
    opt = torch.optim.LBFGS(
        params,
        lr=1.0,
        max_iter=500,
        tolerance_grad=1e-12,
        tolerance_change=1e-14,
        line_search_fn="strong_wolfe",
    )

    def closure():
        opt.zero_grad()
        loss = loss_fn(head, phi, y)[0].sum()
        loss.backward()
        return loss

    for _ in range(30):
        opt.step(closure)

    P = np.column_stack([phi[0].numpy(), np.ones(n)])
    D = P.shape[1]
    sigma2 = 0.25**2
    S = np.linalg.inv(D / 2.0 * np.eye(D) + P.T @ P / sigma2)
    m = S @ P.T @ y[:, 0].numpy() / sigma2
    # The loss depends on S only through O(1 / N) terms, so minimising it in
    # float64 pins S down to ~sqrt(eps * N) ~ 1e-6..1e-4 relative; m is
    # determined far more sharply.
    np.testing.assert_allclose(head.mean.detach().numpy()[0], m, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(
        head.covariance.matrix().detach().numpy()[0], S, rtol=2e-4, atol=1e-9
    )

    # Sharper: the exact solution is a stationary point of the training loss.
    head.condition_on(linear_stats(phi, y))
    np.testing.assert_allclose(head.covariance.matrix().detach().numpy()[0], S, rtol=1e-9)
    grads = torch.autograd.grad(loss_fn(head, phi, y)[0].sum(), params)
    # Eight orders of magnitude below the gradient at initialisation: what
    # remains is float64 rounding of sums over N = 200 points.
    assert max(float(g.abs().max()) for g in grads) < 1e-8 * start_grad
