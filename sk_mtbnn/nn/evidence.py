"""Evidence (type-II maximum likelihood) of Bayesian linear heads, batched over tasks.

Per task, features ``Phi`` ``(N, D)`` (the constant 1 appended, as everywhere
in :mod:`sk_mtbnn.nn.blr`), targets ``y``, prior ``w ~ N(0, v I)`` and noise
variance ``s2``. With the prior precision ``a = 1 / v`` and the noise precision
``b = 1 / s2`` (Eq. 3.86 of Bishop, *Pattern Recognition and Machine
Learning*, 2006, Section 3.5):

    A = a I + b Phi^T Phi,   m = b A^-1 Phi^T y,
    log p(y) = D/2 log a + N/2 log b - b/2 ||y - Phi m||^2 - a/2 m^T m
               - 1/2 log|A| - N/2 log 2 pi.

After one eigendecomposition of the gram matrix the evidence and its
gradient cost ``O(D)`` per task, and a damped Newton ascent maximises it over
``(log v, log s2)`` within bounds. At an interior maximum MacKay's
conditions hold (Eqs. 3.92 and 3.95 of Bishop): with ``lambda_i`` the
eigenvalues of ``b Phi^T Phi`` and ``gamma = sum_i lambda_i / (a + lambda_i)``,
``a = gamma / m^T m`` and ``1 / b = ||y - Phi m||^2 / (N - gamma)``. (MacKay's
fixed-point iteration of these equations, which scikit-learn's
``BayesianRidge`` runs, can need thousands of steps near a bound.)

A known per-sample noise variance ``alpha_n`` (scikit-learn's
``GaussianProcessRegressor(alpha=...)``) makes the noise of row ``n``
``s2 + alpha_n``: ``b I`` becomes ``W = diag(1 / (s2 + alpha_n))`` and
``N/2 log b`` becomes ``1/2 sum_n log W_nn``. A scalar ``alpha`` keeps the
statistics usable (:func:`maximise_evidence`); an array needs the features
(:mod:`sk_mtbnn.nn.evidence_rows`), because the weighting changes with ``s2``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from .._docstrings import fill_doc
from .blr import LinearStats

_LOG_2PI = math.log(2.0 * math.pi)

#: Default bounds of the prior variance of the head weights.
PRIOR_VAR_BOUNDS = (1e-6, 1e4)
#: Default bounds of the noise variance (in units of the squared targets).
NOISE_VAR_BOUNDS = (1e-6, 1e2)


class Evidence(NamedTuple):
    """Hyper-parameters chosen by evidence maximisation, each ``(T,)``.

    ``prior_var`` is the variance of every head weight (bias included),
    ``noise_var`` the noise variance on top of any known ``alpha``, and
    ``log_evidence`` the log marginal likelihood there (nats).
    """

    prior_var: Tensor
    noise_var: Tensor
    log_evidence: Tensor


class _Spectrum(NamedTuple):
    """The statistics in the eigenbasis of the gram matrix, numpy float64, per task."""

    values: np.ndarray  # (T, D) eigenvalues s_i of Phi^T W Phi, >= 0
    proj2: np.ndarray  # (T, D) squared projections z_i^2 of Phi^T W y on the eigenvectors
    yy: np.ndarray  # (T,)
    count: np.ndarray  # (T,)


def _numpy(t: Tensor) -> np.ndarray:
    return t.detach().to(dtype=torch.float64, device="cpu").numpy()


def _spectrum(stats: LinearStats) -> _Spectrum:
    gram = stats.gram.detach().to(dtype=torch.float64, device="cpu")
    if len(gram) > 1 and all(torch.equal(gram[0], g) for g in gram[1:]):
        # Tasks with the same features and labelled rows (the usual case of a shared
        # backbone without missing labels): one decomposition serves them all.
        values, vectors = (v.expand(len(gram), *v.shape) for v in torch.linalg.eigh(gram[0]))
    else:
        values, vectors = torch.linalg.eigh(gram)
    proj = (vectors.transpose(-1, -2) @ stats.moment.double().cpu().unsqueeze(-1)).squeeze(-1)
    return _Spectrum(
        _numpy(values.clamp_min(0.0)), _numpy(proj) ** 2, _numpy(stats.yy), _numpy(stats.count)
    )


def feature_spectrum(phi: Tensor, y: Tensor) -> _Spectrum:
    """The spectrum of :func:`_spectrum` straight from features ``phi`` ``(T, N, F)``.

    A task with fewer labelled rows ``n`` than head inputs ``D = F + 1`` has
    at most ``n`` non-zero gram eigenvalues, and they are the eigenvalues of
    the ``n x n`` kernel matrix ``K = Phi Phi^T``: with ``K u = s u`` the gram's
    eigenvector is ``Phi^T u / sqrt(s)``, whose projection of ``Phi^T y`` is
    ``sqrt(s) u^T y``. Decomposing ``K`` instead of the ``D x D`` gram costs
    ``O(n^3)`` instead of ``O(D^3)``; the ``D - n`` zero eigenvalues (with zero
    projections) are appended, so the evidence is the same. When any task has
    at least ``D`` labelled rows, every task uses the gram, as :func:`_spectrum`
    does. Both routes compute in float64 (in float32 the gram's round-off
    "zero" eigenvalues, with non-zero projections, make the evidence unbounded).
    """
    from .blr import linear_stats, with_bias

    dim = phi.shape[-1] + 1
    labelled = ~torch.isnan(y)
    counts = labelled.sum(0)
    if int(counts.max()) >= dim:
        return _spectrum(linear_stats(phi.to(torch.float64), y.to(torch.float64)))
    p = with_bias(phi.detach().to(torch.float64))
    yd = y.detach().to(torch.float64)
    values = np.zeros((len(counts), dim))
    proj2 = np.zeros((len(counts), dim))
    yy = np.zeros(len(counts))
    previous = None
    for t in range(len(counts)):
        rows = labelled[:, t]
        pt, yt = p[t][rows], yd[rows, t]
        yy[t] = float(yt @ yt)
        same = previous is not None and torch.equal(rows, previous[0])
        if not (same and torch.equal(pt, previous[1])):
            s, u = torch.linalg.eigh(pt @ pt.T)
            previous = (rows, pt, s.clamp_min(0.0), u)
        s, u = previous[2], previous[3]
        n = len(s)
        values[t, :n] = _numpy(s)
        proj2[t, :n] = _numpy(s * (u.T @ yt) ** 2)
    return _Spectrum(values, proj2, yy, _numpy(counts.to(torch.float64)))


def task_constant_alpha(alpha) -> Tensor | None:
    """A known noise ``alpha`` that is the same on every row, as a 0-d or ``(T,)`` tensor.

    ``alpha`` is a scalar, ``(N,)`` per row or ``(N, T)`` per row and task (as
    in :func:`~sk_mtbnn.nn.evidence_rows.maximise_evidence_rows`). When no
    entry differs from its task's first row -- a scalar ``alpha`` in the units
    of targets standardised task by task is one such ``(N, T)`` array -- the
    statistics-based functions of this module apply; else None.
    """
    a = torch.as_tensor(np.asarray(alpha) if not torch.is_tensor(alpha) else alpha)
    a = a.detach().to(torch.float64)
    if a.ndim == 0:
        return a
    if len(a) and bool((a == a[:1]).all()):
        return a[0]
    return None


def _alpha_values(alpha, n_tasks: int) -> float | np.ndarray:
    """``alpha`` (a float, or one per task) as the numbers of :mod:`sk_mtbnn.nn._newton`."""
    values = np.asarray(_numpy(torch.as_tensor(alpha, dtype=torch.float64)))
    if values.ndim == 0:
        return float(values)
    if values.shape != (n_tasks,):
        raise ValueError(
            f"alpha has shape {values.shape}; the statistics-based evidence takes a scalar or "
            f"one value per task, shape ({n_tasks},). For one value per row use "
            "maximise_evidence_rows."
        )
    return values


def _evidence(prior: np.ndarray, noise: np.ndarray, lml: np.ndarray, like: Tensor) -> Evidence:
    return Evidence(
        *(torch.as_tensor(a, dtype=like.dtype, device=like.device) for a in (prior, noise, lml))
    )


def log_marginal_likelihood(
    stats: LinearStats, prior_var: Tensor | float, noise_var: Tensor | float
) -> Tensor:
    """Log evidence ``log p(y | v, s2)`` of each task's Bayesian linear head.

    Parameters
    ----------
    stats : LinearStats
        Sufficient statistics of the features (bias appended) and targets,
        from :func:`~sk_mtbnn.nn.blr.linear_stats`.
    prior_var : float or Tensor of shape (T,)
        Prior variance ``v`` of every head weight.
    noise_var : float or Tensor of shape (T,)
        Noise variance ``s2``.

    Returns
    -------
    log_evidence : Tensor of shape (T,)
        ``log N(y | 0, v Phi Phi^T + s2 I)`` per task; 0 for a task without
        labels.

    Examples
    --------
    >>> import torch
    >>> from sk_mtbnn.nn.blr import linear_stats
    >>> from sk_mtbnn.nn.evidence import log_marginal_likelihood
    >>> phi = torch.zeros(1, 1, 0, dtype=torch.float64)  # one row, bias only
    >>> y = torch.tensor([[1.0]], dtype=torch.float64)
    >>> lml = log_marginal_likelihood(linear_stats(phi, y), 1.0, 1.0)
    >>> round(float(lml[0]), 4)  # log N(1 | 0, 2)
    -1.5155
    """
    like = stats.moment
    a = 1.0 / torch.as_tensor(prior_var, dtype=like.dtype).expand(len(like))
    b = 1.0 / torch.as_tensor(noise_var, dtype=like.dtype).expand(len(like))
    return _cholesky_log_evidence(stats, a, b, stats.count * torch.log(b))


def _cholesky_log_evidence(stats: LinearStats, a: Tensor, b: Tensor, log_det_noise: Tensor):
    """Eq. (3.86) of Bishop (2006) through a Cholesky factor of ``A``."""
    dim = stats.gram.shape[-1]
    eye = torch.eye(dim, dtype=stats.gram.dtype, device=stats.gram.device)
    precision = a[:, None, None] * eye + b[:, None, None] * stats.gram
    chol = torch.linalg.cholesky(precision)
    rhs = (b[:, None] * stats.moment).unsqueeze(-1)
    # At the posterior mean m = A^-1 b Phi^T y the two data terms combine:
    # b ||y - Phi m||^2 + a m^T m = b y^T y - ||L^-1 b Phi^T y||^2 (A = L L^T).
    half = torch.linalg.solve_triangular(chol, rhs, upper=False).squeeze(-1)
    fit = (b * stats.yy - half.square().sum(-1)).clamp_min(0.0)
    logdet = 2 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
    return 0.5 * (dim * torch.log(a) + log_det_noise - fit - logdet - stats.count * _LOG_2PI)


def _optimise(
    terms: list[tuple[_Spectrum, float]],
    alpha: float,
    noise_start: np.ndarray,
    free_noise: np.ndarray,
    prior_bounds: tuple[float, float],
    noise_bounds: tuple[float, float],
    max_iter: int,
    log_det_noise: np.ndarray | None = None,
    prior_start: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each task's ``(log v, log s2)`` maximised on its own, from the best point of a grid.

    The tasks' objectives are independent, and each is maximised alone, by
    the damped Newton ascent of :mod:`sk_mtbnn.nn._newton` (vectorised over
    the tasks, a step length per task), started at the best point of a grid
    over the bounds (:func:`~sk_mtbnn.nn._newton.grid_start`): the evidence
    can have a "noise" and a "signal" mode (as in scikit-learn's
    ``plot_gpr_noisy`` example), and the local ascent keeps the mode it
    starts in. Measured on the features of a three-task fit: one L-BFGS-B run
    over all tasks at once (which shares its line searches between them) left
    one task in its noise mode (log evidence -85) where its signal mode has
    +86, and so did fixed starts at 50% and 5% of the targets' mean square in
    the noise. Tasks with ``free_noise`` false keep ``noise_start``.
    ``terms`` are as in :func:`~sk_mtbnn.nn._newton.signed_log_evidence`. A
    ``prior_start`` replaces the grid by one start there (a warm start, for
    nearby features). ``max_iter`` bounds the Newton steps.
    """
    from ._newton import grid_start, maximise, signed_log_evidence

    spec = terms[0][0]
    n_tasks = len(spec.count)
    log_noise_start = np.log(np.maximum(noise_start, 1e-300))
    fixed_or = lambda bound: np.where(free_noise, np.log(bound), log_noise_start)  # noqa: E731
    lower = np.column_stack([np.full(n_tasks, np.log(prior_bounds[0])), fixed_or(noise_bounds[0])])
    upper = np.column_stack([np.full(n_tasks, np.log(prior_bounds[1])), fixed_or(noise_bounds[1])])
    if prior_start is None:
        x0 = grid_start(terms, alpha, lower, upper, log_det_noise)
    else:
        x0 = np.column_stack([np.log(prior_start), np.log(noise_start)])
    x = maximise(x0, terms, alpha, lower, upper, log_det_noise, max_iter)
    return np.exp(x[:, 0]), np.exp(x[:, 1]), signed_log_evidence(x, terms, alpha, log_det_noise)


