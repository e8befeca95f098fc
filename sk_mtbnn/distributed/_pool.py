"""Active-learning pool scoring over a dask array: per-row scores and a top-k tree reduction."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np

from .._docstrings import fill_doc
from .._validation import check_choice, check_positive_int
from ._blocks import as_model_input, check_dask_array, compute, import_optional, map_rows


@fill_doc
def predictive_std_score(
    model, X, *, task=None, uncertainty: str = "total", verbose=None
) -> np.ndarray:
    """Predictive standard deviation per row, summed over tasks in standardised units.

    The score of :func:`sk_mtbnn.active_learning.max_std_sampling`: tasks
    on different scales count alike. A row's score depends on that row only,
    so it can be computed block by block. Above 1,000 labelled rows it is
    the network's, without the random-feature references (``reference_``).

    Parameters
    ----------
    model : fitted sk_mtbnn regressor, Pipeline, IterativeMagnitudePruning or modAL learner
        The model.
    X : array-like of shape (n_samples, n_features)
        Candidates.
    task : int or None, default=None
        One task, or the sum over tasks.
    uncertainty : {"total", "epistemic"}, default="total"
        Predictive standard deviation, or its epistemic part only.
    verbose : int or None, default=None
        2 or more: a progress bar over the chunks of a large ``X``; None: the
        model's ``verbose``.

    Returns
    -------
    scores : ndarray of shape (n_samples,)

    Examples
    --------
    %(example_regressor)s
    >>> from sk_mtbnn.distributed import predictive_std_score
    >>> predictive_std_score(reg, X[:4]).shape
    (4,)
    """
    from ..active_learning._model import as_inputs, pool_scores, resolve, task_columns

    check_choice(uncertainty, "uncertainty", ("total", "epistemic"))
    estimator, transform = resolve(model)
    scores = pool_scores(estimator, as_inputs(estimator, transform, X), verbose)
    return scores.summed_std(uncertainty, task_columns(task, estimator.n_tasks_))


@fill_doc
def score_pool_dask(model, X_pool, *, score: Callable | None = None):
    """Lazy per-row scores of a dask pool, computed block by block.

    Parameters
    ----------
    model : fitted model
        Passed to ``score``; it enters the task graph once.
    X_pool : dask.array.Array of shape (n_pool, n_features)
        Candidates, chunked along the rows.
    score : callable, default=None
        ``score(model, X_block) -> ndarray of shape (n_block,)``, a row's score
        depending on that row only (for instance
        :func:`predictive_std_score`, the default (without its progress bar
        in the workers), or
        :func:`sk_mtbnn.active_learning.expected_gradient_length`; bind
        options with :func:`functools.partial`).

    Returns
    -------
    scores : dask.array.Array of shape (n_pool,)

    Examples
    --------
    %(example_regressor)s
    >>> import dask.array as da
    >>> from sk_mtbnn.distributed import predictive_std_score, score_pool_dask
    >>> pool = da.from_array(np.linspace(-6, 6, 1_000)[:, None], chunks=(250, 1))
    >>> scores = score_pool_dask(reg, pool).compute()
    >>> bool(np.allclose(scores, predictive_std_score(reg, pool.compute())))
    True
    """
    X_pool = check_dask_array(X_pool, "X_pool")
    fn = partial(_score_block, score=_quiet_std_score if score is None else score)
    example = fn(model, np.zeros((1, X_pool.shape[1]), dtype=X_pool.dtype))
    return map_rows(fn, model, X_pool, example)


@fill_doc
def query_pool_dask(
    model,
    X_pool,
    n_instances: int = 1,
    *,
    score: Callable | None = None,
    split_every: int = 8,
    return_scores: bool = False,
    scheduler=None,
    verbose: int = 0,
):
    """The ``n_instances`` highest-scoring rows of a dask pool, by a tree reduction.

    Every row block is scored and reduced to its own top ``n_instances``
    where it lives; groups of ``split_every`` partial results are then
    merged, level by level, into the global top. No task holds more than one
    block of the pool, or ``split_every * n_instances`` candidates, so the
    memory of a worker does not grow with the pool. The result equals
    ranking the whole pool at once (a stable sort of the scores: equal
    scores are ordered by row index). It is a plain top-k: to spread a batch
    out, pass a few times ``n_instances`` rows on to a local batch strategy
    (see :ref:`scaling_out`).

    Parameters
    ----------
    model : fitted model
        Passed to ``score`` (a fitted sk_mtbnn regressor, Pipeline,
        IterativeMagnitudePruning or modAL learner for the default score).
        It enters the task graph once.
    X_pool : dask.array.Array of shape (n_pool, n_features)
        Candidates, chunked along the rows, with known chunk sizes.
    n_instances : int, default=1
        Number of rows to return.
    score : callable, default=None
        ``score(model, X_block) -> ndarray of shape (n_block,)``; higher is
        more informative. None: :func:`predictive_std_score` (the ranking of
        ``max_std_sampling``). Scores that are not finite raise a ValueError.
    split_every : int, default=8
        Partial results merged per task of the reduction (at least 2).
    return_scores : bool, default=False
        Also return the scores of the chosen rows.
    scheduler : str or callable, default=None
        Passed to :func:`dask.compute`: None uses the active distributed
        ``Client`` or dask's default; ``ray.util.dask.ray_dask_get`` runs the
        graph on Ray.
    verbose : int, default=0
        2 or more: one progress bar over the tasks of the graph as they
        finish (dask's local schedulers; a distributed ``Client`` shows its
        progress on its dashboard).

    Returns
    -------
    query_idx : ndarray of shape (n_instances,)
        Row indices into ``X_pool``, highest score first.
    query_scores : ndarray of shape (n_instances,), optional
        Their scores, when ``return_scores=True``.

    See Also
    --------
    score_pool_dask : The lazy per-row scores themselves.

    Examples
    --------
    %(example_regressor)s
    >>> import dask.array as da
    >>> from sk_mtbnn.distributed import predictive_std_score, query_pool_dask
    >>> pool = da.random.default_rng(0).uniform(-6, 6, size=(20_000, 1), chunks=(2_000, 1))
    >>> idx = query_pool_dask(reg, pool, n_instances=5)
    >>> local = predictive_std_score(reg, pool.compute())  # the whole pool in one process
    >>> bool(np.array_equal(idx, np.argsort(-local, kind="stable")[:5]))
    True
    """
    dask = import_optional("dask", "dask", "query_pool_dask")
    n_instances = check_positive_int(n_instances, "n_instances")
    split_every = check_positive_int(split_every, "split_every")
    if split_every < 2:
        raise ValueError(f"split_every must be at least 2; got {split_every}.")
    X_pool = check_dask_array(X_pool, "X_pool", known_chunks=True)
    if n_instances > X_pool.shape[0]:
        raise ValueError(f"n_instances={n_instances} exceeds the pool size {X_pool.shape[0]}.")
    scores = score_pool_dask(model, X_pool, score=score)
    offsets = np.cumsum((0, *X_pool.chunks[0][:-1]))
    block_top = dask.delayed(_block_top_k, pure=True)
    merge = dask.delayed(_merge_top_k, pure=True)
    parts = [
        block_top(block, int(offset), n_instances)
        for block, offset in zip(scores.to_delayed().ravel(), offsets)
    ]
    while len(parts) > 1:
        groups = [parts[i : i + split_every] for i in range(0, len(parts), split_every)]
        parts = [merge(group, n_instances) for group in groups]
    ((values, index),) = compute(parts[0], scheduler=scheduler, verbose=verbose)
    return (index, values) if return_scores else index


_quiet_std_score = partial(predictive_std_score, verbose=0)


def _score_block(model, block: np.ndarray, score: Callable) -> np.ndarray:
    values = np.asarray(score(model, as_model_input(model, block)), dtype=np.float64)
    if values.shape != (len(block),):
        raise ValueError(
            f"score must return one value per row, an array of shape ({len(block)},); got "
            f"shape {values.shape}. Reduce the tasks to one score per row (e.g. sum them)."
        )
    if not np.all(np.isfinite(values)):
        raise ValueError(
            "score returned values that are not finite; rows cannot be ranked by them. "
            "Check the pool for rows far outside the training data."
        )
    return values


def top_k(values: np.ndarray, index: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` largest ``values`` and their ``index``, ties broken by the smaller index.

    The order of a stable ``argsort(-values)``; because ties are broken by
    index, merging the top ``k`` of parts gives the top ``k`` of the whole.
    """
    if len(values) > k:
        # Only values >= the k-th largest can be chosen; sort just those.
        kth = np.partition(values, len(values) - k)[len(values) - k]
        keep = values >= kth
        values, index = values[keep], index[keep]
    order = np.lexsort((index, -values))[:k]
    return values[order], index[order]


def _block_top_k(values: np.ndarray, offset: int, k: int):
    return top_k(values, np.arange(offset, offset + len(values), dtype=np.int64), k)


def _merge_top_k(parts, k: int):
    values = np.concatenate([p[0] for p in parts])
    index = np.concatenate([p[1] for p in parts])
    return top_k(values, index, k)
