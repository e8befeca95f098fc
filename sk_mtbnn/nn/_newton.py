"""Damped Newton ascent of each task's log evidence in ``(log v, log s2)``, batched over tasks.

The evidence of the ``T`` heads is ``T`` independent two-variable problems.
After one eigendecomposition (:func:`sk_mtbnn.nn.evidence._spectrum`) each has
an ``O(D)`` value, gradient and Hessian, so a Newton method solves all of them
at once in a few vectorised steps, each task with its own step length: unlike
one quasi-Newton run over all ``2T`` variables, whose line searches are shared
(which was measured to leave a task in the wrong mode), and unlike ``T``
separate scipy runs, whose per-call overhead dominated small fits.

Per task (Bishop, 2006, Eq. 3.86; ``a = 1/v``, ``b = 1/(s2 + alpha)``,
``d_i = a + b s_i`` with ``s_i`` the gram matrix's eigenvalues and ``z_i`` the
projections of ``Phi^T y`` on its eigenvectors)::

    2 L = D log a + N log b - b y^T y + b^2 sum z_i^2/d_i - sum log d_i - N log 2 pi

whose first and second derivatives in ``a`` and ``b`` are sums over ``i`` of
powers of ``1/d_i`` (:func:`_derivatives`), taken to ``(log v, log s2)`` by the
chain rule. Each step solves ``(-H + mu I) delta = g`` with ``mu`` just large
enough to make the matrix positive definite (a Levenberg-Marquardt damping,
so a step always ascends), is projected on the bounds, and is halved until
the evidence rises by Armijo's rule.
"""

from __future__ import annotations

import math

import numpy as np

_LOG_2PI = math.log(2.0 * math.pi)

#: Newton steps at most (each a few vectorised O(T D) operations).
MAX_STEPS = 100
#: Points of the starting grid along log v and along log s2.
GRID_PRIOR, GRID_NOISE = 13, 11
#: Largest change of a log variance in one step (a trust region).
MAX_STEP = 1.0
#: Halvings of a step at most before a task is taken as converged.
MAX_HALVINGS = 40
#: A task has converged when its projected gradient (nats per unit log variance) is below this.
GRADIENT_TOLERANCE = 1e-8


def _precisions(x: np.ndarray, alpha: float, log_det_noise, count):
    """``a = 1/v``, ``b = 1/(s2 + alpha)``, the noise term of the evidence and ``s2``.

    Over any leading dimensions of ``x`` ``(..., T, 2)``. With
    ``log_det_noise`` (per-row noise folded into the statistics) ``b = 1`` and
    that term is ``log_det_noise``.
    """
    a = np.exp(-x[..., 0])
    if log_det_noise is None:
        noise = np.exp(x[..., 1])
        b = 1.0 / (noise + alpha)
        return a, b, count * np.log(b), noise
    return a, np.ones_like(a), np.broadcast_to(log_det_noise, a.shape), np.zeros_like(a)


def _value(spec, a, b, log_det, fit, log_d):
    """Eq. (3.86) of Bishop (2006) from ``fit = sum z_i^2 / d_i`` and ``log_d = sum log d_i``."""
    dim = spec.values.shape[1]
    return 0.5 * (
        dim * np.log(a) + log_det - b * spec.yy + b**2 * fit - log_d - spec.count * _LOG_2PI
    )


def log_evidence(x: np.ndarray, spec, alpha: float, log_det_noise=None) -> np.ndarray:
    """Log evidence ``(..., T)`` at points ``x`` ``(..., T, 2)`` of ``(log v, log s2)``."""
    a, b, log_det, _ = _precisions(x, alpha, log_det_noise, spec.count)
    d = a[..., None] + b[..., None] * spec.values
    return _value(spec, a, b, log_det, (spec.proj2 / d).sum(-1), np.log(d).sum(-1))


def signed_log_evidence(x, terms, alpha: float, log_det_noise=None) -> np.ndarray:
    """Sum of ``sign * log_evidence`` over ``terms = [(spectrum, sign), ...]``.

    One term is the evidence; ``[(all rows, +1), (training rows, -1)]`` is the
    conditional evidence ``log p(y_valid | y_train)``.
    """
    return sum(sign * log_evidence(x, spec, alpha, log_det_noise) for spec, sign in terms)


