"""Ray as the engine: dask graphs on a Ray cluster, and Ray's joblib backend."""

from __future__ import annotations

import builtins
import os
import types
import warnings

from ._blocks import import_optional


def ray_dask_scheduler():
    """Ray's dask scheduler, to run :func:`predict_dask` and the pool queries on Ray.

    Pass it as ``scheduler=`` to :func:`query_pool_dask` or to
    :func:`dask.compute`, or set it for a block of code with
    ``dask.config.set(scheduler=ray_dask_scheduler())``. Connect to (or
    start) a Ray cluster with ``ray.init`` first.

    Ray's driver replaces the built-in ``print`` once it relays a worker's
    output (its ``tqdm_ray`` patch); skorch's callbacks, inside every fitted
    model, hold the original ``print``, and the model can then no longer be
    pickled (nor does it stay quiet). This function sets the environment
    variable ``RAY_TQDM_PATCH_PRINT=0``, which prevents the patch unless you
    set the variable yourself, and warns if ``print`` has been replaced
    already: then set the variable before ``ray.init``, or start Ray with
    ``log_to_driver=False``.

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
    os.environ.setdefault("RAY_TQDM_PATCH_PRINT", "0")
    if not isinstance(builtins.print, types.BuiltinFunctionType):
        warnings.warn(
            "The built-in print has been replaced (by Ray's tqdm_ray, once the driver relays "
            "worker output); fitted sk_mtbnn models hold the original print and will fail to "
            "pickle. Set RAY_TQDM_PATCH_PRINT=0 before ray.init, or call "
            "ray.init(log_to_driver=False).",
            UserWarning,
            stacklevel=2,
        )
    return module.ray_dask_get
