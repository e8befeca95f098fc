"""Scores of Gaussian predictive distributions, one task or several."""

from __future__ import annotations

import numpy as np
from scipy import stats

from .._docstrings import fill_doc
from ._validation import as_array, check_params, check_predictions, per_task, standardised


@fill_doc
def gaussian_nll(y_true, y_mean, y_std, *, multioutput="uniform_average"):
    """Mean negative log-likelihood of ``y_true`` under ``N(y_mean, y_std^2)``.

    Parameters
    ----------
    %(gaussian_score_params)s

    Returns
    -------
    nll : float or ndarray of shape (n_tasks,)
        In nats per labelled point; lower is better.

    See Also
    --------
    neg_gaussian_nll_scorer : Its negative as a scorer for ``GridSearchCV``.

    Examples
    --------
    >>> gaussian_nll([0.0], [0.0], [1.0])  # 0.5 * log(2 pi)
    0.9189385332046727
    """
    check_params("gaussian_nll", multioutput=multioutput)
    z, sd, labelled = standardised(y_true, y_mean, y_std)
    # -log N(y | m, sd^2) = log(sd) - log N(z | 0, 1): no overflow for sd up to 1e308.
    nll = np.log(sd) - stats.norm.logpdf(z)
    return per_task(nll, labelled, multioutput)


@fill_doc
def crps_gaussian(y_true, y_mean, y_std, *, multioutput="uniform_average"):
    """Mean continuous ranked probability score of Gaussian predictions.

    Closed form (Gneiting & Raftery 2007):
    ``CRPS = s [z (2 Phi(z) - 1) + 2 phi(z) - 1 / sqrt(pi)]``, ``z = (y - m) / s``.

    Parameters
    ----------
    %(gaussian_score_params)s

    Returns
    -------
    crps : float or ndarray of shape (n_tasks,)
        In the units of y; lower is better.

    Examples
    --------
    >>> round(crps_gaussian([0.0], [0.0], [1.0]), 6)  # (sqrt(2) - 1) / sqrt(pi)
    0.233695
    """
    check_params("crps_gaussian", multioutput=multioutput)
    z, sd, labelled = standardised(y_true, y_mean, y_std)
    with np.errstate(invalid="ignore"):
        crps = sd * (z * (2 * stats.norm.cdf(z) - 1) + 2 * stats.norm.pdf(z) - 1 / np.sqrt(np.pi))
    return per_task(crps, labelled, multioutput)


def _half_width(level: float) -> float:
    return float(stats.norm.ppf(0.5 + level / 2))


@fill_doc
def interval_coverage(y_true, y_mean, y_std, *, level=0.95, multioutput="uniform_average"):
    """Fraction of targets inside the central ``level`` Gaussian interval.

    Parameters
    ----------
    %(gaussian_predictions)s
    level : float, default=0.95
        Nominal probability of the interval ``mean +- z std``, in (0, 1).
    %(multioutput)s

    Returns
    -------
    coverage : float or ndarray of shape (n_tasks,)
        Close to ``level`` for calibrated predictions.

    Examples
    --------
    >>> interval_coverage([0.0, 3.0], [0.0, 0.0], [1.0, 1.0])
    0.5
    """
    check_params("interval_coverage", level=level, multioutput=multioutput)
    z, _, labelled = standardised(y_true, y_mean, y_std)
    with np.errstate(invalid="ignore"):
        inside = (np.abs(z) <= _half_width(level)).astype(float)
    return per_task(inside, labelled, multioutput)


@fill_doc
def interval_width(y_mean, y_std, *, level=0.95, y_true=None, multioutput="uniform_average"):
    """Mean width of the central ``level`` Gaussian interval.

    Parameters
    ----------
    y_mean, y_std : array-like of shape (n,) or (n, n_tasks)
        Predictive means and standard deviations (finite; standard
        deviations strictly positive).
    level : float, default=0.95
        Nominal probability of the interval, in (0, 1).
    y_true : array-like of the same shape, default=None
        When given, only rows where it is labelled (not NaN) count.
    %(multioutput)s

    Returns
    -------
    width : float or ndarray of shape (n_tasks,)
        In the units of y.

    Examples
    --------
    >>> round(interval_width([0.0], [1.0]), 4)
    3.9199
    """
    check_params("interval_width", level=level, multioutput=multioutput)
    y, _, sd = check_predictions(y_mean, y_std, y_true)
    labelled = np.ones_like(sd, dtype=bool) if y is None else ~np.isnan(y)
    return per_task(2 * _half_width(level) * sd, labelled, multioutput)