def _derivatives(x: np.ndarray, spec, alpha: float, log_det_noise):
    """Log evidence ``(T,)``, gradient ``(T, 2)`` and Hessian ``(T, 2, 2)`` in ``x`` ``(T, 2)``.

    ``x[:, 0]`` is ``log v`` and ``x[:, 1]`` is ``log s2``. With
    ``log_det_noise`` the noise does not vary: its derivatives are zero.
    """
    values, proj2, yy, count = spec
    dim = values.shape[1]
    a, b, log_det, noise = _precisions(x, alpha, log_det_noise, count)
    d = a[:, None] + b[:, None] * values
    inv = 1.0 / d
    q1 = proj2 * inv
    q2 = q1 * inv
    q3 = q2 * inv
    s1 = q1.sum(1)
    lml = _value(spec, a, b, log_det, s1, np.log(d).sum(1))
    # Derivatives in a and b (each sum over the eigen-directions).
    l_a = 0.5 * (dim / a - b**2 * q2.sum(1) - inv.sum(1))
    l_aa = 0.5 * (-dim / a**2 + 2 * b**2 * q3.sum(1) + (inv**2).sum(1))
    grad = np.zeros((len(a), 2))
    hess = np.zeros((len(a), 2, 2))
    # Chain rule for u = log v: da/du = -a, d2a/du2 = a.
    grad[:, 0] = -a * l_a
    hess[:, 0, 0] = l_aa * a**2 + l_a * a
    if log_det_noise is None:
        qs2 = (q2 * values).sum(1)
        l_b = 0.5 * (count / b - yy + 2 * b * s1 - b**2 * qs2 - (values * inv).sum(1))
        l_ab = 0.5 * (
            -2 * b * q2.sum(1) + 2 * b**2 * (q3 * values).sum(1) + (values * inv**2).sum(1)
        )
        l_bb = 0.5 * (
            -count / b**2
            + 2 * s1
            - 4 * b * qs2
            + 2 * b**2 * (q3 * values**2).sum(1)
            + ((values * inv) ** 2).sum(1)
        )
        # w = log s2, b = 1 / (e^w + alpha): db/dw = -e^w b^2, d2b/dw2 = db/dw + 2 e^2w b^3.
        b_w = -noise * b**2
        b_ww = b_w + 2 * noise**2 * b**3
        grad[:, 1] = l_b * b_w
        hess[:, 0, 1] = hess[:, 1, 0] = -a * b_w * l_ab
        hess[:, 1, 1] = l_bb * b_w**2 + l_b * b_ww
    return lml, grad, hess


def grid_start(terms, alpha: float, lower: np.ndarray, upper: np.ndarray, log_det_noise=None):
    """Per task, the best point ``(T, 2)`` of a grid over the bounds of ``(log v, log s2)``.

    :data:`GRID_PRIOR` by :data:`GRID_NOISE` points, about a factor 6 apart:
    finer than the basins of the evidence's modes (a "noise" and a "signal"
    one can be 170 nats apart), so the Newton ascent from there ends in the
    best mode rather than in the nearest one.
    """
    n_tasks = len(lower)
    u = np.linspace(0.0, 1.0, GRID_PRIOR)
    w = np.linspace(0.0, 1.0, GRID_NOISE)
    uu, ww = (g.ravel() for g in np.meshgrid(u, w, indexing="ij"))
    share = np.stack([uu, ww], axis=-1)[:, None, :]  # (G, 1, 2)
    points = lower[None] + share * (upper - lower)[None]  # (G, T, 2)
    total = signed_log_evidence(points, terms, alpha, log_det_noise)
    return points[np.argmax(total, axis=0), np.arange(n_tasks)]