@fill_doc
def maximise_evidence(
    stats: LinearStats | _Spectrum,
    *,
    alpha: float | Tensor = 0.0,
    noise_var: Tensor | float | None = None,
    prior_var_bounds: tuple[float, float] = PRIOR_VAR_BOUNDS,
    noise_var_bounds: tuple[float, float] = NOISE_VAR_BOUNDS,
    fallback_noise_var: float = 1.0,
    max_iter: int = 500,
    warm_start: Evidence | None = None,
) -> Evidence:
    """Prior and noise variance of each task's head that maximise its evidence.

    Parameters
    ----------
    stats : LinearStats or spectrum
        Sufficient statistics (bias appended), float64 recommended; or their
        spectrum from :func:`feature_spectrum`.
    alpha : float or Tensor of shape (T,), default=0.0
        Known noise variance of every row (or of every row of each task),
        added to the fitted ``noise_var`` (``GaussianProcessRegressor``'s
        ``alpha``). For one value per row use
        :func:`~sk_mtbnn.nn.evidence_rows.maximise_evidence_rows`.
    noise_var : float or Tensor of shape (T,), default=None
        Keep the noise variance fixed at this value and fit the prior only.
    prior_var_bounds : tuple of float, default=(1e-6, 1e4)
        Bounds of the prior variance.
    noise_var_bounds : tuple of float, default=(1e-6, 1e2)
        Bounds of the fitted noise variance (on top of ``alpha``), in units of
        the squared targets: the lower bound is a noise floor.
    fallback_noise_var : float, default=1.0
        Noise variance of a task with fewer than two labels, where the
        evidence cannot tell noise from signal (1.0: the variance of
        standardised targets).
    max_iter : int, default=500
        Most Newton steps from each of the two starts.
    warm_start : Evidence, default=None
        One start at these prior and noise variances instead of the two
        default starts (for a search over nearby features, where the optimum
        moves little); ignored when ``noise_var`` is given.

    Returns
    -------
    evidence : Evidence
        ``prior_var``, ``noise_var`` and ``log_evidence``, each ``(T,)``. A
        task without labels gets the prior ``1 / D`` and the fallback noise.

    Examples
    --------
    %(example_linear_data)s
    >>> from sk_mtbnn.nn.evidence import maximise_evidence
    >>> ev = maximise_evidence(linear_stats(phi, y))
    >>> round(float(ev.noise_var[0].sqrt()), 1)
    0.3
    """
    if isinstance(stats, _Spectrum):
        spec, like = stats, torch.zeros((), dtype=torch.float64)
    else:
        spec, like = _spectrum(stats), stats.yy
    count = spec.count
    if noise_var is None:
        free = count >= 2
        start = np.full(len(count), float(fallback_noise_var))
    else:
        free = np.zeros(len(count), dtype=bool)
        start = np.broadcast_to(
            _numpy(torch.as_tensor(noise_var, dtype=torch.float64)), count.shape
        ).copy()
    prior_start = None
    if warm_start is not None and noise_var is None:
        prior_start = _numpy(warm_start.prior_var).copy()
        start = np.where(free, _numpy(warm_start.noise_var), start)
    prior, noise, lml = _optimise(
        [(spec, 1.0)],
        _alpha_values(alpha, len(count)),
        start,
        free,
        prior_var_bounds,
        noise_var_bounds,
        max_iter,
        prior_start=prior_start,
    )
    prior = np.where(count == 0, 1.0 / spec.values.shape[1], prior)
    return _evidence(prior, noise, np.where(count == 0, 0.0, lml), like=like)


