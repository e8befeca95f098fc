"""Metrics for probabilistic predictions and multi-task comparisons.

Every function skips NaN targets (missing labels), works on one task
(1-D arrays) or several (2-D arrays, one column per task, averaged over
tasks unless ``multioutput="raw_values"``), and returns floats.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

__all__ = [
    "crps_gaussian",
    "delta_m",
    "expected_calibration_error",
    "gaussian_nll",
    "interval_coverage",
    "interval_width",
    "regression_calibration_error",
]


def _as_columns(*arrays):
    out = [np.asarray(a, dtype=float) for a in arrays]
    shape = out[0].shape
    for a in out[1:]:
        if a.shape != shape:
            raise ValueError(f"shapes differ: {[x.shape for x in out]}; pass arrays of one shape.")
    return [a.reshape(len(a), -1) for a in out]


def _per_task(values, labelled, multioutput):
    per_task = np.array(
        [values[labelled[:, t], t].mean() for t in range(values.shape[1])], dtype=float
    )
    if multioutput == "raw_values":
        return per_task
    if multioutput == "uniform_average":
        return float(per_task.mean())
    raise ValueError(f"multioutput must be 'uniform_average' or 'raw_values'; got {multioutput!r}.")


def _check_std(std):
    if np.any(std[np.isfinite(std)] <= 0):
        raise ValueError("y_std must be strictly positive.")


def gaussian_nll(y_true, y_mean, y_std, *, multioutput="uniform_average"):
    """Mean negative log-likelihood of ``y_true`` under ``N(y_mean, y_std^2)``.

    Parameters
    ----------
    y_true, y_mean, y_std : array-like of shape (n,) or (n, n_tasks)
        Targets (NaN = missing), predictive means and standard deviations.
    multioutput : {"uniform_average", "raw_values"}, default="uniform_average"
        Average over tasks, or return one value per task.

    Returns
    -------
    nll : float or ndarray of shape (n_tasks,)
        In nats per labelled point; lower is better.

    Examples
    --------
    >>> gaussian_nll([0.0], [0.0], [1.0])  # 0.5 * log(2 pi)
    0.9189385332046727
    """
    y, mu, sd = _as_columns(y_true, y_mean, y_std)
    _check_std(sd)
    labelled = ~np.isnan(y)
    with np.errstate(invalid="ignore"):
        nll = 0.5 * np.log(2 * np.pi * sd**2) + 0.5 * ((y - mu) / sd) ** 2
    return _per_task(nll, labelled, multioutput)


def crps_gaussian(y_true, y_mean, y_std, *, multioutput="uniform_average"):
    """Mean continuous ranked probability score of Gaussian predictions.

    Closed form (Gneiting & Raftery 2007):
    ``CRPS = s [z (2 Phi(z) - 1) + 2 phi(z) - 1 / sqrt(pi)]``, ``z = (y - m) / s``.

    Parameters
    ----------
    y_true, y_mean, y_std : array-like of shape (n,) or (n, n_tasks)
        Targets (NaN = missing), predictive means and standard deviations.
    multioutput : {"uniform_average", "raw_values"}, default="uniform_average"
        Average over tasks, or return one value per task.

    Returns
    -------
    crps : float or ndarray of shape (n_tasks,)
        In the units of y; lower is better.

    Examples
    --------
    >>> round(crps_gaussian([0.0], [0.0], [1.0]), 6)  # (sqrt(2) - 1) / sqrt(pi)
    0.233695
    """
    y, mu, sd = _as_columns(y_true, y_mean, y_std)
    _check_std(sd)
    labelled = ~np.isnan(y)
    with np.errstate(invalid="ignore"):
        z = (y - mu) / sd
        crps = sd * (z * (2 * stats.norm.cdf(z) - 1) + 2 * stats.norm.pdf(z) - 1 / np.sqrt(np.pi))
    return _per_task(crps, labelled, multioutput)


def _bounds(y_mean, y_std, level):
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1); got {level!r}.")
    half = stats.norm.ppf(0.5 + level / 2) * y_std
    return y_mean - half, y_mean + half


def interval_coverage(y_true, y_mean, y_std, *, level=0.95, multioutput="uniform_average"):
    """Fraction of targets inside the central ``level`` Gaussian interval.

    Parameters
    ----------
    y_true, y_mean, y_std : array-like of shape (n,) or (n, n_tasks)
        Targets (NaN = missing), predictive means and standard deviations.
    level : float, default=0.95
        Nominal probability of the interval ``mean +- z std``.
    multioutput : {"uniform_average", "raw_values"}, default="uniform_average"
        Average over tasks, or return one value per task.

    Returns
    -------
    coverage : float or ndarray of shape (n_tasks,)
        Close to ``level`` for calibrated predictions.

    Examples
    --------
    >>> interval_coverage([0.0, 3.0], [0.0, 0.0], [1.0, 1.0])
    0.5
    """
    y, mu, sd = _as_columns(y_true, y_mean, y_std)
    lo, hi = _bounds(mu, sd, level)
    labelled = ~np.isnan(y)
    with np.errstate(invalid="ignore"):
        inside = ((y >= lo) & (y <= hi)).astype(float)
    return _per_task(inside, labelled, multioutput)


def interval_width(y_mean, y_std, *, level=0.95, y_true=None, multioutput="uniform_average"):
    """Mean width of the central ``level`` Gaussian interval.

    Parameters
    ----------
    y_mean, y_std : array-like of shape (n,) or (n, n_tasks)
        Predictive means and standard deviations.
    level : float, default=0.95
        Nominal probability of the interval.
    y_true : array-like, optional
        When given, only rows where it is labelled (not NaN) count.
    multioutput : {"uniform_average", "raw_values"}, default="uniform_average"
        Average over tasks, or return one value per task.

    Returns
    -------
    width : float or ndarray of shape (n_tasks,)
        In the units of y.

    Examples
    --------
    >>> round(interval_width([0.0], [1.0]), 4)
    3.9199
    """
    mu, sd = _as_columns(y_mean, y_std)
    lo, hi = _bounds(mu, sd, level)
    labelled = np.ones_like(mu, dtype=bool)
    if y_true is not None:
        labelled = ~np.isnan(_as_columns(y_true, y_mean)[0])
    return _per_task(hi - lo, labelled, multioutput)


def regression_calibration_error(
    y_true, y_mean, y_std, *, n_levels=19, multioutput="uniform_average"
):
    """Mean absolute gap between nominal and observed central-interval coverage.

    ``mean_k |coverage(level_k) - level_k|`` over ``n_levels`` evenly spaced
    levels in (0, 1): zero for perfectly calibrated Gaussian predictions
    (the area between the reliability curve and the diagonal).

    Parameters
    ----------
    y_true, y_mean, y_std : array-like of shape (n,) or (n, n_tasks)
        Targets (NaN = missing), predictive means and standard deviations.
    n_levels : int, default=19
        Number of levels, ``k / (n_levels + 1)`` for ``k = 1..n_levels``.
    multioutput : {"uniform_average", "raw_values"}, default="uniform_average"
        Average over tasks, or return one value per task.

    Returns
    -------
    error : float or ndarray of shape (n_tasks,)
        Between 0 and 0.5; lower is better.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.RandomState(0)
    >>> y = rng.randn(20000)
    >>> regression_calibration_error(y, np.zeros_like(y), np.ones_like(y)) < 0.01
    True
    """
    levels = np.arange(1, n_levels + 1) / (n_levels + 1)
    gaps = [
        np.abs(interval_coverage(y_true, y_mean, y_std, level=lv, multioutput="raw_values") - lv)
        for lv in levels
    ]
    per_task = np.mean(gaps, axis=0)
    return per_task if multioutput == "raw_values" else float(per_task.mean())


def expected_calibration_error(y_true, y_proba, *, n_bins=10):
    """Expected calibration error of a classifier's top-label confidence.

    Predictions are binned by their highest probability; ECE is the
    bin-size-weighted mean of ``|accuracy - confidence|`` (Guo et al. 2017).

    Parameters
    ----------
    y_true : array-like of shape (n,)
        True class indices ``0..C-1`` (NaN = missing).
    y_proba : array-like of shape (n, C) or (n,)
        Class probabilities; a 1-D array is the positive-class probability
        of a binary task.
    n_bins : int, default=10
        Number of equal-width confidence bins.

    Returns
    -------
    ece : float
        Between 0 and 1; lower is better.

    Examples
    --------
    >>> expected_calibration_error([1, 0], [[0.0, 1.0], [1.0, 0.0]])
    0.0
    """
    y = np.asarray(y_true, dtype=float)
    p = np.asarray(y_proba, dtype=float)
    if p.ndim == 1:
        p = np.column_stack([1 - p, p])
    keep = ~np.isnan(y)
    y, p = y[keep].astype(int), p[keep]
    confidence = p.max(1)
    correct = (p.argmax(1) == y).astype(float)
    bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        in_bin = bins == b
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(ece)


def delta_m(metrics, reference, higher_is_better):
    """Delta_m%: mean relative change of per-task metrics against a reference.

    ``100 / T * sum_t (-1)^{delta_t} (M_t - M_t^ref) / M_t^ref`` with
    ``delta_t = 1`` where higher is better (Maninis et al. 2019): negative
    means better than the reference (usually single-task models).

    Parameters
    ----------
    metrics, reference : array-like of shape (n_tasks,)
        The method's and the reference's per-task metrics.
    higher_is_better : bool or array-like of bool of shape (n_tasks,)
        Direction of each metric.

    Returns
    -------
    delta : float
        In percent; lower is better.

    Examples
    --------
    Accuracy 10% lower (worse, +10) and error 20% lower (better, -20):

    >>> round(delta_m([0.9, 2.0], [1.0, 2.5], higher_is_better=[True, False]), 6)
    -5.0
    """
    m = np.asarray(metrics, dtype=float)
    ref = np.asarray(reference, dtype=float)
    sign = np.where(np.broadcast_to(np.asarray(higher_is_better, dtype=bool), m.shape), -1.0, 1.0)
    return float(100.0 * np.mean(sign * (m - ref) / ref))
