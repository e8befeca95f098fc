"""Greedy sampling (GSx, GSy, iGS of Wu, Lin & Huang 2019): definitions, reference, errors."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sk_mtbnn.active_learning import gsx_sampling, gsy_sampling, igs_sampling
from sk_mtbnn.active_learning._model import pool_scores, standardised_inputs, standardised_targets
from sk_mtbnn.active_learning.strategies import greedy_picks


# ------------------------------------------------------------ definitions
def test_igs_takes_the_minimum_of_the_product():
    # Issue 13: labelled (x, y) = (0, 0) and (20, 20); candidates a = (1, 19)
    # and b = (10, 1.5) (predicted y). Paper: min_m dx_m * dy_m is 19 for a
    # (1 * 19, 19 * 1) and 15 for b (10 * 1.5, 10 * 18.5): a. The product of
    # the minima (1 * 1 = 1 for a, 10 * 1.5 = 15 for b) would pick b.
    Z_lab, Y_lab = np.array([[0.0], [20.0]]), np.array([[0.0], [20.0]])
    Z, P = np.array([[1.0], [10.0]]), np.array([[19.0], [1.5]])
    np.testing.assert_array_equal(greedy_picks("igs", Z, 1, Z_lab, P, Y_lab), [0])
    # Standardising x and y (one column each) multiplies every product by the
    # same positive factor, so the end-to-end strategy makes the same choice.
    scaled = greedy_picks("igs", Z / 7 - 3, 1, Z_lab / 7 - 3, P * 5 + 1, Y_lab * 5 + 1)
    np.testing.assert_array_equal(scaled, [0])


def test_greedy_sampling_definitions(fit):
    X = np.linspace(0, 1, 21)[:, None]
    y = 3 * X[:, 0]
    est = fit(X[:5], y[:5], hidden_layer_sizes=(8,), max_epochs=30)
    # GSx: the farthest input from the labelled set {0, ..., 0.2}; then, as
    # picked rows count as labelled, the middle of the remaining gap.
    np.testing.assert_array_equal(gsx_sampling(est, X, 2, X_labelled=X[:5]), [20, 12])
    pred = pool_scores(est, X).mean[:, 0]
    lab = standardised_targets(est, y[:5, None])[:, 0]
    d_y = np.abs(pred[:, None] - lab[None, :])
    assert gsy_sampling(est, X, 1, X_labelled=X[:5], y_labelled=y[:5])[0] == np.argmax(d_y.min(1))
    Z = standardised_inputs(est, X)
    d_x = np.abs(Z - Z[:5].T)
    picked = igs_sampling(est, X, 1, X_labelled=X[:5], y_labelled=y[:5])[0]
    assert picked == np.argmax((d_x * d_y).min(1))


def test_first_pick_without_labelled_rows_is_closest_to_the_centroid():
    Z = np.array([[0.0], [1.0], [2.0], [10.0]])  # centroid 3.25
    np.testing.assert_array_equal(greedy_picks("gsx", Z, 2), [2, 3])


# ------------------------------------------------------------ reference: scikit-activeml
def skactiveml_picks(kind, Z, n, Z_lab, P, Y_lab, seed=0):
    """scikit-activeml's greedy sampling on the same standardised arrays (one task)."""
    skpool = pytest.importorskip("skactiveml.pool")
    from skactiveml.base import SkactivemlRegressor

    class Lookup(SkactivemlRegressor):
        """Returns the given predictions of the candidates (skactiveml predicts only them)."""

        def fit(self, X, y, sample_weight=None):
            return self

        def predict(self, X):
            assert np.array_equal(X, Z)
            return P[:, 0]

    X_all = np.vstack([Z_lab, Z])
    y_all = np.concatenate([Y_lab[:, 0], np.full(len(Z), np.nan)])
    candidates = np.arange(len(Z_lab), len(X_all))
    if kind == "gsx":
        query = skpool.GreedySamplingX(random_state=seed).query
        idx = query(X_all, y_all, candidates=candidates, batch_size=n)
    else:
        method = {"gsy": "GSy", "igs": "GSi"}[kind]
        query = skpool.GreedySamplingTarget(method=method, random_state=seed).query
        idx = query(X_all, y_all, Lookup(), fit_reg=False, candidates=candidates, batch_size=n)
    return np.asarray(idx) - len(Z_lab)


