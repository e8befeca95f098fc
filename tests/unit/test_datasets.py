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
    make_heterogeneous_tasks,
    make_multifidelity,
    make_multitask_classification,
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


def test_lmc_two_groups_return_their_labels():
    X, y, f, groups = make_multitask_regression(
        1000,
        n_tasks=6,
        n_groups=2,
        noise=0.0,
        random_state=0,
        return_function=True,
        return_groups=True,
    )
    np.testing.assert_array_equal(groups, [0, 0, 0, 1, 1, 1])
    np.testing.assert_allclose(f(X), y)
    corr = np.corrcoef(y.T)
    same = groups[:, None] == groups[None, :]
    off_diagonal = ~np.eye(6, dtype=bool)
    # As in test_lmc_tasks_are_related_within_groups_only: shared mixing weights
    # up to 30% inside a group, independent draws across (|r| < 0.4 for this seed).
    assert corr[same & off_diagonal].min() > 0.8
    assert np.abs(corr[~same]).max() < 0.4


def test_lmc_keeps_a_label_for_every_task():
    _, y = make_multitask_regression(5, n_tasks=4, missing_fraction=0.99, random_state=0)
    assert np.all((~np.isnan(y)).sum(0) >= 1)


def test_generators_are_reproducible():
    for make in (make_multitask_regression, make_heterogeneous_tasks, make_multifidelity):
        first, second = make(n_samples=50, random_state=3), make(n_samples=50, random_state=3)
        for a, b in zip(first, second):
            np.testing.assert_array_equal(a, b)


def test_heterogeneous_tasks_structure():
    X, Y, groups = make_heterogeneous_tasks(
        3000,
        task_groups=[0, 0, 1, 2],
        scale_range=(5.0, 5.0),
        noise_range=(0.1, 0.1),
        n_few_labels=0,
        random_state=0,
        return_groups=True,
    )
    np.testing.assert_array_equal(groups, [0, 0, 1, 2])
    assert X.shape == (3000, 3) and not np.isnan(Y).any()
    # Scale 5 and relative noise 0.1: std 5 sqrt(1 + 0.1^2); the sample std of
    # 3000 rows is within a few percent (smooth functions: fewer than 3000
    # independent values, so 5% rather than the iid 1.3%).
    np.testing.assert_allclose(Y.std(0), 5 * np.sqrt(1.01), rtol=0.05)
    assert np.all(np.abs(Y.mean(0)) <= 3 * 5 + 0.5)  # offsets within 3 scales
    corr = np.corrcoef(Y.T)
    # Related: noise-free correlation ~0.95 times 1 / (1 + 0.1^2) for the noise.
    assert corr[0, 1] > 0.8
    # Unrelated: orthonormalised functions, so only sampling error remains
    # (about 1 / sqrt(3000) = 0.02 for iid rows, more for smooth functions).
    assert np.abs(corr[np.triu_indices(4, 1)][1:]).max() < 0.1


def test_heterogeneous_tasks_defaults_differ_in_scale_and_labels():
    _, Y = make_heterogeneous_tasks(400, random_state=0)
    n_labelled = (~np.isnan(Y)).sum(0)
    assert sorted(n_labelled.tolist()) == [20, 20, 400, 400, 400, 400]  # 5% of 400 for two
    spread = np.nanstd(Y, axis=0)
    # Log-uniform scales over four decades: for this seed they span more than one.
    assert spread.max() / spread.min() > 10


def test_heterogeneous_tasks_smoothness_follows_the_length_scale():
    # One input: the mean squared difference of neighbouring (sorted) values
    # grows like 1 / length_scale^2, so a tenfold shorter length scale gives a
    # far rougher task (about 100 times; asserted > 10).
    roughness = []
    for length_scale in (0.1, 1.0):
        X, Y = make_heterogeneous_tasks(
            2000,
            n_features=1,
            task_groups=[0],
            noise_range=(1e-6, 1e-6),
            length_scale_range=(length_scale, length_scale),
            n_few_labels=0,
            random_state=0,
        )
        y = Y[np.argsort(X[:, 0]), 0] / Y.std()
        roughness.append(np.mean(np.diff(y) ** 2))
    assert roughness[0] > 10 * roughness[1]


def test_heterogeneous_few_labels_keep_at_least_two():
    _, Y = make_heterogeneous_tasks(10, n_few_labels=6, few_labels_fraction=0.01, random_state=0)
    assert np.all((~np.isnan(Y)).sum(0) == 2)


