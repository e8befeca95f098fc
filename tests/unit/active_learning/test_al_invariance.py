"""The strategies' picks do not depend on the units of the input columns or of the targets.

Why the comparison can be exact (``array_equal``, not "usually equal"): the
model is refitted on the rescaled data, and a refit is bitwise identical only
if the standardised data are. They are when every rescaling is exact in
float64: scale factors are powers of two, shifts are integers, the inputs lie
on a grid of 1/8 (targets 1/64) and the training set has 32 = 2^5 rows. Then
the column sums, means, deviations, variances and square roots of the
standardisation are all computed exactly (or rounded identically, since
scaling by 2^k commutes with rounding), the network sees the same float32
numbers, trains identically, and any difference in the picks can only come
from a strategy using raw instead of standardised units. The test checks that
premise (the standardised inputs and the pool scores are bitwise equal)
before it compares picks. Scale factors are positive: a sign flip is not a
change of units and the network is not symmetric under it.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sk_mtbnn import SparseMultiTaskBNNRegressor
from sk_mtbnn.active_learning import (
    ClusterEGLSampling,
    gsx_sampling,
    gsy_sampling,
    igs_sampling,
    max_std_sampling,
)
from sk_mtbnn.active_learning._model import pool_scores, standardised_inputs

N_TRAIN = 32  # a power of two: the means of the standardisation are exact


def make_data():
    rng = np.random.RandomState(0)
    X = rng.randint(-24, 25, size=(96, 2)) / 8.0
    y = np.column_stack([np.sin(X[:, 0]), 0.5 * X[:, 0] + X[:, 1]])
    y = np.round(y * 64) / 64
    # The pool: unlabelled grid rows, exact copies of labelled rows, and near
    # copies 1/256 away (inside the exclusion box) to exercise exclusion.
    near = X[:8] + np.array([1.0, -1.0]) / 256
    X_pool = np.vstack([X[N_TRAIN:], X[:4], near, np.repeat(X[40:41], 4, axis=0)])
    return X[:N_TRAIN], y[:N_TRAIN], X_pool


def fit(X, y):
    params = {"hidden_layer_sizes": (16,), "max_epochs": 20, "random_state": 0}
    return SparseMultiTaskBNNRegressor(**params).fit(X, y)


def all_picks(model, X_lab, y_lab, X_pool, n=4):
    lab = {"X_labelled": X_lab}
    return {
        "cluster-EGL": ClusterEGLSampling()(model, X_pool, n, **lab),
        "cluster-EGL task 1": ClusterEGLSampling(task=1)(model, X_pool, n, **lab),
        "max-std": max_std_sampling(model, X_pool, n, **lab),
        "GSx": gsx_sampling(model, X_pool, n, **lab),
        "GSy": gsy_sampling(model, X_pool, n, **lab, y_labelled=y_lab),
        "iGS": igs_sampling(model, X_pool, n, **lab, y_labelled=y_lab),
    }


@pytest.fixture(scope="module")
def reference():
    X, y, X_pool = make_data()
    model = fit(X, y)
    return X, y, X_pool, model, all_picks(model, X, y, X_pool)


def test_the_reference_exercises_exclusion(reference):
    _, _, X_pool, model, picks = reference
    # The plain top-4 by std holds a row that the exclusion keeps out.
    sigma = pool_scores(model, X_pool).total_std.sum(1)
    plain = np.argsort(-sigma, kind="stable")[:4]
    assert not np.array_equal(np.sort(plain), np.sort(picks["max-std"]))


pow2 = st.integers(-12, 12).map(lambda k: 2.0**k)
shift = st.integers(-1000, 1000).map(float)


@settings(max_examples=8, deadline=None)
@given(
    x_scale=st.tuples(pow2, pow2),
    x_shift=st.tuples(shift, shift),
    y_scale=st.tuples(pow2, pow2),
    y_shift=st.tuples(shift, shift),
)
def test_picks_are_invariant_to_affine_units(reference, x_scale, x_shift, y_scale, y_shift):
    X, y, X_pool, model, expected = reference
    to_x = lambda A: A * np.array(x_scale) + np.array(x_shift)  # noqa: E731
    y2 = y * np.array(y_scale) + np.array(y_shift)
    model2 = fit(to_x(X), y2)
    # The premise (module docstring): the rescaled fit is bitwise the same model.
    np.testing.assert_array_equal(
        standardised_inputs(model2, to_x(X_pool)), standardised_inputs(model, X_pool)
    )
    for a, b in zip(pool_scores(model2, to_x(X_pool)), pool_scores(model, X_pool)):
        np.testing.assert_array_equal(a, b)
    picks = all_picks(model2, to_x(X), y2, to_x(X_pool))
    for name, idx in expected.items():
        np.testing.assert_array_equal(picks[name], idx, err_msg=name)
