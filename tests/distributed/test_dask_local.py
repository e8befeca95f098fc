"""sk_mtbnn.distributed on dask's in-process schedulers: results, graph shape, errors."""

import os
import pickle
import sys
import warnings

import numpy as np
import pytest

from sk_mtbnn.distributed import (
    predict_dask,
    predictive_std_score,
    query_pool_dask,
    score_pool_dask,
)
from sk_mtbnn.distributed._pool import top_k

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")


@pytest.fixture(autouse=True)
def synchronous():
    with dask.config.set(scheduler="synchronous"):
        yield


# ------------------------------------------------------------------ top-k
@pytest.mark.parametrize("k", [1, 3, 50, 400])
def test_top_k_is_a_stable_descending_sort_with_ties(k):
    rng = np.random.default_rng(k)
    values = rng.integers(0, 20, size=400).astype(float)  # many ties
    got_values, got_index = top_k(values, np.arange(400), k)
    expected = np.argsort(-values, kind="stable")[:k]
    np.testing.assert_array_equal(got_index, expected)
    np.testing.assert_array_equal(got_values, values[expected])


def test_merging_partial_top_k_gives_the_global_top_k():
    # The reduction's invariant: top-k of the union of any partition's parts'
    # top-k equals the top-k of the whole, ties included.
    rng = np.random.default_rng(0)
    values = rng.integers(0, 10, size=1_000).astype(float)
    cuts = np.sort(rng.choice(np.arange(1, 1_000), size=30, replace=False))
    pieces = zip(np.split(values, cuts), np.split(np.arange(1_000), cuts))
    parts = [top_k(v, i, 25) for v, i in pieces]
    merged = top_k(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), 25)
    np.testing.assert_array_equal(merged[1], np.argsort(-values, kind="stable")[:25])


@pytest.mark.parametrize("split_every", [2, 3, 16])
def test_query_with_ties_equals_ranking_the_whole_pool(split_every):
    # A score with many ties (the rounded first column) across blocks of
    # several sizes, reduced over one to four levels.
    X = np.random.default_rng(0).uniform(0, 5, size=(3_000, 2))
    pool = da.from_array(X, chunks=((100,) * 10 + (500,) * 4, (2,)))
    idx, values = query_pool_dask(
        None, pool, 40, score=_rounded_first_column, split_every=split_every, return_scores=True
    )
    expected = np.argsort(-np.round(X[:, 0]), kind="stable")[:40]
    np.testing.assert_array_equal(idx, expected)
    np.testing.assert_array_equal(values, np.round(X[expected, 0]))


def _rounded_first_column(model, X):
    return np.round(X[:, 0])


# ---------------------------------------------------------- model results
@pytest.mark.parametrize("return_std", [False, True])
def test_predict_dask_equals_the_local_predict(
    fitted_regressor, dask_pool, return_std, worker_rtol
):
    out = predict_dask(fitted_regressor, dask_pool, return_std=return_std)
    local = fitted_regressor.predict(dask_pool.compute(), return_std=return_std)
    if not return_std:
        out, local = (out,), (local,)
    assert all(isinstance(o, da.Array) for o in out)
    for got, expected in zip(dask.compute(*out), local):
        assert got.shape == expected.shape  # (n,) for one task, (n, 2) for two
        np.testing.assert_allclose(got, expected, rtol=worker_rtol, atol=0)


def test_predict_dask_gathers_split_columns(fitted_regressor, dask_pool, worker_rtol):
    split = dask_pool.rechunk({1: 1})
    np.testing.assert_allclose(
        predict_dask(fitted_regressor, split).compute(),
        fitted_regressor.predict(dask_pool.compute()),
        rtol=worker_rtol,
    )


def test_query_pool_dask_equals_ranking_the_local_scores(fitted_regressor, dask_pool, worker_rtol):
    idx, values = query_pool_dask(
        fitted_regressor, dask_pool, 25, split_every=2, return_scores=True
    )
    local = predictive_std_score(fitted_regressor, dask_pool.compute())
    np.testing.assert_array_equal(idx, np.argsort(-local, kind="stable")[:25])
    np.testing.assert_allclose(values, local[idx], rtol=worker_rtol)


def test_score_pool_dask_equals_the_local_scores(fitted_regressor, dask_pool, worker_rtol):
    got = score_pool_dask(fitted_regressor, dask_pool).compute()
    np.testing.assert_allclose(
        got, predictive_std_score(fitted_regressor, dask_pool.compute()), rtol=worker_rtol
    )


