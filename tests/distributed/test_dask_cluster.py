"""On a 2-process dask LocalCluster: the same predictions, queries and searches as locally."""

import joblib
import numpy as np
import pytest

from sk_mtbnn.distributed import predict_dask, predictive_std_score, query_pool_dask

distributed = pytest.importorskip("distributed")


#: Seconds any one computation on the cluster may take before the test fails.
TIMEOUT = 120


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    )
    with cluster, distributed.Client(cluster, timeout=TIMEOUT) as client:
        client.run(_import_package)  # torch's import, once per worker, before the tests
        yield client


def _import_package():
    import sk_mtbnn  # noqa: F401


def test_predict_dask_on_the_cluster_equals_the_local_predict(
    client, fitted_regressor, dask_pool, worker_rtol
):
    mean, std = predict_dask(fitted_regressor, dask_pool, return_std=True)
    got_mean, got_std = client.compute([mean, std], sync=False)
    local_mean, local_std = fitted_regressor.predict(dask_pool.compute(), return_std=True)
    np.testing.assert_allclose(
        got_mean.result(timeout=TIMEOUT), local_mean, rtol=worker_rtol, atol=0
    )
    np.testing.assert_allclose(got_std.result(timeout=TIMEOUT), local_std, rtol=worker_rtol, atol=0)


def test_query_on_the_cluster_equals_ranking_the_local_scores(
    client, fitted_regressor, dask_pool, worker_rtol
):
    idx, values = query_pool_dask(
        fitted_regressor, dask_pool, 30, split_every=2, return_scores=True
    )
    local = predictive_std_score(fitted_regressor, dask_pool.compute())
    np.testing.assert_array_equal(idx, np.argsort(-local, kind="stable")[:30])
    np.testing.assert_allclose(values, local[idx], rtol=worker_rtol, atol=0)


@pytest.mark.parametrize(
    "reference",
    ["sequential", pytest.param("loky", marks=pytest.mark.slow)],  # loky starts 2 processes
)
def test_grid_search_through_the_dask_backend_equals_a_local_one(client, grid_search, reference):
    grid_search("dask").assert_same(grid_search(reference))


def test_ensemble_members_through_the_dask_backend_equal_sequential_ones(
    client, small_regressor, training_data
):
    X, y = training_data

    def ensemble(backend):
        reg = small_regressor().set_params(n_estimators=2, n_jobs=2)
        with joblib.parallel_config(backend=backend):
            return reg.fit(X, y)

    with distributed.get_task_stream(client) as tasks:
        on_dask = ensemble("dask")
    assert len(tasks.data) >= 2  # the members were trained on the workers
    sequential = ensemble("sequential")
    # Each member is seeded and trained on one thread: bitwise reproducible.
    got, expected = on_dask.predict(X, return_std=True), sequential.predict(X, return_std=True)
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)
