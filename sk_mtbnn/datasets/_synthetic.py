"""Synthetic multi-task regression problems with known structure."""

from __future__ import annotations

import numpy as np
from sklearn.utils import check_random_state

# --------------------------------------------------------------- multi-fidelity


def forrester(x, fidelity="high"):
    """Forrester et al. (2008) function on [0, 1] and its low-fidelity version.

    ``f_high = (6x - 2)^2 sin(12x - 4)``, ``f_low = 0.5 f_high + 10 (x - 0.5) - 5``.

    Parameters
    ----------
    x : array-like of shape (n,) or (n, 1)
        Inputs in [0, 1].
    fidelity : {"high", "low"}, default="high"
        Which fidelity.

    Returns
    -------
    f : ndarray of shape (n,)

    Examples
    --------
    >>> forrester([0.5]).round(4), forrester([0.5], "low").round(4)
    (array([0.9093]), array([-4.5454]))
    """
    x = np.asarray(x, dtype=float).reshape(len(x), -1)[:, 0]
    high = (6 * x - 2) ** 2 * np.sin(12 * x - 4)
    return high if fidelity == "high" else 0.5 * high + 10 * (x - 0.5) - 5


def currin(x, fidelity="high"):
    """Currin et al. (1988) exponential function on [0, 1]^2, two fidelities.

    The low fidelity averages the high one over four shifted points
    (Xiong, Qian & Wu 2013).

    Parameters
    ----------
    x : array-like of shape (n, 2)
        Inputs in the unit square.
    fidelity : {"high", "low"}, default="high"
        Which fidelity.

    Returns
    -------
    f : ndarray of shape (n,)

    Examples
    --------
    >>> import numpy as np
    >>> currin(np.array([[0.5, 0.5]])).round(4)
    array([7.4051])
    """
    x = np.asarray(x, dtype=float)

    def high(x1, x2):
        with np.errstate(divide="ignore"):
            factor = 1 - np.exp(-1 / (2 * x2))
        poly = (2300 * x1**3 + 1900 * x1**2 + 2092 * x1 + 60) / (
            100 * x1**3 + 500 * x1**2 + 4 * x1 + 20
        )
        return factor * poly

    x1, x2 = x[:, 0], x[:, 1]
    if fidelity == "high":
        return high(x1, x2)
    lo2 = np.maximum(0.0, x2 - 0.05)
    return 0.25 * (
        high(x1 + 0.05, x2 + 0.05)
        + high(x1 + 0.05, lo2)
        + high(x1 - 0.05, x2 + 0.05)
        + high(x1 - 0.05, lo2)
    )


#: Input ranges of the borehole function (rw, r, Tu, Hu, Tl, Hl, L, Kw).
BOREHOLE_BOUNDS = np.array(
    [
        [0.05, 0.15],
        [100.0, 50000.0],
        [63070.0, 115600.0],
        [990.0, 1110.0],
        [63.1, 116.0],
        [700.0, 820.0],
        [1120.0, 1680.0],
        [9855.0, 12045.0],
    ]
)


def borehole(x, fidelity="high"):
    """Borehole water-flow function (Harper & Gupta 1983) in physical units, two fidelities.

    The low fidelity (Xiong, Qian & Wu 2013) replaces ``2 pi`` by 5 and the
    constant 1 of the denominator by 1.5.

    Parameters
    ----------
    x : array-like of shape (n, 8)
        ``rw, r, Tu, Hu, Tl, Hl, L, Kw`` within ``BOREHOLE_BOUNDS``.
    fidelity : {"high", "low"}, default="high"
        Which fidelity.

    Returns
    -------
    f : ndarray of shape (n,)
        Water flow in m^3/year.

    Examples
    --------
    >>> from sk_mtbnn.datasets._synthetic import BOREHOLE_BOUNDS
    >>> centre = BOREHOLE_BOUNDS.mean(axis=1, keepdims=True).T
    >>> borehole(centre).round(2)
    array([70.87])
    """
    x = np.asarray(x, dtype=float)
    rw, r, tu, hu, tl, hl, length, kw = x.T
    log_ratio = np.log(r / rw)
    coef, const = (2 * np.pi, 1.0) if fidelity == "high" else (5.0, 1.5)
    return (
        coef
        * tu
        * (hu - hl)
        / (log_ratio * (const + 2 * length * tu / (log_ratio * rw**2 * kw) + tu / tl))
    )


