"""The distance rule of the query strategies: thresholds, the exclusion box, batch diversity."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.neighbors import KDTree

from sk_mtbnn.active_learning import (
    ClusterEGLSampling,
    distance_thresholds,
    max_std_sampling,
    mean_abs_pairwise_difference,
)
from sk_mtbnn.active_learning._diversity import ExclusionBox, exclusion_box
from sk_mtbnn.active_learning._model import pool_scores, standardised_inputs

modal = pytest.importorskip("modAL")
from modAL.models import ActiveLearner  # noqa: E402


# ------------------------------------------------------------ thresholds
def test_mean_abs_pairwise_difference_matches_brute_force():
    v = np.random.RandomState(0).normal(size=(30, 3))
    brute = np.mean([np.abs(v[i] - v[j]) for i in range(30) for j in range(i + 1, 30)], axis=0)
    np.testing.assert_allclose(mean_abs_pairwise_difference(v), brute)  # same sum, reordered


def test_mean_abs_pairwise_difference_of_one_variable():
    # Issue 13: a 1-D input used to give [0, 0, 0]; the pairs differ by 1, 3, 2.
    assert mean_abs_pairwise_difference([0.0, 1.0, 3.0]) == 2.0
    assert mean_abs_pairwise_difference([5.0]) == 0.0
    with pytest.raises(ValueError, match="1-D or 2-D"):
        mean_abs_pairwise_difference(np.zeros((2, 2, 2)))


def test_distance_thresholds_follow_the_seed_rule():
    S = np.array([[0.0, 0.0], [1.0, 10.0], [3.0, 20.0]])
    dbar, span = mean_abs_pairwise_difference(S), np.ptp(S, axis=0)
    expected = 0.02 * dbar * (dbar / (span + dbar)) * span
    np.testing.assert_allclose(distance_thresholds(S, 0.02), expected)  # same formula


@pytest.mark.parametrize("alpha", [-1, -1e-9, np.nan, np.inf, "0.02", True])
def test_distance_thresholds_reject_a_bad_alpha(alpha):
    # Issue 13: alpha=-1 returned negative thresholds.
    with pytest.raises(ValueError, match="alpha must be a non-negative finite number"):
        distance_thresholds(np.eye(3), alpha)


def test_distance_thresholds_are_zero_where_undefined():
    S = np.array([[0.0, 5.0], [1.0, 5.0], [3.0, 5.0]])  # second column constant
    thr = distance_thresholds(S, 0.02)
    assert thr[0] > 0 and thr[1] == 0
    np.testing.assert_array_equal(distance_thresholds(S[:1], 0.02), [0.0, 0.0])
    with pytest.raises(ValueError, match="2-D"):
        distance_thresholds(np.array([0.0, 1.0, 3.0]), 0.02)


# ------------------------------------------------------------ the exclusion box
def brute_force_excluded(Z, refs, thr):
    """Close along every dimension: |diff| < thr_d, or an exact tie where thr_d = 0."""
    diff = np.abs(Z[:, None, :] - refs[None, :, :])
    close = np.where(thr > 0, diff < np.where(thr > 0, thr, 1.0), diff == 0)
    return close.all(-1).any(1)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    d=st.integers(1, 3),
    zero_dims=st.sets(st.integers(0, 2)),
    n_picked=st.integers(0, 4),
)
def test_exclusion_box_matches_its_definition(seed, d, zero_dims, n_picked):
    rng = np.random.RandomState(seed)
    # A coarse grid makes exact ties (and near-ties) common along every dimension.
    Z = rng.randint(-4, 5, size=(60, d)) / 4.0
    Z_lab = rng.randint(-4, 5, size=(8, d)) / 4.0
    thr = rng.uniform(0.1, 0.8, size=d)
    thr[[k for k in zero_dims if k < d]] = 0.0
    picked = rng.choice(60, n_picked, replace=False).tolist()
    rows = np.arange(60)
    expected = brute_force_excluded(Z, np.vstack([Z_lab, Z[picked]]), thr)
    np.testing.assert_array_equal(ExclusionBox(Z, Z_lab, thr).excluded(rows, picked), expected)


def test_a_constant_labelled_column_keeps_exclusion_on():
    # Issue 13: one constant labelled column switched all exclusion off. Now
    # that dimension only requires an exact tie; the others keep their box.
    Z_lab = np.array([[0.0, 1.0], [1.0, 1.0], [3.0, 1.0]])
    thr = distance_thresholds(Z_lab, 0.02)
    box = exclusion_box(np.array([[1.001, 1.0], [1.001, 1.5], [2.0, 1.0]]), Z_lab, 0.02)
    assert thr[1] == 0 and 0.001 < thr[0]
    # a near-duplicate; a point differing along the constant column; a far point
    np.testing.assert_array_equal(box.excluded(np.arange(3), []), [True, False, False])


@pytest.mark.parametrize("seed", [0, 1])
def test_excluded_share_does_not_depend_on_the_units_of_the_inputs(fit, seed):
    # Issue 13: on raw inputs, x1, x30, x1000 excluded 0.3%, 35.5%, 100% of the pool.
    rng = np.random.RandomState(seed)
    X = rng.uniform(-3, 3, size=(400, 2)) * [1.0, 0.01]  # columns of different units
    y = np.sin(X[:, 0]) + 100 * X[:, 1]
    near_copies = X[:40] + 1e-3 * rng.standard_normal((40, 2)) * [1.0, 0.01]
    X_pool = np.vstack([X[40:], near_copies])
    masks = []
    for factor in (1.0, 30.0, 1000.0):
        est = fit(X[:40] * factor, y[:40], hidden_layer_sizes=(8,), max_epochs=5)
        Z, Z_lab = (standardised_inputs(est, A * factor) for A in (X_pool, X[:40]))
        masks.append(exclusion_box(Z, Z_lab, 0.02).excluded(np.arange(len(Z)), []))
        if factor == 1.0:
            # The standardised inputs of the three fits differ by rounding
            # (~1e-16), which can only flip a row whose scaled Chebyshev
            # distance to the labelled rows is within ~1e-12 of 1: none is.
            thr = distance_thresholds(Z_lab, 0.02)
            dist = KDTree(Z_lab / thr, metric="chebyshev").query(Z / thr, k=1)[0]
            assert np.min(np.abs(dist - 1.0)) > 1e-9
    np.testing.assert_array_equal(masks[0], masks[1])
    np.testing.assert_array_equal(masks[0], masks[2])
    share = masks[0].mean()
    assert 0.09 <= share < 0.2  # the 40 near copies (10% of the pool), and a few neighbours


# ------------------------------------------------------------ batch diversity
def duplicated_pool(model, X, std="total_std", task=None):
    """``X`` after 30 exact copies of its highest-std row; the indices of all 31 copies."""
    sigma = getattr(pool_scores(model, X), std)
    sigma = sigma.sum(1) if task is None else sigma[:, task]
    top = int(np.argmax(sigma))
    X_pool = np.vstack([np.repeat(X[top : top + 1], 30, axis=0), X])
    return X_pool, [*range(30), 30 + top]


def not_close_to_each_other(model, X_picked, X_labelled):
    """No two picked rows inside each other's box (standardised inputs)."""
    Z = standardised_inputs(model, X_picked)
    thr = distance_thresholds(standardised_inputs(model, X_labelled), 0.02)
    close = (np.abs(Z[:, None] - Z[None]) < thr).all(-1)
    return not close[~np.eye(len(Z), dtype=bool)].any()


