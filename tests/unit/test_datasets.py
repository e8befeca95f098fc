"""Bundled data and synthetic generators."""

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from sk_mtbnn.datasets import (
    borehole,
    currin,
    forrester,
    load_enb,
    load_slump,
    make_multifidelity,
    make_multitask_regression,
)


def test_bundled_data_shapes_and_names():
    enb = load_enb()
    assert enb.data.shape == (768, 8) and enb.target.shape == (768, 2)
    assert enb.feature_names[0] == "X1" and enb.target_names == ["y_heating_load", "y_cooling_load"]
    X, y = load_slump(return_X_y=True)
    assert X.shape == (103, 7) and y.shape == (103, 3)
    assert not np.isnan(X).any() and not np.isnan(y).any()


def test_as_frame():
    pytest.importorskip("pandas")
    _X, y = load_enb(return_X_y=True, as_frame=True)
    assert list(y.columns) == ["y_heating_load", "y_cooling_load"]


def test_forrester_minimum_matches_the_literature():
    # Forrester et al. (2008): global minimum f(0.7572) = -6.0207 on [0, 1].
    res = minimize_scalar(
        lambda x: forrester(np.array([x]))[0], bounds=(0.6, 0.9), method="bounded"
    )
    assert res.x == pytest.approx(0.7572, abs=1e-3)
    assert res.fun == pytest.approx(-6.0207, abs=1e-3)


def test_borehole_and_currin_reference_points():
    # Borehole at the lower corner of its domain, by hand from the formula.
    x = np.array([[0.05, 100, 63070, 990, 63.1, 700, 1120, 9855]])
    lr = np.log(100 / 0.05)
    expected = (
        2
        * np.pi
        * 63070
        * 290
        / (lr * (1 + 2 * 1120 * 63070 / (lr * 0.05**2 * 9855) + 63070 / 63.1))
    )
    assert borehole(x)[0] == pytest.approx(expected)
    # Currin at x2 -> 0: the exponential factor tends to 1.
    assert currin(np.array([[0.5, 0.0]]))[0] == pytest.approx(
        (2300 * 0.125 + 1900 * 0.25 + 2092 * 0.5 + 60) / (100 * 0.125 + 500 * 0.25 + 2 + 20)
    )


def test_multifidelity_labels():
    X, y = make_multifidelity("currin", 200, high_fidelity_fraction=0.3, random_state=0)
    assert X.shape == (200, 2)
    assert np.isnan(y[:, 0]).sum() == 140 and not np.isnan(y[:, 1]).any()
    np.testing.assert_allclose(y[~np.isnan(y[:, 0]), 0], currin(X[~np.isnan(y[:, 0])]))


def test_lmc_tasks_are_related_within_groups_only():
    X, y, f = make_multitask_regression(
        4000, task_groups=[0, 0, 1], noise=0.0, random_state=1, return_function=True
    )
    np.testing.assert_allclose(y.std(0), 1.0, atol=0.1)
    corr = np.corrcoef(f(X).T)
    # Same group: common mixing weights up to 30%, so strongly correlated.
    # Different groups: independent smooth draws, whose sample correlation
    # over the cube is not zero but much weaker (|r| < 0.4 for these seeds).
    assert corr[0, 1] > 0.85
    assert abs(corr[0, 2]) < 0.4 and abs(corr[1, 2]) < 0.4


def test_lmc_missing_fraction():
    _, y = make_multitask_regression(2000, missing_fraction=0.3, random_state=0)
    assert np.isnan(y).mean() == pytest.approx(0.3, abs=0.02)
