"""On a local Ray instance: Ray's dask scheduler and joblib backend give the local results."""

import os
import pickle

import numpy as np
import pytest

from sk_mtbnn.distributed import (
    predict_dask,
    predictive_std_score,
    query_pool_dask,
    ray_dask_scheduler,
)

ray = pytest.importorskip("ray")
ray_joblib = pytest.importorskip("ray.util.joblib")
pytest.importorskip("ray.util.dask")  # Ray's dask integration also needs pyarrow

pytestmark = pytest.mark.slow  # starting Ray and its workers takes 10-30 s


@pytest.fixture(scope="module")
def ray_session():
    # As the user guide advises: without it, Ray's driver replaces print once
    # it relays worker output, and fitted models (skorch holds print) no
    # longer pickle.
    previous = os.environ.get("RAY_TQDM_PATCH_PRINT")
    os.environ["RAY_TQDM_PATCH_PRINT"] = "0"
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=100 * 2**20)
    ray_joblib.register_ray()
    yield
    ray.shutdown()
    if previous is None:
        del os.environ["RAY_TQDM_PATCH_PRINT"]
    else:
        os.environ["RAY_TQDM_PATCH_PRINT"] = previous


def test_predict_dask_on_ray_equals_the_local_predict(
    ray_session, fitted_regressor, dask_pool, worker_rtol
):
    import dask

    mean, std = predict_dask(fitted_regressor, dask_pool, return_std=True)
    got_mean, got_std = dask.compute(mean, std, scheduler=ray_dask_scheduler())
    local_mean, local_std = fitted_regressor.predict(
        dask_pool.compute(scheduler="sync"), return_std=True
    )
    np.testing.assert_allclose(got_mean, local_mean, rtol=worker_rtol, atol=0)
    np.testing.assert_allclose(got_std, local_std, rtol=worker_rtol, atol=0)


def test_query_on_ray_equals_ranking_the_local_scores(
    ray_session, fitted_regressor, dask_pool, worker_rtol
):
    idx, values = query_pool_dask(
        fitted_regressor,
        dask_pool,
        30,
        split_every=2,
        return_scores=True,
        scheduler=ray_dask_scheduler(),
    )
    local = predictive_std_score(fitted_regressor, dask_pool.compute(scheduler="sync"))
    np.testing.assert_array_equal(idx, np.argsort(-local, kind="stable")[:30])
    np.testing.assert_allclose(values, local[idx], rtol=worker_rtol, atol=0)


def test_grid_search_through_rays_joblib_backend_equals_a_local_one(ray_session, grid_search):
    on_ray = grid_search("ray")
    on_ray.assert_same(grid_search("sequential"))
    # The workers' output has been relayed by now; the refitted model still pickles.
    assert pickle.loads(pickle.dumps(on_ray.search.best_estimator_)).n_tasks_ == 2