_MULTIFIDELITY = {
    "forrester": (forrester, np.array([[0.0, 1.0]])),
    "currin": (currin, np.array([[0.0, 1.0], [0.0, 1.0]])),
    "borehole": (borehole, BOREHOLE_BOUNDS),
}


def make_multifidelity(
    function="forrester",
    n_samples=200,
    *,
    high_fidelity_fraction=0.25,
    noise=0.0,
    random_state=None,
):
    """Two-fidelity test function as a two-task problem with missing labels.

    Task 0 is the expensive high fidelity, labelled on a random
    ``high_fidelity_fraction`` of the rows; task 1 the cheap low fidelity,
    labelled everywhere. Inputs are uniform over the function's domain.

    Parameters
    ----------
    function : {"forrester", "currin", "borehole"}, default="forrester"
        The test function (1, 2 and 8 inputs).
    n_samples : int, default=200
        Number of rows.
    high_fidelity_fraction : float, default=0.25
        Fraction of rows with a high-fidelity label (the rest are NaN).
    noise : float, default=0.0
        Standard deviation of Gaussian noise, relative to each fidelity's
        standard deviation over the rows.
    random_state : int, RandomState instance or None, default=None
        Seeds inputs, labelling and noise.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples, 2)
        ``y[:, 0]`` high fidelity (NaN where unlabelled), ``y[:, 1]`` low.

    Examples
    --------
    >>> from sk_mtbnn.datasets import make_multifidelity
    >>> X, y = make_multifidelity("borehole", 100, random_state=0)
    >>> X.shape, y.shape, int(np.isnan(y[:, 0]).sum())
    ((100, 8), (100, 2), 75)
    """
    try:
        fn, bounds = _MULTIFIDELITY[function]
    except KeyError:
        raise ValueError(
            f"function must be one of {sorted(_MULTIFIDELITY)}; got {function!r}."
        ) from None
    rng = check_random_state(random_state)
    X = bounds[:, 0] + rng.uniform(size=(n_samples, len(bounds))) * (bounds[:, 1] - bounds[:, 0])
    y = np.column_stack([fn(X, "high"), fn(X, "low")])
    if noise:
        y = y + noise * y.std(0) * rng.standard_normal(y.shape)
    n_high = round(high_fidelity_fraction * n_samples)
    unlabelled = rng.permutation(n_samples)[n_high:]
    y[unlabelled, 0] = np.nan
    return X, y


# ------------------------------------------------------------------------ LMC


