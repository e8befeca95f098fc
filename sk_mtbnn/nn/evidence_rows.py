"""Evidence of Bayesian linear heads with a known noise variance per row.

The noise variance of row ``n`` of task ``t`` is ``s2_t + alpha_n``, with
``alpha`` known (``GaussianProcessRegressor``'s ``alpha`` as an array): in
Eq. (3.86) of Bishop (2006) ``b I`` becomes ``W = diag(1 / (s2 + alpha_n))``
and ``N/2 log b`` becomes ``1/2 sum_n log W_nn``. The weighting changes with
``s2``, so the statistics are formed from the features for every trial
``s2`` (:func:`~sk_mtbnn.nn.blr.linear_stats` with ``weights``).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from .._docstrings import fill_doc
from .blr import LinearStats, linear_stats, row_precisions
from .evidence import (
    NOISE_VAR_BOUNDS,
    PRIOR_VAR_BOUNDS,
    Evidence,
    _cholesky_log_evidence,
    _evidence,
    _numpy,
    _optimise,
    _spectrum,
)


@fill_doc
def log_marginal_likelihood_rows(
    phi: Tensor,
    y: Tensor,
    prior_var: Tensor | float,
    noise_var: Tensor | float,
    alpha: Tensor | float = 0.0,
) -> Tensor:
    """Log evidence with the noise variance ``noise_var + alpha_n`` of row ``n``.

    Parameters
    ----------
    %(rows_phi_y)s
    prior_var, noise_var : float or Tensor of shape (T,)
        Prior variance of the head weights and the fitted noise variance.
    %(rows_alpha)s

    Returns
    -------
    log_evidence : Tensor of shape (T,)
        ``log N(y | 0, v Phi Phi^T + diag(noise_var + alpha))`` per task.

    Examples
    --------
    >>> import torch
    >>> from sk_mtbnn.nn.evidence_rows import log_marginal_likelihood_rows
    >>> phi = torch.zeros(1, 1, 0, dtype=torch.float64)
    >>> y = torch.tensor([[1.0]], dtype=torch.float64)
    >>> lml = log_marginal_likelihood_rows(phi, y, 1.0, 0.5, alpha=0.5)
    >>> round(float(lml[0]), 4)  # log N(1 | 0, 1 + 0.5 + 0.5)
    -1.5155
    """
    n_tasks = phi.shape[0]
    a = 1.0 / torch.as_tensor(prior_var, dtype=phi.dtype).expand(n_tasks)
    noise = torch.as_tensor(noise_var, dtype=phi.dtype).expand(n_tasks)
    stats, log_det = _weighted_stats(phi, y, noise, alpha)
    return _cholesky_log_evidence(stats, a, torch.ones_like(a), log_det)


def _weighted_stats(phi: Tensor, y: Tensor, noise: Tensor, alpha) -> tuple[LinearStats, Tensor]:
    """Statistics weighted by the row precisions, and ``sum_n log W_nn`` per task."""
    weights = row_precisions(noise, alpha, len(y))
    labelled = ~torch.isnan(y)
    log_det = torch.where(labelled, torch.log(weights), 0.0).sum(0)
    return linear_stats(phi, y, weights), log_det


@fill_doc
def maximise_evidence_rows(
    phi: Tensor,
    y: Tensor,
    alpha: Tensor | float = 0.0,
    *,
    noise_var: Tensor | float | None = None,
    prior_var_bounds: tuple[float, float] = PRIOR_VAR_BOUNDS,
    noise_var_bounds: tuple[float, float] = NOISE_VAR_BOUNDS,
    fallback_noise_var: float = 1.0,
    max_iter: int = 500,
    n_search: int = 32,
) -> Evidence:
    """:func:`~sk_mtbnn.nn.evidence.maximise_evidence` with a known noise variance per row.

    The noise of row ``n`` of task ``t`` is ``noise_var_t + alpha_n``. For
    each trial ``noise_var`` the weighted statistics are formed and the prior
    variance is maximised with the precisions folded in (``b = 1``); ``noise_var``
    itself comes from a golden-section search over its logarithm
    (``n_search`` steps, all tasks at once), compared with the noise floor.

    Parameters
    ----------
    %(rows_phi_y)s
    %(rows_alpha)s
    noise_var, prior_var_bounds, noise_var_bounds, fallback_noise_var, \
