"""The labelled set of a query: a learner's training rows, or ``X_labelled``/``y_labelled``."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._model import as_inputs, is_learner, standardised_inputs, standardised_targets


class Labelled(NamedTuple):
    """Labelled rows in the model's standardised units (``None`` when there are none)."""

    Z: np.ndarray | None  # (n, n_features) standardised inputs
    Y: np.ndarray | None  # (n, len(tasks)) standardised targets of the scored tasks


def check_labels(y, n_rows: int, n_tasks: int) -> np.ndarray:
    """``y`` as a float array of shape ``(n_rows, n_tasks)``, or a clear ``ValueError``."""
    Y = np.asarray(y, dtype=float)
    if Y.ndim == 1 and n_tasks == 1:
        Y = Y[:, None]
    if Y.ndim != 2 or Y.shape != (n_rows, n_tasks):
        raise ValueError(
            f"y_labelled must have one row per row of X_labelled ({n_rows}) and one column "
            f"per task of the model ({n_tasks}): shape ({n_rows}, {n_tasks})"
            f"{' or (n,)' if n_tasks == 1 else ''}; got shape {Y.shape}."
        )
    if np.isinf(Y).any():
        raise ValueError("y_labelled contains infinity; mark a missing label with NaN.")
    return Y


def _rows(X, rows: np.ndarray):
    return X.iloc[rows] if hasattr(X, "iloc") else np.asarray(X)[rows]


def labelled_set(
    learner, estimator, transform, tasks, X_labelled=None, y_labelled=None, *, with_y=False
) -> Labelled:
    """The labelled rows: ``X_labelled`` (and ``y_labelled``), or a learner's training data.

    A row counts as labelled when it has a label (not NaN) for every task in
    ``tasks``: a row that only carries other tasks' labels (say, a cheap low
    fidelity) is still worth querying for these. Without labels (``X_labelled``
    alone, for a strategy that needs no ``y``) every row counts.

    Parameters
    ----------
    with_y : bool, default=False
        The strategy needs the labels (GSy, iGS): ``X_labelled`` without
        ``y_labelled`` is then an error.
    """
    if X_labelled is None and y_labelled is not None:
        raise ValueError("y_labelled was given without X_labelled: pass both, or neither.")
    if X_labelled is None and is_learner(learner):
        X_labelled, y_labelled = learner.X_training, learner.y_training
    elif X_labelled is not None and with_y and y_labelled is None:
        raise ValueError(
            "This strategy compares outputs and needs the labels of X_labelled: pass "
            "y_labelled too (NaN for a missing label)."
        )
    if X_labelled is None or len(X_labelled) == 0:
        return Labelled(None, None)
    Y = None
    if y_labelled is not None:
        Y = check_labels(y_labelled, len(X_labelled), estimator.n_tasks_)
        rows = np.flatnonzero(~np.isnan(Y[:, tasks]).any(axis=1))
        X_labelled, Y = _rows(X_labelled, rows), Y[rows]
        if len(rows) == 0:
            return Labelled(None, None)
    Z = standardised_inputs(estimator, as_inputs(estimator, transform, X_labelled))
    if Y is not None:
        Y = standardised_targets(estimator, Y)[:, tasks]
    return Labelled(Z, Y if with_y else None)
