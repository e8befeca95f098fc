"""Metrics against independent references (properscoring, scipy, hand computations)."""

import numpy as np
import pytest
from scipy import stats
from sklearn.linear_model import BayesianRidge, LinearRegression
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score

from sk_mtbnn import SparseMultiTaskBNNRegressor
from sk_mtbnn.metrics import (
    crps_gaussian,
    delta_m,
    expected_calibration_error,
    gaussian_nll,
    interval_coverage,
    interval_width,
    neg_gaussian_nll_scorer,
    regression_calibration_error,
)

rng = np.random.RandomState(0)
Y = rng.standard_normal((50, 3))
MU = Y + 0.3 * rng.standard_normal((50, 3))
SD = rng.uniform(0.2, 2.0, size=(50, 3))


def test_gaussian_nll_matches_scipy():
    expected = -stats.norm(MU, SD).logpdf(Y).mean(0)
    np.testing.assert_allclose(gaussian_nll(Y, MU, SD, multioutput="raw_values"), expected)
    assert gaussian_nll(Y, MU, SD) == pytest.approx(expected.mean())


def test_crps_matches_properscoring():
    properscoring = pytest.importorskip("properscoring")
    expected = properscoring.crps_gaussian(Y, MU, SD).mean(0)
    np.testing.assert_allclose(
        crps_gaussian(Y, MU, SD, multioutput="raw_values"), expected, rtol=1e-10
    )


def test_crps_matches_its_integral_definition():
    # CRPS = int (F(z) - 1{z >= y})^2 dz, by quadrature for one point.
    from scipy.integrate import quad

    y, m, s = 0.7, -0.2, 1.3
    lower = quad(lambda z: stats.norm(m, s).cdf(z) ** 2, -np.inf, y)[0]
    upper = quad(lambda z: (1 - stats.norm(m, s).cdf(z)) ** 2, y, np.inf)[0]
    assert crps_gaussian([y], [m], [s]) == pytest.approx(lower + upper, rel=1e-7)


def test_missing_labels_are_skipped():
    y = Y.copy()
    y[::2, 1] = np.nan
    got = gaussian_nll(y, MU, SD, multioutput="raw_values")
    np.testing.assert_allclose(
        got[1], -stats.norm(MU[1::2, 1], SD[1::2, 1]).logpdf(Y[1::2, 1]).mean()
    )
    assert np.isfinite(crps_gaussian(y, MU, SD))
    assert np.isfinite(interval_coverage(y, MU, SD))


def test_coverage_and_width():
    z = stats.norm.ppf(0.975)
    inside = (np.abs(Y - MU) <= z * SD).mean()
    assert interval_coverage(Y, MU, SD) == pytest.approx(inside)
    assert interval_width(MU, SD) == pytest.approx(2 * z * SD.mean())
    assert interval_coverage([0.0, 1.0], [0.0, 0.0], [1.0, 1.0], level=0.5) == 0.5


def test_calibration_error_of_calibrated_and_overconfident_predictions():
    r = np.random.RandomState(1)
    y = r.standard_normal(50_000)
    calibrated = regression_calibration_error(y, np.zeros_like(y), np.ones_like(y))
    overconfident = regression_calibration_error(y, np.zeros_like(y), 0.5 * np.ones_like(y))
    assert calibrated < 0.01
    # Hand computation for std 0.5: coverage of level l is 2 Phi(0.5 z_l) - 1.
    levels = np.arange(1, 20) / 20
    expected = np.mean(
        np.abs(2 * stats.norm.cdf(0.5 * stats.norm.ppf(0.5 + levels / 2)) - 1 - levels)
    )
    assert overconfident == pytest.approx(expected, abs=0.01)


def test_expected_calibration_error_hand_computed():
    # Two bins: confidence 0.9 (2 points, 1 correct) and 0.6 (2 points, 2 correct).
    proba = np.array([[0.1, 0.9], [0.9, 0.1], [0.4, 0.6], [0.6, 0.4]])
    y = np.array([1, 1, 1, 0])
    expected = 0.5 * abs(0.5 - 0.9) + 0.5 * abs(1.0 - 0.6)
    assert expected_calibration_error(y, proba) == pytest.approx(expected)
    assert expected_calibration_error(y, proba[:, 1]) == pytest.approx(expected)


