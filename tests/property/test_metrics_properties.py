"""Property-based tests of the metrics and the data-set generators (hypothesis).

Each property holds for any valid input; hypothesis searches shapes, missing
label patterns and scales from 1e-20 to 1e20 for a counterexample.
``derandomize=True`` makes every run draw the same examples (seeded tests).
"""

import numpy as np
import pytest
from scipy import stats

from sk_mtbnn.datasets import (
    make_heterogeneous_tasks,
    make_multifidelity,
    make_multitask_regression,
)
from sk_mtbnn.metrics import (
    crps_gaussian,
    delta_m,
    expected_calibration_error,
    gaussian_nll,
    interval_coverage,
    regression_calibration_error,
)

hypothesis = pytest.importorskip("hypothesis")
st = pytest.importorskip("hypothesis.strategies")

given, settings = hypothesis.given, hypothesis.settings
FAST = settings(max_examples=60, deadline=None, derandomize=True)
SLOW = settings(max_examples=8, deadline=None, derandomize=True)  # ~0.3 s per generator call
REGRESSION_METRICS = [gaussian_nll, crps_gaussian, interval_coverage, regression_calibration_error]


@st.composite
def predictions(draw, max_exponent=20):
    """(y_true with NaN, mean, std) of one random shape, magnitudes 10^-e .. 10^e."""
    n = draw(st.integers(1, 12))
    n_tasks = draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2**31 - 1))
    exponent = draw(st.integers(-max_exponent, max_exponent))
    rng = np.random.RandomState(seed)
    scale = 10.0**exponent
    mean = scale * rng.standard_normal((n, n_tasks))
    std = scale * np.exp(rng.uniform(-2, 2, size=(n, n_tasks)))
    y = mean + std * rng.standard_normal((n, n_tasks))
    missing = rng.uniform(size=y.shape) < draw(st.floats(0, 0.7))
    missing[rng.randint(n, size=n_tasks), np.arange(n_tasks)] = False  # a label per task
    y[missing] = np.nan
    if draw(st.booleans()) and n_tasks == 1:
        return y[:, 0], mean[:, 0], std[:, 0]
    return y, mean, std


@FAST
@given(predictions())
def test_nll_is_scipys_log_density(data):
    y, mean, std = (np.reshape(a, (len(a), -1)) for a in data)
    expected = []
    for t in range(y.shape[1]):
        keep = ~np.isnan(y[:, t])
        expected.append(-stats.norm(mean[keep, t], std[keep, t]).logpdf(y[keep, t]).mean())
    # Same formula, different operation order: rounding of ~1e-16 relative to
    # the terms, which stay below ~100 nats here (|log std| <= 48, z^2 ~ 1).
    got = gaussian_nll(*data, multioutput="raw_values")
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9)


@FAST
@given(predictions(max_exponent=3), st.floats(1e-3, 1e3), st.floats(-1e3, 1e3))
def test_location_scale_equivariance(data, a, b):
    y, mean, std = data
    moved = (a * y + b, a * mean + b, a * std)
    # Exact in exact arithmetic; the transformed inputs carry relative rounding
    # of ~1e-16 times |b| / |a y|, amplified by z, hence the loose 1e-6.
    assert gaussian_nll(*moved) == pytest.approx(gaussian_nll(*data) + np.log(a), abs=1e-6)
    assert crps_gaussian(*moved) == pytest.approx(a * crps_gaussian(*data), rel=1e-6, abs=1e-9)


@FAST
@given(predictions(), st.floats(0.01, 0.99), st.floats(0.01, 0.99))
def test_coverage_is_a_monotone_fraction(data, low, high):
    low, high = sorted((low, high))
    c_low, c_high = interval_coverage(*data, level=low), interval_coverage(*data, level=high)
    assert 0.0 <= c_low <= c_high <= 1.0
    assert 0.0 <= regression_calibration_error(*data) <= 1.0


@FAST
@given(predictions(), st.sampled_from(REGRESSION_METRICS))
def test_average_is_the_mean_of_the_tasks_and_rows_can_be_permuted(data, metric):
    raw = metric(*data, multioutput="raw_values")
    assert np.all(np.isfinite(raw))
    assert metric(*data) == pytest.approx(raw.mean(), rel=1e-12)
    order = np.random.RandomState(0).permutation(len(data[0]))
    shuffled = metric(*(a[order] for a in data), multioutput="raw_values")
    np.testing.assert_allclose(shuffled, raw, rtol=1e-12)


