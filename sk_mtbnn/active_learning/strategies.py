"""Baseline query strategies for modAL: multi-task max-std, random, and greedy sampling.

The greedy sampling strategies for regression are those of Wu, Lin & Huang,
"Active learning for regression using greedy sampling", Information Sciences
474 (2019): GSx (diversity of the inputs), GSy (diversity of the outputs) and
iGS (both). Each picks one row at a time; within a batch, rows already picked
count as labelled, with their predicted outputs.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils import check_random_state

from .._validation import check_choice, check_positive_int
from ._model import as_inputs, is_learner, pool_scores, resolve, task_columns


def _prepare(learner, X_pool, n_instances):
    n_instances = check_positive_int(n_instances, "n_instances")
    estimator, transform = resolve(learner)
    X = as_inputs(estimator, transform, X_pool)
    if n_instances > len(X):
        raise ValueError(f"n_instances={n_instances} exceeds the pool size {len(X)}.")
    return estimator, transform, X, n_instances


def max_std_sampling(learner, X_pool, n_instances=1, task=None, uncertainty="total"):
    """The rows with the largest predictive standard deviation, multi-task aware.

    The standard deviations of the tasks (in standardised units, so tasks on
    different scales count alike) are summed, or one ``task`` is used.
    modAL's own ``max_std_sampling`` reshapes the standard deviation to one
    column and fails on several tasks.

    Parameters
    ----------
    learner : modAL learner or fitted sk_mtbnn regressor
        The model.
    X_pool : array-like of shape (n_pool, n_features)
        Candidates.
    n_instances : int, default=1
        Number of rows.
    task : int or None, default=None
        One task, or the sum over tasks.
    uncertainty : {"total", "epistemic"}, default="total"
        Predictive standard deviation, or its epistemic part only.

    Returns
    -------
    query_idx : ndarray of shape (n_instances,)

    Examples
    --------
    >>> import numpy as np
    >>> from sk_mtbnn import SparseMultiTaskBNNRegressor
    >>> from sk_mtbnn.active_learning import max_std_sampling
    >>> X = np.linspace(-3, 3, 100)[:, None]
    >>> y = np.column_stack([np.sin(X[:, 0]), np.cos(X[:, 0])])
    >>> reg = SparseMultiTaskBNNRegressor(max_epochs=20, random_state=0).fit(X[:50], y[:50])
    >>> max_std_sampling(reg, X, n_instances=2).shape
    (2,)
    """
    check_choice(uncertainty, "uncertainty", ("total", "epistemic"))
    estimator, _, X, n = _prepare(learner, X_pool, n_instances)
    scores = pool_scores(estimator, X)
    std = scores.total_std if uncertainty == "total" else scores.epistemic_std
    sigma = std[:, task_columns(task, estimator.n_tasks_)].sum(1)
    return np.argsort(-sigma, kind="stable")[:n]


def random_sampling(learner, X_pool, n_instances=1, random_state=None):
    """``n_instances`` distinct rows drawn uniformly at random.

    Parameters
    ----------
    learner : object
        Ignored (kept for modAL's query-strategy signature).
    X_pool : array-like of shape (n_pool, n_features)
        Candidates.
    n_instances : int, default=1
        Number of rows.
    random_state : int, RandomState instance or None, default=None
        Seeds the draw.

    Returns
    -------
    query_idx : ndarray of shape (n_instances,)

    Examples
    --------
    >>> random_sampling(None, np.zeros((10, 2)), n_instances=3, random_state=0)
    array([2, 8, 4])
    """
    n_instances = check_positive_int(n_instances, "n_instances")
    if n_instances > len(X_pool):
        raise ValueError(f"n_instances={n_instances} exceeds the pool size {len(X_pool)}.")
    return check_random_state(random_state).choice(len(X_pool), n_instances, replace=False)


def _labelled(learner, estimator, transform, X_labelled, y_labelled, tasks):
    """Labelled inputs and standardised outputs (rows labelled for ``tasks``)."""
    if X_labelled is None and is_learner(learner):
        X_labelled, y_labelled = learner.X_training, learner.y_training
        if X_labelled is not None and y_labelled is not None:
            y = np.asarray(y_labelled, dtype=float).reshape(len(X_labelled), -1)
            rows = ~np.isnan(y[:, tasks]).any(axis=1)
            X_labelled = (
                X_labelled.iloc[rows]
                if hasattr(X_labelled, "iloc")
                else (np.asarray(X_labelled)[rows])
            )
            y_labelled = y[rows]
    if X_labelled is None or len(X_labelled) == 0:
        return None, None
    X_lab = as_inputs(estimator, transform, X_labelled)
    if y_labelled is None:
        return X_lab, None
    Y = np.asarray(y_labelled, dtype=float).reshape(len(X_lab), -1)
    # Missing labels take the model's prediction; outputs in standardised units.
    pred = pool_scores(estimator, X_lab).mean
    Y = (Y - estimator._y_mean) / estimator._y_scale
    return X_lab, np.where(np.isnan(Y), pred, Y)


def _greedy(learner, X_pool, n_instances, kind, X_labelled, y_labelled, task):
    estimator, transform, X, n = _prepare(learner, X_pool, n_instances)
    tasks = task_columns(task, estimator.n_tasks_)
    Z = (X - estimator._x_mean) / estimator._x_scale
    X_lab, Y_lab = _labelled(learner, estimator, transform, X_labelled, y_labelled, tasks)
    use_y = kind in ("gsy", "igs")
    pred = pool_scores(estimator, X).mean[:, tasks] if use_y else None
    if Y_lab is not None:
        Y_lab = Y_lab[:, tasks]
    if X_lab is None or len(X_lab) == 0:
        # No labelled data: GSx starts at the row closest to the pool centroid.
        first = int(np.argmin(np.linalg.norm(Z - Z.mean(0), axis=1)))
        picked = [first]
        d_x = np.linalg.norm(Z - Z[first], axis=1)
        d_y = np.linalg.norm(pred - pred[first], axis=1) if use_y else None
    else:
        Z_lab = (X_lab - estimator._x_mean) / estimator._x_scale
        picked = []
        d_x = _min_dist(Z, Z_lab)
        d_y = _min_dist(pred, Y_lab) if use_y else None
    while len(picked) < n:
        value = {"gsx": d_x, "gsy": d_y, "igs": None}[kind]
        if kind == "igs":
            value = d_x * d_y
        value = value.copy()
        value[picked] = -np.inf
        best = int(np.argmax(value))
        picked.append(best)
        d_x = np.minimum(d_x, np.linalg.norm(Z - Z[best], axis=1))
        if use_y:
            d_y = np.minimum(d_y, np.linalg.norm(pred - pred[best], axis=1))
    return np.array(picked[:n], dtype=int)


def _min_dist(A, B, block=4096):
    """Distance from every row of ``A`` to its nearest row of ``B``, in blocks."""
    out = np.empty(len(A))
    for start in range(0, len(A), block):
        diff = A[start : start + block, None, :] - B[None, :, :]
        out[start : start + block] = np.sqrt((diff**2).sum(-1)).min(1)
    return out


def gsx_sampling(learner, X_pool, n_instances=1, X_labelled=None, task=None):
    """GSx: the rows farthest (in standardised inputs) from every labelled row.

    Parameters
    ----------
    learner : modAL learner or fitted sk_mtbnn regressor
        The model (for the input scaling and the labelled rows).
    X_pool : array-like of shape (n_pool, n_features)
        Candidates.
    n_instances : int, default=1
        Number of rows.
    X_labelled : array-like, optional
        Labelled inputs, when ``learner`` is a bare estimator.
    task : int or None, default=None
        From a learner, rows count as labelled when labelled for this task
        (for every task when None).

    Returns
    -------
    query_idx : ndarray of shape (n_instances,)

    Examples
    --------
    >>> import numpy as np
    >>> from sk_mtbnn import SparseMultiTaskBNNRegressor
    >>> from sk_mtbnn.active_learning import gsx_sampling
    >>> X = np.linspace(0, 1, 11)[:, None]
    >>> reg = SparseMultiTaskBNNRegressor(max_epochs=5, random_state=0).fit(X[:3], X[:3, 0])
    >>> gsx_sampling(reg, X, n_instances=1, X_labelled=X[:3])  # the far end
    array([10])
    """
    return _greedy(learner, X_pool, n_instances, "gsx", X_labelled, None, task)


def gsy_sampling(learner, X_pool, n_instances=1, X_labelled=None, y_labelled=None, task=None):
    """GSy: the rows whose predicted outputs are farthest from every labelled output.

    Outputs of several tasks are compared in standardised units; a missing
    label of a labelled row is replaced by the model's prediction.

    Parameters
    ----------
    learner : modAL learner or fitted sk_mtbnn regressor
        The model.
    X_pool : array-like of shape (n_pool, n_features)
        Candidates.
    n_instances : int, default=1
        Number of rows.
    X_labelled, y_labelled : array-like, optional
        Labelled data, when ``learner`` is a bare estimator.
    task : int or None, default=None
        Compare this task's outputs (all tasks when None); from a learner,
        rows count as labelled when labelled for it.

    Returns
    -------
    query_idx : ndarray of shape (n_instances,)

    Examples
    --------
    >>> import numpy as np
    >>> from sk_mtbnn import SparseMultiTaskBNNRegressor
    >>> from sk_mtbnn.active_learning import gsy_sampling
    >>> X = np.linspace(0, 1, 21)[:, None]
    >>> reg = SparseMultiTaskBNNRegressor(max_epochs=5, random_state=0).fit(X[:5], X[:5, 0])
    >>> gsy_sampling(reg, X, n_instances=2, X_labelled=X[:5], y_labelled=X[:5, 0]).shape
    (2,)
    """
    return _greedy(learner, X_pool, n_instances, "gsy", X_labelled, y_labelled, task)


def igs_sampling(learner, X_pool, n_instances=1, X_labelled=None, y_labelled=None, task=None):
    """iGS: the rows maximising (input distance) x (output distance) to the labelled set.

    Parameters
    ----------
    learner : modAL learner or fitted sk_mtbnn regressor
        The model.
    X_pool : array-like of shape (n_pool, n_features)
        Candidates.
    n_instances : int, default=1
        Number of rows.
    X_labelled, y_labelled : array-like, optional
        Labelled data, when ``learner`` is a bare estimator.
    task : int or None, default=None
        Compare this task's outputs (all tasks when None); from a learner,
        rows count as labelled when labelled for it.

    Returns
    -------
    query_idx : ndarray of shape (n_instances,)

    Examples
    --------
    >>> import numpy as np
    >>> from sk_mtbnn import SparseMultiTaskBNNRegressor
    >>> from sk_mtbnn.active_learning import igs_sampling
    >>> X = np.linspace(0, 1, 21)[:, None]
    >>> reg = SparseMultiTaskBNNRegressor(max_epochs=5, random_state=0).fit(X[:5], X[:5, 0])
    >>> igs_sampling(reg, X, n_instances=2, X_labelled=X[:5], y_labelled=X[:5, 0]).shape
    (2,)
    """
    return _greedy(learner, X_pool, n_instances, "igs", X_labelled, y_labelled, task)