@fill_doc
def regression_calibration_error(
    y_true, y_mean, y_std, *, n_levels=19, multioutput="uniform_average"
):
    """Mean absolute gap between nominal and observed central-interval coverage.

    ``mean_k |coverage(level_k) - level_k|`` over ``n_levels`` evenly spaced
    levels in (0, 1): zero for perfectly calibrated Gaussian predictions
    (the area between the reliability curve and the diagonal).

    Parameters
    ----------
    %(gaussian_predictions)s
    n_levels : int, default=19
        Number of levels, ``k / (n_levels + 1)`` for ``k = 1..n_levels``.
    %(multioutput)s

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
    check_params("regression_calibration_error", n_levels=n_levels, multioutput=multioutput)
    z, _, labelled = standardised(y_true, y_mean, y_std)
    levels = np.arange(1, n_levels + 1) / (n_levels + 1)
    gaps = []
    for level in levels:
        with np.errstate(invalid="ignore"):
            inside = (np.abs(z) <= _half_width(level)).astype(float)
        gaps.append(np.abs(per_task(inside, labelled, "raw_values") - level))
    per_level = np.mean(gaps, axis=0)
    return per_level if multioutput == "raw_values" else float(per_level.mean())


def neg_gaussian_nll_scorer(estimator, X, y_true) -> float:
    """Scorer: minus the mean Gaussian NLL of ``estimator.predict(X, return_std=True)``.

    A callable scorer with the ``(estimator, X, y)`` signature, so it can be
    passed as ``scoring=`` to ``GridSearchCV``, ``cross_val_score`` and the
    like (``make_scorer`` cannot be used: it has no way to ask ``predict``
    for the standard deviation). Higher is better, as scikit-learn expects.
    NaN targets are missing labels and skipped; a task with no label in
    ``y_true`` (for instance in one cross-validation fold) is left out of the
    average over tasks.

    Parameters
    ----------
    estimator : regressor
        Fitted, with ``predict(X, return_std=True)`` returning the
        predictive mean and standard deviation (sk_mtbnn's regressors,
        ``GaussianProcessRegressor``, ``BayesianRidge``, ...).
    X : array-like of shape (n_samples, n_features)
        Inputs.
    y_true : array-like of shape (n_samples,) or (n_samples, n_tasks)
        Targets, NaN where missing.

    Returns
    -------
    score : float
        ``-gaussian_nll(y_true, mean, std)`` over the labelled tasks.

    See Also
    --------
    gaussian_nll : The metric itself.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import BayesianRidge
    >>> from sklearn.model_selection import cross_val_score
    >>> rng = np.random.RandomState(0)
    >>> X = rng.uniform(size=(60, 2))
    >>> y = X @ [1.0, -2.0] + 0.1 * rng.standard_normal(60)
    >>> scores = cross_val_score(BayesianRidge(), X, y, scoring=neg_gaussian_nll_scorer)
    >>> bool(scores.mean() > 0.5)  # noise std 0.1: NLL about -0.9 nats
    True
    """
    y = as_array(y_true, "y_true")
    try:
        prediction = estimator.predict(X, return_std=True)
    except TypeError as exc:
        if "return_std" not in str(exc):
            raise
        raise TypeError(
            f"neg_gaussian_nll_scorer needs a regressor whose predict accepts "
            f"return_std=True; {type(estimator).__name__}.predict does not ({exc}). "
            "Score it with a point metric such as 'r2' instead."
        ) from None
    if not (isinstance(prediction, tuple) and len(prediction) == 2):
        raise TypeError(
            f"{type(estimator).__name__}.predict(X, return_std=True) must return "
            "(mean, std); it returned something else."
        )
    mean, std = (np.asarray(p, dtype=float) for p in prediction)
    mean, std, y = (a.reshape(len(a), -1) for a in (mean, std, y))
    scored = ~np.isnan(y).all(0)
    if not scored.any():
        raise ValueError("y_true has no label (every entry is NaN): nothing to score.")
    if mean.shape == std.shape == y.shape:  # otherwise gaussian_nll explains the mismatch
        y, mean, std = y[:, scored], mean[:, scored], std[:, scored]
    return -gaussian_nll(y, mean, std)