def test_delta_m_sign_convention():
    # Maninis et al.: lower is better; -5% here (accuracy -10% worse, error 20% better).
    assert delta_m([0.9, 2.0], [1.0, 2.5], [True, False]) == pytest.approx(-5.0)
    assert delta_m([1.0, 2.5], [1.0, 2.5], False) == 0.0


def test_calibration_error_matches_its_definition_through_interval_coverage():
    levels = np.arange(1, 8) / 8
    expected = np.mean(
        [
            np.abs(interval_coverage(Y, MU, SD, level=lv, multioutput="raw_values") - lv)
            for lv in levels
        ],
        axis=0,
    )
    got = regression_calibration_error(Y, MU, SD, n_levels=7, multioutput="raw_values")
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_interval_width_counts_labelled_rows_only():
    y = Y.copy()
    y[:25, 0] = np.nan
    z = stats.norm.ppf(0.975)
    got = interval_width(MU, SD, y_true=y, multioutput="raw_values")
    np.testing.assert_allclose(got[0], 2 * z * SD[25:, 0].mean())


def test_one_task_as_1d_or_column_gives_the_same_score():
    one = gaussian_nll(Y[:, 0], MU[:, 0], SD[:, 0])
    assert gaussian_nll(Y[:, :1], MU[:, 0], SD[:, :1]) == pytest.approx(one, rel=1e-15)


def test_float32_inputs_are_scored_in_float64():
    f32 = [a.astype(np.float32) for a in (Y, MU, SD)]
    # Only the float32 rounding of the inputs (relative 6e-8) separates the two.
    assert gaussian_nll(*f32) == pytest.approx(gaussian_nll(*(a.astype(float) for a in f32)))
    assert isinstance(gaussian_nll(*f32), float)


def test_extreme_scales_stay_finite_and_exact():
    # log(sd) rather than log(sd**2): sd = 1e200 would overflow when squared.
    sd = np.array([1e200, 1e-200])
    y = np.array([1e200, 2e-200])
    expected = 0.5 * np.log(2 * np.pi) + np.log(sd) + 0.5 * (y / sd) ** 2
    np.testing.assert_allclose(
        gaussian_nll(y[:, None], np.zeros((2, 1)), sd[:, None], multioutput="raw_values"),
        [expected.mean()],
        rtol=1e-12,
    )


def test_inputs_are_not_modified():
    y = Y.copy()
    y[0, 0] = np.nan
    copies = [a.copy() for a in (y, MU, SD)]
    for metric in (gaussian_nll, crps_gaussian, interval_coverage, regression_calibration_error):
        metric(y, MU, SD)
    for before, after in zip(copies, (y, MU, SD)):
        np.testing.assert_array_equal(before, after)


# ------------------------------------------------------------ invalid inputs
REGRESSION_METRICS = [gaussian_nll, crps_gaussian, interval_coverage, regression_calibration_error]
GOOD = ([0.0, 1.0], [0.0, 0.5], [1.0, 2.0])


