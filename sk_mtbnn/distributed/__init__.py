"""Scale out on existing engines: dask arrays for prediction and pool scoring, Ray too,
and data-parallel training with torch.distributed.

:func:`predict_dask` maps a fitted estimator over the row blocks of a
:class:`dask.array.Array`, lazily and out of core; :func:`query_pool_dask`
ranks an active-learning pool that never fits in one process, by per-block
top-k and a tree of merges. Searches (``GridSearchCV``) and ensemble members
need nothing from here: run them under ``joblib.parallel_config(backend="dask")``
or Ray's joblib backend (see the user guide, :ref:`scaling_out`).

:func:`fit_data_parallel` trains one network over several processes (or
GPUs): gradients averaged by an all-reduce every step, the heads' sufficient
statistics summed before their closed-form refinement (torch.distributed,
no extra dependency).

Dask (``pip install "sk_mtbnn[dask]"``) and Ray (``"sk_mtbnn[ray]"``) are
optional and imported only when a function here needs them.
"""

from ._pool import predictive_std_score, query_pool_dask, score_pool_dask
from ._predict import predict_dask
from ._ray import ray_dask_scheduler
from .data_parallel import DataParallelReport, fit_data_parallel

__all__ = [
    "DataParallelReport",
    "fit_data_parallel",
    "predict_dask",
    "predictive_std_score",
    "query_pool_dask",
    "ray_dask_scheduler",
    "score_pool_dask",
]