@pytest.mark.parametrize("task", [None, 0, 1])
def test_max_std_batch_never_holds_duplicates(model, pool, task):
    X, _ = pool
    X_pool, copies = duplicated_pool(model, X[40:], task=task)
    sigma = pool_scores(model, X_pool).total_std
    plain = np.argsort(-(sigma.sum(1) if task is None else sigma[:, task]), kind="stable")
    assert np.isin(plain[:5], copies).all()  # what plain top-n would spend the batch on
    for X_labelled in (X[:40], None):
        idx = max_std_sampling(model, X_pool, 5, task=task, X_labelled=X_labelled)
        assert len(np.unique(X_pool[idx], axis=0)) == 5  # distinct rows, no duplicate
        assert np.isin(idx, copies).sum() == 1  # the top row once
    assert not_close_to_each_other(model, X_pool[idx], X[:40])


def test_max_std_batch_skips_near_duplicates(model, pool):
    X, _ = pool
    X_pool, copies = duplicated_pool(model, X[40:])
    X_pool[copies] += 1e-4 * np.random.RandomState(0).standard_normal((31, 2))
    idx = max_std_sampling(model, X_pool, 5, X_labelled=X[:40])
    assert np.isin(idx, copies).sum() == 1
    assert not_close_to_each_other(model, X_pool[idx], X[:40])


def test_cluster_egl_batch_never_holds_duplicates(model, pool):
    X, _ = pool
    X_pool, copies = duplicated_pool(model, X[40:], std="epistemic_std")
    for X_labelled in (X[:40], None):
        idx = ClusterEGLSampling()(model, X_pool, n_instances=5, X_labelled=X_labelled)
        assert len(np.unique(X_pool[idx], axis=0)) == 5
        assert np.isin(idx, copies).sum() <= 1
    assert not_close_to_each_other(model, X_pool[idx], X[:40])


def test_max_std_never_requeries_labelled_points_in_a_modal_loop(fit):
    # modAL's 1-D active regression example keeps the labelled points in the
    # pool; its max_std_sampling then asks for the same edge points again.
    X = np.linspace(0, 20, 201)[:, None]
    y = np.sin(X[:, 0] / 3)
    learner = ActiveLearner(
        fit(X[[0, 200]], y[[0, 200]], hidden_layer_sizes=(16,), max_epochs=20),
        query_strategy=max_std_sampling,
        X_training=X[[0, 100, 200]],
        y_training=y[[0, 100, 200]],
    )
    for _ in range(3):
        idx, X_new = learner.query(X, n_instances=2)
        assert not np.isin(X_new[:, 0], learner.X_training[:, 0]).any()
        learner.teach(X_new, y[idx])
    assert len(np.unique(learner.X_training)) == 9


def test_alpha_zero_still_keeps_exact_duplicates_out(model, pool):
    X, _ = pool
    X_pool, _ = duplicated_pool(model, X[40:])
    idx = max_std_sampling(model, X_pool, 4, X_labelled=X[:40], alpha=0)
    assert len(np.unique(X_pool[idx], axis=0)) == 4
    with pytest.raises(ValueError, match="alpha must be"):
        max_std_sampling(model, X_pool, 2, alpha=-1)
    with pytest.raises(ValueError, match="alpha must be"):
        ClusterEGLSampling(alpha=-1)(model, X_pool)


def test_every_row_excluded_relaxes_the_exclusion(model, pool):
    X, _ = pool
    X_pool = np.repeat(X[:1], 3, axis=0)  # three copies of a labelled row
    idx = max_std_sampling(model, X_pool, 3, X_labelled=X[:40])
    assert sorted(idx.tolist()) == [0, 1, 2]