@pytest.mark.parametrize("metric", REGRESSION_METRICS, ids=lambda f: f.__name__)
@pytest.mark.parametrize(
    "y_true, y_mean, y_std, match",
    [
        (GOOD[0], GOOD[1], [-1.0, 1.0], "y_std must be finite and strictly positive"),
        (GOOD[0], GOOD[1], [0.0, 1.0], "y_std must be finite and strictly positive"),
        (GOOD[0], GOOD[1], [np.nan, 1.0], r"y_std .* got nan at index 0"),
        (GOOD[0], GOOD[1], [np.inf, 1.0], "y_std must be finite"),
        (GOOD[0], [np.nan, 0.0], GOOD[2], "y_mean must be finite"),
        ([np.inf, 0.0], GOOD[1], GOOD[2], "y_true must not be infinite"),
        ([np.nan, np.nan], GOOD[1], GOOD[2], r"no label .* column\(s\) \[0\]"),
        ([0.0, 1.0, 2.0], GOOD[1], GOOD[2], "must have one shape"),
        (np.zeros((2, 2)), GOOD[1], GOOD[2], "must have one shape"),
        ([], [], [], "y_true: Found array with 0 sample"),
        (np.zeros((2, 1, 1)), GOOD[1], GOOD[2], "y_true: Found array with dim 3"),
        (["a", "b"], GOOD[1], GOOD[2], "y_true: dtype='numeric' is not compatible"),
    ],
)
def test_regression_metrics_reject_bad_arrays(metric, y_true, y_mean, y_std, match):
    with pytest.raises(ValueError, match=match):
        metric(y_true, y_mean, y_std)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: interval_width([0.0], [-1.0]), "y_std must be finite and strictly positive"),
        (lambda: interval_width([0.0], [np.nan]), "y_std must be finite"),
        (lambda: interval_width([], []), "y_mean: Found array with 0 sample"),
        (lambda: interval_width([0.0, 1.0], [1.0]), "must have one shape"),
        (lambda: interval_width([0.0], [1.0], y_true=[0.0, 1.0]), "must have one shape"),
        (lambda: interval_width([0.0], [1.0], level=0), "'level' parameter of interval_width"),
        (lambda: interval_coverage(*GOOD, level=1.5), r"'level' .* range \(0.0, 1.0\)"),
        (lambda: interval_coverage(*GOOD, level=np.nan), "Got nan instead"),
        (lambda: gaussian_nll(*GOOD, multioutput="mean"), "'multioutput' parameter"),
        (lambda: regression_calibration_error(*GOOD, n_levels=0), "'n_levels' parameter"),
        (lambda: regression_calibration_error(*GOOD, n_levels=2.0), "must be an int"),
    ],
)
def test_interval_and_parameter_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# -------------------------------------------------------------------- ECE
def test_expected_calibration_error_skips_missing_labels():
    proba = np.array([[0.1, 0.9], [0.9, 0.1], [0.4, 0.6], [0.6, 0.4], [0.5, 0.5]])
    y = np.array([1, 1, 1, 0, np.nan])
    expected = 0.5 * abs(0.5 - 0.9) + 0.5 * abs(1.0 - 0.6)
    assert expected_calibration_error(y, proba) == pytest.approx(expected)


def test_expected_calibration_error_with_one_bin_is_the_confidence_gap():
    proba = np.array([[0.2, 0.7, 0.1], [0.5, 0.3, 0.2], [0.1, 0.1, 0.8]])
    y = np.array([1, 2, 2])
    # One bin: |accuracy - mean confidence| = |2/3 - (0.7 + 0.5 + 0.8) / 3|.
    assert expected_calibration_error(y, proba, n_bins=1) == pytest.approx(abs(2 / 3 - 2 / 3))
    assert expected_calibration_error([1, 0, 2], proba, n_bins=1) == pytest.approx(
        abs(1 / 3 - 2 / 3)
    )


@pytest.mark.parametrize(
    "y_true, y_proba, kwargs, match",
    [
        ([1, 0], [[0.0, 1.5], [1.0, 0.0]], {}, r"got 1.5 at index \(0, 1\)"),
        ([1, 0], [[-0.1, 1.1], [1.0, 0.0]], {}, r"probabilities in \[0, 1\]"),
        ([1, 0], [1.2, 0.0], {}, r"probabilities in \[0, 1\]"),
        ([1, 0], [[np.nan, 1.0], [1.0, 0.0]], {}, r"probabilities in \[0, 1\]"),
        ([1, 0], [[0.3, 0.3], [1.0, 0.0]], {}, "row 0 sums to 0.6"),
        ([0, 0], [[1.0], [1.0]], {}, "n_classes >= 2"),
        ([1, 0], [[0.0, 1.0], [1.0, 0.0]], {"n_bins": 0}, "'n_bins' parameter"),
        ([1, 0], [[0.0, 1.0], [1.0, 0.0]], {"n_bins": 2.5}, "'n_bins' parameter"),
        ([2, 0], [[0.0, 1.0], [1.0, 0.0]], {}, r"class indices 0..1 .* got 2.0"),
        ([0.5, 0], [[0.0, 1.0], [1.0, 0.0]], {}, "class indices"),
        ([-1, 0], [[0.0, 1.0], [1.0, 0.0]], {}, "class indices"),
        ([np.nan, np.nan], [[0.0, 1.0], [1.0, 0.0]], {}, "y_true has no label"),
        ([1, 0, 1], [[0.0, 1.0], [1.0, 0.0]], {}, "got 3 and 2 rows"),
        ([], [], {}, "y_proba: Found array with 0 sample"),
        (["a", "b"], [[0.0, 1.0], [1.0, 0.0]], {}, "y_true: dtype='numeric'"),
    ],
)
def test_expected_calibration_error_rejects_bad_inputs(y_true, y_proba, kwargs, match):
    with pytest.raises(ValueError, match=match):
        expected_calibration_error(y_true, y_proba, **kwargs)


