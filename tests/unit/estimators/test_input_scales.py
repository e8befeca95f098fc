"""Inputs and targets of any unit; pandas' nullable targets; the device parameter."""

import numpy as np
import pytest

from sk_mtbnn import SparseMultiTaskBNNRegressor

FAST = {"hidden_layer_sizes": (16,), "max_epochs": 30, "random_state": 0}


@pytest.fixture(scope="module")
def data():
    rng = np.random.RandomState(0)
    X = rng.uniform(-2, 2, size=(120, 2))
    y = np.sin(2 * X[:, 0]) + 0.5 * X[:, 1] + 0.05 * rng.randn(120)
    return X, y


@pytest.fixture(scope="module")
def reference(data):
    X, y = data
    est = SparseMultiTaskBNNRegressor(**FAST).fit(X, y)
    return est.predict(X, return_std=True), est.score(X, y)


@pytest.mark.parametrize("scale", [1e-20, 1e20])
def test_tiny_and_huge_input_units_are_standardised_away(data, reference, scale):
    # A relative constant-column test keeps the scale of columns whose
    # spread is far below any absolute epsilon (X * 1e-20 used to give R^2 = 0).
    X, y = data
    est = SparseMultiTaskBNNRegressor(**FAST).fit(X * scale, y)
    (mean_ref, std_ref), score_ref = reference
    mean, std = est.predict(X * scale, return_std=True)
    # Standardisation divides out a power of ten: float32 training then sees
    # the same numbers up to rounding, so predictions agree to ~1e-5.
    np.testing.assert_allclose(mean, mean_ref, atol=1e-4)
    np.testing.assert_allclose(std, std_ref, rtol=1e-3)
    assert est.score(X * scale, y) == pytest.approx(score_ref, abs=1e-4)


@pytest.mark.parametrize("scale", [1e-30, 1e30])
def test_target_units_scale_the_bands(data, reference, scale):
    X, y = data
    est = SparseMultiTaskBNNRegressor(**FAST).fit(X, y * scale)
    (mean_ref, std_ref), _ = reference
    mean, std = est.predict(X, return_std=True)
    # The targets are standardised by their own spread, so bands come back in
    # units of y: the same numbers times the scale (float32 training: 1e-4).
    np.testing.assert_allclose(mean / scale, mean_ref, atol=1e-4)
    np.testing.assert_allclose(std / scale, std_ref, rtol=1e-3)


def test_a_constant_column_is_ignored_not_amplified(data):
    X, y = data
    X = np.column_stack([X, np.full(len(X), 3.0)])
    est = SparseMultiTaskBNNRegressor(**FAST).fit(X, y)
    # Standardised, the constant column is exactly zero (scale 1, not 1/eps).
    z = est._scaled_tensor(X).numpy()
    assert np.all(z[:, -1] == 0) and np.all(np.abs(z[:, :2]).max(0) > 1)


@pytest.mark.parametrize("dtype", ["Float64", "Int64"])
def test_pandas_nullable_targets_with_na_are_missing_labels(data, dtype):
    pd = pytest.importorskip("pandas")
    X, y = data
    values = np.round(y * 10) if dtype == "Int64" else y
    frame = pd.DataFrame({"a": values, "b": values * 2}).astype(dtype)
    frame.iloc[::4, 1] = pd.NA
    est = SparseMultiTaskBNNRegressor(**FAST).fit(X, frame)
    assert est.n_tasks_ == 2
    assert np.isfinite(est.predict(X[:5])).all()


@pytest.mark.parametrize("device", ["gpu", "meta", "cuda:99"])
def test_unusable_devices_are_named(data, device):
    X, y = data
    with pytest.raises(ValueError, match="device"):
        SparseMultiTaskBNNRegressor(**{**FAST, "device": device}).fit(X, y)


def test_integer_device_is_refused_by_the_constraints(data):
    X, y = data
    with pytest.raises(ValueError, match="'device' parameter"):
        SparseMultiTaskBNNRegressor(**{**FAST, "device": 0}).fit(X, y)
