"""Query strategies for modAL: correctness of cluster-EGL, baselines, modAL loops."""

import inspect
import warnings

import numpy as np
import pytest
import torch
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sk_mtbnn import (
    BayesAggMTLRegressor,
    IterativeMagnitudePruning,
    SparseMultiTaskBNNRegressor,
)
from sk_mtbnn.active_learning import (
    ClusterEGLSampling,
    _modal_compat,
    cluster_egl_sampling,
    distance_thresholds,
    gsx_sampling,
    gsy_sampling,
    igs_sampling,
    max_std_sampling,
    patch_modal,
    random_sampling,
)
from sk_mtbnn.active_learning._diversity import ExclusionBox
from sk_mtbnn.active_learning._labelled import labelled_set
from sk_mtbnn.estimators import _torch_utils

modal = pytest.importorskip("modAL")
from modAL.models import ActiveLearner  # noqa: E402

STRATEGIES = [
    cluster_egl_sampling,
    max_std_sampling,
    random_sampling,
    gsx_sampling,
    gsy_sampling,
    igs_sampling,
]


# ------------------------------------------------------------ modAL compat
def test_modal_needs_the_patch_with_this_scikit_learn():
    from sklearn.utils import check_X_y

    if "force_all_finite" in inspect.signature(check_X_y).parameters:
        pytest.skip("this scikit-learn still accepts force_all_finite")
    # Unpatched, modAL 0.4.1's call fails (modAL issue #196)...
    with pytest.raises(TypeError, match="force_all_finite"):
        check_X_y(np.zeros((2, 1)), np.zeros(2), force_all_finite=True)
    # ...importing sk_mtbnn.active_learning replaced modAL's helper.
    import modAL.models.base as base

    assert getattr(base.check_X_y, "_sk_mtbnn_patch", False)
    assert "check_X_y" in patch_modal()  # idempotent


def test_patch_is_not_applied_when_not_needed():
    class NewBase:
        class BaseLearner:
            def __init__(self, estimator, query_strategy):
                pass

    assert not _modal_compat._needs_check_X_y_patch(NewBase)


def test_patched_check_still_rejects_non_finite_when_asked():
    import modAL.models.base as base

    with pytest.raises(ValueError, match="NaN"):
        base.check_X_y(np.zeros((2, 1)), [1.0, np.nan], force_all_finite=True)
    base.check_X_y(np.zeros((2, 1)), [1.0, np.nan], force_all_finite=False, multi_output=True)


# ------------------------------------------------------------ shapes
@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("n", [1, 2, 3])
def test_strategies_return_n_distinct_indices(model, pool, strategy, n):
    X, _ = pool
    kwargs = {"X_labelled": X[:40]} if strategy in (cluster_egl_sampling, gsx_sampling) else {}
    if strategy in (gsy_sampling, igs_sampling):
        kwargs = {"X_labelled": X[:40], "y_labelled": pool[1][:40]}
    idx = strategy(model, X[40:], n_instances=n, **kwargs)
    assert isinstance(idx, np.ndarray) and idx.dtype.kind == "i"
    assert len(idx) == n == len(set(idx.tolist()))
    assert idx.min() >= 0 and idx.max() < 360


def test_modals_own_max_std_breaks_on_several_tasks_ours_does_not(model, pool):
    from modAL.disagreement import max_std_sampling as modal_max_std

    X, _ = pool
    with pytest.raises(ValueError):
        modal_max_std(model, X[40:], n_instances=2)
    assert len(max_std_sampling(model, X[40:], n_instances=2)) == 2


# ------------------------------------------------------------ cluster-EGL
def test_fallback_for_an_empty_and_a_fully_excluded_cluster():
    # Standardised inputs; alpha=0.05 gives half-widths 1.08 around labelled points.
    Z = np.array([[0.0, 0.0], [0.01, 0.01], [5.0, 5.0], [9.0, 1.0], [2.0, 7.0]])
    labelled = np.array([[0.0, 0.0], [3.0, 9.0], [9.0, 9.0]])
    box = ExclusionBox(Z, labelled, distance_thresholds(labelled, alpha=0.05))
    members = np.array([1, 2, 3, 4])
    # Cluster 0 holds only row 1, a near-duplicate of a labelled point;
    # cluster 1 has no member at all; cluster 2 has rows 2, 3, 4.
    nearest = np.array([0, 2, 2, 2])
    egl = np.array([9.0, 3.0, 2.0, 1.0])
    sigma = np.array([0.0, 9.0, 3.0, 2.0, 1.0])
    order = np.argsort(-sigma)
    picked = ClusterEGLSampling._pick(box, members, nearest, egl, order, n=3)
    assert len(set(picked.tolist())) == 3
    assert 1 not in picked and 0 not in picked  # excluded, and no silent index 0
    assert set(picked.tolist()) == {2, 3, 4}


def test_exclusion_of_labelled_and_same_round_near_duplicates(model, pool):
    X, _ = pool
    far = np.array([[2.95, 2.95]])
    # Thirty copies of the same far, uncertain point and copies of labelled rows.
    X_pool = np.vstack([np.repeat(far, 30, axis=0), X[:40], X[40:200]])
    idx = ClusterEGLSampling(alpha=0.02)(model, X_pool, n_instances=4, X_labelled=X[:40])
    assert (idx < 30).sum() <= 1  # at most one copy of the duplicated point
    assert not np.any((idx >= 30) & (idx < 70))  # never a labelled row again


