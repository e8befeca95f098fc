"""Bayesian linear regression on network features, from sufficient statistics.

Used to condition the VBLL heads on all training rows after training
(docs/algorithms.rst, alg-vbll), to choose their noise on held-out rows, and for the
regression posteriors of BayesAgg-MTL (§4). Statistics are accumulated over
row chunks, so no ``(N, D)`` feature matrix is ever held for large data.
All functions work on ``T`` tasks at once; features get a constant 1 appended.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor


class LinearStats(NamedTuple):
    """Sufficient statistics of Bayesian linear regression, per task.

    ``gram = Phi^T Phi`` ``(T, D, D)``, ``moment = Phi^T y`` ``(T, D)``,
    ``yy = y^T y`` ``(T,)`` and ``count`` ``(T,)``, over each task's labelled rows.
    """

    gram: Tensor
    moment: Tensor
    yy: Tensor
    count: Tensor

    def __add__(self, other: LinearStats) -> LinearStats:  # type: ignore[override]
        return LinearStats(*(a + b for a, b in zip(self, other)))


def with_bias(phi: Tensor) -> Tensor:
    """Append the constant input 1 to features of shape ``(..., F)``."""
    return torch.cat([phi, phi.new_ones((*phi.shape[:-1], 1))], dim=-1)


def linear_stats(phi: Tensor, y: Tensor, weights: Tensor | None = None) -> LinearStats:
    """Statistics of features ``phi`` ``(T, B, F)`` and targets ``y`` ``(B, T)``.

    NaN targets are missing labels and are left out of their task's sums.
    ``weights`` ``(B, T)``, optional, multiply each row's contribution: with the
    noise precisions ``1 / sigma_n^2`` of :func:`row_precisions` the statistics
    are ``Phi^T W Phi``, ``Phi^T W y`` and ``y^T W y``, and :func:`posterior`
    with a unit noise variance is the posterior under per-row noise. ``count``
    stays the number of labelled rows.
    """
    labelled = ~torch.isnan(y.T)  # (T, B)
    mask = labelled.to(phi.dtype)
    weights = mask if weights is None else mask * torch.where(labelled, weights.T, 0.0)
    p = with_bias(phi)
    y0 = torch.where(labelled, y.T, torch.zeros_like(y.T))
    pw = p * weights.unsqueeze(-1)
    return LinearStats(
        gram=pw.transpose(1, 2) @ p,
        moment=torch.einsum("tbd,tb->td", pw, y0),
        yy=(weights * y0.square()).sum(-1),
        count=mask.sum(-1),
    )


def row_precisions(noise_var: Tensor, alpha: Tensor | float, n_rows: int) -> Tensor:
    """Noise precisions ``1 / (noise_var_t + alpha_n)`` of every row, ``(B, T)``.

    ``alpha`` is a known per-sample noise variance added to the task's noise
    variance ``noise_var`` ``(T,)`` (the ``alpha`` of scikit-learn's
    ``GaussianProcessRegressor``): a scalar, ``(B,)`` or ``(B, T)``.
    """
    alpha = torch.as_tensor(alpha, dtype=noise_var.dtype, device=noise_var.device)
    if alpha.ndim == 1:
        alpha = alpha.unsqueeze(-1)
    return 1.0 / (noise_var + alpha).expand(n_rows, len(noise_var))


def posterior(
    stats: LinearStats,
    noise_var: Tensor,
    prior_mean: Tensor,
    prior_precision: Tensor,
    kl_weight: Tensor | float = 1.0,
) -> tuple[Tensor, Tensor]:
    """Gaussian posterior of the head weights: ``(mean (T, D), precision (T, D, D))``.

    ``Lambda = Lambda_0 + Phi^T Phi / (k sigma^2)`` and
    ``m = Lambda^-1 (Lambda_0 m_0 + Phi^T y / (k sigma^2))``, with the
    likelihood tempered by ``k = kl_weight`` (1: the exact posterior).
    """
    scale = 1.0 / (torch.as_tensor(kl_weight, dtype=noise_var.dtype) * noise_var)
    precision = prior_precision + scale[:, None, None] * stats.gram
    rhs = (prior_precision @ prior_mean.unsqueeze(-1)).squeeze(-1) + scale[:, None] * stats.moment
    chol, info = torch.linalg.cholesky_ex(precision)
    if bool((info != 0).any()):
        raise RuntimeError(
            "The head's posterior cannot be formed: its features are not finite or too "
            "ill-conditioned. Training may have diverged (lower learning_rate), or X has "
            "extreme values (rescale X)."
        )
    mean = torch.cholesky_solve(rhs.unsqueeze(-1), chol).squeeze(-1)
    return mean, precision


def residual_variance(stats: LinearStats, mean: Tensor) -> Tensor:
    """Mean squared residual of ``y`` around ``Phi m`` per task, from the statistics.

    ``(y^T y - 2 m^T Phi^T y + m^T Phi^T Phi m) / N``.
    """
    rss = (
        stats.yy
        - 2 * (mean * stats.moment).sum(-1)
        + torch.einsum("td,tde,te->t", mean, stats.gram, mean)
    )
    return rss / stats.count.clamp_min(1)


def isotropic_prior(n_tasks: int, dim: int, prior_var: float | Tensor, like: Tensor):
    """Zero mean and precision ``I / prior_var`` for ``n_tasks`` heads of ``dim`` weights.

    ``prior_var`` is one variance for every task or a tensor ``(T,)`` of one per task.
    """
    eye = torch.eye(dim, dtype=like.dtype, device=like.device)
    if isinstance(prior_var, Tensor) and prior_var.ndim:
        precision = eye / prior_var.to(like)[:, None, None]
    else:
        precision = (eye / float(prior_var)).expand(n_tasks, dim, dim)
    return like.new_zeros(n_tasks, dim), precision


def heldout_noise_var(
    train: LinearStats,
    phi_valid: Tensor,
    y_valid: Tensor,
    prior_var: float,
    start: Tensor,
    min_labels: int,
    kl_weight: Tensor | float = 1.0,
    prior: tuple[Tensor, Tensor] | None = None,
) -> Tensor:
    """Per task, the noise variance that maximises the held-out likelihood.

    For each candidate ``sigma^2`` the posterior given the training
    statistics -- tempered by ``kl_weight`` ``(T,)`` or a float, as
    :func:`posterior`, so that it is the posterior the head predicts with
    (1: the exact one) -- is formed and the predictive log-density of the held-out rows
    (features ``phi_valid`` ``(T, B, F)``, targets ``y_valid`` ``(B, T)``) is
    evaluated; a bounded 1-D search over ``log sigma^2`` within ``+-7`` of
    ``log start`` picks the best. Conditioning on the training rows inside the
    search prevents the collapse ``sigma -> 0`` that calibrating against a
    fixed posterior allows. Tasks with fewer than ``min_labels`` held-out
    labels keep ``start``. ``prior`` ``(mean (T, D), precision (T, D, D))``
    replaces the isotropic ``N(0, prior_var I)`` (a fitted task prior).
    """
    from scipy.optimize import minimize_scalar

    n_tasks, dim = train.moment.shape
    if prior is None:
        prior_mean, prior_precision = isotropic_prior(1, dim, prior_var, train.moment)
        prior_mean = prior_mean.expand(n_tasks, dim)
        prior_precision = prior_precision.expand(n_tasks, dim, dim)
    else:
        prior_mean, prior_precision = prior
    result = start.clone()
    weights = torch.as_tensor(kl_weight, dtype=train.moment.dtype).expand(n_tasks)
    for t in range(n_tasks):
        rows = ~torch.isnan(y_valid[:, t])
        if int(rows.sum()) < min_labels:
            continue
        p = with_bias(phi_valid[t][rows])
        y = y_valid[rows, t]
        stats_t = LinearStats(*(s[t : t + 1] for s in train))
        k_t = weights[t : t + 1]
        m0, l0 = prior_mean[t : t + 1], prior_precision[t : t + 1]

        def objective(log_var, p=p, y=y, stats_t=stats_t, k_t=k_t, m0=m0, l0=l0):
            var = torch.full((1,), float(torch.exp(torch.tensor(log_var))), dtype=p.dtype)
            mean, precision = posterior(stats_t, var, m0, l0, k_t)
            cov = torch.cholesky_inverse(torch.linalg.cholesky(precision[0]))
            pred_var = ((p @ cov) * p).sum(1) + var
            return float(torch.sum(torch.log(pred_var) + (y - p @ mean[0]).square() / pred_var))

        centre = float(torch.log(start[t]))
        res = minimize_scalar(objective, bounds=(centre - 7.0, centre + 7.0), method="bounded")
        result[t] = float(torch.exp(torch.tensor(res.x)))
    return result