def maximise_evidence_of_features(phi: Tensor, y: Tensor, **options) -> Evidence:
    """:func:`maximise_evidence` of features ``phi`` ``(T, N, F)`` and targets ``y`` ``(N, T)``.

    The same result as ``maximise_evidence(linear_stats(phi, y), **options)``,
    through :func:`feature_spectrum`: faster when tasks have fewer labelled
    rows than head inputs. The result is float64, on the CPU.
    """
    return maximise_evidence(feature_spectrum(phi, y), **options)


def log_conditional_evidence(
    train: LinearStats,
    valid: LinearStats,
    prior_var: Tensor | float,
    noise_var: Tensor | float,
) -> Tensor:
    """Conditional log evidence ``log p(y_valid | y_train)`` of each task, ``(T,)``.

    ``log p(y_train, y_valid) - log p(y_train)``: the joint predictive density
    of held-out rows under the posterior given the training rows. Unlike the
    evidence it does not reward features fitted to the rows it scores, which
    makes it the criterion for features trained on ``y_train`` (the
    conditional marginal likelihood of Lotfi et al., ICML 2022, Section 5).
    """
    both = train + valid
    return log_marginal_likelihood(both, prior_var, noise_var) - log_marginal_likelihood(
        train, prior_var, noise_var
    )