# ---------------------------------------------------------------- Delta_m
@pytest.mark.parametrize(
    "args, error, match",
    [
        (([1.0, 2.0, 3.0], [1.0, 2.0], True), ValueError, "got 3 and 2 entries"),
        (([1.0], [1.0, 2.0], True), ValueError, "got 1 and 2 entries"),
        (([1.0, 2.0], [1.0, 2.0], [True]), ValueError, "1 entries but there are 2 tasks"),
        (([1.0, 2.0], [1.0, 2.0], "False"), TypeError, "'higher_is_better' parameter"),
        (([1.0, 2.0], [1.0, 2.0], [1, 0]), TypeError, "a 1-D array-like of bools"),
        (([1.0, 2.0], [0.0, 2.0], True), ValueError, "reference must be finite and strictly"),
        (([1.0, 2.0], [-1.0, 2.0], True), ValueError, "use a positive metric"),
        (([np.nan, 2.0], [1.0, 2.0], True), ValueError, "metrics must be finite"),
        (([], [], True), ValueError, "metrics: Found array with 0 sample"),
        ((np.ones((2, 2)), np.ones((2, 2)), True), ValueError, "metrics must be 1-D at most"),
    ],
)
def test_delta_m_rejects_bad_inputs(args, error, match):
    with pytest.raises(error, match=match):
        delta_m(*args)


# ----------------------------------------------------------------- scorer
def _nll_problem(n=60, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.uniform(size=(n, 2))
    y = X @ np.array([1.0, -2.0]) + 0.1 * rng.standard_normal(n)
    return X, y


def test_scorer_is_minus_the_nll_of_the_predictive_distribution():
    X, y = _nll_problem()
    model = BayesianRidge().fit(X[:40], y[:40])
    mean, std = model.predict(X[40:], return_std=True)
    expected = -stats.norm(mean, std).logpdf(y[40:]).mean()  # scipy as the reference
    assert neg_gaussian_nll_scorer(model, X[40:], y[40:]) == pytest.approx(-expected)
    scores = cross_val_score(BayesianRidge(), X, y, scoring=neg_gaussian_nll_scorer, cv=3)
    assert np.all(np.isfinite(scores))


def test_scorer_skips_missing_labels_and_unlabelled_tasks(multitask_data):
    X, Y = multitask_data
    model = SparseMultiTaskBNNRegressor(hidden_layer_sizes=(16,), max_epochs=20, random_state=0)
    model.fit(X, Y)
    mean, std = model.predict(X, return_std=True)
    labelled = ~np.isnan(Y[:, 1])
    expected = np.mean(
        [
            stats.norm(mean[:, 0], std[:, 0]).logpdf(Y[:, 0]).mean(),
            stats.norm(mean[labelled, 1], std[labelled, 1]).logpdf(Y[labelled, 1]).mean(),
        ]
    )
    assert neg_gaussian_nll_scorer(model, X, Y) == pytest.approx(expected, rel=1e-10)
    # A fold where task 1 has no label scores task 0 alone.
    Y_fold = Y.copy()
    Y_fold[:, 1] = np.nan
    task0 = stats.norm(mean[:, 0], std[:, 0]).logpdf(Y[:, 0]).mean()
    assert neg_gaussian_nll_scorer(model, X, Y_fold) == pytest.approx(task0, rel=1e-10)
    with pytest.raises(ValueError, match="no label"):
        neg_gaussian_nll_scorer(model, X, np.full_like(Y, np.nan))


def test_scorer_selects_by_likelihood_in_grid_search(multitask_data):
    X, Y = multitask_data
    search = GridSearchCV(
        SparseMultiTaskBNNRegressor(hidden_layer_sizes=(16,), max_epochs=20, random_state=0),
        {"learning_rate": [1e-3, 1e-2]},
        scoring=neg_gaussian_nll_scorer,
        cv=KFold(2, shuffle=True, random_state=0),
        error_score="raise",
    ).fit(X, Y)
    scores = search.cv_results_["mean_test_score"]
    assert np.all(np.isfinite(scores))
    assert search.best_score_ == pytest.approx(scores.max())


def test_scorer_explains_an_estimator_without_std():
    X, y = _nll_problem()
    with pytest.raises(TypeError, match="predict accepts return_std=True; LinearRegression"):
        neg_gaussian_nll_scorer(LinearRegression().fit(X, y), X, y)
