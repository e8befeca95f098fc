"""
Scaling out with dask: predictions, pool queries and a search on a cluster
==========================================================================

Fit once in the client process, then predict on, and query, a pool of
2,000,000 rows that is generated block by block on the workers (in practice
``dask.array.from_zarr`` or ``from_npy_stack``), and run a grid search whose
fits spread over the workers through joblib's dask backend.

It starts a 2-worker ``LocalCluster`` (one to two minutes on 2 cores); point
``Client`` at a scheduler's address to use a real cluster. Not run by the
gallery: it needs ``pip install "sk_mtbnn[dask]"`` and a few cores.
"""

from functools import partial

import dask
import dask.array as da
import joblib
import numpy as np
from distributed import Client, LocalCluster
from sklearn.model_selection import GridSearchCV, KFold

from sk_mtbnn import SparseMultiTaskBNNRegressor
from sk_mtbnn.active_learning import cluster_egl_sampling
from sk_mtbnn.distributed import predict_dask, predictive_std_score, query_pool_dask

#: Short training, so that the example runs in a minute or two.
SETTINGS = {"hidden_layer_sizes": (32, 32), "max_epochs": 60, "random_state": 0}


def labelled_data(n=500, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.uniform(-2, 2, size=(n, 4))
    y = np.column_stack([np.sin(2 * X[:, 0]) + X[:, 1], X[:, 2] * X[:, 3]])
    return X, y + 0.1 * rng.standard_normal(y.shape)


def main():
    # One process per core, one thread each: torch is fastest that way.
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        print(client)
        X, y = labelled_data()
        reg = SparseMultiTaskBNNRegressor(**SETTINGS).fit(X, y)

        # The pool: rows chunked, all columns in one chunk; never in one process.
        pool = da.random.default_rng(1).uniform(-3, 3, size=(2_000_000, 4), chunks=(250_000, 4))

        # Lazy predictions; compute mean and std in one pass over the pool.
        mean, std = predict_dask(reg, pool, return_std=True)
        print("mean prediction per task:", mean.mean(axis=0).compute())
        widest = (std.max(axis=0), std.argmax(axis=0))
        print("largest std per task and its row:", dask.compute(*widest))

        # The 10 rows of largest total predictive std (max_std_sampling's score):
        # per-block top 10, merged in a tree on the workers.
        idx = query_pool_dask(reg, pool, n_instances=10)
        print("max-std batch:", idx)

        # A diverse batch: shortlist the 500 most uncertain rows on the cluster,
        # then let cluster-EGL spread 10 queries over them, locally.
        epistemic = partial(predictive_std_score, uncertainty="epistemic")
        shortlist = np.sort(query_pool_dask(reg, pool, n_instances=500, score=epistemic))
        X_short = pool[shortlist].compute()
        picked = cluster_egl_sampling(reg, X_short, n_instances=10, X_labelled=X)
        print("cluster-EGL batch:", shortlist[picked])

        # A search: every (candidate, fold) fit is one task on the cluster.
        search = GridSearchCV(
            SparseMultiTaskBNNRegressor(**SETTINGS),
            {"hidden_layer_sizes": [(32, 32), (64, 64)], "learning_rate": [3e-3, 1e-2]},
            cv=KFold(3, shuffle=True, random_state=0),
        )
        with joblib.parallel_config(backend="dask"):
            search.fit(X, y)
        print("best parameters:", search.best_params_)


if __name__ == "__main__":  # worker processes re-import this file
    main()