def make_multitask_regression(
    n_samples=500,
    *,
    n_features=8,
    n_tasks=3,
    n_latent=2,
    task_groups=None,
    length_scale=None,
    noise=0.1,
    missing_fraction=0.0,
    random_state=None,
    return_function=False,
):
    """Related regression tasks from a linear model of coregionalisation.

    Each task is a mixture ``f_t = sum_l W_tl g_l + v_t h_t`` of ``n_latent``
    latent functions ``g_l`` shared by its group and one function ``h_t`` of
    its own (weight ``v_t``, a fifth of the shared part), all drawn from an
    RBF Gaussian process through 300 random Fourier features. The mixing
    weights of the tasks of one group are a common random vector plus a 30%
    perturbation, so they are strongly related. Inputs are uniform on
    ``[0, 1]^n_features``.

    Parameters
    ----------
    n_samples : int, default=500
        Number of rows.
    n_features : int, default=8
        Number of inputs.
    n_tasks : int, default=3
        Number of tasks.
    n_latent : int, default=2
        Number of shared latent functions.
    task_groups : sequence of int, optional
        Group of each task: tasks mix only the latent functions of their
        group (``n_latent`` per group), so tasks of one group are related and
        tasks of different groups are not. Overrides ``n_tasks``.
    length_scale : float, optional
        RBF length scale of the latent functions; default
        ``sqrt(n_features) / 3`` (random points of the cube are then about
        one length scale apart).
    noise : float, default=0.1
        Standard deviation of the Gaussian observation noise (the noise-free
        tasks have unit variance over the inputs' distribution).
    missing_fraction : float, default=0.0
        Fraction of labels removed at random (NaN).
    random_state : int, RandomState instance or None, default=None
        Seeds the functions, inputs, noise and missing labels.
    return_function : bool, default=False
        Also return the noise-free function ``f(X) -> (n, n_tasks)``.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples, n_tasks)
        Noisy targets, NaN where missing.
    f : callable, optional
        The noise-free task functions.

    Examples
    --------
    >>> from sk_mtbnn.datasets import make_multitask_regression
    >>> X, y = make_multitask_regression(300, missing_fraction=0.3, random_state=0)
    >>> X.shape, y.shape
    ((300, 8), (300, 3))
    """
    rng = check_random_state(random_state)
    groups = np.zeros(n_tasks, dtype=int) if task_groups is None else np.asarray(task_groups)
    n_tasks = len(groups)
    n_groups = int(groups.max()) + 1
    scale = np.sqrt(n_features) / 3 if length_scale is None else float(length_scale)
    n_rff = 300
    n_functions = n_groups * n_latent + n_tasks
    omega = rng.standard_normal((n_functions, n_rff, n_features)) / scale
    phase = rng.uniform(0, 2 * np.pi, size=(n_functions, n_rff))
    amp = rng.standard_normal((n_functions, n_rff)) * np.sqrt(2.0 / n_rff)
    mixing = np.zeros((n_tasks, n_functions))
    group_weights = rng.standard_normal((n_groups, n_latent))
    group_weights /= np.linalg.norm(group_weights, axis=1, keepdims=True)
    for t, g in enumerate(groups):
        # Tasks of a group share a unit mixing direction up to a 30% perturbation.
        weights = group_weights[g] + 0.3 * rng.standard_normal(n_latent) / np.sqrt(n_latent)
        mixing[t, g * n_latent : (g + 1) * n_latent] = weights
        mixing[t, n_groups * n_latent + t] = 0.2 * np.linalg.norm(weights)
    # Normalise each task to unit variance over the input distribution.
    probe = rng.uniform(size=(4000, n_features))

    def raw(X):
        X = np.asarray(X, dtype=float)
        out = np.empty((len(X), n_tasks))
        for start in range(0, len(X), 4096):  # bounded memory for large n
            block = X[start : start + 4096]
            features = np.cos(np.einsum("frd,nd->nfr", omega, block) + phase)
            out[start : start + 4096] = np.einsum("fr,nfr->nf", amp, features) @ mixing.T
        return out

    ref = raw(probe)
    centre, spread = ref.mean(0), ref.std(0)

    def function(X):
        return (raw(X) - centre) / spread

    X = rng.uniform(size=(n_samples, n_features))
    y = function(X) + noise * rng.standard_normal((n_samples, n_tasks))
    if missing_fraction:
        y[rng.uniform(size=y.shape) < missing_fraction] = np.nan
    return (X, y, function) if return_function else (X, y)


def make_multitask_classification(
    n_samples=1000,
    *,
    n_features=10,
    n_tasks=6,
    conflict=0.5,
    label_noise=(0.0, 0.3),
    random_state=None,
):
    """Binary tasks that share structure but pull the representation apart.

    Each task labels ``1[f_t(x) > 0]`` where ``f_t`` comes from
    :func:`make_multitask_regression` with two task groups: the second
    group's functions are ``-conflict`` times the first group's plus a part of
    their own, so the groups want partly opposite features from a shared
    representation. Labels are then flipped at random with a task-specific
    rate spread evenly over ``label_noise``: some tasks are clean, others
    noisy, so their gradients differ in reliability.

    Parameters
    ----------
    n_samples : int, default=1000
        Number of rows.
    n_features : int, default=10
        Number of inputs (uniform on the unit cube).
    n_tasks : int, default=6
        Number of binary tasks (split into two groups).
    conflict : float, default=0.5
        Strength of the opposition between the groups, in [0, 1].
    label_noise : tuple of float, default=(0.0, 0.3)
        Smallest and largest label-flip probability over the tasks.
    random_state : int, RandomState instance or None, default=None
        Seeds the functions, inputs and label noise.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples, n_tasks)
        0/1 labels.

    Examples
    --------
    >>> from sk_mtbnn.datasets import make_multitask_classification
    >>> X, y = make_multitask_classification(200, random_state=0)
    >>> X.shape, y.shape, sorted(set(y.ravel().tolist()))
    ((200, 10), (200, 6), [0, 1])
    """
    rng = check_random_state(random_state)
    half = n_tasks // 2
    groups = [0] * half + [1] * (n_tasks - half)
    X, _, f = make_multitask_regression(
        n_samples,
        n_features=n_features,
        task_groups=groups,
        noise=0.0,
        random_state=rng,
        return_function=True,
    )
    values = f(X)
    values[:, half:] = values[:, half:] - conflict * values[:, : n_tasks - half]
    y = (values > np.median(values, axis=0)).astype(int)
    rates = np.linspace(label_noise[0], label_noise[1], n_tasks)
    flips = rng.uniform(size=y.shape) < rates
    return X, np.where(flips, 1 - y, y)
