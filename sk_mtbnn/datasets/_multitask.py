"""Synthetic multi-task problems with known structure (linear model of coregionalisation)."""

from __future__ import annotations

import numpy as np
from sklearn.utils import check_random_state

from ._validation import check_groups, check_params, check_range

_N_RFF = 300  # random Fourier features per latent function
_OWN_WEIGHT = 0.2  # weight of a task's own function, relative to its shared part


def _lmc_function(rng, groups, n_latent, n_features, group_length_scales, *, orthogonal=False):
    """Noise-free task functions ``f(X) -> (n, n_tasks)``, unit variance on the unit cube.

    Task ``t`` mixes the ``n_latent`` functions of its group and one function
    of its own; every function is an RBF Gaussian-process draw (random
    Fourier features) with its group's length scale. With ``orthogonal``, the
    functions are orthonormalised over the input distribution (Gram-Schmidt on
    4000 probe points), so that tasks of different groups are uncorrelated
    exactly rather than by chance: independent smooth draws on a small cube
    often correlate by 0.5 or more.
    """
    n_tasks, n_groups = len(groups), int(groups.max()) + 1
    n_functions = n_groups * n_latent + n_tasks
    scales = np.concatenate([np.repeat(group_length_scales, n_latent), group_length_scales[groups]])
    with np.errstate(over="ignore"):  # a too small length scale is reported below
        omega = rng.standard_normal((n_functions, _N_RFF, n_features)) / scales[:, None, None]
    phase = rng.uniform(0, 2 * np.pi, size=(n_functions, _N_RFF))
    amp = rng.standard_normal((n_functions, _N_RFF)) * np.sqrt(2.0 / _N_RFF)
    mixing = np.zeros((n_tasks, n_functions))
    group_weights = rng.standard_normal((n_groups, n_latent))
    group_weights /= np.linalg.norm(group_weights, axis=1, keepdims=True)
    for t, g in enumerate(groups):
        # Tasks of a group share a unit mixing direction up to a 30% perturbation.
        weights = group_weights[g] + 0.3 * rng.standard_normal(n_latent) / np.sqrt(n_latent)
        mixing[t, g * n_latent : (g + 1) * n_latent] = weights
        mixing[t, n_groups * n_latent + t] = _OWN_WEIGHT * np.linalg.norm(weights)
    probe = rng.uniform(size=(4000, n_features))

    def latent(X):
        X = np.asarray(X, dtype=float)
        out = np.empty((len(X), n_functions))
        for start in range(0, len(X), 4096):  # bounded memory for large n
            block = X[start : start + 4096]
            features = np.cos(np.einsum("frd,nd->nfr", omega, block) + phase)
            out[start : start + 4096] = np.einsum("fr,nfr->nf", amp, features)
        return out

    with np.errstate(all="ignore"):  # degenerate length scales are reported below
        values = latent(probe)
        shift, mix = np.zeros(n_functions), mixing.T
        independent = True
        if orthogonal:
            shift = values.mean(0)
            r = np.linalg.qr(values - shift, mode="r")
            independent = np.all(np.abs(np.diag(r)) > 1e-6 * np.abs(r).max())
            mix = np.linalg.solve(r, np.eye(n_functions)) * np.sqrt(len(probe)) @ mixing.T
        ref = (values - shift) @ mix
        # Normalise each task to unit variance over the input distribution.
        centre, spread = ref.mean(0), ref.std(0)
        finite = np.isfinite(ref).all() and np.all(spread > 1e-8 * np.abs(centre))
    if not (finite and independent):
        raise ValueError(
            f"length scale(s) {np.unique(group_length_scales).tolist()} make the tasks "
            "numerically constant (too large) or not finite (too small) on the unit cube; "
            "use length scales between about 1e-3 and 1e3."
        )

    def function(X):
        return ((latent(X) - shift) @ mix - centre) / spread

    return function