def test_the_model_enters_the_graph_once(fitted_regressor, dask_pool):
    # Each task is serialised on its own by a distributed scheduler: only one
    # graph node may carry the model, every block task refers to it by key.
    size = len(pickle.dumps(fitted_regressor))
    for collection in (
        predict_dask(fitted_regressor, dask_pool),
        score_pool_dask(fitted_regressor, dask_pool),
    ):
        graph = dict(collection.__dask_graph__())
        heavy = [k for k, v in graph.items() if len(pickle.dumps(v)) >= size // 2]
        assert len(heavy) == 1, heavy
        assert len(graph) > dask_pool.numblocks[0]  # one task per block besides


def test_a_model_fitted_on_a_dataframe_gets_named_blocks(dask_pool):
    pd = pytest.importorskip("pandas")
    from sk_mtbnn import SparseMultiTaskBNNRegressor

    X = pd.DataFrame(np.random.default_rng(0).uniform(-2, 2, (80, 3)), columns=["a", "b", "c"])
    reg = SparseMultiTaskBNNRegressor(hidden_layer_sizes=(8,), max_epochs=5, random_state=0)
    reg.fit(X, np.sin(X["a"]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "X does not have valid feature names"
        got = predict_dask(reg, dask_pool).compute()
    np.testing.assert_allclose(
        got, reg.predict(pd.DataFrame(dask_pool.compute(), columns=X.columns))
    )


# ---------------------------------------------------------------- errors
def test_inputs_that_are_not_2d_dask_arrays_are_rejected(fitted_regressor, dask_pool):
    with pytest.raises(TypeError, match=r"dask\.array\.from_array"):
        predict_dask(fitted_regressor, dask_pool.compute())
    with pytest.raises(ValueError, match="must be 2-D"):
        query_pool_dask(fitted_regressor, dask_pool[:, 0])


def test_query_arguments_are_checked(fitted_regressor, dask_pool):
    with pytest.raises(ValueError, match="exceeds the pool size 6000"):
        query_pool_dask(fitted_regressor, dask_pool, 6_001)
    with pytest.raises(ValueError, match="n_instances must be a positive integer"):
        query_pool_dask(fitted_regressor, dask_pool, 0)
    with pytest.raises(ValueError, match="split_every must be at least 2"):
        query_pool_dask(fitted_regressor, dask_pool, split_every=1)
    unknown = dask_pool[dask_pool[:, 0] > 0]  # boolean selection: row counts unknown until computed
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        query_pool_dask(fitted_regressor, unknown)


def test_a_score_with_the_wrong_shape_or_not_finite_values_raises(fitted_regressor, dask_pool):
    with pytest.raises(ValueError, match="one value per row"):
        query_pool_dask(fitted_regressor, dask_pool, score=lambda model, X: X)
    with pytest.raises(ValueError, match="not finite"):
        query_pool_dask(
            fitted_regressor, dask_pool, score=lambda model, X: np.where(X[:, 0] > 0, 1.0, np.nan)
        )


def test_a_wrong_number_of_features_fails_before_any_task_runs(fitted_regressor, dask_pool):
    with pytest.raises(ValueError, match="features"):
        predict_dask(fitted_regressor, dask_pool[:, :2])


def test_missing_dask_names_the_extra(monkeypatch, fitted_regressor):
    monkeypatch.setitem(sys.modules, "dask.array", None)  # import fails
    with pytest.raises(ImportError, match=r'pip install "sk_mtbnn\[dask\]"'):
        predict_dask(fitted_regressor, np.zeros((3, 3)))


def test_missing_ray_names_the_extra(monkeypatch):
    from sk_mtbnn.distributed import ray_dask_scheduler

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ImportError, match=r'pip install "sk_mtbnn\[ray\]"'):
        ray_dask_scheduler()


def test_ray_scheduler_prevents_and_reports_rays_print_patch(monkeypatch):
    pytest.importorskip("ray.util.dask")
    import builtins

    from sk_mtbnn.distributed import ray_dask_scheduler

    monkeypatch.setenv("RAY_TQDM_PATCH_PRINT", "unset")  # restored after the test
    monkeypatch.delenv("RAY_TQDM_PATCH_PRINT")
    assert callable(ray_dask_scheduler())
    assert os.environ["RAY_TQDM_PATCH_PRINT"] == "0"
    monkeypatch.setattr(builtins, "print", lambda *args, **kwargs: None)  # as tqdm_ray does
    with pytest.warns(UserWarning, match="RAY_TQDM_PATCH_PRINT=0 before ray.init"):
        ray_dask_scheduler()
