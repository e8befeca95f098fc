"""Out-of-core prediction: a fitted estimator mapped over the row blocks of a dask array."""

from __future__ import annotations

from functools import partial

import numpy as np

from ._blocks import as_model_input, check_dask_array, map_rows


def predict_dask(estimator, X, *, return_std: bool = False):
    """Lazy predictions of a fitted estimator on a dask array, block by block.

    Each row block of ``X`` is predicted by ``estimator.predict`` on the
    worker that holds it; nothing is computed until the result is. The
    estimator enters the task graph once and is sent to each worker once.
    Every row's prediction equals the local ``estimator.predict`` on that
    row (the sk_mtbnn regressors predict in float64, so up to rounding).

    Parameters
    ----------
    estimator : fitted estimator
        Any fitted estimator with ``predict`` (a Pipeline too); with
        ``return_std=True`` its ``predict`` must accept ``return_std``, as
        :class:`~sk_mtbnn.SparseMultiTaskBNNRegressor`'s does.
    X : dask.array.Array of shape (n_samples, n_features)
        Query points, chunked along the rows; the columns are gathered into
        one chunk if they are split.
    return_std : bool, default=False
        Also return the predictive standard deviation.

    Returns
    -------
    y_mean : dask.array.Array of shape (n_samples,) or (n_samples, n_tasks)
        Predictions; the task axis is dropped with one task, as the local
        ``predict`` does.
    y_std : dask.array.Array of the same shape, optional
        Predictive standard deviation, when ``return_std=True``. Compute both
        in one pass with ``dask.compute(y_mean, y_std)``: they come from the
        same tasks.

    See Also
    --------
    query_pool_dask : The top candidates of a dask pool by a per-row score.

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> from sk_mtbnn import SparseMultiTaskBNNRegressor
    >>> from sk_mtbnn.distributed import predict_dask
    >>> X = np.linspace(-2, 2, 60)[:, None]
    >>> reg = SparseMultiTaskBNNRegressor(max_epochs=10, random_state=0)
    >>> reg = reg.fit(X, np.column_stack([np.sin(X[:, 0]), np.cos(X[:, 0])]))
    >>> X_big = da.random.default_rng(0).uniform(-2, 2, size=(10_000, 1), chunks=(2_500, 1))
    >>> mean, std = predict_dask(reg, X_big, return_std=True)
    >>> mean.shape, mean.chunks[0]  # lazy: nothing computed yet
    ((10000, 2), (2500, 2500, 2500, 2500))
    >>> mean, std = da.compute(mean, std)
    >>> bool(np.allclose(std, reg.predict(X_big.compute(), return_std=True)[1]))
    True
    """
    X = check_dask_array(X, "X")
    fn = partial(_predict_block, return_std=bool(return_std))
    # One row predicted locally gives the output's shape and dtype, and
    # reports a wrong number of features, or an estimator without
    # return_std, before any task runs.
    example = fn(estimator, np.zeros((1, X.shape[1]), dtype=X.dtype))
    out = map_rows(fn, estimator, X, example)
    return (out[:, 0], out[:, 1]) if return_std else out


def _predict_block(estimator, block: np.ndarray, return_std: bool) -> np.ndarray:
    X = as_model_input(estimator, block)
    if not return_std:
        return np.asarray(estimator.predict(X))
    mean, std = estimator.predict(X, return_std=True)
    return np.stack([np.asarray(mean), np.asarray(std)], axis=1)