# ------------------------------------------------------------ invalid inputs
@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: make_multitask_regression(10, n_latent=0), "'n_latent' parameter"),
        (lambda: make_multitask_regression(10, length_scale=0), "'length_scale' parameter"),
        (lambda: make_multitask_regression(10, length_scale=1e-320), "not finite"),
        (lambda: make_multitask_regression(10, length_scale=1e12), "numerically constant"),
        (lambda: make_multitask_regression(10, missing_fraction=1.5), "'missing_fraction'"),
        (lambda: make_multitask_regression(10, missing_fraction=1.0), r"\[0.0, 1.0\)"),
        (lambda: make_multitask_regression(10, noise=-1), "'noise' parameter"),
        (lambda: make_multitask_regression(10, noise=np.nan), "'noise' parameter"),
        (lambda: make_multitask_regression(0), "'n_samples' parameter"),
        (lambda: make_multitask_regression(10.0), "must be an int"),
        (lambda: make_multitask_regression(10, n_features=0), "'n_features' parameter"),
        (lambda: make_multitask_regression(10, random_state="a"), "'random_state' parameter"),
        (lambda: make_multitask_regression(10, task_groups=[0, -1]), "non-negative integers"),
        (lambda: make_multitask_regression(10, task_groups=[0, 0.5]), "non-negative integers"),
        (lambda: make_multitask_regression(10, task_groups=[]), "non-empty"),
        (lambda: make_multitask_regression(10, task_groups=[0, 1], n_groups=2), "not both"),
        (lambda: make_multitask_regression(10, n_tasks=2, n_groups=3), "exceeds n_tasks"),
        (lambda: make_multitask_regression(10, return_groups="yes"), "'return_groups'"),
        (lambda: make_multitask_classification(10, conflict=2), "'conflict' parameter"),
        (lambda: make_multitask_classification(10, label_noise=(0.3, 0.1)), "label_noise"),
        (lambda: make_multitask_classification(10, label_noise=(0, 0.7)), "<= 0.5"),
        (lambda: make_multitask_classification(10, label_noise=0.1), "'label_noise'"),
        (lambda: make_multitask_classification(10, n_tasks=1), "n_tasks must be at least 2"),
        (lambda: make_multitask_classification(1), "n_samples must be at least 2"),
        (lambda: make_multifidelity("foo"), "'function' parameter"),
        (lambda: make_multifidelity(n_samples=10, noise=-1), "'noise' parameter"),
        (lambda: make_multifidelity(high_fidelity_fraction=1.5), "'high_fidelity_fraction'"),
        (lambda: make_multifidelity(n_samples=10, high_fidelity_fraction=0.01), "rounds to no"),
        (lambda: make_heterogeneous_tasks(10, n_few_labels=7), "exceeds the number of tasks"),
        (lambda: make_heterogeneous_tasks(10, scale_range=(0, 1)), "0 < smallest"),
        (lambda: make_heterogeneous_tasks(10, noise_range=(0.2, 0.1)), "noise_range"),
        (lambda: make_heterogeneous_tasks(10, length_scale_range=(1e-4, 1)), "0.001 <= smallest"),
        (lambda: make_heterogeneous_tasks(10, few_labels_fraction=1), "'few_labels_fraction'"),
        (lambda: make_heterogeneous_tasks(10, task_groups=[[0, 1]]), "non-negative integers"),
        (lambda: forrester([0.5], fidelity="foo"), "'fidelity' parameter of forrester"),
        (lambda: currin([[0.5, 0.5]], fidelity="medium"), "'fidelity' parameter of currin"),
        (lambda: forrester(np.zeros((3, 2))), r"forrester has one input.*\(3, 2\)"),
        (lambda: forrester([np.nan]), "forrester: Input x contains NaN"),
        (lambda: currin([[0.5, -0.1]]), r"x\[0, 1\] = -0.1 lies outside"),
        (lambda: currin([0.5, 0.5]), r"pass x of shape \(n, 2\)"),
        (lambda: borehole(np.zeros((2, 3))), r"pass x of shape \(n, 8\)"),
        (lambda: borehole(np.zeros((1, 8))), "borehole is defined on"),
        (lambda: load_enb(return_X_y="yes"), "'return_X_y' parameter of load_enb"),
        (lambda: load_slump(as_frame=1), "'as_frame' parameter of load_slump"),
    ],
)
def test_invalid_parameters_raise_clear_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()