def _signed(x, terms, alpha, log_det_noise):
    """Sum of ``sign * _derivatives`` over ``terms = [(spectrum, sign), ...]``."""
    total = None
    for spec, sign in terms:
        parts = _derivatives(x, spec, alpha, log_det_noise)
        total = (
            [sign * p for p in parts]
            if total is None
            else [t + sign * p for t, p in zip(total, parts)]
        )
    return total


def maximise(
    x0: np.ndarray,
    terms,
    alpha: float,
    lower: np.ndarray,
    upper: np.ndarray,
    log_det_noise=None,
    max_steps: int = MAX_STEPS,
) -> np.ndarray:
    """Local maximiser ``(T, 2)`` of each task's signed log evidence from ``x0``, within bounds.

    ``lower`` and ``upper`` ``(T, 2)`` bound ``(log v, log s2)``; a variable
    with equal bounds stays fixed (a known noise).
    """
    x = np.clip(np.array(x0, dtype=np.float64), lower, upper)
    fixed = lower >= upper
    active = np.ones(len(x), dtype=bool)
    value, grad, hess = _signed(x, terms, alpha, log_det_noise)
    for _ in range(max_steps):
        # Variables at a bound whose gradient points outwards do not move this step.
        held = fixed | ((x <= lower) & (grad < 0)) | ((x >= upper) & (grad > 0))
        g = np.where(held, 0.0, grad)
        active &= np.abs(g).max(1) > GRADIENT_TOLERANCE
        if not active.any():
            break
        m = -hess.copy()
        m[:, 0, 1] = np.where(held.any(1), 0.0, m[:, 0, 1])
        m[:, 1, 0] = m[:, 0, 1]
        for k in range(2):
            m[:, k, k] = np.where(held[:, k], 1.0, m[:, k, k])
        # Levenberg-Marquardt damping: the smallest eigenvalue of M + mu I is positive.
        half_trace = 0.5 * (m[:, 0, 0] + m[:, 1, 1])
        root = np.sqrt(0.25 * (m[:, 0, 0] - m[:, 1, 1]) ** 2 + m[:, 0, 1] ** 2)
        smallest = half_trace - root
        scale = np.maximum(np.abs(half_trace) + root, 1e-12)
        mu = np.where(smallest > 1e-10 * scale, 0.0, 1e-6 * scale - smallest)
        m[:, 0, 0] += mu
        m[:, 1, 1] += mu
        det = m[:, 0, 0] * m[:, 1, 1] - m[:, 0, 1] ** 2
        step = np.stack(
            [
                (m[:, 1, 1] * g[:, 0] - m[:, 0, 1] * g[:, 1]) / det,
                (m[:, 0, 0] * g[:, 1] - m[:, 0, 1] * g[:, 0]) / det,
            ],
            axis=1,
        )
        step = np.where(held | ~active[:, None], 0.0, step)
        # A trust region: at most MAX_STEP in either log variance per step, so that the
        # ascent stays in the basin of its start (the starts pick the modes).
        step = step * np.minimum(1.0, MAX_STEP / np.maximum(np.abs(step).max(1), 1e-300))[:, None]
        length = np.ones(len(x))
        pending = active.copy()
        new_x, new = x, (value, grad, hess)
        for _ in range(MAX_HALVINGS):
            trial = np.clip(x + length[:, None] * step, lower, upper)
            trial_value, trial_grad, trial_hess = _signed(trial, terms, alpha, log_det_noise)
            rise = (g * (trial - x)).sum(1)
            ok = pending & (trial_value >= value + 1e-4 * rise)
            new_x = np.where(ok[:, None], trial, new_x)
            new = (
                np.where(ok, trial_value, new[0]),
                np.where(ok[:, None], trial_grad, new[1]),
                np.where(ok[:, None, None], trial_hess, new[2]),
            )
            pending &= ~ok
            if not pending.any():
                break
            length = np.where(pending, 0.5 * length, length)
        # A task whose step cannot be made to ascend is at its maximum (to rounding).
        active &= ~pending
        progress = np.abs(new[0] - value) > 1e-13 * np.maximum(1.0, np.abs(value))
        active &= progress
        x, (value, grad, hess) = new_x, new
    return x