def _keep_one_label(y, clean, rng):
    """Give every task without any label back one label, so that each task can be fitted."""
    for t in np.flatnonzero(np.isnan(y).all(0)):
        row = rng.randint(len(y))
        y[row, t] = clean[row, t]
    return y


def _resolve_groups(task_groups, n_tasks, n_groups):
    if task_groups is not None:
        if n_groups != 1:
            raise ValueError("pass either task_groups or n_groups, not both.")
        return check_groups(task_groups)
    if n_groups > n_tasks:
        raise ValueError(f"n_groups={n_groups} exceeds n_tasks={n_tasks}: lower n_groups.")
    return np.arange(n_tasks) * n_groups // n_tasks


def make_multitask_regression(
    n_samples=500,
    *,
    n_features=8,
    n_tasks=3,
    n_latent=2,
    n_groups=1,
    task_groups=None,
    length_scale=None,
    noise=0.1,
    missing_fraction=0.0,
    random_state=None,
    return_function=False,
    return_groups=False,
):
    """Related regression tasks from a linear model of coregionalisation.

    Each task is a mixture ``f_t = sum_l W_tl g_l + v_t h_t`` of ``n_latent``
    latent functions ``g_l`` shared by its group and one function ``h_t`` of
    its own (weight ``v_t``, a fifth of the shared part), all drawn from an
    RBF Gaussian process through 300 random Fourier features. The mixing
    weights of the tasks of one group are a common random vector plus a 30%
    perturbation, so they are strongly related; tasks of different groups
    share no function, so they are unrelated. Inputs are uniform on
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
        Number of latent functions of each group, at least 1.
    n_groups : int, default=1
        Number of groups of related tasks: the tasks are split in order into
        ``n_groups`` groups of near-equal size (``n_groups=2`` with six tasks
        gives groups ``[0, 0, 0, 1, 1, 1]``).
    task_groups : sequence of int, default=None
        Group of each task, instead of ``n_groups``; overrides ``n_tasks``.
    length_scale : float, default=None
        RBF length scale of the latent functions, positive; default
        ``sqrt(n_features) / 3`` (random points of the cube are then about
        one length scale apart).
    noise : float, default=0.1
        Standard deviation of the Gaussian observation noise (the noise-free
        tasks have unit variance over the inputs' distribution); non-negative.
    missing_fraction : float, default=0.0
        Fraction of labels removed at random (NaN), in [0, 1); every task
        keeps at least one label.
    random_state : int, RandomState instance or None, default=None
        Seeds the functions, inputs, noise and missing labels.
    return_function : bool, default=False
        Also return the noise-free function ``f(X) -> (n, n_tasks)``.
    return_groups : bool, default=False
        Also return the group of each task (the ground truth of a task
        clustering).

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples, n_tasks)
        Noisy targets, NaN where missing.
    f : callable, optional
        The noise-free task functions, when ``return_function=True``.
    groups : ndarray of shape (n_tasks,), optional
        Group label of each task, when ``return_groups=True`` (after ``f``
        when both are requested).

    Examples
    --------
    >>> from sk_mtbnn.datasets import make_multitask_regression
    >>> X, y = make_multitask_regression(300, missing_fraction=0.3, random_state=0)
    >>> X.shape, y.shape
    ((300, 8), (300, 3))

    Two groups of three related tasks, unrelated across groups:

    >>> X, y, groups = make_multitask_regression(
    ...     200, n_tasks=6, n_groups=2, random_state=0, return_groups=True
    ... )
    >>> groups
    array([0, 0, 0, 1, 1, 1])
    """
    check_params("make_multitask_regression", **locals())
    groups = _resolve_groups(task_groups, n_tasks, n_groups)
    n_tasks = len(groups)
    scale = np.sqrt(n_features) / 3 if length_scale is None else float(length_scale)
    rng = check_random_state(random_state)
    function = _lmc_function(
        rng, groups, n_latent, n_features, np.full(int(groups.max()) + 1, scale)
    )
    X = rng.uniform(size=(n_samples, n_features))
    clean = function(X)
    y = clean + noise * rng.standard_normal((n_samples, n_tasks))
    if missing_fraction:
        labels = y.copy()
        y[rng.uniform(size=y.shape) < missing_fraction] = np.nan
        y = _keep_one_label(y, labels, rng)
    out = (X, y) + ((function,) if return_function else ())
    return out + ((groups,) if return_groups else ())


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

    Each task labels ``1[f_t(x) > median]`` where ``f_t`` comes from
    :func:`make_multitask_regression` with two task groups: the second
    group's functions are ``-conflict`` times the first group's plus a part of
    their own, so the groups want partly opposite features from a shared
    representation. Labels are then flipped at random with a task-specific
    rate spread evenly over ``label_noise``: some tasks are clean, others
    noisy, so their gradients differ in reliability.

    Parameters
    ----------
    n_samples : int, default=1000
        Number of rows, at least 2.
    n_features : int, default=10
        Number of inputs (uniform on the unit cube).
    n_tasks : int, default=6
        Number of binary tasks (split into two groups), at least 2.
    conflict : float, default=0.5
        Strength of the opposition between the groups, in [0, 1].
    label_noise : tuple of float, default=(0.0, 0.3)
        Smallest and largest label-flip probability over the tasks, in
        [0, 0.5] (0.5 is pure noise).
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
    check_params("make_multitask_classification", **locals())
    for name, value in {"n_samples": n_samples, "n_tasks": n_tasks}.items():
        if value < 2:
            raise ValueError(f"{name} must be at least 2 (two groups, two classes); got {value}.")
    low, high = check_range(label_noise, "label_noise", 0.0, 0.5)
    rng = check_random_state(random_state)
    half = n_tasks // 2
    X, _, f = make_multitask_regression(
        n_samples,
        n_features=n_features,
        task_groups=[0] * half + [1] * (n_tasks - half),
        noise=0.0,
        random_state=rng,
        return_function=True,
    )
    values = f(X)
    values[:, half:] = values[:, half:] - conflict * values[:, : n_tasks - half]
    y = (values > np.median(values, axis=0)).astype(int)
    rates = np.linspace(low, high, n_tasks)
    flips = rng.uniform(size=y.shape) < rates
    return X, np.where(flips, 1 - y, y)