@FAST
@given(
    predictions(),
    st.sampled_from(REGRESSION_METRICS),
    st.sampled_from([0.0, -1.0, np.nan, np.inf, -np.inf]),
    st.sampled_from(["y_mean", "y_std"]),
    st.integers(0, 10**6),
)
def test_a_bad_prediction_anywhere_raises(data, metric, bad, where, position):
    y, mean, std = (np.array(a, dtype=float) for a in data)
    target = std if where == "y_std" else mean
    if where == "y_mean" and np.isfinite(bad):
        bad = np.nan  # any finite mean is valid
    target.flat[position % target.size] = bad
    with pytest.raises(ValueError, match=f"{where} must be finite"):
        metric(y, mean, std)


@FAST
@given(st.integers(1, 30), st.integers(2, 5), st.integers(1, 20), st.integers(0, 2**31 - 1))
def test_expected_calibration_error_bounds_and_binary_forms(n, n_classes, n_bins, seed):
    rng = np.random.RandomState(seed)
    proba = rng.dirichlet(np.ones(n_classes), size=n)
    y = rng.randint(n_classes, size=n).astype(float)
    y[rng.uniform(size=n) < 0.3] = np.nan
    y[0] = 0
    assert 0.0 <= expected_calibration_error(y, proba, n_bins=n_bins) <= 1.0
    # Confident and right: zero.
    labels = np.nan_to_num(y).astype(int)
    assert expected_calibration_error(labels, np.eye(n_classes)[labels], n_bins=n_bins) == 0.0
    # A binary task given as its positive-class column or as two columns.
    p1 = proba[:, 1] / proba[:, :2].sum(1)
    two = np.column_stack([1 - p1, p1])
    y2 = np.where(np.isnan(y), np.nan, (np.nan_to_num(y) > 0).astype(float))
    assert expected_calibration_error(y2, p1, n_bins=n_bins) == pytest.approx(
        expected_calibration_error(y2, two, n_bins=n_bins)
    )


@FAST
@given(
    st.lists(st.floats(1e-6, 1e6), min_size=1, max_size=6),
    st.floats(0.5, 2.0),
    st.floats(1e-3, 1e3),
)
def test_delta_m_is_relative_and_signed(reference, factor, c):
    ref = np.array(reference)
    m = factor * ref
    assert delta_m(ref, ref, True) == 0.0
    assert delta_m(m, ref, True) == pytest.approx(-delta_m(m, ref, False))
    assert delta_m(c * m, c * ref, False) == pytest.approx(delta_m(m, ref, False), rel=1e-9)
    assert delta_m(m, ref, False) == pytest.approx(100 * (factor - 1), rel=1e-9, abs=1e-9)


# ------------------------------------------------------------------ datasets
def _check_targets(X, y, n_samples, n_tasks):
    assert X.shape[0] == y.shape[0] == n_samples and y.shape[1] == n_tasks
    assert np.all(np.isfinite(X)) and not np.isinf(y).any()
    assert np.all((~np.isnan(y)).sum(0) >= 1)  # every task can be fitted


@SLOW
@given(
    st.integers(1, 30),
    st.integers(1, 4),
    st.integers(1, 4),
    st.floats(0, 0.99),
    st.floats(0, 2),
    st.floats(0.05, 20),
    st.integers(0, 2**31 - 1),
)
def test_lmc_generator_outputs(n, n_features, n_tasks, missing, noise, length_scale, seed):
    X, y = make_multitask_regression(
        n,
        n_features=n_features,
        n_tasks=n_tasks,
        missing_fraction=missing,
        noise=noise,
        length_scale=length_scale,
        random_state=seed,
    )
    assert X.shape == (n, n_features) and np.all((X >= 0) & (X <= 1))
    _check_targets(X, y, n, n_tasks)


@SLOW
@given(
    st.integers(1, 30),
    st.lists(st.integers(0, 3), min_size=1, max_size=5),
    st.floats(1e-20, 1e20),
    st.data(),
)
def test_heterogeneous_generator_outputs(n, groups, scale, data):
    n_few = data.draw(st.integers(0, len(groups)))
    X, Y, got = make_heterogeneous_tasks(
        n,
        task_groups=groups,
        scale_range=(scale, 10 * scale),
        n_few_labels=n_few,
        random_state=0,
        return_groups=True,
    )
    np.testing.assert_array_equal(got, groups)
    _check_targets(X, Y, n, len(groups))
    # Offsets are within 3 scales and the noisy signal within a few more.
    assert np.nanmax(np.abs(Y)) < 100 * scale


@FAST
@given(
    st.sampled_from(["forrester", "currin", "borehole"]),
    st.integers(1, 40),
    st.floats(0.01, 1.0),
    st.floats(0, 1),
)
def test_multifidelity_outputs(function, n, fraction, noise):
    hypothesis.assume(round(fraction * n) >= 1)
    X, y = make_multifidelity(
        function, n, high_fidelity_fraction=fraction, noise=noise, random_state=0
    )
    _check_targets(X, y, n, 2)
    assert (~np.isnan(y[:, 0])).sum() == round(fraction * n)
    assert not np.isnan(y[:, 1]).any()
