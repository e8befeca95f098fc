"""The regressors inside MAPIE: split and cross conformal intervals reach their coverage."""

import math

import numpy as np
import pytest
from scipy import stats

from sk_mtbnn import SparseMultiTaskBNNRegressor

mapie_regression = pytest.importorskip("mapie.regression")

ALPHA = 0.1  # confidence level 0.9
# With alpha (N_CAL + 1) an integer, the k-th smallest calibration score bounds
# both sides. MAPIE 1.6 reads the lower bound of the "std_normalized" score from
# the ceil(alpha (n + 1))-th largest score instead, one order statistic lower
# when alpha (n + 1) is not an integer (its "absolute" score is symmetric).
N_TRAIN, N_CAL, N_TEST = 200, 399, 2000


def make_data(n, rng, n_tasks=1):
    """Sine tasks with noise growing away from x = 0 (heteroscedastic)."""
    X = rng.uniform(-3, 3, size=(n, 1))
    noise = (0.1 + 0.15 * np.abs(X)) * rng.standard_normal((n, n_tasks))
    y = np.sin(X + np.arange(n_tasks)) + noise
    return X, y[:, 0] if n_tasks == 1 else y


@pytest.fixture(scope="module")
def splits():
    rng = np.random.RandomState(0)
    return [make_data(n, rng) for n in (N_TRAIN, N_CAL, N_TEST)]


def regressor():
    return SparseMultiTaskBNNRegressor(hidden_layer_sizes=(16,), max_epochs=30, random_state=0)


@pytest.fixture(scope="module")
def fitted(splits):
    (X, y), _, _ = splits
    return regressor().fit(X, y)


def covered(intervals, y):
    low, high = intervals[:, 0, 0], intervals[:, 1, 0]
    return int(np.sum((y >= low) & (y <= high)))


def coverage_bounds(n_cal, n_test, alpha=ALPHA, level=0.999):
    """Central ``level`` range of the number of covered test points, split conformal.

    Given the calibration set, the coverage of the split-conformal interval
    is Beta(k, n_cal + 1 - k) with k = ceil((n_cal + 1)(1 - alpha)) (Vovk
    2012; Angelopoulos & Bates 2021, Sec. 3.2), so the number of covered
    test points is Beta-binomial. Outside this range is a 1-in-1000 event.
    """
    k = math.ceil((n_cal + 1) * (1 - alpha))
    law = stats.betabinom(n_test, k, n_cal + 1 - k)
    return law.ppf((1 - level) / 2), law.ppf((1 + level) / 2)


def conformal_quantile(scores, alpha=ALPHA):
    """The k-th smallest calibration score, k = ceil((n + 1)(1 - alpha))."""
    return np.sort(scores)[math.ceil((len(scores) + 1) * (1 - alpha)) - 1]


@pytest.mark.parametrize("score", ["absolute", "std_normalized"])
def test_split_conformal_reaches_its_coverage(fitted, splits, score):
    _, (X_cal, y_cal), (X_test, y_test) = splits
    split = mapie_regression.SplitConformalRegressor(
        fitted, confidence_level=1 - ALPHA, conformity_score=score, prefit=True
    ).conformalize(X_cal, y_cal)
    points, intervals = split.predict_interval(X_test)
    low, high = coverage_bounds(N_CAL, N_TEST)
    assert low <= covered(intervals, y_test) <= high
    # Independently: the interval is mean +- q (absolute residuals) or
    # mean +- q * std (residuals over the estimator's own std), q the
    # conformal quantile of the calibration scores. Equal to float rounding.
    mean_cal, std_cal = fitted.predict(X_cal, return_std=True)
    mean, std = fitted.predict(X_test, return_std=True)
    if score == "absolute":
        half = conformal_quantile(np.abs(y_cal - mean_cal)) * np.ones_like(std)
    else:
        half = conformal_quantile(np.abs(y_cal - mean_cal) / std_cal) * std
    np.testing.assert_allclose(points, mean, rtol=1e-12)
    np.testing.assert_allclose(intervals[:, 0, 0], mean - half, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(intervals[:, 1, 0], mean + half, rtol=1e-9, atol=1e-9)


def test_cross_conformal_reaches_its_coverage(splits):
    (X, y), _, (X_test, y_test) = splits
    cross = mapie_regression.CrossConformalRegressor(
        regressor(), confidence_level=1 - ALPHA, method="plus", cv=5, random_state=0
    ).fit_conformalize(X, y)
    _, intervals = cross.predict_interval(X_test)
    # CV+ guarantees only 1 - 2 alpha (Barber et al. 2021, Theorem 4) but is
    # close to 1 - alpha in practice; we check it against the range of a
    # split-conformal interval calibrated on as many (out-of-fold) scores.
    low, high = coverage_bounds(N_TRAIN, N_TEST)
    assert low <= covered(intervals, y_test) <= high


def test_one_conformal_regressor_per_task_with_missing_labels():
    # MAPIE handles one target: loop over the tasks, each on its labelled rows.
    rng = np.random.RandomState(1)
    (X, Y), (X_cal, Y_cal), (X_test, Y_test) = [
        make_data(n, rng, n_tasks=2) for n in (N_TRAIN, N_CAL, N_TEST)
    ]
    for Z in (Y, Y_cal, Y_test):
        Z[::3, 1] = np.nan
    for task in range(2):
        rows, cal, test = (~np.isnan(Z[:, task]) for Z in (Y, Y_cal, Y_test))
        split = mapie_regression.SplitConformalRegressor(
            regressor(), confidence_level=1 - ALPHA, prefit=False
        )
        split.fit(X[rows], Y[rows, task]).conformalize(X_cal[cal], Y_cal[cal, task])
        _, intervals = split.predict_interval(X_test[test])
        # Two tasks checked at 1-in-1000 each.
        low, high = coverage_bounds(int(cal.sum()), int(test.sum()))
        assert low <= covered(intervals, Y_test[test, task]) <= high