def _log_uniform(rng, bounds, size):
    low, high = np.log(bounds[0]), np.log(bounds[1])
    return np.exp(rng.uniform(low, high, size=size))


def make_heterogeneous_tasks(
    n_samples=500,
    *,
    n_features=3,
    task_groups=(0, 0, 0, 1, 2, 3),
    n_latent=1,
    scale_range=(1e-2, 1e2),
    noise_range=(0.01, 0.3),
    length_scale_range=(0.3, 3.0),
    n_few_labels=2,
    few_labels_fraction=0.05,
    random_state=None,
    return_groups=False,
):
    """Tasks of different scales, noise and smoothness, related or not: negative transfer.

    Tasks with one entry of ``task_groups`` mix the same latent functions
    (related, as in :func:`make_multitask_regression`: with one latent
    function, their noise-free correlation is about 0.95); a task alone in
    its group shares nothing with the others. The functions are
    orthonormalised over 4000 reference inputs, so tasks of different groups
    are uncorrelated up to sampling error, not merely in expectation
    (independent smooth draws on a small cube often correlate by 0.5 or
    more). On top of that structure the tasks differ the way real targets
    do, each property drawn from ``random_state`` within its range:

    * scale: task ``t`` is ``offset_t + scale_t (f_t + noise_t eps)`` with a
      unit-variance noise-free ``f_t``, ``scale_t`` log-uniform in
      ``scale_range`` and an offset uniform in ``[-3 scale_t, 3 scale_t]``;
    * noise: ``noise_t`` log-uniform in ``noise_range``, relative to the
      task's signal;
    * smoothness: the RBF length scale of a group's functions log-uniform in
      ``length_scale_range`` (the inputs are uniform on the unit cube);
    * labels: ``n_few_labels`` tasks chosen at random keep only
      ``few_labels_fraction`` of their labels (at least two); the other
      tasks are fully labelled.

    A model that pools every task, or that does not normalise the targets,
    can do worse on some tasks than single-task models: that is the point.

    Parameters
    ----------
    n_samples : int, default=500
        Number of rows.
    n_features : int, default=3
        Number of inputs.
    task_groups : sequence of int, default=(0, 0, 0, 1, 2, 3)
        Group of each task (non-negative integers); its length is the number
        of tasks. The default: three related tasks and three unrelated ones.
    n_latent : int, default=1
        Number of latent functions of each group.
    scale_range : tuple of float, default=(1e-2, 1e2)
        Smallest and largest task scale (standard deviation of the
        noise-free target), positive.
    noise_range : tuple of float, default=(0.01, 0.3)
        Smallest and largest noise standard deviation, relative to the
        scale, positive.
    length_scale_range : tuple of float, default=(0.3, 3.0)
        Smallest and largest length scale of a group's functions, in
        [1e-3, 1e3].
    n_few_labels : int, default=2
        Number of tasks with few labels, at most the number of tasks.
    few_labels_fraction : float, default=0.05
        Fraction of the rows labelled for those tasks, in (0, 1).
    random_state : int, RandomState instance or None, default=None
        Seeds the functions, the tasks' properties, inputs, noise and labels.
    return_groups : bool, default=False
        Also return the group label of each task (the ground truth).

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
        Inputs, uniform on the unit cube.
    Y : ndarray of shape (n_samples, n_tasks)
        Noisy targets, NaN where missing.
    groups : ndarray of shape (n_tasks,), optional
        The group of each task, when ``return_groups=True``.

    See Also
    --------
    make_multitask_regression : Related tasks of one scale, noise and smoothness.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_mtbnn.datasets import make_heterogeneous_tasks
    >>> X, Y, groups = make_heterogeneous_tasks(200, random_state=0, return_groups=True)
    >>> X.shape, Y.shape, groups.tolist()
    ((200, 3), (200, 6), [0, 0, 0, 1, 2, 3])
    >>> (~np.isnan(Y)).sum(0).tolist()  # two tasks with 10 labels each
    [10, 200, 200, 200, 200, 10]
    """
    check_params("make_heterogeneous_tasks", **locals())
    groups = check_groups(task_groups)
    n_tasks = len(groups)
    scale_range = check_range(scale_range, "scale_range", 0, np.inf, open_low=True)
    noise_range = check_range(noise_range, "noise_range", 0, np.inf, open_low=True)
    length_scale_range = check_range(length_scale_range, "length_scale_range", 1e-3, 1e3)
    if n_few_labels > n_tasks:
        raise ValueError(f"n_few_labels={n_few_labels} exceeds the number of tasks, {n_tasks}.")
    rng = check_random_state(random_state)
    length_scales = _log_uniform(rng, length_scale_range, int(groups.max()) + 1)
    function = _lmc_function(rng, groups, n_latent, n_features, length_scales, orthogonal=True)
    scales = _log_uniform(rng, scale_range, n_tasks)
    offsets = scales * rng.uniform(-3, 3, size=n_tasks)
    noise = _log_uniform(rng, noise_range, n_tasks)
    X = rng.uniform(size=(n_samples, n_features))
    Y = offsets + scales * (function(X) + noise * rng.standard_normal((n_samples, n_tasks)))
    n_keep = min(n_samples, max(2, round(few_labels_fraction * n_samples)))
    for t in rng.choice(n_tasks, size=n_few_labels, replace=False):
        Y[rng.permutation(n_samples)[n_keep:], t] = np.nan
    return (X, Y, groups) if return_groups else (X, Y)