def test_scoring_is_chunked_without_changing_results(model, pool, monkeypatch):
    X, _ = pool
    whole = ClusterEGLSampling()(model, X[40:], n_instances=3, X_labelled=X[:40])
    monkeypatch.setattr(_torch_utils, "PREDICT_CHUNK", 7)
    from sk_mtbnn.active_learning import _model

    monkeypatch.setattr(_model, "PREDICT_CHUNK", 7)
    chunked = ClusterEGLSampling()(model, X[40:], n_instances=3, X_labelled=X[:40])
    np.testing.assert_array_equal(whole, chunked)


# ------------------------------------------------------------ baselines
def test_random_sampling_is_reproducible():
    a = random_sampling(None, np.zeros((50, 2)), 5, random_state=3)
    b = random_sampling(None, np.zeros((50, 2)), 5, random_state=3)
    np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------ integration
def run_loop(estimator, X, y, strategy, rounds=3, **learner_kw):
    learner = ActiveLearner(
        estimator, query_strategy=strategy, X_training=X[:20], y_training=y[:20], **learner_kw
    )
    pool_X, pool_y = X[20:].copy(), y[20:].copy()
    for _ in range(rounds):
        with warnings.catch_warnings():
            warnings.simplefilter("error", DeprecationWarning)  # no tuple returns
            idx, X_new = learner.query(pool_X, n_instances=3)
        learner.teach(X_new, pool_y[idx])
        pool_X, pool_y = np.delete(pool_X, idx, 0), np.delete(pool_y, idx, 0)
    return learner


def test_modal_loop_single_task(pool):
    X, y = pool
    learner = run_loop(
        SparseMultiTaskBNNRegressor(hidden_layer_sizes=(16,), max_epochs=20, random_state=0),
        X,
        y[:, 0],
        ClusterEGLSampling(random_state=0),
    )
    assert len(learner.X_training) == 29
    assert learner.predict(X[:5]).shape == (5,)


@pytest.mark.parametrize("strategy", [cluster_egl_sampling, max_std_sampling, igs_sampling])
def test_modal_loop_multi_task_with_missing_labels(pool, strategy):
    X, y = pool
    y = y.copy()
    y[::3, 1] = np.nan
    learner = run_loop(
        SparseMultiTaskBNNRegressor(hidden_layer_sizes=(16,), max_epochs=20, random_state=0),
        X,
        y,
        strategy,
        force_all_finite=False,
    )
    assert learner.y_training.shape == (29, 2) and np.isnan(learner.y_training).any()
    _, std = learner.estimator.predict(X[:4], return_std=True)
    assert std.shape == (4, 2)


@pytest.mark.parametrize(
    "make",
    [
        lambda: make_pipeline(
            StandardScaler(),
            SparseMultiTaskBNNRegressor(hidden_layer_sizes=(16,), max_epochs=20, random_state=0),
        ),
        lambda: IterativeMagnitudePruning(
            SparseMultiTaskBNNRegressor(hidden_layer_sizes=(16,), max_epochs=10),
            n_rounds=1,
            random_state=0,
        ),
        lambda: BayesAggMTLRegressor(hidden_layer_sizes=(16,), max_epochs=20, random_state=0),
    ],
    ids=["pipeline", "pruned", "bayesagg"],
)
def test_cluster_egl_with_other_models(pool, make):
    X, y = pool
    learner = run_loop(make(), X, y, cluster_egl_sampling, rounds=1)
    assert len(learner.X_training) == 23


def test_clear_errors(model, pool):
    X, _ = pool
    with pytest.raises(TypeError, match="needs a fitted sk_mtbnn regressor"):
        cluster_egl_sampling(Ridge().fit(X, X[:, 0]), X)
    with pytest.raises(ValueError, match="exceeds the pool size"):
        max_std_sampling(model, X[:2], n_instances=3)
    with pytest.raises(ValueError, match="task must be None or an integer"):
        cluster_egl_sampling(model, X, task=5)
    with pytest.raises(ValueError, match="uncertainty must be one of"):
        ClusterEGLSampling(uncertainty="aleatoric")(model, X)
    assert torch.get_num_threads() >= 1


def test_rows_labelled_only_for_other_tasks_do_not_count_as_labelled(model, pool):
    X, y = pool

    class Learner:  # the attributes modAL's learners have
        query_strategy = staticmethod(cluster_egl_sampling)
        estimator = model
        X_training = X[:40]
        y_training = np.where(np.arange(40)[:, None] < 15, [np.nan, 0.0], y[:40])

    for tasks, n_rows in (([0], 25), ([1], 40), ([0, 1], 25)):
        labelled = labelled_set(Learner, model, None, tasks, with_y=True)
        assert labelled.Z.shape == (n_rows, 2) and labelled.Y.shape == (n_rows, len(tasks))
        assert not np.isnan(labelled.Y).any()