max_iter
        As in :func:`~sk_mtbnn.nn.evidence.maximise_evidence`.
    n_search : int, default=32
        Golden-section steps; each shrinks the interval of ``log noise_var``
        by 0.618 (32 steps: from the default bounds to within 1e-5).

    Returns
    -------
    evidence : Evidence
        ``prior_var``, ``noise_var`` and ``log_evidence``, each ``(T,)``.

    Examples
    --------
    >>> import torch
    >>> from sk_mtbnn.nn.evidence_rows import maximise_evidence_rows
    >>> gen = torch.Generator().manual_seed(0)
    >>> phi = torch.randn(1, 400, 2, generator=gen, dtype=torch.float64)
    >>> alpha = torch.linspace(0.01, 0.5, 400, dtype=torch.float64)
    >>> noise = (0.1 + alpha).sqrt() * torch.randn(400, generator=gen, dtype=torch.float64)
    >>> y = (phi[0].sum(1) + noise)[:, None]
    >>> ev = maximise_evidence_rows(phi, y, alpha)
    >>> bool(0.03 < float(ev.noise_var[0]) < 0.3)
    True
    """
    n_tasks = phi.shape[0]
    count = (~torch.isnan(y)).sum(0)
    unit = np.ones(n_tasks)
    fixed = np.zeros(n_tasks, dtype=bool)
    warm: list[np.ndarray] = []  # the last prior optimum: a close start for the next

    def evaluate(log_noise: Tensor) -> tuple[np.ndarray, np.ndarray]:
        stats, log_det = _weighted_stats(phi, y, torch.exp(log_noise), alpha)
        spec = _spectrum(stats)
        prior, _, lml = _optimise(
            [(spec, 1.0)],
            0.0,
            unit,
            fixed,
            prior_var_bounds,
            noise_var_bounds,
            max_iter,
            _numpy(log_det),
            prior_start=warm[-1] if warm else None,
        )
        warm.append(prior)
        return np.where(spec.count == 0, 1.0 / spec.values.shape[1], prior), lml

    if noise_var is not None:
        log_noise = torch.log(torch.as_tensor(noise_var, dtype=phi.dtype).expand(n_tasks))
    else:
        lo = torch.full((n_tasks,), math.log(noise_var_bounds[0]), dtype=phi.dtype)
        hi = torch.full_like(lo, math.log(noise_var_bounds[1]))
        objective = lambda x: torch.as_tensor(evaluate(x)[1])  # noqa: E731
        best = _golden_section_max(objective, lo, hi, n_search)
        # The search finds an interior maximum; the noise floor may be better.
        log_noise = torch.where(objective(lo) > objective(best), lo, best)
        log_noise = torch.where(count >= 2, log_noise, math.log(fallback_noise_var))
    prior, lml = evaluate(log_noise)
    return _evidence(prior, _numpy(torch.exp(log_noise)), lml, like=phi)


def _golden_section_max(f, lo: Tensor, hi: Tensor, n_steps: int) -> Tensor:
    """Maximiser of ``f`` (``(T,) -> (T,)``) on ``[lo, hi]`` per task, unimodal ``f``."""
    ratio = (math.sqrt(5.0) - 1.0) / 2.0
    c, d = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fc, fd = f(c), f(d)
    for _ in range(n_steps):
        left = fc > fd  # the maximum lies in [lo, d]
        hi, lo = torch.where(left, d, hi), torch.where(left, lo, c)
        new = torch.where(left, hi - ratio * (hi - lo), lo + ratio * (hi - lo))
        f_new = f(new)
        c, d = torch.where(left, new, d), torch.where(left, c, new)
        fc, fd = torch.where(left, f_new, fd), torch.where(left, fc, f_new)
    return torch.where(fc > fd, c, d)