@fill_doc
def maximise_conditional_evidence(
    train: LinearStats,
    valid: LinearStats,
    *,
    alpha: float | Tensor = 0.0,
    prior_var_bounds: tuple[float, float] = PRIOR_VAR_BOUNDS,
    noise_var_bounds: tuple[float, float] = NOISE_VAR_BOUNDS,
    fallback_noise_var: float = 1.0,
    max_iter: int = 500,
) -> Evidence:
    """Prior and noise variance that maximise :func:`log_conditional_evidence`.

    Parameters and bounds as in :func:`maximise_evidence`. A task without
    held-out labels keeps the values that maximise its training evidence,
    with a conditional evidence of 0.

    Returns
    -------
    evidence : Evidence
        ``log_evidence`` is ``log p(y_valid | y_train)`` per task.

    Examples
    --------
    %(example_linear_data)s
    >>> from sk_mtbnn.nn.evidence import maximise_conditional_evidence
    >>> train, valid = linear_stats(phi[:, :400], y[:400]), linear_stats(phi[:, 400:], y[400:])
    >>> ev = maximise_conditional_evidence(train, valid)  # noise std fitted on held-out rows
    >>> round(float(ev.noise_var[0].sqrt()), 1)
    0.3
    """
    options = (prior_var_bounds, noise_var_bounds)
    spec_all, spec_train = _spectrum(train + valid), _spectrum(train)
    count = spec_all.count
    free = count >= 2
    start = np.full(len(count), float(fallback_noise_var))
    terms = [(spec_all, 1.0), (spec_train, -1.0)]
    prior, noise, lml = _optimise(
        terms, _alpha_values(alpha, len(count)), start, free, *options, max_iter
    )
    no_valid = _numpy(valid.count) == 0
    if no_valid.any():
        fallback = maximise_evidence(
            train,
            alpha=alpha,
            prior_var_bounds=prior_var_bounds,
            noise_var_bounds=noise_var_bounds,
            fallback_noise_var=fallback_noise_var,
            max_iter=max_iter,
        )
        prior = np.where(no_valid, _numpy(fallback.prior_var), prior)
        noise = np.where(no_valid, _numpy(fallback.noise_var), noise)
    return _evidence(prior, noise, np.where(no_valid, 0.0, lml), like=train.yy)
