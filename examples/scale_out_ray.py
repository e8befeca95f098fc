"""
Scaling out with Ray: a search through Ray's joblib backend, pool queries on Ray
================================================================================

The same two uses as with dask, on Ray: ``GridSearchCV`` fits spread over
Ray's workers through its joblib backend, and a dask pool ranked on Ray
through Ray's dask scheduler (no dask cluster needed).

It starts a local Ray instance with 2 CPUs (under a minute on 2 cores);
``ray.init(address="auto")`` joins a running Ray cluster instead. Not run by
the gallery: it needs ``pip install "sk_mtbnn[ray]"``.
"""

import os

import dask.array as da
import joblib
import numpy as np
import ray
from ray.util.joblib import register_ray
from sklearn.model_selection import GridSearchCV, KFold

from sk_mtbnn import SparseMultiTaskBNNRegressor
from sk_mtbnn.distributed import predict_dask, query_pool_dask, ray_dask_scheduler

#: Short training, so that the example runs in about a minute.
SETTINGS = {"hidden_layer_sizes": (32, 32), "max_epochs": 60, "random_state": 0}


def main():
    # Ray's driver replaces print once it relays worker output; fitted models
    # (their skorch callbacks hold print) could then not be pickled.
    os.environ.setdefault("RAY_TQDM_PATCH_PRINT", "0")
    ray.init(num_cpus=2, include_dashboard=False)
    register_ray()  # makes joblib's "ray" backend available
    try:
        rng = np.random.RandomState(0)
        X = rng.uniform(-2, 2, size=(500, 4))
        y = np.column_stack([np.sin(2 * X[:, 0]) + X[:, 1], X[:, 2] * X[:, 3]])
        y += 0.1 * rng.standard_normal(y.shape)

        search = GridSearchCV(
            SparseMultiTaskBNNRegressor(**SETTINGS),
            {"hidden_layer_sizes": [(32, 32), (64, 64)], "learning_rate": [3e-3, 1e-2]},
            cv=KFold(3, shuffle=True, random_state=0),
        )
        with joblib.parallel_config(backend="ray"):
            search.fit(X, y)
        print("best parameters:", search.best_params_)
        reg = search.best_estimator_

        pool = da.random.default_rng(1).uniform(-3, 3, size=(1_000_000, 4), chunks=(250_000, 4))
        scheduler = ray_dask_scheduler()
        idx = query_pool_dask(reg, pool, n_instances=10, scheduler=scheduler)
        print("max-std batch:", idx)
        mean = predict_dask(reg, pool).mean(axis=0).compute(scheduler=scheduler)
        print("mean prediction per task:", mean)
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
