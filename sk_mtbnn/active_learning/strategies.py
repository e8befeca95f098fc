"""Baseline query strategies for modAL: multi-task max-std, random, and greedy sampling.

The greedy sampling strategies for regression are those of Wu, Lin & Huang,
"Active learning for regression using greedy sampling", Information Sciences
474 (2019): GSx (diversity of the inputs), GSy (diversity of the outputs) and
iGS (both). Each picks one row at a time; within a batch, rows already picked
count as labelled, with their predicted outputs. Inputs and outputs are
compared in the model's standardised units, so that no column's units
matter.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import cdist
from sklearn.utils import check_random_state

from .._docstrings import fill_doc
from .._validation import check_choice, check_positive_float, check_positive_int
from ._diversity import diverse_top, exclusion_box
from ._labelled import labelled_set
from ._model import pool_scores, prepare_pool, standardised_inputs, task_columns


@fill_doc
def max_std_sampling(
    learner,
    X_pool,
    n_instances=1,
    task=None,
    uncertainty="total",
    X_labelled=None,
    alpha=0.02,
):
    """The rows with the largest predictive standard deviation, multi-task and batch aware.

    The standard deviations of the tasks (in standardised units, so tasks on
    different scales count alike) are summed, or one ``task`` is used.
    modAL's own ``max_std_sampling`` reshapes the standard deviation to one
    column and fails on several tasks.

    Rows are taken in decreasing standard deviation, skipping every row that
    is close to a labelled row (a learner's training row labelled for every
    scored task, or ``X_labelled``) or to a row already picked: the box rule
    of :class:`ClusterEGLSampling` (half-widths :func:`distance_thresholds`
    of the standardised labelled inputs). A batch thus never spends labels on
    near-duplicates, nor on the points already labelled (modAL's own
    strategy re-queries the same points when the pool holds them). Only when
    fewer than ``n_instances`` pool rows lie outside the exclusion is it
    relaxed, for the rest of the batch.

    Parameters
    ----------
    %(learner)s
    %(X_pool)s
    task : int or None, default=None
        One task, or the sum over tasks.
    uncertainty : {"total", "epistemic"}, default="total"
        Predictive standard deviation, or its epistemic part only.
    %(X_labelled)s
    alpha : float, default=0.02
        Scale of the exclusion threshold (0 keeps out exact duplicates only).

    %(query_returns)s

    Examples
    --------
    >>> import numpy as np
    >>> from sk_mtbnn import SparseMultiTaskBNNRegressor
    >>> from sk_mtbnn.active_learning import max_std_sampling
    >>> X = np.linspace(-3, 3, 100)[:, None]
    >>> y = np.column_stack([np.sin(X[:, 0]), np.cos(X[:, 0])])
    >>> reg = SparseMultiTaskBNNRegressor(max_epochs=20, random_state=0).fit(X[:50], y[:50])
    >>> X_pool = np.vstack([np.repeat(X[-1:], 5, axis=0), X])  # 6 copies of the far end
    >>> idx = max_std_sampling(reg, X_pool, n_instances=3, X_labelled=X[:50])
    >>> len(idx), int(np.isin(idx, [0, 1, 2, 3, 4, 104]).sum())  # one copy at most
    (3, 1)
    """
    check_choice(uncertainty, "uncertainty", ("total", "epistemic"))
    check_positive_float(alpha, "alpha", allow_zero=True)
    estimator, transform, X, n = prepare_pool(learner, X_pool, n_instances)
    tasks = task_columns(task, estimator.n_tasks_)
    labelled = labelled_set(learner, estimator, transform, tasks, X_labelled)
    std = pool_scores(estimator, X).summed_std(uncertainty, tasks)
    order = np.argsort(-std, kind="stable")
    Z = standardised_inputs(estimator, X)
    return diverse_top(order, n, exclusion_box(Z, labelled.Z, alpha))


@fill_doc
def random_sampling(learner, X_pool, n_instances=1, random_state=None):
    """``n_instances`` distinct rows drawn uniformly at random.

    Parameters
    ----------
    learner : object
        Ignored (kept for modAL's query-strategy signature).
    %(X_pool)s
    random_state : int, RandomState instance or None, default=None
        Seeds the draw.

    %(query_returns)s

    Examples
    --------
    >>> random_sampling(None, np.zeros((10, 2)), n_instances=3, random_state=0)
    array([2, 8, 4])
    """
    n_instances = check_positive_int(n_instances, "n_instances")
    if n_instances > len(X_pool):
        raise ValueError(f"n_instances={n_instances} exceeds the pool size {len(X_pool)}.")
    return check_random_state(random_state).choice(len(X_pool), n_instances, replace=False)


def greedy_picks(kind, Z, n, Z_labelled=None, P=None, Y_labelled=None) -> np.ndarray:
    """GSx, GSy or iGS (Wu, Lin & Huang 2019) on standardised arrays.

    The distance of a candidate to the labelled set is ``min_m dist_m`` with
    ``dist_m`` the input distance ``||z - z_m||`` (GSx), the output distance
    ``||p - y_m||`` (GSy), or their product (iGS: the minimum of the
    product, as in the authors' ``main_iGS.m``, ``dist = min(distX .*
    distY)``, never the product of the two minima). The farthest candidate
    is picked and joins the labelled set with its prediction ``p``. Without
    labelled rows, the first pick is the candidate closest to the pool's
    centroid.

    Parameters
    ----------
    kind : {"gsx", "gsy", "igs"}
    Z : ndarray of shape (m, d)
        Standardised candidate inputs.
    n : int
        Number of picks.
    Z_labelled : ndarray of shape (n_labelled, d) or None
        Standardised labelled inputs.
    P : ndarray of shape (m, k) or None
        Predicted (standardised) outputs of the candidates (GSy, iGS).
    Y_labelled : ndarray of shape (n_labelled, k) or None
        Standardised labels (GSy, iGS).

    Returns
    -------
    picked : ndarray of shape (n,)
        Distinct indices into ``Z``.
    """
    if Z_labelled is None or len(Z_labelled) == 0:
        picked = [int(np.argmin(np.linalg.norm(Z - Z.mean(0), axis=1)))]
        gap = _gap(kind, Z, P, Z[picked], None if P is None else P[picked])[:, 0]
    else:
        picked = []
        gap = _min_gap(kind, Z, P, Z_labelled, Y_labelled)
    while len(picked) < n:
        value = gap.copy()
        value[picked] = -np.inf
        best = int(np.argmax(value))
        picked.append(best)
        new = _gap(kind, Z, P, Z[best : best + 1], None if P is None else P[best : best + 1])
        gap = np.minimum(gap, new[:, 0])
    return np.array(picked[:n], dtype=int)


def _gap(kind, Z, P, Z_ref, P_ref) -> np.ndarray:
    """``(m, r)`` distances of every candidate to every reference row, of ``kind``."""
    gap = cdist(Z, Z_ref) if kind in ("gsx", "igs") else 1.0
    if kind in ("gsy", "igs"):
        gap = gap * cdist(P, P_ref)
    return gap


def _min_gap(kind, Z, P, Z_ref, P_ref, block=1024) -> np.ndarray:
    """``min`` over the reference rows of :func:`_gap`, in blocks of candidates."""
    out = np.empty(len(Z))
    for start in range(0, len(Z), block):
        rows = slice(start, start + block)
        out[rows] = _gap(kind, Z[rows], None if P is None else P[rows], Z_ref, P_ref).min(1)
    return out


def _greedy(learner, X_pool, n_instances, kind, X_labelled, y_labelled, task):
    estimator, transform, X, n = prepare_pool(learner, X_pool, n_instances)
    tasks = task_columns(task, estimator.n_tasks_)
    with_y = kind != "gsx"
    labelled = labelled_set(
        learner, estimator, transform, tasks, X_labelled, y_labelled, with_y=with_y
    )
    Z = standardised_inputs(estimator, X)
    P = pool_scores(estimator, X).mean[:, tasks] if with_y else None
    return greedy_picks(kind, Z, n, labelled.Z, P, labelled.Y)


@fill_doc
def gsx_sampling(learner, X_pool, n_instances=1, X_labelled=None, task=None):
    """GSx: the rows farthest (in standardised inputs) from every labelled row.

    Parameters
    ----------
    learner : modAL learner or fitted sk_mtbnn regressor
        The model (for the input scaling and the labelled rows).
    %(X_pool)s
    %(X_labelled)s
    task : int or None, default=None
        From a learner, rows count as labelled when labelled for this task
        (for every task when None).

    %(query_returns)s

    Examples
    --------
    %(example_al_regressor)s
    >>> from sk_mtbnn.active_learning import gsx_sampling
    >>> gsx_sampling(reg, X, n_instances=1, X_labelled=X[:5])  # the far end
    array([20])
    """
    return _greedy(learner, X_pool, n_instances, "gsx", X_labelled, None, task)


@fill_doc
def gsy_sampling(learner, X_pool, n_instances=1, X_labelled=None, y_labelled=None, task=None):
    """GSy: the rows whose predicted outputs are farthest from every labelled output.

    Outputs of several tasks are compared in standardised units (Euclidean
    distance over the scored tasks); a row counts as labelled when it has a
    label for every scored task.

    %(output_greedy_sections)s

    Examples
    --------
    %(example_al_regressor)s
    >>> from sk_mtbnn.active_learning import gsy_sampling
    >>> gsy_sampling(reg, X, n_instances=2, X_labelled=X[:5], y_labelled=X[:5, 0]).shape
    (2,)
    """
    return _greedy(learner, X_pool, n_instances, "gsy", X_labelled, y_labelled, task)


@fill_doc
def igs_sampling(learner, X_pool, n_instances=1, X_labelled=None, y_labelled=None, task=None):
    """iGS: the rows maximising ``min_m ||x - x_m|| * ||y^(x) - y_m||`` over the labelled set.

    The minimum over the labelled rows ``m`` of the product of the input and
    the output distances (Wu, Lin & Huang 2019; the authors' code:
    ``dist = min(distX .* distY)``), not the product of the two minima.
    Inputs and outputs in standardised units, as in :func:`gsy_sampling`.

    %(output_greedy_sections)s

    Examples
    --------
    %(example_al_regressor)s
    >>> from sk_mtbnn.active_learning import igs_sampling
    >>> idx = igs_sampling(reg, X, n_instances=2, X_labelled=X[:5], y_labelled=X[:5, 0])
    >>> bool(np.isin(idx, range(5)).any())  # a labelled row is at distance 0: never picked
    False
    """
    return _greedy(learner, X_pool, n_instances, "igs", X_labelled, y_labelled, task)
