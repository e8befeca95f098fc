"""Ray as the engine: dask graphs on a Ray cluster, and Ray's joblib backend."""

from __future__ import annotations

from ._blocks import import_optional


def ray_dask_scheduler():
    """Ray's dask scheduler, to run :func:`predict_dask` and the pool queries on Ray.

    Pass it as ``scheduler=`` to :func:`query_pool_dask` or to
    :func:`dask.compute`, or set it for a block of code with
    ``dask.config.set(scheduler=ray_dask_scheduler())``. Connect to (or
    start) a Ray cluster with ``ray.init`` first.

    Returns
    -------
    scheduler : callable
        ``ray.util.dask.ray_dask_get``.

    Raises
    ------
    ImportError
        When Ray, dask or pyarrow (which Ray's dask integration imports
        through ``dask.dataframe``) is missing; the message names the
        ``sk_mtbnn[ray]`` extra.

    Examples
    --------
    >>> from sk_mtbnn.distributed import ray_dask_scheduler
    >>> scheduler = ray_dask_scheduler()  # doctest: +SKIP
    >>> query_pool_dask(reg, pool, n_instances=10, scheduler=scheduler)  # doctest: +SKIP
    """
    import_optional("ray", "ray", "Running dask graphs on Ray")
    import_optional("pyarrow", "ray", "Ray's dask scheduler (it imports dask.dataframe)")
    module = import_optional("ray.util.dask", "ray", "Ray's dask scheduler")
    return module.ray_dask_get