@settings(max_examples=30, deadline=None)
@given(
    kind=st.sampled_from(["gsx", "gsy", "igs"]),
    seed=st.integers(0, 2**31 - 1),
    m=st.integers(2, 40),
    n_lab=st.integers(1, 8),
    d=st.integers(1, 3),
    data=st.data(),
)
def test_greedy_sampling_equals_scikit_activeml(kind, seed, m, n_lab, d, data):
    n = data.draw(st.integers(1, m), label="n")
    rng = np.random.RandomState(seed)
    # Continuous draws: ties (which scikit-activeml breaks at random) have probability 0.
    Z, Z_lab = rng.standard_normal((m, d)), rng.standard_normal((n_lab, d))
    P, Y_lab = rng.standard_normal((m, 1)), rng.standard_normal((n_lab, 1))
    ours = greedy_picks(kind, Z, n, Z_lab, P if kind != "gsx" else None, Y_lab)
    np.testing.assert_array_equal(ours, skactiveml_picks(kind, Z, n, Z_lab, P, Y_lab))


@pytest.mark.parametrize("strategy", [gsx_sampling, gsy_sampling, igs_sampling])
def test_strategies_equal_scikit_activeml_on_a_fitted_model(model, pool, strategy):
    X, y = pool
    kind = strategy.__name__.split("_")[0]
    kwargs = {"X_labelled": X[:40], "task": 0}
    if kind != "gsx":
        kwargs["y_labelled"] = y[:40]
    ours = strategy(model, X[40:], 4, **kwargs)
    Z, Z_lab = standardised_inputs(model, X[40:]), standardised_inputs(model, X[:40])
    P = pool_scores(model, X[40:]).mean[:, :1]
    Y_lab = standardised_targets(model, y[:40])[:, :1]
    np.testing.assert_array_equal(ours, skactiveml_picks(kind, Z, 4, Z_lab, P, Y_lab))


def test_several_tasks_compare_standardised_outputs(model, pool):
    X, y = pool
    Z, Z_lab = standardised_inputs(model, X[40:]), standardised_inputs(model, X[:40])
    P, Y_lab = pool_scores(model, X[40:]).mean, standardised_targets(model, y[:40])
    for kind, strategy in (("gsy", gsy_sampling), ("igs", igs_sampling)):
        ours = strategy(model, X[40:], 3, X_labelled=X[:40], y_labelled=y[:40])
        np.testing.assert_array_equal(ours, greedy_picks(kind, Z, 3, Z_lab, P, Y_lab))


def test_rows_missing_a_scored_label_do_not_count_as_labelled(model, pool):
    X, y = pool
    y_missing = y[:40].copy()
    y_missing[:10, 1] = np.nan
    with_nan = gsy_sampling(model, X[40:], 3, X_labelled=X[:40], y_labelled=y_missing)
    dropped = gsy_sampling(model, X[40:], 3, X_labelled=X[10:40], y_labelled=y[10:40])
    np.testing.assert_array_equal(with_nan, dropped)
    # Task 0 alone: those rows are labelled for it.
    kept = gsy_sampling(model, X[40:], 3, X_labelled=X[:40], y_labelled=y_missing, task=0)
    full = gsy_sampling(model, X[40:], 3, X_labelled=X[:40], y_labelled=y[:40], task=0)
    np.testing.assert_array_equal(kept, full)


# ------------------------------------------------------------ errors
@pytest.mark.parametrize("strategy", [gsy_sampling, igs_sampling])
def test_labelled_data_errors(model, pool, strategy):
    X, y = pool
    with pytest.raises(ValueError, match="needs the labels of X_labelled: pass y_labelled"):
        strategy(model, X[40:], 2, X_labelled=X[:40])
    with pytest.raises(ValueError, match="y_labelled was given without X_labelled"):
        strategy(model, X[40:], 2, y_labelled=y[:40])
    for bad in (y[:39], y[:40, :1], y[:40, 0], np.zeros((40, 3)), np.zeros((40, 2, 1))):
        with pytest.raises(ValueError, match=r"y_labelled must have one row per row"):
            strategy(model, X[40:], 2, X_labelled=X[:40], y_labelled=bad)
    with pytest.raises(ValueError, match="infinity"):
        strategy(model, X[40:], 2, X_labelled=X[:40], y_labelled=np.full((40, 2), np.inf))
