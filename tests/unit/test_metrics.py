"""Metrics against independent references (properscoring, scipy, hand computations)."""

import numpy as np
import pytest
from scipy import stats

from sk_mtbnn.metrics import (
    crps_gaussian,
    delta_m,
    expected_calibration_error,
    gaussian_nll,
    interval_coverage,
    interval_width,
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


def test_invalid_inputs():
    with pytest.raises(ValueError, match="y_std must be strictly positive"):
        gaussian_nll([0.0], [0.0], [0.0])
    with pytest.raises(ValueError, match="shapes differ"):
        gaussian_nll([0.0, 1.0], [0.0], [1.0])
    with pytest.raises(ValueError, match="level must be in"):
        interval_coverage([0.0], [0.0], [1.0], level=1.5)
